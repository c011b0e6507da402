"""ReT serving: the faiss index against exact late-interaction scoring, side by side.

Every document is a Shapes-Retrieval document encoded by ONE trained ReT model — the
``ret`` check's seed-0 model, read from the run cache (trained here otherwise); none
is drawn, and encodings saved by an earlier run are refused unless the same model
made them. Two parts, each encoding timed:

* ``--encoded`` documents of a fresh collection (seed 7; image + text, text-only and
  image-only as the data set mixes them), with the queries that target them. The text
  encoder (MiniLM) makes these slow, about 100 per second on one thread;
* the rest are **image-only** documents of further fresh collections (seeds 8, 9, …),
  a kind the data set holds (15 % of its documents) and the model was trained on.
  Without text they need only the ViT and the fusion cell, so a 100,000-document
  collection is encoded in minutes.

Each collection size of ``--documents`` is a prefix of the largest (the mixed part
first). Queries are answered one at a time, as a server answers them:

* exact: every document scored, ``Σᵢ maxⱼ qᵢ·dⱼ`` over float32 tokens, top 10 — the
  reference. Its Recall@5 is computed for every test query (batched); its speed is
  timed on ``--timed-exact`` of them, in the same process as the index;
* index: :class:`~polymodal.methods.ret.index.TokenIndex` (faiss IVF-PQ candidates,
  centroid interaction, exact re-scoring of the best candidates).

The search setting (``nprobe`` × ``probe`` × ``rerank``, for each PQ code size) is
chosen on ``--val-queries`` validation queries: the fastest setting that returns at
least 98 % of the exact top 5 (else the most agreeing, the faster of equals). On the
``--queries`` test queries the report gives Recall@5 of both with the paired 95 %
interval of their difference, the share of the exact top 5 the index returns,
queries per second, build time, memory per document and how often image-only
documents enter the exact top 5. Targets: Recall@5 within 1 point of exact at ≥ 20×
the exact scorer's query throughput.

    OMP_NUM_THREADS=1 python benchmarks/ret_index.py [--documents 20000 100000]
        [--encoded 5000] [--queries 300] [--val-queries 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from polymodal.bench.verdict import paired_difference
from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
from polymodal.errors import DataError
from polymodal.methods.ret.backbones import FrozenBackbones, build_bank
from polymodal.methods.ret.claim import FULL, QUICK
from polymodal.methods.ret.data import frozen_backbones
from polymodal.methods.ret.experiment import TEXT_DIM, encode, train_retriever
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search
from polymodal.methods.ret.model import BackboneTokens, Retriever
from polymodal.methods.ret.serve import searcher_version
from polymodal.methods.ret.tuning import Trial, agreement, answer, choose, hits_at, try_settings

AGREEMENT = 0.98
"""Validation share of the exact top 5 a chosen setting must return."""
RECALL_POINTS, SPEED_UP = 1.0, 20.0
"""Targets: Recall@5 at most this many points below exact, at this speed-up."""
CHUNK = 10_000
"""Image-only documents generated and encoded per collection."""


@torch.no_grad()
def image_only_documents(
    model: Retriever, backbones: FrozenBackbones, n: int, batch_size: int = 256
) -> torch.Tensor:
    """(n, P, E) float16 tokens of ``n`` image-only documents of fresh Shapes-Retrieval
    collections (seeds 8, 9, …; ``CHUNK`` each), through the ViT and the document encoder."""
    out = [torch.empty(0, 32, 128, dtype=torch.float16)]
    for c, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start)
        data = load_shapes_retrieval(
            "test",
            seed=8 + c,
            train=4,
            val=4,
            test=size + size % 2,  # even: documents come in twins
            image_only_documents=1.0,
            text_only_documents=0.0,
        )
        images = data.documents["image"][:size]
        for i in range(0, len(images), batch_size):
            layers = backbones.vision(images[i : i + batch_size])
            visual = torch.stack([layers[k] for k in backbones.vision_layers], dim=1)
            b, k = visual.shape[:2]
            features = BackboneTokens(
                torch.zeros(b, k, 1, TEXT_DIM),
                torch.ones(b, 1, dtype=torch.bool),
                visual,
                torch.zeros(b, dtype=torch.bool),
                torch.ones(b, dtype=torch.bool),
            )
            out.append(model.document(features).tokens.half())
    return torch.cat(out)


def encode_collection(
    model: Retriever, backbones: FrozenBackbones, encoded: int, queries: int
) -> dict[str, Any]:
    """Document tokens (N, 32, 128) float16 of a fresh mixed collection and the first
    ``queries`` queries' tokens and targets; ``seconds`` to encode the documents."""
    data = load_shapes_retrieval("test", seed=7, train=4, val=4, test=encoded)
    if len(data.queries["target"]) < queries:
        raise DataError(
            f"{encoded} documents have only {len(data.queries['target'])} queries, "
            f"{queries} asked; raise --encoded or lower --queries/--val-queries"
        )
    started = time.perf_counter()
    documents = data.documents
    bank = build_bank(
        backbones,
        documents["image"],
        data.texts("documents"),
        documents["image_mask"],
        documents["text_ids_mask"],
    )
    tokens = encode(model.document, bank).half()
    seconds = time.perf_counter() - started
    q, rows = data.queries, torch.arange(queries)
    texts = [data.texts("queries")[i] for i in rows.tolist()]
    query_bank = build_bank(
        backbones, q["image"][rows], texts, q["image_mask"][rows], q["text_ids_mask"][rows]
    )
    return {
        "documents": tokens,
        "queries": encode(model.query, query_bank),
        "target": q["target"][rows],
        "seconds": seconds,
    }


def stamped(path: Path, version: str, make: Any) -> dict[str, Any]:
    """The encodings saved at ``path`` if ``version`` made them, else ``make()``'s, saved.

    Raises:
        DataError: the saved encodings come from another model version (never mixed).
    """
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved.get("model_version") != version:
            raise DataError(
                f"{path} was encoded by model version {saved.get('model_version')}, the "
                f"benchmark's model is {version}; delete it to encode again with this model"
            )
        return saved
    made = {**make(), "model_version": version}
    torch.save(made, path)
    return made


STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress, with the minutes since the start."""
    print(f"[{(time.perf_counter() - STARTED) / 60:5.1f} min] {message}", flush=True)


def lists_for(tokens: int) -> int:
    """Inverted lists for ``tokens`` vectors: the power of two at or below 4·√tokens
    (faiss's rule of thumb), at most 4,096."""
    return min(4096, 2 ** int(math.log2(4 * math.sqrt(tokens))))


def build_indexes(
    documents: torch.Tensor, version: str, code_sizes: list[int]
) -> dict[int, tuple[TokenIndex, float]]:
    """One index per PQ code size, with its build seconds."""
    lists = lists_for(documents.shape[0] * documents.shape[1])
    out = {}
    for subquantizers in code_sizes:
        settings = IndexSettings(lists, subquantizers, train_size=max(100_000, 50 * lists))
        started = time.perf_counter()
        index = TokenIndex.build(documents, version, settings)
        out[subquantizers] = (index, time.perf_counter() - started)
    return out


def exact_reference(
    queries: torch.Tensor, documents: torch.Tensor, timed: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """The exact top 10 (B, 10) of every query (batched) and the exact scorer's seconds
    per query, asked one at a time (``timed``), over float32 tokens (no conversion per
    query)."""
    reference = documents.float()
    exact = exact_search(queries, reference, k=10)[1]
    _, seconds = answer(lambda q: exact_search(q, reference, k=10)[1], timed)
    return exact, seconds


def measure(
    documents: torch.Tensor,
    enc: dict[str, Any],
    version: str,
    args: argparse.Namespace,
    mixed: int,
) -> dict[str, Any]:
    """Exact scoring and the tuned index on one collection, side by side."""
    queries, target = enc["queries"], enc["target"]
    val, test = slice(0, args.val_queries), slice(args.val_queries, None)
    exact, exact_s = exact_reference(queries, documents, queries[test][: args.timed_exact])
    log(f"{len(documents)} documents: exact scoring done, {1 / exact_s:.3f} queries/s")
    indexes = build_indexes(documents, version, args.pq)
    log(f"indexes built in {[round(s) for _, s in indexes.values()]} s")
    trials: list[Trial] = []
    for index, _ in indexes.values():
        grid = (args.nprobe, args.probe, args.rerank)
        trials += try_settings(index, queries[val], exact[val], *grid)
    chosen = choose(trials, AGREEMENT)
    log(f"chosen on validation: {chosen}")
    index, build_s = indexes[chosen.subquantizers]
    index.set_search(chosen.nprobe, chosen.probe, chosen.rerank)
    found, index_s = answer(lambda q: index.search(q, k=10)[1], queries[test])
    if {i.model_version for i, _ in indexes.values()} != {version}:
        raise DataError("the index and the queries come from different model versions")
    hits_exact, hits_index = hits_at(exact[test], target[test]), hits_at(found, target[test])
    difference = paired_difference([hits_index.numpy()], [hits_exact.numpy()])
    speed_up = exact_s / index_s
    return {
        "documents": len(documents),
        "mixed documents": mixed,
        "chosen on validation": vars(chosen) | {"lists": len(index.centroids)},
        "test queries": len(found),
        "recall@5 exact": round(float(hits_exact.mean()), 4),
        "recall@5 index": round(float(hits_index.mean()), 4),
        "recall@5 index - exact (points, 95% interval)": [
            round(100 * v, 2) for v in (difference.estimate, difference.low, difference.high)
        ],
        "exact top-5 found by the index": round(agreement(found, exact[test]), 4),
        "image-only documents in the exact top 5 (share)": round(
            float((exact[test][:, :5] >= mixed).float().mean()), 4
        ),
        "exact queries per second": round(1 / exact_s, 3),
        "index queries per second": round(1 / index_s, 2),
        "speed-up": round(speed_up, 1),
        "build seconds": round(build_s, 1),
        "bytes per document": index.bytes_per_document(),
        "recall target met": 100 * difference.estimate >= -RECALL_POINTS,
        "speed target met": speed_up >= SPEED_UP,
        "settings tried (validation)": [vars(t) for t in trials],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--encoded", type=int, default=5_000, help="mixed documents")
    parser.add_argument("--queries", type=int, default=300, help="test queries")
    parser.add_argument("--val-queries", type=int, default=100)
    parser.add_argument("--timed-exact", type=int, default=20, help="exact queries timed")
    parser.add_argument("--pq", type=int, nargs="+", default=[16, 32], help="PQ code bytes")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--probe", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--rerank", type=int, nargs="+", default=[256])
    parser.add_argument("--out", type=Path, default=Path("runs/ret_index"))
    parser.add_argument("--quick", action="store_true", help="the check's smoke-size model")
    args = parser.parse_args()
    torch.manual_seed(0)
    setup = QUICK if args.quick else FULL  # the ret check's sizes
    model = train_retriever("ret", 0, setup)
    log("model ready")
    backbones = frozen_backbones(setup.source)
    version = searcher_version(model, backbones.vit)

    args.out.mkdir(parents=True, exist_ok=True)
    n_queries = args.val_queries + args.queries
    enc = stamped(
        args.out / f"encoded_{args.encoded}_{n_queries}.pt",
        version,
        lambda: encode_collection(model, backbones, args.encoded, n_queries),
    )
    largest = max(0, max(args.documents) - len(enc["documents"]))
    log(f"{len(enc['documents'])} mixed documents and {n_queries} queries encoded")

    def generate() -> dict[str, Any]:
        started = time.perf_counter()
        tokens = image_only_documents(model, backbones, largest)
        return {"documents": tokens, "seconds": time.perf_counter() - started}

    extra = stamped(args.out / f"image_only_{largest}.pt", version, generate)
    log(f"{largest} image-only documents encoded")
    collection = torch.cat([enc["documents"], extra["documents"]])
    mixed = len(enc["documents"])
    result: dict[str, Any] = {
        "model version": version,
        "encoded documents (image + text mix)": mixed,
        "encoding seconds (image + text mix)": round(enc["seconds"], 1),
        "image-only documents": len(extra["documents"]),
        "encoding seconds (image-only, with generating them)": round(extra["seconds"], 1),
        "validation queries": args.val_queries,
        "threads": torch.get_num_threads(),
    }
    for size in sorted(args.documents):
        row = measure(collection[:size], enc, version, args, mixed)
        result[f"{size} documents"] = row
        (args.out / "ret_index.json").write_text(json.dumps(result, indent=1))
        print({k: v for k, v in row.items() if k != "settings tried (validation)"}, flush=True)
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
