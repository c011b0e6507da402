"""BiT-Align for weakly supervised affordance grounding, and the baselines it is measured against.

One model class, five variants that share the frozen RGB ViT, the head and the
training (LOCATE-style weak supervision) and differ only in how depth enters and
whether Text Feature Guidance (TFG) runs:

=============  ===========================================  =====  ================
variant        depth                                        TFG    trainable
=============  ===========================================  =====  ================
``bit_align``  bypass prompts in every block (prompts.py)   yes    prompts + head
``bpm``        bypass prompts                               no     prompts + head
``rgb``        none                                         yes    head
``dual``       a second ViT on depth, its patch tokens      yes    depth ViT + head
               added to the RGB ViT's output
``early``      a 4th input channel (a zero-initialised      yes    whole ViT + head
               depth patch embedding added to RGB's)
=============  ===========================================  =====  ================

Weak supervision (after LOCATE): a training sample pairs an egocentric view (the
object alone) with an exocentric one (a hand in contact) and an image-level
affordance label. Both views are classified from class activation maps (CAMs:
per-class maps of a small convolutional head, averaged for the logits). The
exocentric CAM of the label locates the part in use; the CAM-weighted mean of the
exocentric features is a part prototype, and the egocentric CAM-weighted features
are pulled towards it (cosine). The loss is ``CE(exo) + CE(ego) + λ·(1 − cos)``. We
take the prototype over the whole exocentric CAM; LOCATE first clusters it into
parts with k-means. Ground-truth maps never enter training.

At inference the map of the queried affordance is the egocentric CAM (``bpm``) or
TFG's ½ CAM + ½ chosen attention head (:mod:`.tfg`), upsampled to the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.data.synth.affordance_render import AFFORDANCES
from polymodal.errors import ConfigError, DataError
from polymodal.methods.bit_align.backbone import Backbone, Encoded, OurViT, as_backbone
from polymodal.methods.bit_align.prompts import BypassPrompts
from polymodal.methods.bit_align.text import AffordanceTexts
from polymodal.methods.bit_align.tfg import TextFeatureGuidance, unit_range
from polymodal.modules.encoders import BlockHook, ViTEncoder

VARIANTS = ("bit_align", "bpm", "rgb", "dual", "early")
DEPTH_PARTS = ("prompts", "depth_vit", "depth_embed")
"""Submodules that carry depth: their parameters are a variant's ``added`` ones."""


@dataclass
class GroundingOutput:
    """What :meth:`BiTAlign.forward` returns.

    Attributes:
        heatmap: (B, H, W) non-negative map of the queried affordance, image-sized.
        logits: (B, K) affordance logits of the egocentric view.
        loss: the weak-supervision loss (training batches with an exocentric view).
        parts: the loss's terms, for logging.
    """

    heatmap: Tensor
    logits: Tensor
    loss: Tensor | None = None
    parts: dict[str, Tensor] = field(default_factory=dict)


class AffordanceHead(nn.Module):
    """Class activation maps from patch features: 3×3 conv, ReLU, 1×1 conv to K maps.

    Args:
        dim: feature width D.
        num_classes: K affordances.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, num_classes, 1)
        )

    def forward(self, features: Tensor, grid: tuple[int, int]) -> Tensor:
        """(B, n, D) patch features on an (h, w) grid -> (B, K, h, w) CAMs."""
        b, n, d = features.shape
        x = features.transpose(1, 2).reshape(b, d, *grid)  # (B, D, h, w), row-major patches
        return self.body(x)  # type: ignore[no-any-return]


def _check_image(name: str, x: Tensor | None, channels: int, size: tuple[int, int]) -> Tensor:
    if x is None:
        raise DataError(f"BiT-Align needs {name!r} ({channels}, {size[0]}, {size[1]}) in the batch")
    want = (channels, *size)
    if x.dim() != 4 or tuple(x.shape[1:]) != want:
        raise DataError(
            f"{name} must be (B, {', '.join(map(str, want))}) to match the ViT, got "
            f"{tuple(x.shape)}; resize it to the image size"
        )
    if not torch.isfinite(x).all():
        raise DataError(f"{name} holds NaN or infinite values; fill or mask the missing pixels")
    return x


class BiTAlign(nn.Module):
    """See the module doc.

    Args:
        backbone: the RGB ViT (ours or Hugging Face's); frozen except in ``early``.
        texts: the affordance words' embeddings, in label order.
        variant: one of :data:`VARIANTS`.
        rank: r of the bypass prompt modules.
        part_weight: λ of the part-prototype term.
        depth_vit: the depth encoder of ``dual`` (one input channel, same grid).

    Missing modality: depth variants need ``depth``; ``rgb`` ignores it.
    """

    def __init__(
        self,
        backbone: nn.Module,
        texts: AffordanceTexts,
        variant: str = "bit_align",
        rank: int = 17,
        part_weight: float = 1.0,
        depth_vit: ViTEncoder | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"BiT-Align variant must be one of {VARIANTS}, got {variant!r}")
        if (variant == "dual") != (depth_vit is not None):
            raise ConfigError("the dual variant, and only it, takes a depth_vit")
        self.backbone: Backbone = as_backbone(backbone)
        self.texts, self.variant, self.part_weight = texts, variant, part_weight
        b = self.backbone
        for p in b.parameters():
            p.requires_grad_(variant == "early")
        prompted = variant in ("bit_align", "bpm")
        self.prompts = BypassPrompts(b.depth, b.dim, b.num_tokens, rank) if prompted else None
        self.depth_vit = depth_vit
        self.depth_embed: nn.Conv2d | None = None
        if variant == "early":
            patch = (b.image_size[0] // b.grid[0], b.image_size[1] // b.grid[1])
            embed = nn.Conv2d(1, b.dim, patch, stride=patch)
            for tensor in embed.parameters():  # starts as the pre-trained RGB ViT
                nn.init.zeros_(tensor)
            self.depth_embed = embed
        self.tfg = TextFeatureGuidance(b.dim, texts.dim) if variant != "bpm" else None
        self.head = AffordanceHead(b.dim, len(texts.words))

    @property
    def uses_depth(self) -> bool:
        return self.variant != "rgb"

    def _depth_hook(self, depth: Tensor) -> BlockHook | None:
        if self.prompts is not None:
            channels = depth.expand(-1, self.backbone.in_channels, -1, -1)
            return self.prompts.hook(self.backbone.embed(channels))
        if self.depth_embed is not None:
            tokens = self.depth_embed(depth).flatten(2).transpose(1, 2)  # (B, n, D)
            tokens = F.pad(tokens, (0, 0, 1, 0))  # nothing added to CLS

            def add_depth(index: int, x: Tensor) -> Tensor:
                return x + tokens if index == 0 else x

            return add_depth
        return None

    def encode(self, image: Tensor, depth: Tensor | None, attention: bool) -> Encoded:
        """The ViT's patch tokens (and CLS attention) of a view, depth fused per variant.

        Args:
            image: (B, C, H, W) RGB.
            depth: (B, 1, H, W) depth, standardised here per sample; None for ``rgb``.
            attention: also return the last block's CLS attention.
        """
        b = self.backbone
        image = _check_image("image", image, b.in_channels, b.image_size)
        if self.uses_depth:
            depth = _check_image("depth", depth, 1, b.image_size)
            flat = depth.flatten(1)
            depth = (
                (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-6)
            ).view_as(depth)
        hook = self._depth_hook(depth) if depth is not None and self.uses_depth else None
        out = b.encode(image, hook, attention)
        if self.depth_vit is not None:
            assert depth is not None
            out = out._replace(patches=out.patches + self.depth_vit(depth)[:, 1:])
        return out

    def _guided(self, features: Tensor, labels: Tensor) -> Tensor:
        return features if self.tfg is None else self.tfg.reweight(features, self.texts(labels))

    def forward(self, batch: Mapping[str, Tensor]) -> GroundingOutput:
        """Maps of ``batch["label"]`` (the predicted affordance where absent) for the
        egocentric ``image``/``depth``; the loss when ``exo_image`` is present.

        Args:
            batch: ``image`` (B, 3, H, W), ``depth`` (B, 1, H, W), ``label`` (B,);
                in training also ``exo_image`` and ``exo_depth``.
        """
        grid = self.backbone.grid
        attention = self.tfg is not None and not self.training
        ego = self.encode(batch["image"], batch.get("depth"), attention)
        labels = batch.get("label")
        if labels is None:  # no query: ground the affordance the unguided head names
            labels = self.head(ego.patches, grid).mean((2, 3)).argmax(1)
        features = self._guided(ego.patches, labels)
        cams = self.head(features, grid)  # (B, K, h, w)
        logits = cams.mean((2, 3))
        rows = torch.arange(len(labels), device=cams.device)
        cam = cams[rows, labels]  # (B, h, w)
        if ego.cls_attention is not None and self.tfg is not None:
            saliency = self.tfg.saliency(cam, features, self.texts(labels), ego.cls_attention)
        else:
            saliency = unit_range(cam)
        heatmap = F.interpolate(saliency[:, None], size=self.backbone.image_size, mode="bilinear")
        out = GroundingOutput(heatmap[:, 0].clamp_min(0) + 1e-6, logits)
        if "exo_image" in batch:
            out.loss, out.parts = self._weak_loss(batch, features, cams, logits, labels)
        return out

    def _weak_loss(
        self,
        batch: Mapping[str, Tensor],
        ego: Tensor,
        ego_cams: Tensor,
        ego_logits: Tensor,
        labels: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """CE on both views plus the part-prototype term (module doc)."""
        exo = self._guided(
            self.encode(batch["exo_image"], batch.get("exo_depth"), False).patches, labels
        )
        exo_cams = self.head(exo, self.backbone.grid)
        rows = torch.arange(len(labels), device=labels.device)
        ce = F.cross_entropy(exo_cams.mean((2, 3)), labels) + F.cross_entropy(ego_logits, labels)
        exo_weights = unit_range(exo_cams[rows, labels].relu()).flatten(1)  # (B, n)
        prototype = (exo_weights[:, None] @ exo).squeeze(1) / exo_weights.sum(
            1, keepdim=True
        ).clamp_min(1e-6)
        ego_weights = unit_range(ego_cams[rows, labels].relu()).flatten(1)
        part = (ego_weights[:, None] @ ego).squeeze(1) / ego_weights.sum(1, keepdim=True).clamp_min(
            1e-6
        )
        alignment = 1 - F.cosine_similarity(part, prototype.detach(), dim=-1).mean()
        return ce + self.part_weight * alignment, {"ce": ce.detach(), "part": alignment.detach()}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``total``, ``trainable`` and ``added`` (depth-carrying modules, :data:`DEPTH_PARTS`)
    parameter counts of a model."""
    added = sum(
        p.numel()
        for name in DEPTH_PARTS
        if isinstance(getattr(model, name, None), nn.Module)
        for p in getattr(model, name).parameters()
    )
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "added": added,
    }


def load_text_encoder(name: str) -> Any:
    """``"minilm"``: the pretrained all-MiniLM-L6-v2; ``"none"``: no encoder (zeros,
    for weights loaded from a trained run)."""
    if name == "none":
        return None
    if name != "minilm":
        raise ConfigError(f"BiT-Align text_encoder must be 'minilm' or 'none', got {name!r}")
    from polymodal.hf.text_encoder import load_minilm

    return load_minilm()


def build_bit_align(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 64,
    variant: str = "bit_align",
    patch_size: int = 8,
    depth: int = 4,
    num_heads: int = 4,
    rank: int = 17,
    part_weight: float = 1.0,
    affordances: Sequence[str] = AFFORDANCES,
    text_encoder: str = "minilm",
    seed: int | None = None,
) -> BiTAlign:
    """BiT-Align (or a baseline ``variant``) on our ViT, from a config's ``model`` section.

    The RGB ViT is named ``backbone.vit``: a pre-trained classifier's
    ``encoders.image.`` loads into it with ``model.init_map``.

    Args:
        fusion: unused (the variant decides); kept for the builder signature.
        modalities: ``image`` (and ``depth``) with their per-sample ``shape``.
        dim, patch_size, depth, num_heads: the ViT's width, patch side, blocks, heads.
        variant: one of :data:`VARIANTS`.
        rank: r of the prompt modules.
        part_weight: λ of the part-prototype loss.
        affordances: the label words, in label order.
        text_encoder: ``"minilm"`` or ``"none"`` (:func:`load_text_encoder`).
        seed: initialise the parameters from this seed without touching the global one.
    """
    if "image" not in modalities:
        raise ConfigError("BiT-Align needs model.modalities.image")
    shape = modalities["image"].get("shape") or [3, 64, 64]
    encoder = load_text_encoder(text_encoder)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        vit = ViTEncoder((shape[1], shape[2]), patch_size, shape[0], dim, depth, num_heads)
        depth_vit = None
        if variant == "dual":
            depth_vit = ViTEncoder((shape[1], shape[2]), patch_size, 1, dim, depth, num_heads)
        texts = AffordanceTexts(affordances, encoder)
        return BiTAlign(OurViT(vit), texts, variant, rank, part_weight, depth_vit)
