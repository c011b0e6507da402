"""ReT's frozen backbones, tapped at every layer, and their features cached as banks.

Vision: our :class:`~polymodal.modules.encoders.ViTEncoder` (48-pixel images, 12-pixel
patches = the scene grid's cells, 6 blocks, width 64), pre-trained once to name the
shape under every patch (or background) on the training scenes,
then frozen — or a Hugging Face ``CLIPVisionModel`` (:class:`ClipLayers`, local weights
or a tiny config). Text: the real all-MiniLM-L6-v2 (6 layers, width 384), frozen.
Layer k of the fusion reads block k of both (k = 1…6; the embeddings are not read).

Both backbones are frozen, so a split's features are computed once and kept as a
:class:`FeatureBank` (float16; text rows ragged, so a long description costs only its
own tokens); training and evaluation gather batches from banks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from polymodal.data.synth.shapes_render import COLORS, SHAPES
from polymodal.errors import ConfigError
from polymodal.hf.text_encoder import TextEncoder
from polymodal.methods.ret.model import BackboneTokens
from polymodal.modules.encoders import ViTEncoder
from polymodal.train.vision_pretrain import patch_labels

IMAGE_SIZE, PATCH = 48, 12


def build_vit(image_size: int = IMAGE_SIZE) -> ViTEncoder:
    """The ViT the fusion reads (random weights; see :func:`pretrain_vit`)."""
    return ViTEncoder(image_size, PATCH, in_channels=3, dim=64, depth=6, num_heads=4)


def pretrain_vit(
    vit: ViTEncoder, images: Tensor, scenes: Tensor, steps: int, seed: int = 0
) -> float:
    """Train ``vit`` (and a throw-away head) to name the shape under each patch.

    Args:
        vit: the encoder, trained in place.
        images: (S, 3, H, W) float images in [0, 1].
        scenes: (S, M, 7) object tables (present flag, then shape, colour, size, x, y, radius).
        steps: AdamW steps of 64 images.
        seed: draws the batches and the head.

    Returns:
        The last step's cross-entropy.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    # Shape only (background = len(SHAPES)): like a real backbone's top layers, which
    # keep what their pre-training asked for, the last block comes to carry shape more
    # than colour; colour stays plainer in the early blocks.
    labels = patch_labels(scenes, vit.image_size[0], PATCH) // len(COLORS)  # (S, M)
    head = nn.Linear(vit.dim, len(SHAPES) + 1)
    optimizer = torch.optim.AdamW([*vit.parameters(), *head.parameters()], lr=1e-3)
    vit.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        pick = torch.randint(len(images), (64,), generator=generator)
        tokens = vit(images[pick].float())[:, 1:]  # (64, M, D) without CLS
        loss = F.cross_entropy(head(tokens).flatten(0, 1), labels[pick].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    vit.eval().requires_grad_(False)
    return float(loss.detach())


def paired_layers(depth: int, layers: int) -> list[int]:
    """``layers`` indices into a backbone of ``depth`` layers, evenly spaced and ending at
    the last: layer k of the fusion reads the same relative depth of both backbones.

    >>> paired_layers(12, 6), paired_layers(6, 6), paired_layers(2, 2)
    ([1, 3, 5, 7, 9, 11], [0, 1, 2, 3, 4, 5], [0, 1])
    """
    return [round((k + 1) * depth / layers) - 1 for k in range(layers)]


class ViTLayers(nn.Module):
    """Our :class:`~polymodal.modules.encoders.ViTEncoder` as a tapped backbone.

    Args:
        vit: the encoder; reads (B, 3, S, S) images in [0, 1].
    """

    def __init__(self, vit: ViTEncoder) -> None:
        super().__init__()
        self.vit = vit
        self.depth = len(vit.blocks)
        self.image_size = int(vit.image_size[0])

    def forward(self, images: Tensor) -> list[Tensor]:
        """Every block's tokens, (B, N, D) each (CLS first)."""
        return list(self.vit(images.float(), output_hidden_states=True).hidden_states[1:])


# CLIP's pixel normalisation (the constants of its image processor).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipLayers(nn.Module):
    """A ``transformers`` ``CLIPVisionModel`` as a tapped backbone (every encoder layer,
    through :class:`~polymodal.hf.vision_taps.VisionTaps`).

    Images in [0, 1] are resized to the model's ``image_size`` and normalised with
    CLIP's mean and standard deviation.

    Args:
        model: a ``CLIPVisionModel`` (pretrained from a local path, or a tiny config).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.vit = model
        config: Any = model.config
        self.depth = int(config.num_hidden_layers)
        self.image_size = int(config.image_size)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD)[:, None, None], persistent=False)

    def forward(self, images: Tensor) -> list[Tensor]:
        """Every encoder layer's tokens, (B, N, D) each (CLS first)."""
        from polymodal.hf.vision_taps import VisionTaps

        size = self.image_size
        pixels = F.interpolate(images.float(), size=(size, size), mode="bilinear")
        with VisionTaps(self.vit) as taps:
            self.vit(pixel_values=(pixels - self.mean) / self.std)
        return taps.hidden_states[1:]


def load_clip_vision(path: str | None = None, config: dict[str, Any] | None = None) -> ClipLayers:
    """A frozen ``CLIPVisionModel`` from a local folder (``path``: weights the user
    has, never downloaded) or built from ``config`` (``CLIPVisionConfig`` options,
    random weights: tests and smoke runs).

    Raises:
        ConfigError: neither or both given, or a path that holds no model.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if (path is None) == (config is None):
        raise ConfigError("a CLIP vision backbone needs clip_path (a local folder) or clip_config")
    if path is not None:
        if not Path(path).is_dir():
            raise ConfigError(f"clip_path {path} is not a folder holding a CLIP model")
        model = CLIPVisionModel.from_pretrained(path, local_files_only=True)
    else:
        torch.manual_seed(0)
        model = CLIPVisionModel(CLIPVisionConfig(**(config or {})))
    return ClipLayers(model.eval().requires_grad_(False))


class FrozenBackbones(nn.Module):
    """The vision and text backbones; :meth:`encode` taps K layers of both.

    K is the smaller depth; each backbone gives K of its layers evenly spaced by
    depth (:func:`paired_layers`), so our 6-block ViT and 6-layer MiniLM pair block k
    with layer k, and a 12-layer CLIP gives its layers 2, 4, …, 12.

    Args:
        vision: a :class:`ViTLayers` or :class:`ClipLayers` (a bare
            :class:`~polymodal.modules.encoders.ViTEncoder` is wrapped); frozen here.
        text: the text encoder (frozen here).
    """

    def __init__(self, vision: nn.Module, text: TextEncoder) -> None:
        super().__init__()
        if isinstance(vision, ViTEncoder):
            vision = ViTLayers(vision)
        self.vision = vision.eval().requires_grad_(False)
        self.vit: nn.Module = vision.vit  # type: ignore[assignment]
        self.text = text.eval().requires_grad_(False)
        config: Any = text.model.config
        text_depth, vision_depth = int(config.num_hidden_layers), int(vision.depth)  # type: ignore[arg-type]
        self.layers = min(text_depth, vision_depth)
        self.text_layers = paired_layers(text_depth, self.layers)
        self.vision_layers = paired_layers(vision_depth, self.layers)
        self.image_size: int = int(vision.image_size)  # type: ignore[arg-type]

    @torch.no_grad()
    def encode(
        self, images: Tensor, texts: Sequence[str], has_image: Tensor, has_text: Tensor
    ) -> BackboneTokens:
        """Features of B queries or documents.

        Args:
            images: (B, 3, H, W) in [0, 1]; rows without an image are ignored.
            texts: B strings; rows without text are ignored.
            has_image, has_text: (B,) bool.
        """
        visual = self.vision(images)
        encoded = self.text.encode([t or "." for t in texts])
        text = encoded.hidden_states[1:]
        return BackboneTokens(
            torch.stack([text[i] for i in self.text_layers], dim=1),  # (B, K, L, D_t)
            encoded.attention_mask == 0,
            torch.stack([visual[i] for i in self.vision_layers], dim=1),  # (B, K, N, D_v)
            has_text.bool(),
            has_image.bool(),
        )


@dataclass
class FeatureBank:
    """Backbone features of N rows (a split's documents or queries), float16.

    Attributes:
        visual: (N, K, N_v, D_v).
        text: (T, K, D_t) every row's text tokens, concatenated.
        offsets: (N + 1,) row i's text tokens are ``text[offsets[i]:offsets[i + 1]]``.
        has_text, has_image: (N,) bool.
    """

    visual: Tensor
    text: Tensor
    offsets: Tensor
    has_text: Tensor
    has_image: Tensor

    def __len__(self) -> int:
        return int(self.visual.shape[0])

    def gather(self, rows: Tensor) -> BackboneTokens:
        """Float32 :class:`BackboneTokens` of ``rows`` (R,), texts right-padded."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = (ends - starts).clamp(min=1)
        length = int(lengths.max())
        k, width = self.text.shape[1], self.text.shape[2]
        text = torch.zeros(len(rows), k, length, width)
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            text[i, :, : b - a] = self.text[a:b].transpose(0, 1).float()
        padding = torch.arange(length)[None] >= lengths[:, None]
        return BackboneTokens(
            text, padding, self.visual[rows].float(), self.has_text[rows], self.has_image[rows]
        )

    def save(self, path: Path) -> None:
        save_file({k: v.contiguous() for k, v in vars(self).items()}, str(path))

    @classmethod
    def load(cls, path: Path) -> FeatureBank:
        return cls(**load_file(str(path)))


def build_bank(
    backbones: FrozenBackbones,
    images: Tensor,
    texts: Sequence[str],
    has_image: Tensor,
    has_text: Tensor,
    batch_size: int = 128,
) -> FeatureBank:
    """Encode N rows with the frozen backbones into a :class:`FeatureBank`.

    Rows go through the backbones in order of text length, so a batch pads its texts
    little (the text encoder dominates the cost); the bank keeps the given order.
    """
    n = len(texts)
    order = sorted(range(n), key=lambda i: len(texts[i]) if bool(has_text[i]) else 0)
    visual: list[Tensor] = [torch.empty(0)] * n
    text: list[Tensor] = [torch.empty(0)] * n
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        out = backbones.encode(
            images[rows], [texts[i] for i in rows], has_image[rows], has_text[rows]
        )
        for j, i in enumerate(rows):
            keep = ~out.text_padding[j] & out.has_text[j]
            visual[i] = out.visual[j].half()
            text[i] = out.text[j][:, keep].transpose(0, 1).half()  # (L_i, K, D_t)
    lengths = [len(t) for t in text]
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor(lengths).cumsum(0)
    return FeatureBank(
        torch.stack(visual), torch.cat(text), offsets, has_text.bool(), has_image.bool()
    )
