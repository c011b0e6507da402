"""Modality contribution by occlusion (arXiv 2503.01904), for any model of a batch dict.

For every sample k the model's output p₀ (class probabilities, or logits) is
compared with its output when one unit l of modality i is occluded (replaced by
the sample's mean, zero or a constant):

    d_{i,l}^k = 1ᵀ |p₀^k − p_{i,l}^k|        (summed over the outputs)
    d_i^k     = Σ_l d_{i,l}^k

The **pooled** contribution averages over samples first,
``m_i = mean_k d_i^k / Σ_j mean_k d_j^k``; the **per-sample** variant normalises
each sample first, ``m_i = mean_k (d_i^k / Σ_j d_j^k)`` (samples where no
occlusion changes anything are left out). Both sum to 1 over the modalities. A
unit whose occlusion changes the predicted class is a **decision flip**.

Occluded copies of many (sample, unit) pairs go through the model together, in
batches of ``batch_size``; the model sees each copy as an ordinary sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from polymodal.analysis.contribution.units import FillValue, Units
from polymodal.errors import ConfigError, DataError

Output = Literal["probs", "logits"]


@dataclass
class ContributionResult:
    """Per-sample, per-unit occlusion effects and the contributions derived from them.

    Attributes:
        scores: ``{modality: (K, U)}`` d_{i,l}^k, zero for units absent in a sample.
        flips: ``{modality: (K, U)}`` bool, occluding the unit changed the argmax.
        valid: ``{modality: (K, U)}`` bool, the unit exists in the sample.
        grids: ``{modality: grid}`` layout of the units (e.g. (7, 7) patches).
        unit_labels: ``{modality: [name per unit]}``.
        predictions: (K,) the unoccluded predicted class.
    """

    scores: dict[str, Tensor]
    flips: dict[str, Tensor]
    valid: dict[str, Tensor]
    grids: dict[str, tuple[int, ...]]
    unit_labels: dict[str, list[str]]
    predictions: Tensor

    @property
    def modalities(self) -> list[str]:
        return list(self.scores)

    def per_sample(self) -> Tensor:
        """(K, M) d_i^k: each sample's total occlusion effect per modality."""
        return torch.stack([self.scores[m].sum(dim=1) for m in self.modalities], dim=1)

    @property
    def m(self) -> dict[str, float]:
        """Pooled contribution m_i (sums to 1; all zero when nothing had any effect)."""
        totals = self.per_sample().mean(dim=0)  # (M,)
        share = totals / totals.sum() if totals.sum() > 0 else torch.zeros_like(totals)
        return {name: float(v) for name, v in zip(self.modalities, share, strict=True)}

    @property
    def m_per_sample(self) -> dict[str, float]:
        """Per-sample-normalised contribution (mean over samples of each sample's shares)."""
        d = self.per_sample()
        total = d.sum(dim=1, keepdim=True)
        keep = total[:, 0] > 0
        share = (d[keep] / total[keep]).mean(dim=0) if keep.any() else torch.zeros(d.shape[1])
        return {name: float(v) for name, v in zip(self.modalities, share, strict=True)}

    def importance(self, name: str) -> Tensor:
        """(U,) mean d_{i,l} of each unit over the samples in which it exists."""
        counts = self.valid[name].sum(dim=0).clamp(min=1)
        return self.scores[name].sum(dim=0) / counts

    def importance_map(self, name: str) -> Tensor:
        """:meth:`importance` laid out on the unit grid, e.g. (7, 7) for patches."""
        return self.importance(name).view(self.grids[name])

    def flip_counts(self) -> dict[str, float]:
        """Mean number of decision-flipping units per sample, per modality."""
        return {m: float(f.sum(dim=1).float().mean()) for m, f in self.flips.items()}

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary (contributions, flips, unit importances)."""
        return {
            "samples": int(self.predictions.shape[0]),
            "m": self.m,
            "m_per_sample": self.m_per_sample,
            "flips_per_sample": self.flip_counts(),
            "flips_total": {m: int(f.sum()) for m, f in self.flips.items()},
            "units": {m: int(s.shape[1]) for m, s in self.scores.items()},
            "importance": {
                m: dict(zip(self.unit_labels[m], self.importance(m).tolist(), strict=True))
                for m in self.modalities
            },
        }


def _outputs(model: Callable[..., Any], batch: Mapping[str, Tensor], output: Output) -> Tensor:
    """Model outputs (B, C): probabilities (softmax of the logits) or logits."""
    out = model(batch)
    logits = out if isinstance(out, Tensor) else out.logits
    logits = logits.float()
    if logits.dim() == 1:
        logits = logits[:, None]
    return logits.softmax(dim=-1) if output == "probs" else logits


def _batched(
    model: Callable[..., Any], batch: Mapping[str, Tensor], output: Output, batch_size: int
) -> Tensor:
    size = next(iter(batch.values())).shape[0]
    parts = []
    for start in range(0, size, batch_size):
        part = {k: v[start : start + batch_size] for k, v in batch.items()}
        parts.append(_outputs(model, part, output))
    return torch.cat(parts)


def _as_batches(data: Mapping[str, Tensor] | Iterable[Mapping[str, Tensor]]) -> Iterable[Any]:
    if isinstance(data, Mapping):
        return [data]
    return data


def _check_finite(batch: Mapping[str, Tensor], names: Iterable[str], offset: int) -> None:
    """Raise for NaN/Inf in a compared modality: a NaN output difference makes every
    sum it enters NaN, and the pooled m_i then comes out as 0 without a word."""
    for name in names:
        x = batch[name]
        if not x.is_floating_point():
            continue
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)  # (K,)
        if bool(bad.any()):
            first = offset + int(bad.nonzero()[0])
            raise DataError(
                f"modality {name!r} contains NaN or Inf values (first in sample {first}, "
                f"{int(bad.sum())} such samples in this batch); clean or drop those samples "
                "before measuring contributions"
            )


def _measure_batch(
    model: Callable[..., Any],
    batch: dict[str, Tensor],
    units: Mapping[str, Units],
    masks: Mapping[str, Tensor],
    fill: Mapping[str, FillValue],
    output: Output,
    batch_size: int,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor], Tensor]:
    """Scores, flips and validity (K, U) per modality, and predictions (K,), for one batch."""
    base = _batched(model, batch, output, batch_size)  # (K, C)
    predicted = base.argmax(dim=-1)
    K = base.shape[0]
    scores, flips, valid = {}, {}, {}
    for name, spec in units.items():
        x = batch[name]
        unit_masks = masks[name].to(x.device)  # (U, *shape)
        exists = spec.valid(x, unit_masks)  # (K, U)
        value = spec.fill(x, fill[name], exists)  # (K,)
        score = torch.zeros(K, unit_masks.shape[0])
        flip = torch.zeros(K, unit_masks.shape[0], dtype=torch.bool)
        pairs = exists.nonzero()  # (P, 2): sample, unit
        for start in range(0, pairs.shape[0], batch_size):
            sample, unit = pairs[start : start + batch_size].unbind(dim=1)
            copies = {k: v[sample] for k, v in batch.items()}  # (P', ...)
            fill_value = value[sample].view(-1, *([1] * (x.dim() - 1)))
            copies[name] = torch.where(unit_masks[unit], fill_value.to(x.dtype), x[sample])
            out = _outputs(model, copies, output)  # (P', C)
            score[sample, unit] = (out - base[sample]).abs().sum(dim=-1).cpu()
            flip[sample, unit] = (out.argmax(dim=-1) != predicted[sample]).cpu()
        scores[name], flips[name], valid[name] = score, flip, exists.cpu()
    return scores, flips, valid, predicted.cpu()


def modality_contribution(
    model: Callable[..., Any],
    data: Mapping[str, Tensor] | Iterable[Mapping[str, Tensor]],
    units: Mapping[str, Units],
    fill: FillValue | Mapping[str, FillValue] = "mean",
    output: Output = "probs",
    batch_size: int = 512,
    progress: bool = False,
) -> ContributionResult:
    """Measure how much each modality contributes to a model's decisions.

    Args:
        model: called as ``model(batch)`` on a batch dict; returns logits (B, C) or
            an object with ``.logits``. An ``nn.Module`` is put in eval mode.
        data: one batch dict (modalities (K, ...), plus anything else the model
            needs) or an iterable of such batches (e.g. a DataLoader).
        units: ``{modality: unit spec}``, the modalities to compare and how to cut
            them (see :mod:`~polymodal.analysis.contribution.units`).
        fill: the occlusion value, one for all modalities or one per modality.
        output: compare softmax ``"probs"`` (default) or raw ``"logits"``.
        batch_size: occluded copies per forward pass.
        progress: show a progress bar over the batches of ``data``.

    Returns:
        :class:`ContributionResult` over all samples of ``data``.

    Raises:
        ConfigError: no units.
        DataError: a modality missing from the data or holding NaN/Inf values, or no data.
    """
    from tqdm.auto import tqdm

    if not units:
        raise ConfigError("modality_contribution needs units for at least one modality")
    fills = {m: fill[m] if isinstance(fill, Mapping) else fill for m in units}
    if isinstance(model, nn.Module):
        model.eval()
    parts: list[tuple[Any, ...]] = []
    masks: dict[str, Tensor] = {}
    grids: dict[str, tuple[int, ...]] = {}
    labels: dict[str, list[str]] = {}
    seen = 0  # samples measured so far, to name a bad one by its index in the data
    with torch.inference_mode():
        for batch in tqdm(_as_batches(data), desc="occlusion", disable=not progress):
            batch = dict(batch)
            for name, spec in units.items():
                if name not in batch:
                    raise DataError(f"modality {name!r} is not in the data (keys {sorted(batch)})")
                if name not in masks:
                    shape = tuple(batch[name].shape[1:])
                    masks[name] = spec.masks(shape)
                    grids[name] = spec.grid(shape)
                    labels[name] = spec.labels(shape)
            _check_finite(batch, units, seen)
            parts.append(_measure_batch(model, batch, units, masks, fills, output, batch_size))
            seen += parts[-1][3].shape[0]
    if not parts:
        raise DataError("modality_contribution got no data")
    return ContributionResult(
        scores={m: torch.cat([p[0][m] for p in parts]) for m in units},
        flips={m: torch.cat([p[1][m] for p in parts]) for m in units},
        valid={m: torch.cat([p[2][m] for p in parts]) for m in units},
        grids=grids,
        unit_labels=labels,
        predictions=torch.cat([p[3] for p in parts]),
    )
