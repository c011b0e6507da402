"""ReT serving: the faiss index against exact late-interaction scoring, side by side.

Every one of the ``--documents`` is a Shapes-Retrieval document encoded by the trained
ReT model of the ``ret`` check (seed 0, cached by ``polymodal bench --only ret``,
trained here otherwise); none is drawn. Two parts, each encoding timed:

* ``--encoded`` documents of a fresh collection (seed 7; image + text, text-only and
  image-only as the data set mixes them), with the queries that target them. The text
  encoder (MiniLM) makes these slow, about 30 per second on one thread;
* the rest are **image-only** documents of further fresh collections (seeds 8, 9, …),
  a kind the data set holds (15 % of its documents) and the model was trained on.
  Without text they need only the ViT and the fusion cell: thousands per second
  instead of tens, so a 100,000-document collection is encoded in minutes.

(Token sets recombined from many encoded documents, an earlier stand-in, turned out
to be hubs: they matched every query a little and crowded every ranking.)

Queries are answered twice, one at a time as a server answers them:

* exact: every document scored, ``Σᵢ maxⱼ qᵢ·dⱼ``, top 10;
* index: :class:`~polymodal.methods.ret.index.TokenIndex` (faiss IVF-PQ candidates,
  exact re-scoring of the candidates).

The faiss settings (PQ bytes, ``nprobe``, tokens fetched per query token) are chosen
on ``--val-queries`` validation queries — the fastest setting that returns at least
98 % of the exact top 5 — and reported on the other ``--queries``: Recall@5 of both,
the share of the exact top 5 the index returns, queries per second, build time and
memory per document, and how often image-only documents enter the exact top 5.

    python benchmarks/ret_index.py [--documents 100000] [--encoded 20000] [--queries 100]
                                   [--val-queries 50] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
from polymodal.methods.ret.backbones import FrozenBackbones, build_bank
from polymodal.methods.ret.claim import FULL, QUICK
from polymodal.methods.ret.data import frozen_backbones
from polymodal.methods.ret.experiment import TEXT_DIM, encode, train_retriever
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search
from polymodal.methods.ret.model import BackboneTokens, Retriever
from polymodal.methods.ret.serve import searcher_version

SUBQUANTIZERS = (16, 32)
NPROBE = (4, 8, 16, 32)
PROBE = (16, 32, 64, 128)
AGREEMENT = 0.98
"""Validation share of the exact top 5 a chosen setting must return."""
CHUNK = 10_000
"""Image-only documents generated and encoded per collection."""


@torch.no_grad()
def image_only_documents(
    model: Retriever, backbones: FrozenBackbones, n: int, batch_size: int = 256
) -> torch.Tensor:
    """(n, P, E) float16 tokens of ``n`` image-only documents of fresh Shapes-Retrieval
    collections (seeds 8, 9, …; ``CHUNK`` each), through the ViT and the document encoder."""
    out = []
    for c, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start) + min(CHUNK, n - start) % 2  # even: twins
        data = load_shapes_retrieval(
            "test",
            seed=8 + c,
            train=4,
            val=4,
            test=size,
            image_only_documents=1.0,
            text_only_documents=0.0,
        )
        images = data.documents["image"][: min(CHUNK, n - start)]
        for i in range(0, len(images), batch_size):
            rows = images[i : i + batch_size]
            layers = backbones.vision(rows)
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


def answer(
    search: Callable[[torch.Tensor], torch.Tensor], queries: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Rows (B, 10) found for each query, asked one at a time, and seconds per query."""
    started = time.perf_counter()
    rows = torch.cat([search(queries[i : i + 1]) for i in range(len(queries))])
    return rows, (time.perf_counter() - started) / len(queries)


def encode_collection(
    model: Retriever, backbones: FrozenBackbones, encoded: int, queries: int
) -> dict[str, torch.Tensor]:
    """Document tokens (N, 32, 128) float16 and the first ``queries`` queries' tokens,
    targets and hard negatives of a fresh collection; ``seconds`` to encode the documents."""
    data = load_shapes_retrieval("test", seed=7, train=4, val=4, test=encoded)
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
    rows = torch.arange(min(queries, len(data.queries["target"])))
    q = data.queries
    texts = [data.texts("queries")[i] for i in rows.tolist()]
    query_bank = build_bank(
        backbones, q["image"][rows], texts, q["image_mask"][rows], q["text_ids_mask"][rows]
    )
    return {
        "documents": tokens,
        "queries": encode(model.query, query_bank),
        "target": q["target"][rows],
        "hard_negative": q["hard_negative"][rows],
        "seconds": torch.tensor(seconds),
    }


def recall_at_5(found: torch.Tensor, target: torch.Tensor) -> float:
    return float((found[:, :5] == target[:, None]).any(1).float().mean())


def agreement(found: torch.Tensor, exact: torch.Tensor) -> float:
    """Share of the exact top 5 that ``found``'s top 5 also holds."""
    return float((found[:, :5, None] == exact[:, None, :5]).any(1).float().mean())


def tuned(
    collection: torch.Tensor,
    queries: torch.Tensor,
    exact: torch.Tensor,
    version: str,
    lists: int,
) -> tuple[TokenIndex, list[dict[str, object]], dict[str, object]]:
    """The index whose setting, on the validation ``queries``, is the fastest returning
    :data:`AGREEMENT` of the exact top 5 (else the most agreeing); every setting tried."""
    tried: list[dict[str, object]] = []
    best: tuple[TokenIndex, dict[str, object]] | None = None
    for subquantizers in SUBQUANTIZERS:
        settings = IndexSettings(lists=lists, subquantizers=subquantizers)
        started = time.perf_counter()
        index = TokenIndex.build(collection, version, settings)
        build = time.perf_counter() - started
        for nprobe, probe in itertools.product(NPROBE, PROBE):
            index.settings = replace(settings, nprobe=nprobe, probe=probe)
            index.faiss_index.nprobe = nprobe
            found, seconds = answer(lambda q, i=index: i.search(q, k=10)[1], queries)
            row = {
                "subquantizers": subquantizers,
                "nprobe": nprobe,
                "probe": probe,
                "val agreement": round(agreement(found, exact), 4),
                "val queries per second": round(1 / seconds, 2),
                "build seconds": round(build, 1),
            }
            tried.append(row)
            if best is None or _better(row, best[1]):
                best = (index, row)
    assert best is not None
    index, row = best
    index.settings = replace(
        index.settings,
        nprobe=int(row["nprobe"]),
        probe=int(row["probe"]),  # type: ignore[call-overload]
    )
    index.faiss_index.nprobe = index.settings.nprobe
    return index, tried, row


def _better(row: dict[str, object], best: dict[str, object]) -> bool:
    ok, best_ok = (float(r["val agreement"]) >= AGREEMENT for r in (row, best))  # type: ignore[arg-type]
    if ok != best_ok:
        return ok
    if ok:
        return float(row["val queries per second"]) > float(best["val queries per second"])  # type: ignore[arg-type]
    return float(row["val agreement"]) > float(best["val agreement"])  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--encoded", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--val-queries", type=int, default=50)
    parser.add_argument("--timed-exact", type=int, default=20, help="exact queries timed")
    parser.add_argument("--lists", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("runs/ret_index"))
    parser.add_argument("--quick", action="store_true", help="the check's smoke-size model")
    args = parser.parse_args()
    torch.manual_seed(0)
    setup = QUICK if args.quick else FULL  # the ret check's sizes
    model = train_retriever("ret", 0, setup)
    backbones = frozen_backbones(setup.source)

    args.out.mkdir(parents=True, exist_ok=True)
    n_queries = args.val_queries + args.queries
    cached = args.out / f"encoded_{args.encoded}_{n_queries}.pt"
    if cached.is_file():
        enc = torch.load(cached, weights_only=True)
    else:
        enc = encode_collection(model, backbones, args.encoded, n_queries)
        torch.save(enc, cached)
    documents, target = enc["documents"], enc["target"]
    seconds = float(enc["seconds"])
    val, test = slice(0, args.val_queries), slice(args.val_queries, n_queries)
    started = time.perf_counter()
    generated = image_only_documents(model, backbones, args.documents - len(documents))
    generated_seconds = time.perf_counter() - started
    collection = torch.cat([documents, generated])
    version = searcher_version(model, backbones.vit)
    result: dict[str, object] = {
        "encoded documents (image + text mix)": len(documents),
        "encoding seconds (image + text mix)": round(seconds, 1),
        "encoding documents per second (image + text mix)": round(len(documents) / seconds, 1),
        "image-only documents": len(generated),
        "encoding seconds (image-only, with generating them)": round(generated_seconds, 1),
        "encoding documents per second (image-only)": round(len(generated) / generated_seconds, 1),
        "validation queries": args.val_queries,
        "test queries": args.queries,
        "threads": torch.get_num_threads(),
    }
    queries = enc["queries"]
    for name, docs in (("image + text mix", documents), ("with image-only", collection)):
        exact = exact_search(queries, docs, k=10)[1]  # all queries at once: the reference
        timed = queries[test][: args.timed_exact]
        _, exact_s = answer(lambda q, d=docs: exact_search(q, d, k=10)[1], timed)
        index, tried, chosen = tuned(docs, queries[val], exact[val], version, args.lists)
        found, index_s = answer(lambda q, i=index: i.search(q, k=10)[1], queries[test])
        in_top5 = exact[test][:, :5]
        result[f"{len(docs)} documents ({name})"] = {
            "chosen on validation": chosen,
            "recall@5 exact": round(recall_at_5(exact[test], target[test]), 4),
            "recall@5 index": round(recall_at_5(found, target[test]), 4),
            "recall@5 difference (points)": round(
                100 * (recall_at_5(found, target[test]) - recall_at_5(exact[test], target[test])),
                2,
            ),
            "exact top-5 found by the index": round(agreement(found, exact[test]), 4),
            "image-only documents in the exact top 5 (share)": round(
                float((in_top5 >= len(documents)).float().mean()), 4
            ),
            "image-only documents in the collection (share)": round(
                1 - len(documents) / len(docs), 4
            ),
            "exact queries per second": round(1 / exact_s, 3),
            "index queries per second": round(1 / index_s, 2),
            "speed-up": round(exact_s / index_s, 1),
            "bytes per document": index.bytes_per_document(),
            "settings tried (validation)": tried,
        }
        (args.out / "ret_index.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "settings tried (validation)"}
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
