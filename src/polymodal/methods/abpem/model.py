"""A CAV-MAE-style audio-visual classifier whose fusion attention can be adapted at test time.

Layout (as the fine-tuned CAV-MAE that ABPEM adapts, at toy size):

1. **modality encoders**: a small ViT over image patches (7×7 by default) and one
   over log-mel patches (all 40 bands × 5 frames by default), each with learned
   positions, plus a learned modality embedding;
2. **a shared fusion layer**: one pre-norm transformer block over the concatenated
   tokens, audio first then image, whose attention returns its pre-softmax logits;
3. LayerNorm, mean over the tokens, and a linear head.

The model splits in two halves so that test-time adaptation can cache encoder
output and re-run only the fusion layer: :meth:`AVFusionTransformer.encode` gives
:class:`FusionTokens`, :meth:`AVFusionTransformer.fuse` gives a
:class:`AVFusionOutput`. This is the whole interface
:class:`~polymodal.methods.abpem.adapt.TestTimeAdapter` needs (see there).

Missing modality (absent from the batch, or ``<m>_mask`` False for a sample): its
tokens are zero and flagged in ``FusionTokens.padding``, so no query attends to
them and the mean pool skips them. A sample with no modality is a ``DataError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.contract import present, validate_batch
from polymodal.errors import ConfigError, DataError
from polymodal.modules.attention import MultiHeadAttention, TransformerBlock
from polymodal.modules.encoders import ViTEncoder

FUSIONS = ("shared_layer",)
"""Fusion names :func:`build_av_fusion_transformer` accepts (a config's ``model.fusion``)."""

ORDER = ("audio", "image")
"""Token order in the fusion layer: audio first, as in CAV-MAE."""


@dataclass
class FusionTokens:
    """Encoder output, ready for the fusion layer.

    Attributes:
        tokens: (B, N, D) concatenated modality tokens.
        segments: ``{modality: slice}`` of each modality's tokens along N.
        padding: (B, N) bool, True for tokens of a modality the sample lacks.
        present: ``{modality: (B,) bool}``, which samples carry each modality.
    """

    tokens: Tensor
    segments: dict[str, slice]
    padding: Tensor
    present: dict[str, Tensor]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def detach(self) -> FusionTokens:
        return FusionTokens(self.tokens.detach(), self.segments, self.padding, self.present)

    @staticmethod
    def cat(parts: Sequence[FusionTokens]) -> FusionTokens:
        """Stack the samples of several batches with the same segments."""
        first = parts[0]
        return FusionTokens(
            torch.cat([p.tokens for p in parts]),
            first.segments,
            torch.cat([p.padding for p in parts]),
            {m: torch.cat([p.present[m] for p in parts]) for m in first.present},
        )


@dataclass
class AVFusionOutput:
    """What :class:`AVFusionTransformer` returns: class scores and, for adaptation, the
    fusion attention's logits and the tokens it read (the generic fusion heads return
    :class:`polymodal.modules.fusion.FusionOutput` instead).

    Attributes:
        logits: (B, C) class scores.
        attention_logits: (B, H, N, N) pre-softmax logits of the fusion attention,
            when requested.
        fused: the :class:`FusionTokens` the fusion layer read.
    """

    logits: Tensor
    attention_logits: Tensor | None = None
    fused: FusionTokens | None = None


class SpectrogramPatches(ViTEncoder):
    """Log-mel (B, F, T) to transformer tokens over rectangular (F_p × T_p) patches.

    CAV-MAE cuts its 128-band spectrogram into 16×16 patches; at 40 bands, full-height
    strips of a few frames (the default, 40 × 5 = 50 ms) keep the token count small.
    The spectrogram is cropped to a whole number of patches in time (101 frames -> 100).
    Each utterance's mean and scale are removed first, so the encoder does not depend on
    the recording gain (as in :class:`~polymodal.modules.encoders.SpectrogramEncoder`).

    Args:
        shape: per-sample (F, T).
        patch: (F_p, T_p); F_p must divide F.
        dim: token width D.
        depth, num_heads, mlp_ratio, dropout: of the transformer blocks.
    """

    def __init__(
        self,
        shape: Sequence[int],
        patch: Sequence[int] = (40, 5),
        dim: int = 64,
        depth: int = 1,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        eps: float = 1e-5,
    ) -> None:
        n_mels, frames = int(shape[0]), int(shape[1])
        band, width = int(patch[0]), int(patch[1])
        if n_mels % band or frames < width:
            raise ConfigError(f"audio patch {tuple(patch)} must tile {n_mels} bands x {frames}")
        # a one-channel (F, T') image, T' cropped to whole patches, without a CLS token
        cropped = (n_mels, frames - frames % width)
        super().__init__(
            cropped, (band, width), 1, dim, depth, num_heads, False, mlp_ratio, dropout
        )
        self.eps = eps

    def embed(self, x: Tensor) -> Tensor:
        """(B, F, T) log-mel -> (B, N_a, D) patch tokens, N_a = (F / F_p) * (T // T_p).

        Overriding the embedding (not ``forward``) keeps the encoder's hidden-state
        taps and block hooks.
        """
        x = x[:, :, : self.image_size[1]]
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True, unbiased=False)
        return super().embed(((x - mean) / (std + self.eps))[:, None])


class AVFusionTransformer(nn.Module):
    """Audio and image encoders, one shared fusion transformer layer, a linear head.

    Args:
        encoders: ``{"audio": module, "image": module}``, each (B, ...) -> (B, N_m, D);
            either may be left out for a one-modality model.
        num_classes: number of classes C.
        dim: token width D.
        num_heads: heads of the fusion attention.
        mlp_ratio, dropout: of the fusion block.
        expected_shapes: optional per-sample input shapes checked on every forward.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        num_classes: int,
        dim: int = 64,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        expected_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(encoders) - set(ORDER))
        if unknown or not encoders:
            raise ConfigError(
                f"encoders must be a non-empty subset of {ORDER}, got {list(encoders)}"
            )
        self.order = tuple(m for m in ORDER if m in encoders)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.order})
        # CAV-MAE adds a learned modality embedding to every token of a modality.
        self.modality_embed = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(1, 1, dim)) for m in self.order}
        )
        for embedding in self.modality_embed.values():
            nn.init.trunc_normal_(embedding, std=0.02)
        self.fusion = TransformerBlock(dim, num_heads, mlp_ratio, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.num_classes = num_classes
        self.expected_shapes = (
            None if expected_shapes is None else {m: tuple(s) for m, s in expected_shapes.items()}
        )

    @property
    def fusion_attention(self) -> MultiHeadAttention:
        """The fusion layer's attention (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``)."""
        return self.fusion.attn

    def encode(self, batch: Mapping[str, Tensor]) -> FusionTokens:
        """Run the modality encoders.

        Args:
            batch: ``audio`` (B, F, T) log-mel, ``image`` (B, C, H, W), optional
                ``<m>_mask`` (B,) bool; other keys are ignored.

        Returns:
            :class:`FusionTokens` with tokens (B, N_a + N_i, D).

        Raises:
            DataError: the batch breaks the data contract (NaN, wrong shape, ...) or a
                sample carries none of the modalities.
        """
        B = validate_batch(batch, self.expected_shapes)
        parts, pads, segments, masks = [], [], {}, {}
        start = 0
        for m in self.order:
            mask = present(batch, m)
            if mask is None:
                raise DataError(
                    f"batch has no {m!r}; pass it with {m}_mask False to mark it missing"
                )
            tokens = self.encoders[m](batch[m]) + self.modality_embed[m]  # (B, N_m, D)
            tokens = tokens * mask[:, None, None]  # a missing modality contributes nothing
            parts.append(tokens)
            pads.append((~mask)[:, None].expand(B, tokens.shape[1]))
            segments[m] = slice(start, start + tokens.shape[1])
            masks[m] = mask
            start += tokens.shape[1]
        padding = torch.cat(pads, dim=1)  # (B, N)
        if bool(padding.all(dim=1).any()):
            bad = padding.all(dim=1).nonzero().flatten().tolist()
            raise DataError(f"samples {bad} carry none of the modalities {list(self.order)}")
        return FusionTokens(torch.cat(parts, dim=1), segments, padding, masks)

    def fuse(self, fused: FusionTokens, return_attention: bool = False) -> AVFusionOutput:
        """Run the shared fusion layer and the head.

        Args:
            fused: encoder output from :meth:`encode` (possibly of several batches).
            return_attention: also return the fusion attention's pre-softmax logits.

        Returns:
            :class:`AVFusionOutput` with logits (B, C) and, when asked, attention
            logits (B, H, N, N).
        """
        padding = fused.padding if bool(fused.padding.any()) else None
        out = self.fusion(fused.tokens, key_padding_mask=padding, return_logits=return_attention)
        x = self.norm(out.output)  # (B, N, D)
        keep = (~fused.padding).to(x.dtype)[..., None]  # (B, N, 1)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)  # mean over present tokens
        return AVFusionOutput(self.head(pooled), out.logits, fused)

    def forward(
        self, batch: Mapping[str, Tensor], return_attention: bool = False
    ) -> AVFusionOutput:
        """``fuse(encode(batch))``; see :meth:`encode` and :meth:`fuse`."""
        return self.fuse(self.encode(batch), return_attention)


def build_av_fusion_transformer(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    num_classes: int,
    dim: int = 64,
    seed: int | None = None,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    dropout: float = 0.0,
) -> AVFusionTransformer:
    """Build an :class:`AVFusionTransformer` from config dicts (a ``model.options.builder``).

    Example::

        build_av_fusion_transformer(
            "shared_layer",
            {"image": {"shape": [1, 28, 28], "patch": 7, "depth": 1},
             "audio": {"shape": [40, 101], "patch": [40, 5], "depth": 1}},
            num_classes=10,
        )

    Args:
        fusion: ``"shared_layer"`` (the only layout).
        modalities: ``image`` and/or ``audio``: ``{"shape": [...], "patch": P,
            "depth": L}`` (per-sample shape required; image patch: a side, 7 by
            default; audio patch: [bands, frames], [40, 5] by default; depth 1).
        num_classes: number of classes C.
        dim: token width D of encoders and fusion.
        seed: if given, parameters are initialised from it without touching the
            global random state.
        num_heads: attention heads of every block.
        mlp_ratio, dropout: of every block.

    Raises:
        ValueError: unknown fusion or modality, missing shape, bad options.
    """
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
    unknown = sorted(set(modalities) - set(ORDER))
    if unknown:
        raise ConfigError(f"modalities {unknown} are not supported; use {list(ORDER)}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        encoders: dict[str, nn.Module] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for name in ORDER:
            if name not in modalities:
                continue
            options = dict(modalities[name])
            options.pop("encoder", None)
            shape = options.pop("shape", None)
            if shape is None:
                raise ConfigError(f"modality {name!r} needs its per-sample 'shape'")
            shapes[name] = tuple(int(s) for s in shape)
            patch = options.pop("patch", 7 if name == "image" else (40, 5))
            depth = int(options.pop("depth", 1))
            if options:
                raise ConfigError(f"unknown options for {name!r}: {sorted(options)}")
            if name == "image":
                encoders[name] = ViTEncoder(
                    tuple(shape[1:]),
                    int(patch),
                    shape[0],
                    dim,
                    depth,
                    num_heads,
                    False,
                    mlp_ratio,
                    dropout,
                )
            else:
                encoders[name] = SpectrogramPatches(
                    shape, patch, dim, depth, num_heads, mlp_ratio, dropout
                )
        return AVFusionTransformer(
            encoders, num_classes, dim, num_heads, mlp_ratio, dropout, expected_shapes=shapes
        )
