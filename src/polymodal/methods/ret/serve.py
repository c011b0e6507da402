"""A trained ReT model with its document index, saved together and queried by raw inputs.

A searcher folder holds the index (:mod:`polymodal.methods.ret.index`) plus what
embeds a query: ``retriever.safetensors`` (both encoders), ``vit.safetensors`` (the
frozen ViT) and ``model.json`` (the variant). The index is stamped with
:func:`searcher_version` of those weights, so a folder whose model was swapped, or an
index built by another model, is refused when loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from polymodal.errors import DataError
from polymodal.methods.ret.backbones import IMAGE_SIZE, FrozenBackbones, build_vit
from polymodal.methods.ret.experiment import build_retriever, model_version
from polymodal.methods.ret.index import IndexSettings, TokenIndex, load_index
from polymodal.methods.ret.model import Retriever


def searcher_version(retriever: Retriever, vit: nn.Module) -> str:
    """The stamp of everything that turns a query into tokens (both trained parts)."""
    return model_version(nn.ModuleDict({"retriever": retriever, "vit": vit}))


class Searcher:
    """Embeds a query (image, text or both) and searches the index.

    Args:
        backbones: the frozen ViT and text encoder.
        retriever: the trained encoders.
        index: the collection's :class:`TokenIndex`.
    """

    def __init__(self, backbones: FrozenBackbones, retriever: Retriever, index: TokenIndex) -> None:
        self.backbones = backbones
        self.retriever = retriever.eval()
        self.index = index

    @torch.no_grad()
    def query_tokens(self, image: Tensor | None = None, text: str | None = None) -> Tensor:
        """(1, Q, E) tokens of one query.

        Args:
            image: (3, H, W) in [0, 1] with H = W = 48, or None.
            text: a string, or None.

        Raises:
            DataError: neither an image nor a text, or an image of another shape.
        """
        if image is None and not text:
            raise DataError("a query needs an image, a text or both; it has neither")
        if image is not None and tuple(image.shape) != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"query image must be (3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(image.shape)}"
            )
        pixels = image[None] if image is not None else torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
        features = self.backbones.encode(
            pixels, [text or ""], torch.tensor([image is not None]), torch.tensor([bool(text)])
        )
        return self.retriever.query(features).tokens

    def search(
        self, image: Tensor | None = None, text: str | None = None, k: int = 10
    ) -> tuple[Tensor, Tensor]:
        """Scores (k,) and document rows (k,) of the best ``k`` documents."""
        scores, rows = self.index.search(self.query_tokens(image, text), k)
        return scores[0], rows[0]


def save_searcher(
    folder: str | Path,
    variant: str,
    retriever: Retriever,
    vit: nn.Module,
    documents: Tensor,
    settings: IndexSettings | None = None,
) -> Path:
    """Index ``documents`` (N, P, E) — tokens of this ``retriever`` — and save the index
    with the model into ``folder``."""
    folder = Path(folder)
    index = TokenIndex.build(documents, searcher_version(retriever, vit), settings)
    index.save(folder)
    save_file(retriever.state_dict(), str(folder / "retriever.safetensors"))
    save_file(vit.state_dict(), str(folder / "vit.safetensors"))
    (folder / "model.json").write_text(json.dumps({"variant": variant}))
    return folder


def load_searcher(folder: str | Path) -> Searcher:
    """The :class:`Searcher` saved in ``folder`` by :func:`save_searcher`.

    Raises:
        DataError: missing or unreadable model files, or an index whose stamp differs
            from the saved model's (each one line).
    """
    from polymodal.hf.text_encoder import load_minilm

    folder = Path(folder)
    try:
        variant = json.loads((folder / "model.json").read_text())["variant"]
        retriever = build_retriever(variant)
        retriever.load_state_dict(load_file(str(folder / "retriever.safetensors")))
        vit = build_vit()
        vit.load_state_dict(load_file(str(folder / "vit.safetensors")))
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise DataError(
            f"{folder} holds no readable ReT model ({type(err).__name__}); save it again"
        ) from err
    index = load_index(folder, searcher_version(retriever, vit))
    return Searcher(FrozenBackbones(vit, load_minilm()), retriever, index)
