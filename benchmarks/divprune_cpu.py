"""DivPrune selection speed on the CPU: 576 visual tokens of width 4096, keep 56.

Three implementations of the same greedy max-min selection, side by side:

* ``python loop``: the greedy description transcribed with Python loops over
  lists (:func:`~polymodal.methods.divprune.reference.divprune_python`);
* ``published loop``: the published code's torch loop, which recomputes every
  token's distance to the kept set from the kept rows at each pick;
* ``ours``: :func:`~polymodal.methods.divprune.select.divprune`, one row update
  per pick for the whole batch.

All three must return the same picks. Times are medians of ``--repeats`` runs and
include the distance matrix; the last column times the greedy picks alone, on a
precomputed distance matrix (the Python loop computes its own, in float64).

    python benchmarks/divprune_cpu.py [--batch 1] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from polymodal.methods.divprune.reference import (
    divprune_loop,
    divprune_python,
    published_greedy,
)
from polymodal.methods.divprune.select import cosine_distance, divprune, greedy_max_min

TOKENS, WIDTH, KEEP = 576, 4096, 56


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1, help="samples per call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(args.batch, TOKENS, WIDTH, generator=generator)

    ours = divprune(features, KEEP)
    published = torch.stack([divprune_loop(f, KEEP) for f in features]).sort(-1).values
    python = torch.tensor([sorted(divprune_python(f, KEEP)) for f in features])
    if not (torch.equal(ours, published) and torch.equal(ours, python)):
        raise SystemExit("the implementations disagree on the kept tokens")

    times = {
        "python loop": median_seconds(
            lambda: [divprune_python(f, KEEP) for f in features], max(1, args.repeats // 2)
        ),
        "published loop": median_seconds(
            lambda: [divprune_loop(f, KEEP) for f in features], args.repeats
        ),
        "ours": median_seconds(lambda: divprune(features, KEEP), args.repeats),
    }
    matrix = cosine_distance(features)
    greedy = {
        "python loop": None,
        "published loop": median_seconds(
            lambda: [published_greedy(d, KEEP) for d in matrix], args.repeats
        ),
        "ours": median_seconds(lambda: greedy_max_min(matrix, KEEP), args.repeats),
    }
    print(
        f"DivPrune, {args.batch} × {TOKENS} tokens × {WIDTH} keep {KEEP}, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}; same picks: yes"
    )
    print(f"{'implementation':<16}{'total ms':>10}{'× vs python':>13}{'greedy-only ms':>16}")
    for name, seconds in times.items():
        speedup = times["python loop"] / seconds
        only = greedy[name]
        shown = "—" if only is None else f"{only * 1e3:.1f}"
        print(f"{name:<16}{seconds * 1e3:>10.1f}{speedup:>13.1f}{shown:>16}")


if __name__ == "__main__":
    main()
