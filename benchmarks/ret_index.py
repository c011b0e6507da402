"""ReT serving: the faiss index against exact late-interaction scoring, side by side.

The trained ReT model of the ``ret`` check (seed 0, cached by ``polymodal bench
--only ret``, trained here otherwise) encodes ``--encoded`` documents of a fresh
Shapes-Retrieval collection (the encoding time is measured and extrapolated to the
full collection). The rest of the ``--documents`` collection are token sets drawn
from the encoded ones' distribution: each token position takes that position's
token of a random encoded document, plus noise (σ = 0.05 per dimension), renormalised
— distractors with the real tokens' statistics. The collection's own queries whose
targets are encoded are then answered twice:

* exact: every document scored, ``Σᵢ maxⱼ qᵢ·dⱼ``, top 10;
* index: :class:`~polymodal.methods.ret.index.TokenIndex` (faiss IVF-PQ candidates,
  exact re-scoring of the candidates).

Reported: Recall@5 of both on the same queries, queries per second of both (one
query at a time, as a server answers them), build time and memory per document.

    python benchmarks/ret_index.py [--documents 100000] [--encoded 20000] [--queries 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
from polymodal.methods.ret.backbones import FrozenBackbones, build_bank
from polymodal.methods.ret.claim import FULL, QUICK
from polymodal.methods.ret.experiment import (
    encode,
    feature_banks,
    frozen_backbones,
    train_retriever,
)
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search
from polymodal.methods.ret.model import Retriever
from polymodal.methods.ret.serve import searcher_version


def drawn_like(tokens: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """(n, P, E) token sets drawn from the distribution of ``tokens`` (N, P, E)."""
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(len(tokens), (n, tokens.shape[1]), generator=g)  # (n, P)
    drawn = tokens[source, torch.arange(tokens.shape[1])].float()  # (n, P, E)
    return F.normalize(drawn + 0.05 * torch.randn(drawn.shape, generator=g), dim=-1).half()


def answer(
    search: Callable[[torch.Tensor], torch.Tensor], queries: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Rows (B, 10) found for each query, asked one at a time, and seconds per query."""
    started = time.perf_counter()
    rows = torch.cat([search(queries[i : i + 1]) for i in range(len(queries))])
    return rows, (time.perf_counter() - started) / len(queries)


def encode_collection(
    model: Retriever, backbones: FrozenBackbones, args: argparse.Namespace
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Document tokens (N, 32, 128) float16, query tokens, targets, encoding seconds."""
    data = load_shapes_retrieval("test", seed=7, train=4, val=4, test=args.encoded)
    started = time.perf_counter()
    documents = data.documents
    texts = data.texts("documents")
    bank = build_bank(
        backbones, documents["image"], texts, documents["image_mask"], documents["text_ids_mask"]
    )
    encoded = encode(model.document, bank).half()
    seconds = time.perf_counter() - started
    rows = torch.arange(min(args.queries, len(data.queries["target"])))
    q = data.queries
    query_texts = [data.texts("queries")[i] for i in rows.tolist()]
    query_bank = build_bank(
        backbones, q["image"][rows], query_texts, q["image_mask"][rows], q["text_ids_mask"][rows]
    )
    return encoded, encode(model.query, query_bank), q["target"][rows], seconds


def side_by_side(
    collection: torch.Tensor, queries: torch.Tensor, target: torch.Tensor, version: str
) -> dict[str, object]:
    """Exact scoring and the index on one collection: recall, agreement, speed, memory."""
    started = time.perf_counter()
    index = TokenIndex.build(collection, version, IndexSettings())
    build_seconds = time.perf_counter() - started
    exact_rows, exact_s = answer(lambda q: exact_search(q, collection, k=10)[1], queries)
    index_rows, index_s = answer(lambda q: index.search(q, k=10)[1], queries)
    recall = {
        name: float((found[:, :5] == target[:, None]).any(1).float().mean())
        for name, found in (("exact", exact_rows), ("index", index_rows))
    }
    # How many of the exact top 5 the index also returns in its top 5.
    overlap = (index_rows[:, :5, None] == exact_rows[:, None, :5]).any(1).float().mean()
    return {
        "index build seconds": round(build_seconds, 1),
        "recall@5 exact": round(recall["exact"], 4),
        "recall@5 index": round(recall["index"], 4),
        "recall@5 difference (points)": round(100 * (recall["index"] - recall["exact"]), 2),
        "exact top-5 found by the index": round(float(overlap), 4),
        "exact queries per second": round(1 / exact_s, 2),
        "index queries per second": round(1 / index_s, 2),
        "speed-up": round(exact_s / index_s, 1),
        "bytes per document": index.bytes_per_document(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--encoded", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/ret_index"))
    parser.add_argument("--quick", action="store_true", help="the check's smoke-size model")
    args = parser.parse_args()
    torch.manual_seed(0)
    setup = QUICK if args.quick else FULL  # the ret check's sizes
    model = train_retriever(
        "ret", 0, setup, feature_banks(setup, "train"), feature_banks(setup, "val")
    )
    backbones = frozen_backbones(setup)

    # A fresh collection (seed 7), its documents and first queries encoded by the
    # trained model; the encodings are kept in --out for re-runs.
    args.out.mkdir(parents=True, exist_ok=True)
    cached = args.out / f"encoded_{args.encoded}_{args.queries}.pt"
    if cached.is_file():
        encoded, queries, target, encode_seconds = torch.load(cached, weights_only=True).values()
        encode_seconds = float(encode_seconds)
    else:
        encoded, queries, target, encode_seconds = encode_collection(model, backbones, args)
        torch.save(
            {"d": encoded, "q": queries, "t": target, "s": torch.tensor(encode_seconds)}, cached
        )
    result = {
        "encoded documents": args.encoded,
        "queries": len(queries),
        "encoding seconds (encoded documents)": round(encode_seconds, 1),
        "encoding documents per second": round(args.encoded / encode_seconds, 1),
        "encoding minutes for the whole collection (extrapolated)": round(
            args.documents / (args.encoded / encode_seconds) / 60, 1
        ),
        "threads": torch.get_num_threads(),
    }
    drawn = drawn_like(encoded, args.documents - args.encoded)
    version = searcher_version(model, backbones.vit)
    for name, collection in (
        ("encoded only", encoded),
        ("with drawn token sets", torch.cat([encoded, drawn])),
    ):
        result[f"{len(collection)} documents ({name})"] = side_by_side(
            collection, queries, target, version
        )
    (args.out / "ret_index.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
