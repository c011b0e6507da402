"""Serving a document collection: faiss candidates, exact late-interaction re-scoring.

:class:`TokenIndex` keeps every document's token vectors twice: compressed in a
``faiss`` index (inverted lists with product quantisation, ``IndexIVFPQ``, inner
product) that finds, for each query token, the document tokens most like it; and
in float16 for the exact score. A search (the PLAID/ColBERTv2 recipe):

1. each of the query's Q tokens asks faiss for its ``probe`` nearest document tokens;
   the documents owning them are the candidates;
2. with ``rerank`` set, candidates are cut twice (:meth:`TokenIndex.shortlist`):
   by the similarities faiss returned (XTR's score, missing ones imputed), then by
   *centroid interaction* ``s̃(q, d) = Σᵢ maxⱼ qᵢ·c(dⱼ)`` with ``c(dⱼ)`` the IVF
   centroid of token ``dⱼ`` (PLAID's; a table lookup: the Q × lists products are
   computed once per query); only the best ``rerank`` go on;
3. those are scored exactly, ``s(q, d) = Σᵢ maxⱼ qᵢ·dⱼ``; the best ``k`` return.

Step 2 is what lets ``probe`` grow — more candidates, fewer exact top documents
missed — without the exact scoring growing with it.

On disk an index is a folder: ``tokens.faiss``, ``tokens.safetensors`` (float16),
and ``index.json`` with the sizes, the sha256 of both files and the ``model_version``
stamp of the encoder that produced the tokens. :func:`load_index` refuses a folder
whose files do not match their checksums, and one stamped by another model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
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
PRUNE = 4
"""Candidates kept per re-scored one by the first, cheapest cut of a search."""
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
        rerank: candidates scored exactly, the best by centroid interaction; 0 scores
            every candidate exactly.
    """

    lists: int = 1024
    subquantizers: int = 16
    nprobe: int = 16
    probe: int = 64
    train_size: int = 100_000
    rerank: int = 0


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
        self.centroids, self.token_cells = _cells(faiss_index, tokens.shape[:2])

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def set_search(self, nprobe: int, probe: int, rerank: int) -> None:
        """Change how widely searches look (see :class:`IndexSettings`); the built
        structure stays."""
        self.settings = replace(self.settings, nprobe=nprobe, probe=probe, rerank=rerank)
        self.faiss_index.nprobe = nprobe

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

    def nearest_tokens(self, query: Tensor, probe: int | None = None) -> tuple[Tensor, Tensor]:
        """Each query token's ``probe`` nearest document tokens, as faiss finds them.

        Args:
            query: (B, Q, E) query tokens.
            probe: tokens fetched per query token (default: the settings').

        Returns:
            approximate similarities (B, Q, probe) (product quantised) and the rows of
            the documents owning those tokens (B, Q, probe), -1 where faiss found none.
        """
        b, q, e = query.shape
        probe = probe or self.settings.probe
        sims, token_ids = self.faiss_index.search(query.reshape(b * q, e).float().numpy(), probe)
        ids = torch.from_numpy(token_ids).reshape(b, q, probe)
        rows = torch.where(ids >= 0, ids // self.tokens.shape[1], -1)
        return torch.from_numpy(sims).reshape(b, q, probe), rows

    def candidates(self, query: Tensor, probe: int | None = None) -> list[Tensor]:
        """Candidate documents of each query: the owners of its tokens' nearest tokens.

        Args:
            query: (B, Q, E) query tokens.
            probe: document tokens fetched per query token (default: the settings').

        Returns:
            B tensors of document rows (unique, ascending).
        """
        _, rows = self.nearest_tokens(query, probe)
        return [torch.unique(row[row >= 0]) for row in rows]

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
        nearest = self.nearest_tokens(query)
        for i in range(len(query)):
            sims, owners, probe = nearest[0][i], nearest[1][i], self.settings.probe
            while not self._enough(owners, k) and probe < self.size:
                probe *= 4  # query tokens that agree on few documents: look further
                sims, owners = (x[0] for x in self.nearest_tokens(query[i : i + 1], probe))
            found = self.shortlist(query[i], sims, owners)
            exact = late_interaction(query[i : i + 1].float(), self.tokens[found].float())[0]
            top = exact.topk(min(k, len(found)))
            scores[i, : len(top.values)] = top.values
            rows[i, : len(top.values)] = found[top.indices]
        return scores, rows

    def _enough(self, owners: Tensor, k: int) -> bool:
        """Whether the returned tokens (owners (Q, probe)) belong to ``k`` documents (or
        to every one)."""
        need = min(k, len(self))
        if int((owners >= 0).sum(dim=1).max()) >= need * self.tokens.shape[1]:
            return True  # one query token's distinct tokens alone span that many documents
        return len(owners[owners >= 0].unique()) >= need

    @property
    def size(self) -> int:
        """Token vectors in the index (N · P)."""
        return self.tokens.shape[:2].numel()

    def shortlist(self, query: Tensor, sims: Tensor, owners: Tensor) -> Tensor:
        """One query's candidates, cut to the best ``rerank`` by approximate scores.

        Two cuts, each cheap enough for the candidates it sees:

        1. to ``PRUNE × rerank`` by the similarities faiss returned (XTR's score): a
           query token counts its best returned similarity to the candidate's tokens,
           or — none returned — its weakest returned similarity to any token, an upper
           bound of what it missed;
        2. to ``rerank`` by centroid interaction, each query token's term raised to its
           best returned similarity to the candidate (closer than the centroid's).

        Args:
            query: (Q, E) the query's tokens.
            sims, owners: (Q, probe) from :meth:`nearest_tokens`.

        Returns:
            (C,) document rows, C ≤ ``rerank`` (all candidates when ``rerank`` is 0).
        """
        valid = owners >= 0
        found, column = torch.unique(owners[valid], return_inverse=True)
        rerank = self.settings.rerank
        if not 0 < rerank < len(found):
            return found
        token = torch.arange(len(query))[:, None].expand_as(owners)[valid]
        returned = torch.full((len(query), len(found)), float("-inf"))  # (Q, C)
        returned.view(-1).scatter_reduce_(0, token * len(found) + column, sims[valid], "amax")
        weakest = sims.masked_fill(~valid, float("inf")).amin(dim=1, keepdim=True)  # (Q, 1)
        kept = returned.maximum(weakest).sum(dim=0).topk(min(len(found), PRUNE * rerank)).indices
        maxima = self.token_maxima(query, found[kept]).maximum(returned[:, kept])
        return found[kept[maxima.sum(dim=0).topk(rerank).indices]]

    def token_maxima(self, query: Tensor, rows: Tensor) -> Tensor:
        """(Q, C) ``maxⱼ qᵢ·c(dⱼ)`` of each query token over each document's tokens,
        every token replaced by the centroid of its inverted list.

        Args:
            query: (Q, E) one query's tokens.
            rows: (C,) document rows.
        """
        table = self.centroids @ query.float().T  # (lists, Q): every centroid–token product
        # Gathering whole rows (one per document token) is ~3× faster than columns.
        return table[self.token_cells[rows].long()].amax(dim=1).T  # (C, P, Q) → (Q, C)

    def bytes_per_document(self) -> dict[str, float]:
        """Memory of one document: its float16 tokens, its faiss codes (with ids) and
        its tokens' list numbers (for centroid interaction)."""
        n, p, e = self.tokens.shape
        code = self.faiss_index.code_size + 8  # PQ code plus the int64 id in the list
        return {
            "exact tokens": p * e * 2,
            "faiss codes": p * code,
            "centroid ids": p * self.token_cells.element_size(),
        }

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


def _cells(faiss_index: Any, shape: torch.Size) -> tuple[Tensor, Tensor]:
    """The IVF centroids (lists, E) float32 and the list of every document token
    (N, P) — read back from the inverted lists, so nothing more is stored on disk."""
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(faiss_index)
    centroids = torch.from_numpy(ivf.quantizer.reconstruct_n(0, ivf.nlist))
    cells = np.zeros(ivf.ntotal, dtype=np.int16 if ivf.nlist <= 2**15 else np.int32)
    for cell in range(ivf.nlist):
        size = ivf.invlists.list_size(cell)
        if size:
            ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(cell), size)
            cells[ids] = cell
    return centroids, torch.from_numpy(cells).reshape(shape)


@torch.no_grad()
def exact_search(
    query: Tensor, documents: Tensor, k: int = 10, chunk: int = 2048, batch: int = 8
) -> tuple[Tensor, Tensor]:
    """Top ``k`` of every document by exact late interaction (the reference scorer).

    ``batch`` queries at a time are one matrix product against ``chunk`` documents'
    tokens. Pass float32 documents to score repeatedly: float16 ones are converted
    on every call.

    Args:
        query: (B, Q, E); documents: (N, P, E) (float16 or float32).

    Returns:
        scores (B, k) and rows (B, k).
    """
    n, p, e = documents.shape
    scores = torch.empty(len(query), n)
    for start in range(0, n, chunk):
        block = documents[start : start + chunk].float().reshape(-1, e)  # (C·P, E)
        for first in range(0, len(query), batch):
            q = query[first : first + batch].float()  # (b, Q, E)
            sim = (q.reshape(-1, e) @ block.T).reshape(len(q), q.shape[1], -1, p)  # (b, Q, C, P)
            scores[first : first + batch, start : start + chunk] = sim.amax(dim=-1).sum(dim=1)
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
