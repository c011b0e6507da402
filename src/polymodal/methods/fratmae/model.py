"""FratMAE: PET and CT masked autoencoders whose decoders read each other.

Each modality has its own 3D ViT encoder (:class:`~polymodal.modules.vit3d.VolumeViT`)
that sees a random 25 % of its patches. Each modality's decoder fills the hidden
patches with a mask token and, in every block, self-attends and then cross-attends
to the *other* modality's encoded visible tokens, so CT anatomy helps rebuild PET
and PET uptake helps rebuild CT; a decoder never sees a hidden patch's values of
either modality. A contrastive term aligns the pooled PET encoding with an
embedding of the case's metadata text (tracer, dose, scanner, age).

Every part can be switched off for ablations: ``cross_attention=False`` gives a
joint MAE of two independent halves, ``text_weight=0`` drops the metadata term.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.modules.attention import CrossAttentionBlock, TransformerBlock
from polymodal.modules.mae import patchify, unpatchify
from polymodal.modules.text_encoder import SmallTextEncoder, masked_mean
from polymodal.modules.vit3d import VolumeViT, sincos_3d, unshuffle
from polymodal.train.tasks.retrieval import info_nce

MODALITIES = ("pet", "ct")


class FratMAEOutput(NamedTuple):
    """What :class:`FratMAE` returns; dicts are keyed by modality.

    Attributes:
        prediction: ``{m: (B, N, P)}`` predicted voxels of every patch.
        target: ``{m: (B, N, P)}`` true voxels of every patch.
        mask: ``{m: (B, N)}`` 1.0 where the patch was hidden from the encoder.
        reconstruction: ``{m: (B, D, H, W)}`` hidden patches predicted, visible ones as given.
        auxiliary: () weighted metadata contrastive loss (0 when off), added to the
            reconstruction loss by the masked-reconstruction task.
    """

    prediction: dict[str, Tensor]
    target: dict[str, Tensor]
    mask: dict[str, Tensor]
    reconstruction: dict[str, Tensor]
    auxiliary: Tensor


class CrossDecoderBlock(nn.Module):
    """Self-attention over a modality's tokens, then cross-attention to the other's.

    Args:
        dim: decoder width.
        num_heads: attention heads.
        cross: add the cross-attention (False: a plain MAE decoder block).
    """

    def __init__(self, dim: int, num_heads: int, cross: bool = True) -> None:
        super().__init__()
        self.own = TransformerBlock(dim, num_heads)
        self.other = CrossAttentionBlock(dim, num_heads) if cross else None

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        """x: (B, N, D) own tokens; context: (B, K, D) the other's visible encodings."""
        x = self.own(x).output
        if self.other is not None and context is not None:
            x = self.other(x, context).output
        return x


class FratMAE(nn.Module):
    """Two masked autoencoders with cross-attending decoders and a metadata term.

    Args:
        encoders: ``{"pet": VolumeViT, "ct": VolumeViT}`` of equal grids and widths.
        decoder_dim: decoder width (divisible by 6).
        decoder_depth: decoder blocks per modality.
        num_heads: decoder heads.
        mask_ratio: share of patches hidden, per modality and sample.
        cross_attention: decoders cross-attend to the other modality.
        text_encoder: embeds ``text_ids`` for the metadata term: a trainable
            :class:`SmallTextEncoder`, or a frozen Hugging Face ``TextEncoder``
            (``polymodal.hf.text_encoder``) with a ``dim``; None: no term.
        text_weight: weight of the metadata term.
        temperature: of the metadata InfoNCE.
    """

    def __init__(
        self,
        encoders: Mapping[str, VolumeViT],
        decoder_dim: int = 48,
        decoder_depth: int = 1,
        num_heads: int = 4,
        mask_ratio: float = 0.75,
        cross_attention: bool = True,
        text_encoder: nn.Module | None = None,
        text_weight: float = 0.1,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        if set(encoders) != set(MODALITIES):
            raise ConfigError(f"FratMAE needs encoders for {MODALITIES}, got {sorted(encoders)}")
        self.encoders = nn.ModuleDict(encoders)
        first = encoders["pet"]
        if encoders["ct"].grid != first.grid or encoders["ct"].dim != first.dim:
            raise ConfigError("FratMAE's PET and CT encoders must share their grid and width")
        self.mask_ratio = mask_ratio
        self.cross_attention = cross_attention
        self.patch = tuple(int(k) for k in first.patch_embed.kernel_size)
        values = self.patch[0] * self.patch[1] * self.patch[2]
        self.project = nn.ModuleDict({m: nn.Linear(first.dim, decoder_dim) for m in MODALITIES})
        self.mask_token = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(decoder_dim) * 0.02) for m in MODALITIES}
        )
        self.register_buffer(
            "pos_embed", sincos_3d(first.grid, decoder_dim)[None], persistent=False
        )
        self.decoders = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    CrossDecoderBlock(decoder_dim, num_heads, cross_attention)
                    for _ in range(decoder_depth)
                )
                for m in MODALITIES
            }
        )
        self.norms = nn.ModuleDict({m: nn.LayerNorm(decoder_dim) for m in MODALITIES})
        self.heads = nn.ModuleDict({m: nn.Linear(decoder_dim, values) for m in MODALITIES})
        self.text_encoder = text_encoder if text_weight > 0 else None
        self.text_weight = text_weight if text_encoder is not None else 0.0
        self.temperature = temperature
        if self.text_encoder is not None:
            self.pet_to_text = nn.Linear(first.dim, 64)
            self.text_to_pet = nn.Linear(self.text_encoder.dim, 64)

    def embed_text(self, text_ids: Tensor) -> Tensor:
        """(B, D_text) mean-pooled encodings of metadata texts given as byte ids
        (id = byte + 1, 0 = padding): by the small byte-level encoder, or by a frozen
        Hugging Face encoder (MiniLM) on the decoded strings."""
        assert self.text_encoder is not None
        mask = (text_ids != 0).long()
        if isinstance(self.text_encoder, SmallTextEncoder):
            return masked_mean(self.text_encoder(text_ids, mask).last, mask)
        texts = [bytes((row[row > 0] - 1).tolist()).decode("utf-8", "replace") for row in text_ids]
        self.text_encoder.eval()  # frozen: no dropout whatever the model's mode
        with torch.no_grad():
            out = self.text_encoder.encode(texts)
        return masked_mean(out.last, out.attention_mask).to(text_ids.device)

    def metadata_loss(self, pet_tokens: Tensor, text_ids: Tensor) -> Tensor:
        """Symmetric InfoNCE between pooled PET encodings and the metadata texts.

        Args:
            pet_tokens: (B, K (+1), D) encoded visible PET tokens.
            text_ids: (B, L) byte ids, 0 = padding.
        """
        pet = F.normalize(self.pet_to_text(pet_tokens.mean(dim=1)), dim=-1)
        text = F.normalize(self.text_to_pet(self.embed_text(text_ids)), dim=-1)
        return info_nce(pet, text, torch.tensor(1.0 / self.temperature))

    def forward(self, batch: Mapping[str, Tensor]) -> FratMAEOutput:
        """Mask, encode, decode both modalities (global generator: the task seeds it).

        Args:
            batch: ``pet`` and ``ct`` (B, D, H, W); ``text_ids`` (B, L) for the
                metadata term.
        """
        for m in MODALITIES:
            if m not in batch:
                raise ConfigError(f"FratMAE needs both pet and ct; the batch has {sorted(batch)}")
        encoded = {
            m: self.encoders[m].encode_visible(batch[m].unsqueeze(1), self.mask_ratio)
            for m in MODALITIES
        }
        visible = {m: self.project[m](encoded[m].last) for m in MODALITIES}  # (B, K (+1), Dd)
        out: dict[str, dict[str, Tensor]] = {"prediction": {}, "target": {}, "reconstruction": {}}
        for m in MODALITIES:
            other = "ct" if m == "pet" else "pet"
            own = visible[m][:, int(self.encoders[m].cls_token is not None) :]
            t = unshuffle(own, self.mask_token[m], encoded[m].ids_restore) + self.pos_embed
            for block in self.decoders[m]:
                t = block(t, visible[other] if self.cross_attention else None)
            prediction = self.heads[m](self.norms[m](t))  # (B, N, P)
            volume = batch[m].unsqueeze(1)  # (B, 1, D, H, W)
            target = patchify(volume, self.patch)
            hidden = encoded[m].mask[..., None].bool()
            mixed = torch.where(hidden, prediction, target)
            out["prediction"][m], out["target"][m] = prediction, target
            out["reconstruction"][m] = unpatchify(mixed, self.patch, volume.shape[1:])[:, 0]
        auxiliary = torch.zeros((), device=batch["pet"].device)
        if self.text_encoder is not None and "text_ids" in batch:
            auxiliary = self.text_weight * self.metadata_loss(
                encoded["pet"].last, batch["text_ids"]
            )
        masks = {m: encoded[m].mask for m in MODALITIES}
        return FratMAEOutput(
            out["prediction"], out["target"], masks, out["reconstruction"], auxiliary
        )


def build_fratmae(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 48,
    patch_size: int = 4,
    depth: int = 2,
    num_heads: int = 4,
    decoder_dim: int = 48,
    decoder_depth: int = 1,
    mask_ratio: float = 0.75,
    cross_attention: bool = True,
    text_weight: float = 0.1,
    text_depth: int = 1,
    text_encoder: str = "small",
) -> FratMAE:
    """Build :class:`FratMAE` from config dicts (``model.options.builder:
    polymodal.methods.fratmae:build_fratmae`` with ``task.kind: masked_reconstruction``).

    Args:
        fusion: unused.
        modalities: ``pet`` and ``ct`` with their (D, H, W) ``shape``; ``text_ids``
            may be listed too (it is read by the metadata term, not encoded as a volume).
        dim, patch_size, depth, num_heads: the two encoders.
        decoder_dim, decoder_depth: the two decoders.
        mask_ratio: share of patches hidden.
        cross_attention: decoders cross-attend to the other modality.
        text_weight: weight of the metadata term (0: off, no text encoder built).
        text_depth: blocks of the small byte-level text encoder.
        text_encoder: ``"small"`` (byte-level, trained with the model; the bench's
            choice, for CPU time) or ``"minilm"`` (all-MiniLM-L6-v2, frozen, from the
            ``[text]`` extra; the paper aligns PET with a pretrained text model).
    """
    missing = [m for m in MODALITIES if m not in modalities]
    if missing:
        raise ConfigError(f"FratMAE needs model.modalities pet and ct; missing {missing}")
    encoders = {
        m: VolumeViT(
            tuple(int(s) for s in modalities[m]["shape"]), patch_size, 1, dim, depth, num_heads
        )
        for m in MODALITIES
    }
    text: nn.Module | None = None
    if text_weight > 0 and text_encoder == "minilm":
        from polymodal.hf.text_encoder import load_minilm

        text = load_minilm(max_length=64).requires_grad_(False)
    elif text_weight > 0 and text_encoder == "small":
        text = SmallTextEncoder(dim=dim, depth=text_depth, max_length=96)
    elif text_weight > 0:
        raise ConfigError(f"text_encoder must be 'small' or 'minilm', got {text_encoder!r}")
    return FratMAE(
        encoders,
        decoder_dim,
        decoder_depth,
        num_heads,
        mask_ratio,
        cross_attention,
        text,
        text_weight,
    )
