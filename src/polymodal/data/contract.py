"""The sample/batch contract every polymodal dataset, model and recipe speaks.

A **sample** is a ``dict[str, Tensor]`` keyed by modality name, plus targets and
optional metadata; every key is registered in :mod:`polymodal.data.specs` with its
layout and dtype rule. A **batch** is the same dict with a leading batch dimension.

:func:`collate` builds batches. A modality missing from some samples is
zero-filled and flagged by ``<name>_mask`` (B,) bool, True where present.
Variable-length sequences (``text_ids``, ``tokens``, and ``audio``/``video``/
``tiles`` when a call declares them) are padded to the batch maximum with their
spec's pad value and flagged by ``<name>_mask`` (B, L) bool, True at real
positions (a sample without the sequence has an all-False row). Every other key
must have the same shape in every sample.

Validation happens at the boundary (dataset, model entry, CLI) and raises a
one-line :class:`~polymodal.errors.DataError` naming the key, the expected layout
and the actual shape, so bad input never surfaces as an obscure error deep in torch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from polymodal.data.specs import (
    MASK_SUFFIX,
    METADATA_KEYS,
    MODALITIES,
    SPACING_LAYOUT,
    SPACING_SUFFIX,
    TARGETS,
    KeySpec,
    ModalitySpec,
    TargetSpec,
    batched_layout,
    dtype_ok,
    register_modality,
    register_target,
)
from polymodal.errors import DataError

__all__ = [
    "METADATA_KEYS",
    "MODALITIES",
    "TARGETS",
    "ModalitySpec",
    "TargetSpec",
    "collate",
    "modality_keys",
    "present",
    "register_modality",
    "register_target",
    "validate_batch",
    "validate_sample",
]

_DTYPE_NAMES = {
    "float": "float",
    "integer": "integer",
    "int64": "int64",
    "bool": "bool",
    "float_or_bool": "float or bool",
}


class _Rule(NamedTuple):
    """How to check one key: its kind, the spec it follows, and its own layout."""

    kind: str  # modality, target, mask or spacing
    base: str  # the key itself, or the key a mask/spacing belongs to
    spec: KeySpec  # the spec of ``base``
    layout: str
    ndims: tuple[int, ...]
    dtype: str
    sizes: tuple[tuple[int, int], ...]


def _rule(key: str, value: object = None) -> _Rule | None:
    """The rule for ``key`` (None for metadata); unknown keys raise."""
    if key in MODALITIES or key in TARGETS:
        spec: KeySpec = MODALITIES[key] if key in MODALITIES else TARGETS[key]
        kind = "modality" if key in MODALITIES else "target"
        return _Rule(kind, key, spec, spec.layout, spec.ndims, spec.dtype, spec.sizes)
    if key in METADATA_KEYS:
        return None
    if key.endswith(MASK_SUFFIX):
        base = key[: -len(MASK_SUFFIX)]
        spec_or_none = MODALITIES.get(base) or TARGETS.get(base)
        if spec_or_none is not None:
            # a presence flag (), or per-position flags (L,) for a sequence
            sequence = spec_or_none.length_axis is not None
            layout, ndims = ("() or (L,)", (0, 1)) if sequence else ("()", (0,))
            return _Rule("mask", base, spec_or_none, layout, ndims, "bool", ())
    if key.endswith(SPACING_SUFFIX):
        base = key[: -len(SPACING_SUFFIX)]
        volume = MODALITIES.get(base)
        if volume is not None and volume.spacing:
            return _Rule("spacing", base, volume, SPACING_LAYOUT, (1,), "float", ((-1, 3),))
    shape = f" (shape {tuple(value.shape)})" if isinstance(value, Tensor) else ""
    raise DataError(
        f"unknown key {key!r}{shape}; known modalities: {', '.join(sorted(MODALITIES))}; "
        f"targets: {', '.join(sorted(TARGETS))}; metadata: {', '.join(sorted(METADATA_KEYS))}; "
        "plus <name>_mask and <volume>_spacing. Register new keys with "
        "polymodal.data.contract.register_modality or register_target."
    )


def _check(key: str, value: object, rule: _Rule, batched: bool, finite: bool = True) -> None:
    """Rank, dtype, required sizes, and (for floats) finiteness of one value."""
    layout = batched_layout(rule.layout) if batched else rule.layout
    if not isinstance(value, Tensor):
        raise DataError(
            f"{rule.kind} {key!r} expected a tensor of shape {layout}, got {type(value).__name__}"
        )
    shape = tuple(value.shape)
    ndims = tuple(n + int(batched) for n in rule.ndims)
    if value.dim() not in ndims:
        raise DataError(
            f"{rule.kind} {key!r} expected shape {layout} "
            f"({' or '.join(map(str, ndims))} dims), got {shape}"
        )
    if not dtype_ok(rule.dtype, value.dtype):  # type: ignore[arg-type]
        raise DataError(
            f"{rule.kind} {key!r} expected shape {layout} of {_DTYPE_NAMES[rule.dtype]}, "
            f"got {str(value.dtype).removeprefix('torch.')} of shape {shape}"
        )
    for axis, size in rule.sizes:
        if shape[axis] != size:
            raise DataError(
                f"{rule.kind} {key!r} expected shape {layout} with size {size} on axis "
                f"{value.dim() + axis}, got {shape}"
            )
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        bad = "NaN" if torch.isnan(value).any() else "Inf"
        raise DataError(
            f"{rule.kind} {key!r} contains {bad} values (shape {shape}); "
            "clean or drop those samples"
        )
    if rule.kind == "spacing" and not (value > 0).all():
        raise DataError(f"spacing {key!r} expected shape {layout}, got {value.tolist()}")


def _check_links(
    entries: Mapping[str, object], rules: Mapping[str, _Rule | None], batched: bool
) -> None:
    """Keys that need another key: ``label_mask`` -> ``label``, spacing and length masks.

    Runs after :func:`_check`, so every ruled entry is a tensor. A length mask
    must also be exactly as long as its sequence.
    """
    where = "batch" if batched else "sample"
    for key, rule in rules.items():
        value = entries[key]
        if rule is None or not isinstance(value, Tensor):
            continue
        # a mask with a length axis, (L,) per sample, belongs to a sequence
        length_mask = rule.kind == "mask" and value.dim() == 1 + int(batched)
        need = rule.base if rule.kind == "spacing" or length_mask else None
        if rule.kind == "target" and isinstance(rule.spec, TargetSpec):
            need = rule.spec.requires
        if need is None:
            continue
        if need not in entries:
            hint = "; unlabelled samples carry a placeholder label" if need == "label" else ""
            raise DataError(
                f"{rule.kind} {key!r} needs {need!r} in the same {where}, "
                f"which has {sorted(entries)}{hint}"
            )
        base = entries[need]
        if length_mask and isinstance(base, Tensor) and rule.spec.length_axis is not None:
            length = base.shape[rule.spec.length_axis]
            want = (base.shape[0], length) if batched else (length,)
            if tuple(value.shape) != want:
                raise DataError(
                    f"mask {key!r} expected shape {want} (the length of {need!r} "
                    f"{tuple(base.shape)}), got {tuple(value.shape)}"
                )


def modality_keys(sample: Mapping[str, object]) -> list[str]:
    """The modality names present in a sample or batch, in insertion order."""
    return [k for k in sample if k in MODALITIES]


def validate_sample(sample: Mapping[str, object]) -> None:
    """Check one sample against the contract.

    Raises:
        DataError: unknown key, no modality at all, wrong rank/dtype/size, NaN or
            Inf, non-positive spacing, or a key without the key it needs.
    """
    rules = {key: _rule(key, value) for key, value in sample.items()}
    if not modality_keys(sample):
        raise DataError(f"sample has no modality (keys: {sorted(sample)})")
    for key, rule in rules.items():
        if rule is not None:
            _check(key, sample[key], rule, batched=False)
    _check_links(sample, rules, batched=False)


def validate_batch(
    batch: Mapping[str, object],
    expected: Mapping[str, Sequence[int]] | None = None,
) -> int:
    """Check a batch against the contract and return its size B.

    Args:
        batch: modality and target tensors (B, ...), ``<name>_mask`` (B,) or
            (B, L), ``<volume>_spacing`` (B, 3), metadata.
        expected: optional per-key sample shape (without B) a model needs,
            e.g. ``{"image": (1, 28, 28)}``; ``-1`` matches any size.

    Returns:
        The batch size B.

    Raises:
        DataError: empty batch, unknown key, inconsistent batch sizes, wrong
            rank/dtype/shape, NaN/Inf values, a key without the key it needs.
    """
    rules = {key: _rule(key, value) for key, value in batch.items()}
    if not modality_keys(batch):
        raise DataError(f"batch has no modality (keys: {sorted(batch)})")
    sizes: dict[str, int] = {}
    for key, rule in rules.items():
        if rule is None:
            continue
        value = batch[key]
        _check(key, value, rule, batched=True)
        assert isinstance(value, Tensor)
        sizes[key] = value.shape[0]
        if expected is not None and key in expected:
            want = tuple(expected[key])
            got = tuple(value.shape[1:])
            if len(want) != len(got) or any(
                w not in (-1, g) for w, g in zip(want, got, strict=False)
            ):
                raise DataError(
                    f"{rule.kind} {key!r} expected shape (B, {', '.join(map(str, want))}), "
                    f"got {tuple(value.shape)}"
                )
    if len(set(sizes.values())) > 1:
        raise DataError(f"batch entries disagree on batch size: {sizes}")
    _check_links(batch, rules, batched=True)
    size = next(iter(sizes.values()))
    if size == 0:
        raise DataError("empty batch: every modality has batch size 0")
    return size


def present(batch: Mapping[str, Tensor], name: str) -> Tensor | None:
    """Which samples carry ``name``: (B,) bool, or None if it is absent.

    A key without a ``<name>_mask`` entry is present in every sample; with a
    (B, L) position mask, a sample is present when any position is real.
    """
    if name not in batch:
        return None
    mask = batch.get(f"{name}{MASK_SUFFIX}")
    if mask is None:
        return torch.ones(batch[name].shape[0], dtype=torch.bool, device=batch[name].device)
    mask = mask.bool()
    return mask.any(dim=-1) if mask.dim() > 1 else mask


def _pad(key: str, spec: KeySpec, values: list[Tensor | None], flags: list[Tensor | None]):
    """Pad sequences along ``spec.length_axis`` to the longest one.

    Args:
        key: the key, for error messages.
        spec: its spec (``length_axis`` and ``pad_value``).
        values: per sample, the sequence (..., L_i, ...) or None where absent.
        flags: per sample, its own ``<key>_mask`` () or (L_i,) bool, or None.

    Returns:
        (B, ..., L, ...) padded values and (B, L) bool, True at real positions.
    """
    axis = spec.length_axis
    assert axis is not None
    shapes = [tuple(v.shape) for v in values if v is not None]
    # every axis but the length axis must agree, so the rest stacks as usual
    rest = {s[: len(s) + axis] + s[len(s) + axis + 1 :] for s in shapes}
    if len({len(s) for s in shapes}) > 1 or len(rest) > 1:
        raise DataError(
            f"{key!r} {spec.layout} may differ only along axis {axis} within one batch, "
            f"got shapes {sorted(set(shapes))}"
        )
    reference = next(v for v in values if v is not None)
    length = max(s[axis] for s in shapes)
    shape = list(reference.shape)
    shape[axis] = length
    out = reference.new_full((len(values), *shape), spec.pad_value)
    real = torch.zeros(len(values), length, dtype=torch.bool)
    for i, (value, flag) in enumerate(zip(values, flags, strict=True)):
        if value is None:
            continue
        n = value.shape[axis]
        out[i].narrow(axis, 0, n).copy_(value)
        real[i, :n] = True if flag is None else flag.bool()
    return out, real


def _fill_value(rule: _Rule | None) -> float | None:
    """What an absent entry of this key becomes, or None if it may not be absent."""
    if rule is None:
        return None
    if rule.kind == "modality":
        return 0.0
    if rule.kind == "spacing":
        return 1.0  # neutral spacing for an absent volume
    if rule.kind == "target" and isinstance(rule.spec, TargetSpec):
        return rule.spec.fill
    return None


def _stack_fixed(key: str, rule: _Rule | None, values: list[Tensor | None]) -> Tensor:
    """Stack values of one shape; absent ones filled where the rule allows it."""
    shapes = {tuple(v.shape) for v in values if v is not None}
    if len(shapes) > 1:
        layout = "" if rule is None else f"; its layout {rule.layout} is fixed-shape"
        if rule is not None and rule.kind == "modality" and rule.spec.length_axis is not None:
            layout += f" unless collate gets variable=({key!r},)"
        raise DataError(f"{key!r} has different shapes within one batch: {sorted(shapes)}{layout}")
    present_values = [v for v in values if v is not None]
    if len(present_values) == len(values):
        return torch.stack(present_values)
    fill = _fill_value(rule)
    if fill is None:
        raise DataError(
            f"{key!r} is missing from some samples; only modalities (and targets with a "
            "fill value, such as label_mask) may be missing"
        )
    filler = torch.full_like(present_values[0], fill)
    return torch.stack([filler if v is None else v for v in values])


def collate(
    samples: Sequence[Mapping[str, object]], variable: Collection[str] = ()
) -> dict[str, Tensor]:
    """Stack samples into a batch, padding sequences and tolerating missing modalities.

    Args:
        samples: contract samples.
        variable: extra keys to pad along their length axis, e.g. ``("audio",)``
            for (F, T) log-mels of different T; ``text_ids`` and ``tokens`` are
            always padded. Use ``functools.partial(collate, variable=...)`` as a
            DataLoader ``collate_fn``.

    Returns:
        The batch: each key stacked (B, ...); padded keys (B, ..., L, ...) with
        ``<name>_mask`` (B, L); a modality absent from some samples zero-filled
        with ``<name>_mask`` (B,); absent spacing filled with ones; absent
        ``label_mask`` filled with True.

    Raises:
        DataError: empty list, unknown key, wrong rank or dtype, mismatched
            shapes of a fixed-shape key, a key missing that may not be, or a key
            without the key it needs.
    """
    if not samples:
        raise DataError("cannot collate an empty list of samples")
    padded = {name for name, spec in {**MODALITIES, **TARGETS}.items() if spec.variable}
    for name in variable:
        spec = MODALITIES.get(name) or TARGETS.get(name)
        if spec is None or spec.length_axis is None:
            layout = "unknown key" if spec is None else f"layout {spec.layout}"
            raise DataError(f"cannot pad {name!r}: its {layout} has no length axis")
        padded.add(name)
    rules: dict[str, _Rule | None] = {}
    for sample in samples:
        for key, value in sample.items():
            if key not in rules:
                rules[key] = _rule(key, value)
    columns = {key: [_as_tensor(s.get(key)) for s in samples] for key in rules}
    for i in range(len(samples)):
        entries = {k: v[i] for k, v in columns.items() if v[i] is not None}
        for key, value in entries.items():
            rule = rules[key]
            if rule is not None:
                _check(key, value, rule, batched=False, finite=False)
        try:
            _check_links(entries, {k: rules[k] for k in entries}, batched=False)
        except DataError as error:
            raise DataError(f"sample {i}: {error}") from None
    batch: dict[str, Tensor] = {}
    for key, rule in rules.items():
        values = columns[key]
        if rule is not None and rule.kind == "mask" and _folded(rule.base, columns, padded):
            continue  # becomes part of the base key's mask below
        if rule is not None and rule.kind == "spacing":
            _check_spacing_complete(key, rule.base, values, columns.get(rule.base))
        mask_key = f"{key}{MASK_SUFFIX}"
        flags = columns.get(mask_key, [None] * len(values))
        if key in padded:
            assert rule is not None
            batch[key], batch[mask_key] = _pad(key, rule.spec, values, flags)
        else:
            batch[key] = _stack_fixed(key, rule, values)
            if _folded(key, columns, padded) and (
                mask_key in columns or any(v is None for v in values)
            ):
                batch[mask_key] = torch.tensor(
                    [
                        v is not None and (f is None or bool(f))
                        for v, f in zip(values, flags, strict=False)
                    ]
                )
    return batch


def _folded(base: str, columns: Mapping[str, list[Tensor | None]], padded: set[str]) -> bool:
    """Whether ``<base>_mask`` merges into the mask collate makes for ``base``.

    Padded keys fold their per-sample position masks into (B, L); modalities
    fold presence flags () into (B,). Any other mask is stacked as it is.
    """
    if base not in columns:
        return False
    if base in padded:
        return True
    flags = columns.get(f"{base}{MASK_SUFFIX}", [])
    return base in MODALITIES and all(f is None or f.dim() == 0 for f in flags)


def _check_spacing_complete(
    key: str, base: str, values: list[Tensor | None], volumes: list[Tensor | None] | None
) -> None:
    """A volume's spacing is optional, but then for every sample of the batch."""
    for i, (value, volume) in enumerate(zip(values, volumes or [None] * len(values), strict=False)):
        if value is None and volume is not None:
            raise DataError(
                f"spacing {key!r} is missing from sample {i}, which carries {base!r}; "
                f"give every {base} volume its spacing or none"
            )


def _as_tensor(value: object) -> Tensor | None:
    return None if value is None else torch.as_tensor(value)
