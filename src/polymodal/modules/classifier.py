"""A multimodal classifier assembled from per-modality encoders and a fusion head.

:class:`MultimodalClassifier` takes already-built submodules;
:func:`build_classifier` builds them from plain config dicts (as in a YAML file).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.contract import present, validate_batch
from polymodal.errors import ConfigError, DataError
from polymodal.modules.encoders import (
    ImageCNN,
    SpectrogramEncoder,
    TabularMLP,
    ViTEncoder,
    VolumeCNN,
)
from polymodal.modules.fusion import CrossAttentionFusion, EarlyFusion, LateFusion
from polymodal.modules.text_encoder import TextTokens
from polymodal.modules.vit3d import VolumeViT


@dataclass
class ClassifierOutput:
    """What :class:`MultimodalClassifier` returns.

    Attributes:
        logits: (B, C) class scores.
        attentions: attention weights from the fusion head, when requested.
        embeddings: ``{modality: (B, N_m, D_m)}`` encoder tokens, when requested
            (pool them with :func:`polymodal.modules.encoders.pool`).
    """

    logits: Tensor
    attentions: dict[str, Tensor] | None = None
    embeddings: dict[str, Tensor] | None = None


class MultimodalClassifier(nn.Module):
    """Encode each modality to tokens, then fuse them into logits.

    Missing modality: a modality the model has an encoder for but that is absent
    from the batch is missing for every sample; one flagged by ``<m>_mask`` is
    missing where the mask is False. Both reach the fusion head as ``present``
    masks, and the head's docstring says what it does then.

    Args:
        encoders: ``{modality: encoder}``, each mapping (B, ...) to (B, N, D).
        fusion: head called as ``fusion(tokens, present, return_attention=...)``
            that returns an object with ``logits`` (and optionally ``attentions``),
            e.g. a :mod:`polymodal.modules.fusion` head.
        expected_shapes: optional per-sample input shape per modality (``-1`` =
            any size), checked on every forward.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: nn.Module,
        expected_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if not encoders:
            raise ConfigError("MultimodalClassifier needs at least one encoder")
        self.encoders = encoders if isinstance(encoders, nn.ModuleDict) else nn.ModuleDict(encoders)
        self.fusion = fusion
        self.expected_shapes = (
            None if expected_shapes is None else {m: tuple(s) for m, s in expected_shapes.items()}
        )

    @property
    def num_classes(self) -> int:
        """Number of classes C (read from the fusion head)."""
        return int(self.fusion.num_classes)  # type: ignore[arg-type]

    def forward(
        self,
        batch: Mapping[str, Tensor],
        return_attention: bool = False,
        return_embeddings: bool = False,
    ) -> ClassifierOutput:
        """Classify a batch.

        Args:
            batch: modality tensors (B, ...), optional ``<m>_mask`` (B,) bool, and
                other keys (``label``, ...) which are ignored.
            return_attention: ask the fusion head for its attention weights.
            return_embeddings: also return the encoder tokens.

        Returns:
            :class:`ClassifierOutput` with ``logits`` (B, C).

        Raises:
            DataError: the batch breaks the data contract (wrong shape, NaN/Inf, ...;
                the message names the modality), has none of the encoded
                modalities, or has a sample with no modality present.
        """
        validate_batch(batch, self.expected_shapes)
        tokens: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for name, encoder in self.encoders.items():
            mask = present(batch, name)
            if mask is None:
                continue
            tokens[name] = encoder(batch[name])  # (B, N_m, D_m)
            masks[name] = mask
        if not tokens:
            raise DataError(
                f"batch has none of the modalities this model encodes ({list(self.encoders)}); "
                f"got keys {sorted(batch)}"
            )
        out = self.fusion(tokens, masks, return_attention=return_attention)
        return ClassifierOutput(
            logits=out.logits,
            attentions=getattr(out, "attentions", None) if return_attention else None,
            embeddings=tokens if return_embeddings else None,
        )


def _token_width(name: str, encoder: nn.Module) -> int:
    """The token width D an encoder declares through its ``dim`` attribute."""
    width = getattr(encoder, "dim", None)
    if not isinstance(width, int):
        raise ConfigError(f"encoder of modality {name!r} has no integer 'dim' attribute")
    return width


ENCODERS = ("cnn", "cnn3d", "mlp", "spectrogram", "text", "vit", "vit3d")
"""Encoder names understood by :func:`build_encoder`."""

FUSIONS = ("early", "late", "cross_attention", "<modality>_only")
"""Fusion names understood by :func:`build_classifier`."""


def build_encoder(
    name: str, dim: int = 64, shape: Sequence[int] | None = None, **kwargs: Any
) -> nn.Module:
    """Build one encoder by name.

    Sizes the encoder needs and does not get in ``kwargs`` are read from the
    per-sample ``shape``: ``in_channels`` (and ``image_size`` for ``vit``) from
    (C, H, W), ``n_mels`` from (F, T), ``in_features`` from (G,), ``max_length`` from (L,).

    Args:
        name: one of ``"cnn"``, ``"vit"``, ``"spectrogram"``, ``"mlp"``, ``"text"``
            (token ids, :class:`~polymodal.modules.text_encoder.TextTokens`), ``"vit3d"``
            (one-channel volumes, :class:`~polymodal.modules.vit3d.VolumeViT`),
            ``"cnn3d"`` (:class:`~polymodal.modules.encoders.VolumeCNN`).
        dim: token width D.
        shape: per-sample input shape, optional.
        **kwargs: encoder options (see each encoder class).

    Raises:
        ValueError: unknown name, or options the encoder does not accept.
    """
    shape = None if shape is None else tuple(shape)

    def from_shape(key: str, index: int, value: Callable[[tuple[int, ...]], object]) -> None:
        if key not in kwargs and shape is not None and len(shape) > index:
            kwargs[key] = value(shape)

    cls: type[nn.Module]
    if name == "cnn":
        cls = ImageCNN
        from_shape("in_channels", 0, lambda s: s[0])
    elif name == "vit":
        cls = ViTEncoder
        from_shape("in_channels", 0, lambda s: s[0])
        from_shape("image_size", 2, lambda s: (s[1], s[2]))
    elif name == "spectrogram":
        cls = SpectrogramEncoder
        from_shape("n_mels", 0, lambda s: s[0])
    elif name == "mlp":
        cls = TabularMLP
        from_shape("in_features", 0, lambda s: s[0])
    elif name == "text":
        cls = TextTokens
        from_shape("max_length", 0, lambda s: s[0])
    elif name == "cnn3d":  # volumes (D, H, W), one channel
        cls = VolumeCNN
    elif name == "vit3d":  # volumes (D, H, W), one channel
        cls = VolumeViT
        from_shape("volume_size", 2, lambda s: tuple(s[-3:]))
    else:
        raise ConfigError(f"unknown encoder {name!r}; valid encoders are {', '.join(ENCODERS)}")
    kwargs.setdefault("dim", dim)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad options for encoder {name!r} ({cls.__name__}): {e}") from e


def build_encoders(modalities: Mapping[str, Mapping[str, Any]], dim: int) -> dict[str, nn.Module]:
    """One encoder per modality from config dicts (:func:`build_encoder` each).

    Args:
        modalities: ``{modality: {"encoder": name, "shape": [...], **options}}``.
        dim: token width of every encoder whose options do not set ``dim``.

    Raises:
        ConfigError: a modality without ``encoder``, or bad options.
    """
    encoders: dict[str, nn.Module] = {}
    for name, cfg in modalities.items():
        options = dict(cfg)
        if "encoder" not in options:
            raise ConfigError(f"modality {name!r} config has no 'encoder' (one of {ENCODERS})")
        shape = options.pop("shape", None)
        encoders[name] = build_encoder(options.pop("encoder"), dim=dim, shape=shape, **options)
    return encoders


def build_classifier(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    num_classes: int,
    dim: int = 64,
    seed: int | None = None,
    **fusion_kwargs: Any,
) -> MultimodalClassifier:
    """Build a classifier from config dicts.

    Example::

        build_classifier(
            "cross_attention",
            {"image": {"encoder": "cnn", "shape": [1, 28, 28]},
             "audio": {"encoder": "spectrogram", "n_mels": 40, "shape": [40, 101]}},
            num_classes=10,
        )

    Args:
        fusion: ``"early"``, ``"late"``, ``"cross_attention"`` (exactly two
            modalities), or ``"<modality>_only"`` (e.g. ``"image_only"``): that
            modality's encoder with a linear head, the unimodal baseline.
        modalities: ``{modality: {"encoder": name, "shape": [...], **options}}``;
            ``shape`` (per sample) is optional and becomes an input check.
        num_classes: number of classes C.
        dim: token width of every encoder (unless its options set ``dim``) and the
            width of the cross-attention streams.
        seed: if given, parameters are initialised from this seed without touching
            the global random state.
        **fusion_kwargs: options of the fusion head (e.g. ``hidden``, ``dropout``,
            ``num_heads``).

    Raises:
        ValueError: unknown fusion or encoder name, a ``<modality>_only`` for a
            modality not configured, or bad options.
    """
    if not modalities:
        raise ConfigError("build_classifier needs at least one modality")
    if fusion.endswith("_only"):
        only = fusion[: -len("_only")]
        if only not in modalities:
            raise ConfigError(
                f"fusion {fusion!r} needs modality {only!r}, configured: {list(modalities)}"
            )
        modalities = {only: modalities[only]}
    elif fusion not in FUSIONS:
        valid = ["early", "late", "cross_attention", *(f"{m}_only" for m in modalities)]
        raise ConfigError(f"unknown fusion {fusion!r}; valid fusions are {', '.join(valid)}")

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        encoders = build_encoders(modalities, dim)
        shapes = {
            name: tuple(int(s) for s in cfg["shape"])
            for name, cfg in modalities.items()
            if cfg.get("shape") is not None
        }
        dims = {name: _token_width(name, enc) for name, enc in encoders.items()}

        head: nn.Module
        try:
            if fusion == "early":
                head = EarlyFusion(dims, num_classes, **fusion_kwargs)
            elif fusion == "cross_attention":
                head = CrossAttentionFusion(dims, num_classes, dim=dim, **fusion_kwargs)
            else:  # "late" and "<modality>_only"
                head = LateFusion(dims, num_classes, **fusion_kwargs)
        except TypeError as e:
            raise ConfigError(f"bad options for fusion {fusion!r}: {e}") from e
    return MultimodalClassifier(encoders, head, shapes or None)


def build_multilabel_classifier(
    fusion: str, modalities: Mapping[str, Mapping[str, Any]], num_labels: int, **options: Any
) -> MultimodalClassifier:
    """:func:`build_classifier` with one logit per label (``num_labels`` K), the
    ``multilabel_classification`` task's default builder."""
    return build_classifier(fusion, modalities, num_classes=num_labels, **options)
