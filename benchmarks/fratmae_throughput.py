"""FratMAE pre-training throughput (volumes per second) by volume size and precision.

One training step is a forward and backward pass of FratMAE (both modalities, the
metadata term on) on a batch of random PET/CT volumes plus an AdamW step. Sizes
32³, 48³ and 64³ (patch 4, hence 512, 1,728 and 4,096 patches per modality);
float32 and bfloat16 autocast alternate within each size, and the median of the
repeats is reported. On a CUDA machine, ``--device cuda`` times the GPU.

    python benchmarks/fratmae_throughput.py [--sizes 32 48 64] [--batch 8] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from polymodal.methods.fratmae import build_fratmae


def step_seconds(size: int, batch: int, steps: int, bf16: bool, device: str) -> float:
    torch.manual_seed(0)
    shape = [size, size, size]
    model = build_fratmae("", {"pet": {"shape": shape}, "ct": {"shape": shape}}).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = {
        "pet": torch.rand(batch, *shape, device=device),
        "ct": torch.rand(batch, *shape, device=device),
        "text_ids": torch.randint(1, 200, (batch, 40), device=device),
    }

    def one_step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out = model(data)
            loss = sum(((out.prediction[m] - out.target[m]) ** 2).mean() for m in out.prediction)
            loss = loss + out.auxiliary
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    print(f"device {args.device}, threads {torch.get_num_threads()}, batch {args.batch}")
    print("| size | patches | float32 volumes/s | bf16 autocast volumes/s | bf16 speed-up |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for bf16 in (False, True):
                times[bf16].append(step_seconds(size, args.batch, args.steps, bf16, args.device))
        fp32, bf16 = (statistics.median(times[k]) for k in (False, True))
        print(
            f"| {size}³ | {(size // 4) ** 3:,} | {args.batch / fp32:.1f} | {args.batch / bf16:.1f} "
            f"| {fp32 / bf16:.2f}× |"
        )


if __name__ == "__main__":
    main()
