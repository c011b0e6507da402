"""Serving a document collection: faiss candidates, exact late-interaction re-scoring.

:class:`TokenIndex` keeps every document's token vectors twice: compressed in a
``faiss`` index (inverted lists with product quantisation, ``IndexIVFPQ``, inner
product) that finds, for each query token, the document tokens most like it; and
in float16 for the exact score. A search (the PLAID/ColBERTv2 recipe, without its
centroid pruning):

1. each of the query's Q tokens asks faiss for its ``probe`` nearest document tokens;
2. the documents owning them are the candidates;
3. every candidate is scored exactly, ``s(q, d) = Σᵢ maxⱼ qᵢ·dⱼ``; the best ``k`` return.

On disk an index is a folder: ``tokens.faiss``, ``tokens.safetensors`` (float16),
and ``index.json`` with the sizes, the sha256 of both files and the ``model_version``
stamp of the encoder that produced the tokens. :func:`load_index` refuses a folder
whose files do not match their checksums, and one stamped by another model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from polymodal.data.cache import sha256_file
from polymodal.errors import ConfigError, DataError
from polymodal.methods.ret.model import late_interaction

FORMAT = 1
FILES = ("tokens.faiss", "tokens.safetensors")


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ConfigError(
            'the ReT index needs faiss-cpu: pip install "polymodal[retrieval]"'
        ) from err
    return faiss


@dataclass
class IndexSettings:
    """How the faiss part is built and searched.

    Args:
        lists: inverted lists (k-means cells) of the IVF; ~4·sqrt(token count) is usual.
        subquantizers: PQ code bytes per token vector (must divide the width E).
        nprobe: cells visited per query token.
        probe: nearest document tokens fetched per query token (candidate generation).
        train_size: token vectors the quantisers are trained on.
    """

    lists: int = 1024
    subquantizers: int = 16
    nprobe: int = 16
    probe: int = 64
    train_size: int = 100_000


class TokenIndex:
    """A searchable collection of documents, each a (P, E) set of unit token vectors.

    Build with :meth:`build`, query with :meth:`search`, persist with :meth:`save`
    and :func:`load_index`.
    """

    def __init__(
        self, faiss_index: Any, tokens: Tensor, model_version: str, settings: IndexSettings
    ) -> None:
        self.faiss_index = faiss_index
        self.tokens = tokens  # (N, P, E) float16
        self.model_version = model_version
        self.settings = settings
        self.faiss_index.nprobe = settings.nprobe

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @classmethod
    def build(
        cls,
        tokens: Tensor,
        model_version: str,
        settings: IndexSettings | None = None,
        seed: int = 0,
    ) -> TokenIndex:
        """Index N documents.

        Args:
            tokens: (N, P, E) document token vectors (unit length).
            model_version: stamp of the encoder that produced them.
            settings: faiss structure and search breadth.
            seed: draws the training sample of the quantisers.
        """
        settings = settings or IndexSettings()
        faiss = _faiss()
        n, p, e = tokens.shape
        flat = tokens.reshape(n * p, e).float().numpy()
        lists = max(1, min(settings.lists, len(flat) // 39))  # faiss wants ~39 points per list
        quantizer = faiss.IndexFlatIP(e)
        index = faiss.IndexIVFPQ(
            quantizer, e, lists, settings.subquantizers, 8, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(seed)
        sample = flat[rng.choice(len(flat), min(len(flat), settings.train_size), replace=False)]
        index.train(sample)
        index.add(flat)
        return cls(index, tokens.half(), model_version, settings)

    def candidates(self, query: Tensor, probe: int | None = None) -> list[Tensor]:
        """Candidate documents of each query.

        Args:
            query: (B, Q, E) query tokens.
            probe: document tokens fetched per query token (default: the settings').

        Returns:
            B tensors of document rows (unique, unordered).
        """
        b, q, e = query.shape
        probe = probe or self.settings.probe
        flat = query.reshape(b * q, e).float().numpy()
        _, token_ids = self.faiss_index.search(flat, probe)
        owners = torch.from_numpy(token_ids).reshape(b, q * probe)
        p = self.tokens.shape[1]
        return [torch.unique(row[row >= 0] // p) for row in owners]

    @torch.no_grad()
    def search(self, query: Tensor, k: int = 10) -> tuple[Tensor, Tensor]:
        """Top ``k`` documents of each query by exact late interaction over its candidates.

        Args:
            query: (B, Q, E) query tokens.
            k: documents to return.

        Returns:
            scores (B, k) descending and document rows (B, k); -1 and -inf pad rows
            with fewer than ``k`` candidates.
        """
        if query.ndim != 3 or query.shape[-1] != self.tokens.shape[-1]:
            raise DataError(
                f"query tokens must be (B, Q, {self.tokens.shape[-1]}), got {tuple(query.shape)}"
            )
        scores = torch.full((len(query), k), float("-inf"))
        rows = torch.full((len(query), k), -1, dtype=torch.int64)
        for i, found in enumerate(self.candidates(query)):
            probe = self.settings.probe
            while len(found) < min(k, len(self)) and probe < self.tokens.shape[:2].numel():
                probe *= 4  # query tokens that agree on few documents: look further
                found = self.candidates(query[i : i + 1], probe)[0]
            exact = late_interaction(query[i : i + 1].float(), self.tokens[found].float())[0]
            top = exact.topk(min(k, len(found)))
            scores[i, : len(top.values)] = top.values
            rows[i, : len(top.values)] = found[top.indices]
        return scores, rows

    def bytes_per_document(self) -> dict[str, float]:
        """Memory of one document: its float16 tokens and its faiss codes (with ids)."""
        n, p, e = self.tokens.shape
        code = self.faiss_index.code_size + 8  # PQ code plus the int64 id in the list
        return {"exact tokens": p * e * 2, "faiss codes": p * code}

    def save(self, folder: str | Path) -> Path:
        """Write the index into ``folder`` (created); returns it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _faiss().write_index(self.faiss_index, str(folder / FILES[0]))
        save_file({"tokens": self.tokens.contiguous()}, str(folder / FILES[1]))
        meta = {
            "format": FORMAT,
            "model_version": self.model_version,
            "documents": len(self),
            "settings": vars(self.settings),
            "sha256": {name: sha256_file(folder / name) for name in FILES},
        }
        (folder / "index.json").write_text(json.dumps(meta, indent=1))
        return folder


def exact_search(
    query: Tensor, documents: Tensor, k: int = 10, chunk: int = 8192
) -> tuple[Tensor, Tensor]:
    """Top ``k`` of every document by exact late interaction (the reference scorer).

    Each query is one matrix product against ``chunk`` documents' tokens at a time.

    Args:
        query: (B, Q, E); documents: (N, P, E) (float16 or float32).

    Returns:
        scores (B, k) and rows (B, k).
    """
    n, p, e = documents.shape
    scores = torch.empty(len(query), n)
    for start in range(0, n, chunk):
        block = documents[start : start + chunk].float().reshape(-1, e)  # (C·P, E)
        for i, q in enumerate(query.float()):
            sim = (q @ block.T).reshape(len(q), -1, p)  # (Q, C, P)
            scores[i, start : start + chunk] = sim.amax(dim=-1).sum(dim=0)
    top = scores.topk(min(k, n), dim=1)
    return top.values, top.indices


def load_index(folder: str | Path, model_version: str | None = None) -> TokenIndex:
    """Read an index written by :meth:`TokenIndex.save`.

    Args:
        folder: the index folder.
        model_version: the stamp of the encoder that will embed the queries; None skips
            the check.

    Raises:
        DataError: a missing, altered or unreadable file, or an index stamped by
            another model version — each in one line that says what to do.
    """
    folder = Path(folder)
    meta_path = folder / "index.json"
    if not meta_path.is_file():
        raise DataError(f"{folder} is not a ReT index (no index.json); build one with build_index")
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["sha256"]
        stamp = meta["model_version"]
        settings = IndexSettings(**meta["settings"])
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{meta_path} is corrupt ({err}); rebuild the index") from err
    if meta.get("format") != FORMAT:
        raise DataError(
            f"{folder} has index format {meta.get('format')}, this code reads {FORMAT}; rebuild it"
        )
    for name in FILES:
        path = folder / name
        if not path.is_file() or sha256_file(path) != expected.get(name):
            raise DataError(
                f"index file {path} is missing or corrupt (checksum differs); rebuild the index"
            )
    if model_version is not None and model_version != stamp:
        raise DataError(
            f"index {folder} was built by model version {stamp}, the query encoder is "
            f"{model_version}; rebuild the index with this model"
        )
    faiss_index = _faiss().read_index(str(folder / FILES[0]))
    tokens = load_file(str(folder / FILES[1]))["tokens"]
    return TokenIndex(faiss_index, tokens, stamp, settings)
