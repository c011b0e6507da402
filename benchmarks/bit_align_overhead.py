"""What BiT-Align's bypass prompts add to a frozen ViT's forward pass: time and memory.

Side by side, on the same random batch, inference (no gradients):

- **frozen ViT**: the RGB ViT alone (patch embedding, blocks, final norm);
- **+ prompts**: the same ViT with the depth map through its patch embedding and
  one bypass prompt module before every block (:mod:`polymodal.methods.bit_align.prompts`).

Time is the median over repeats of the mean over ``--steps`` forwards (calls of the
two alternate, so load on the machine hits both alike). Memory is what the
forward allocates: the peak on CUDA (``max_memory_allocated``), the bytes the
torch profiler records on the CPU. Sizes: the check's ViT (64×64, patch 8, D = 64,
4 blocks) and a ViT-B/16 (224×224, D = 768, 12 blocks), rank 17 as in the paper.

    python benchmarks/bit_align_overhead.py [--batch 8] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from polymodal.methods.bit_align.prompts import BypassPrompts
from polymodal.modules.encoders import ViTEncoder

SIZES = {  # name: (image side, patch, width, blocks, heads)
    "check ViT (64px, D 64, 4 blocks)": (64, 8, 64, 4, 4),
    "ViT-B/16 (224px, D 768, 12 blocks)": (224, 16, 768, 12, 12),
}


def forwards(
    size: tuple[int, int, int, int, int], batch: int, device: str
) -> dict[str, Callable[[], Tensor]]:
    """The two forward passes to compare, as closures over one model and batch."""
    side, patch, dim, depth, heads = size
    torch.manual_seed(0)
    vit = ViTEncoder(side, patch, 3, dim, depth, heads).to(device).eval()
    prompts = BypassPrompts(depth, dim, vit.num_tokens(), rank=17).to(device).eval()
    for block in prompts.blocks:  # non-zero W_up, as after training
        torch.nn.init.normal_(block.up.weight, std=0.02)
    image = torch.rand(batch, 3, side, side, device=device)
    depth_map = torch.rand(batch, 1, side, side, device=device)

    def frozen() -> Tensor:
        return vit(image)

    def prompted() -> Tensor:
        depth_tokens = vit.embed(depth_map.expand(-1, 3, -1, -1))
        return vit(image, hook=prompts.hook(depth_tokens))

    return {"frozen ViT": frozen, "+ prompts": prompted}


def seconds(run: Callable[[], Tensor], steps: int, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        run()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def allocated_bytes(run: Callable[[], Tensor], device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    return int(sum(max(e.self_cpu_memory_usage, 0) for e in prof.key_averages()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    print(f"batch {args.batch}, {args.steps} forwards x {args.repeats} repeats, {args.device}, "
          f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    columns = ("frozen ViT ms", "+ prompts ms", "time ratio", "frozen MB", "+ prompts MB")
    print(f"| model | {' | '.join(columns)} | memory ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, size in SIZES.items():
        runs = forwards(size, args.batch, args.device)
        times: dict[str, list[float]] = {k: [] for k in runs}
        with torch.no_grad():
            for run in runs.values():
                run()  # warm-up
            for _ in range(args.repeats):
                for key, run in runs.items():
                    times[key].append(seconds(run, args.steps, args.device))
            memory = {key: allocated_bytes(run, args.device) for key, run in runs.items()}
        ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
        a, b = "frozen ViT", "+ prompts"
        print(
            f"| {name} | {ms[a]:.1f} | {ms[b]:.1f} | {ms[b] / ms[a]:.3f} | {memory[a] / 2**20:.1f} "
            f"| {memory[b] / 2**20:.1f} | {memory[b] / memory[a]:.3f} |"
        )


if __name__ == "__main__":
    main()
