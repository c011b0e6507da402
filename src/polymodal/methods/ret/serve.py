"""A trained ReT model with its document index, saved together and queried by raw inputs.

A searcher folder holds the index (:mod:`polymodal.methods.ret.index`) plus what
embeds a query: ``retriever.safetensors`` (both encoders), ``vit.safetensors`` (the
frozen vision backbone: our ViT or a CLIP vision model) and ``model.json`` (the
variant, the widths the encoders were built with, the query image size and, for
CLIP, its config — so a CLIP-backed model is rebuilt without the folder it was read
from). The index is stamped with :func:`searcher_version` of those weights, so a
folder whose model was swapped, or an index built by another model, is refused when
loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from polymodal.errors import DataError
from polymodal.methods.ret.backbones import (
    IMAGE_SIZE,
    ClipLayers,
    FrozenBackbones,
    build_vit,
    load_clip_vision,
)
from polymodal.methods.ret.experiment import LAYERS, TEXT_DIM, VISUAL_DIM, model_version
from polymodal.methods.ret.index import IndexSettings, TokenIndex, load_index
from polymodal.methods.ret.model import Retriever, retriever


def searcher_version(retriever: Retriever, vit: nn.Module) -> str:
    """The stamp of everything that turns a query into tokens (both trained parts)."""
    return model_version(nn.ModuleDict({"retriever": retriever, "vit": vit}))


class Searcher:
    """Embeds a query (image, text or both) and searches the index.

    Args:
        backbones: the frozen vision backbone and text encoder.
        retriever: the trained encoders.
        index: the collection's :class:`TokenIndex`.
        image_size: side of the square query images the model was trained on.
    """

    def __init__(
        self,
        backbones: FrozenBackbones,
        retriever: Retriever,
        index: TokenIndex,
        image_size: int = IMAGE_SIZE,
    ) -> None:
        self.backbones = backbones
        self.retriever = retriever.eval()
        self.index = index
        self.image_size = image_size

    @torch.no_grad()
    def query_tokens(self, image: Tensor | None = None, text: str | None = None) -> Tensor:
        """(1, Q, E) tokens of one query.

        Args:
            image: (3, S, S) in [0, 1] with S = ``image_size``, or None.
            text: a string, or None.

        Raises:
            DataError: neither an image nor a text, or an image of another shape.
        """
        size = self.image_size
        if image is None and not text:
            raise DataError("a query needs an image, a text or both; it has neither")
        if image is not None and tuple(image.shape) != (3, size, size):
            raise DataError(f"query image must be (3, {size}, {size}), got {tuple(image.shape)}")
        pixels = image[None] if image is not None else torch.zeros(1, 3, size, size)
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
    image_size: int = IMAGE_SIZE,
) -> Path:
    """Index ``documents`` (N, P, E) — tokens of this ``retriever`` — and save the index
    with the model into ``folder``.

    Args:
        vit: the frozen vision backbone the retriever reads: our ViT, or the
            :class:`~polymodal.methods.ret.backbones.ClipLayers` of a model trained with
            ``data.options.vision=clip``.
        image_size: side of the square query images (the training data's).
    """
    folder = Path(folder)
    index = TokenIndex.build(documents, searcher_version(retriever, vit), settings)
    index.save(folder)
    save_file(retriever.state_dict(), str(folder / "retriever.safetensors"))
    save_file(vit.state_dict(), str(folder / "vit.safetensors"))
    spec: dict[str, object] = {"variant": variant, "image_size": image_size}
    spec |= _widths(retriever, vit)
    if isinstance(vit, ClipLayers):
        spec["clip_config"] = vit.vit.config.to_dict()
    (folder / "model.json").write_text(json.dumps(spec))
    return folder


def _widths(model: Retriever, vision: nn.Module) -> dict[str, int]:
    """What :func:`~polymodal.methods.ret.model.retriever` needs to rebuild ``model``:
    backbone widths, tapped layers (the shallower backbone's depth) and cell width."""
    config: Any = vision.vit.config if isinstance(vision, ClipLayers) else None
    depth = int(config.num_hidden_layers) if config else LAYERS
    projection = next(m for m in model.query.modules() if isinstance(m, nn.Linear))
    return {
        "text_dim": TEXT_DIM,
        "visual_dim": int(config.hidden_size) if config else VISUAL_DIM,
        "layers": min(depth, LAYERS),  # MiniLM has LAYERS layers
        "dim": projection.out_features,
    }


def load_searcher(folder: str | Path) -> Searcher:
    """The :class:`Searcher` saved in ``folder`` by :func:`save_searcher`.

    Raises:
        DataError: missing or unreadable model files, or an index whose stamp differs
            from the saved model's (each one line).
    """
    from polymodal.hf.text_encoder import load_minilm

    folder = Path(folder)
    try:
        spec = json.loads((folder / "model.json").read_text())
        widths = {key: spec.get(key, value) for key, value in _widths_of_ours().items()}
        model = retriever(spec["variant"], **widths)
        model.load_state_dict(load_file(str(folder / "retriever.safetensors")))
        clip = spec.get("clip_config")
        vit: nn.Module = load_clip_vision(config=clip) if clip else build_vit()
        vit.load_state_dict(load_file(str(folder / "vit.safetensors")))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise DataError(
            f"{folder} holds no readable ReT model ({type(err).__name__}); save it again"
        ) from err
    index = load_index(folder, searcher_version(model, vit))
    size = int(spec.get("image_size", IMAGE_SIZE))
    return Searcher(FrozenBackbones(vit, load_minilm()), model, index, size)


def _widths_of_ours() -> dict[str, int]:
    """The widths of a retriever on our ViT and MiniLM (folders saved without them)."""
    return {"text_dim": TEXT_DIM, "visual_dim": VISUAL_DIM, "layers": LAYERS, "dim": 64}
