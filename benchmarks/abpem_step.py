"""Cost of one ABPEM adaptation step against a plain forward of the same batch.

The model is the claim check's CAV-MAE-style AV-Digits model (64-wide tokens, one
encoder block per modality, one fusion layer; 20 audio + 16 image tokens); its
weights do not change the cost, so it is built untrained. Both are timed on the same
batch, interleaved repeat by repeat, after warm-up; the ABPEM step runs with its
feature cache full (``--cache`` samples from earlier batches), as in a stream.

    python benchmarks/abpem_step.py [--batch 16] [--cache 16] [--depth 1]
        [--repeats 50] [--threads 1]

``--depth`` sets the encoder blocks per modality (CAV-MAE has 11 before its one
fusion layer, so the step's extra cost, all in the fusion layer, weighs less there).
Prints the median milliseconds of each and their ratio (target: at most 3).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from polymodal.methods.abpem.adapt import TestTimeAdapter
from polymodal.methods.abpem.experiment import experiment
from polymodal.methods.abpem.methods import ABPEM
from polymodal.methods.abpem.model import build_av_fusion_transformer


def claim_model(depth: int | None = None) -> torch.nn.Module:
    """The claim check's architecture, untrained (optionally with other encoder depths)."""
    config = experiment()
    extra = {} if depth is None else {"depth": depth}
    modalities = {
        "image": {**config.model.modalities["image"], "shape": [1, 28, 28], **extra},
        "audio": {**config.model.modalities["audio"], "shape": [40, 101], **extra},
    }
    options = {k: v for k, v in config.model.options.items() if k != "builder"}
    return build_av_fusion_transformer(
        config.model.fusion, modalities, num_classes=10, dim=config.model.dim, seed=0, **options
    ).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--cache", type=int, default=16, help="ABPEM's cached samples")
    parser.add_argument("--depth", type=int, default=None, help="encoder blocks per modality")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.rand(args.batch, 1, 28, 28, generator=g),
        "audio": torch.randn(args.batch, 40, 101, generator=g),
    }
    plain_model = claim_model(args.depth)
    adapter = TestTimeAdapter(claim_model(args.depth), ABPEM(cache_size=args.cache))

    def forward() -> None:
        with torch.no_grad():
            plain_model(batch)

    def step() -> None:
        adapter.step(batch)

    for _ in range(5 + args.cache // args.batch):  # warm-up; also fills the feature cache
        forward()
        step()
    times: dict[str, list[float]] = {"forward": [], "abpem step": []}
    for _ in range(args.repeats):
        for name, fn in (("forward", forward), ("abpem step", step)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    depth = args.depth or experiment().model.modalities["image"]["depth"]
    print(
        f"batch {args.batch}, cache {args.cache}, encoder depth {depth}, "
        f"threads {torch.get_num_threads()}, repeats {args.repeats}"
    )
    for name, ms in median.items():
        print(f"{name:<12}{ms:8.2f} ms (median)")
    ratio = median["abpem step"] / median["forward"]
    print(f"ratio {ratio:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
