"""The sample/batch contract every polymodal dataset, model and recipe speaks.

A **sample** is a ``dict[str, Tensor]`` keyed by modality name (shapes below), plus
``label`` and optional metadata. A **batch** is the same dict with a leading batch
dimension. A modality missing from some samples of a batch is flagged by a
``<name>_mask`` bool tensor of shape (B,), True where the modality is present;
absent entries are zero-filled so the batch stays rectangular.

Validation happens at the boundary (dataset, model entry, CLI) and raises
:class:`~polymodal.errors.DataError` naming the modality, the expected and the
actual shape, so bad input never surfaces as an obscure error deep in torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from polymodal.errors import DataError


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like in a single sample.

    Args:
        layout: human-readable axis names, e.g. ``"(C, H, W)"``.
        ndims: accepted numbers of dimensions per sample (without batch).
        floating: whether values must be floating point (and finite).
    """

    layout: str
    ndims: tuple[int, ...]
    floating: bool = True


MODALITIES: dict[str, ModalitySpec] = {
    "image": ModalitySpec("(C, H, W)", (3,)),
    "depth": ModalitySpec("(1, H, W)", (3,)),
    "video": ModalitySpec("(T, C, H, W)", (4,)),
    "audio": ModalitySpec("(S,) waveform or (F, T) log-mel", (1, 2)),
    "text_ids": ModalitySpec("(L,)", (1,), floating=False),
    "genes": ModalitySpec("(G,)", (1,)),
    "tiles": ModalitySpec("(N, C, H, W)", (4,)),
    "ct": ModalitySpec("(D, H, W)", (3,)),
    "pet": ModalitySpec("(D, H, W)", (3,)),
}
"""Known modalities. Register a new one with :func:`register_modality`."""

METADATA_KEYS = frozenset({"label", "index", "id", "source", "question_type"})
"""Non-modality keys a sample may carry."""


def register_modality(name: str, spec: ModalitySpec) -> None:
    """Make ``name`` a known modality (raises if it already is)."""
    if name in MODALITIES:
        raise ValueError(f"modality {name!r} is already registered as {MODALITIES[name].layout}")
    MODALITIES[name] = spec


def modality_keys(sample: Mapping[str, object]) -> list[str]:
    """The modality names present in a sample or batch, in insertion order."""
    return [k for k in sample if k in MODALITIES]


def _check_key(key: str) -> None:
    if key in MODALITIES or key in METADATA_KEYS:
        return
    if key.endswith("_mask") and key[: -len("_mask")] in MODALITIES:
        return
    known = ", ".join(sorted(MODALITIES))
    raise DataError(
        f"unknown modality key {key!r}; known modalities are {known} "
        f"(plus {', '.join(sorted(METADATA_KEYS))} and <modality>_mask). "
        "Register new modalities with polymodal.data.contract.register_modality."
    )


def _check_tensor(name: str, value: object, batched: bool) -> None:
    spec = MODALITIES[name]
    if not isinstance(value, Tensor):
        raise DataError(f"modality {name!r} must be a torch.Tensor, got {type(value).__name__}")
    ndims = tuple(n + int(batched) for n in spec.ndims)
    if value.dim() not in ndims:
        lead = "(B, " + spec.layout[1:] if batched else spec.layout
        raise DataError(
            f"modality {name!r} expected shape {lead} ({' or '.join(map(str, ndims))} dims), "
            f"got {tuple(value.shape)}"
        )
    if spec.floating:
        if not value.is_floating_point():
            raise DataError(f"modality {name!r} must be floating point, got {value.dtype}")
        if not torch.isfinite(value).all():
            bad = "NaN" if torch.isnan(value).any() else "Inf"
            raise DataError(f"modality {name!r} contains {bad} values; clean or drop those samples")


def validate_sample(sample: Mapping[str, object]) -> None:
    """Check one sample against the contract.

    Raises:
        DataError: unknown key, no modality at all, wrong dims/dtype, NaN or Inf.
    """
    for key in sample:
        _check_key(key)
    names = modality_keys(sample)
    if not names:
        raise DataError(f"sample has no modality (keys: {sorted(sample)})")
    for name in names:
        _check_tensor(name, sample[name], batched=False)


def validate_batch(
    batch: Mapping[str, object],
    expected: Mapping[str, Sequence[int]] | None = None,
) -> int:
    """Check a batch against the contract and return its size B.

    Args:
        batch: modality tensors (B, ...) plus ``label`` (B,) and ``<m>_mask`` (B,).
        expected: optional per-modality sample shape (without B) a model needs,
            e.g. ``{"image": (1, 28, 28)}``; ``-1`` matches any size.

    Raises:
        DataError: empty batch, unknown key, inconsistent batch sizes, wrong shape,
            NaN/Inf values.
    """
    for key in batch:
        _check_key(key)
    names = modality_keys(batch)
    if not names:
        raise DataError(f"batch has no modality (keys: {sorted(batch)})")
    sizes: dict[str, int] = {}
    for name in names:
        value = batch[name]
        _check_tensor(name, value, batched=True)
        assert isinstance(value, Tensor)
        sizes[name] = value.shape[0]
        if expected is not None and name in expected:
            want = tuple(expected[name])
            got = tuple(value.shape[1:])
            if len(want) != len(got) or any(
                w not in (-1, g) for w, g in zip(want, got, strict=False)
            ):
                raise DataError(
                    f"modality {name!r} expected shape (B, {', '.join(map(str, want))}), "
                    f"got {tuple(value.shape)}"
                )
    for key in ("label", *(f"{n}_mask" for n in names)):
        value = batch.get(key)
        if isinstance(value, Tensor):
            sizes[key] = value.shape[0]
    if len(set(sizes.values())) > 1:
        raise DataError(f"batch entries disagree on batch size: {sizes}")
    size = next(iter(sizes.values()))
    if size == 0:
        raise DataError("empty batch: every modality has batch size 0")
    return size


def present(batch: Mapping[str, Tensor], name: str) -> Tensor | None:
    """Which samples carry modality ``name``: (B,) bool, or None if it is absent.

    A modality without a ``<name>_mask`` entry is present in every sample.
    """
    if name not in batch:
        return None
    mask = batch.get(f"{name}_mask")
    if mask is None:
        return torch.ones(batch[name].shape[0], dtype=torch.bool, device=batch[name].device)
    return mask.bool()


def collate(samples: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Stack samples into a batch, tolerating missing modalities.

    A modality absent from some samples is zero-filled there and gets a
    ``<name>_mask`` (B,) bool, True where present. Shapes must agree across the
    samples that do carry the modality.

    Raises:
        DataError: empty list, mismatched shapes, or a key outside the contract.
    """
    if not samples:
        raise DataError("cannot collate an empty list of samples")
    keys: list[str] = []
    for sample in samples:
        for key in sample:
            _check_key(key)
            if key not in keys:
                keys.append(key)
    batch: dict[str, Tensor] = {}
    for key in keys:
        values = [s.get(key) for s in samples]
        reference = next(v for v in values if v is not None)
        reference = torch.as_tensor(reference)
        shapes = {tuple(torch.as_tensor(v).shape) for v in values if v is not None}
        if len(shapes) > 1:
            raise DataError(f"{key!r} has different shapes within one batch: {sorted(shapes)}")
        if all(v is not None for v in values):
            batch[key] = torch.stack([torch.as_tensor(v) for v in values])
            continue
        if key not in MODALITIES:
            raise DataError(f"{key!r} is missing from some samples; only modalities may be missing")
        filler = torch.zeros_like(reference)
        batch[key] = torch.stack([filler if v is None else torch.as_tensor(v) for v in values])
        batch[f"{key}_mask"] = torch.tensor([v is not None for v in values])
    return batch
