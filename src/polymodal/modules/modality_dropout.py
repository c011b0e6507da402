"""Modality dropout: hide whole modalities of some training samples.

A fusion head trained only on complete samples has never seen its missing-modality
path, so at test a sample with one modality missing can score far below the
unimodal model of the modality that remains. Modality dropout trains that path: in
each training batch, modality ``m`` of each sample is hidden with probability
``rates[m]`` by setting ``<m>_mask`` False, the same flag a really missing modality
carries (DESIGN §3), so the head's own missing-modality code is what learns.

**Never all dropped.** A sample keeps at least one of the modalities it carries:
a sample whose every present modality was drawn for dropping is drawn again (all
of its modalities, with the same rates) until one stays. This is rejection
sampling, so a kept sample's drops follow the rates conditioned on "at least one
stays"; it is why a rate must be below 1. A sample that already carries a single
modality never loses it; a modality already missing stays missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from polymodal.data.contract import present
from polymodal.errors import ConfigError


def check_rates(rates: Mapping[str, float], modalities: Iterable[str]) -> None:
    """Reject rates no run can use, naming the key.

    Args:
        rates: ``{modality: probability of dropping it}``.
        modalities: the modalities the model has encoders for.

    Raises:
        ConfigError: a modality the model does not have, or a rate outside [0, 1).
    """
    known = list(modalities)
    for name, rate in rates.items():
        if name not in known:
            raise ConfigError(
                f"model.modality_dropout.{name}: the model has no modality {name!r} "
                f"(it has {', '.join(known)})"
            )
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            # 1 would leave nothing to resample towards
            raise ConfigError(
                f"model.modality_dropout.{name} must lie in [0, 1), got {rate!r}; set e.g. 0.3"
            )


def drop_modalities(
    batch: Mapping[str, Tensor], rates: Mapping[str, float], generator: torch.Generator
) -> dict[str, Tensor]:
    """A copy of ``batch`` with some modalities of some samples flagged missing.

    Args:
        batch: modality tensors (B, ...) and optional ``<m>_mask`` (B,) bool.
        rates: ``{modality: drop probability in [0, 1)}`` over the model's modalities;
            a modality with rate 0 is never dropped but counts as one that stays, and
            one absent from the batch is left alone. Other batch keys are ignored.
        generator: a CPU generator; the draws are one (B, M) uniform tensor per round
            (M = modalities with a positive rate that are in the batch, in ``rates``
            order), so a fixed seed gives fixed drops.

    Returns:
        A shallow copy of ``batch`` whose ``<m>_mask`` (B,) bool is False where ``m``
        was missing or was dropped; tensors are shared, not copied.
    """
    out = dict(batch)
    names = [m for m, rate in rates.items() if rate > 0 and m in batch]
    if not names:
        return out
    others = [m for m in rates if m not in names and m in batch]
    # (B, M) presence of the droppable modalities; rate-0 ones count as "one that
    # stays" when a sample carries them.
    here = torch.stack([present(batch, m).cpu() for m in names], dim=1)  # type: ignore[union-attr]
    kept_elsewhere = torch.zeros(here.shape[0], dtype=torch.bool)
    for m in others:
        kept_elsewhere |= present(batch, m).cpu()  # type: ignore[union-attr]
    p = torch.tensor([float(rates[m]) for m in names])  # (M,)
    drop = torch.zeros_like(here)
    redraw = torch.ones(here.shape[0], dtype=torch.bool)
    while bool(redraw.any()):
        u = torch.rand(here.shape, generator=generator)  # (B, M)
        drop = torch.where(redraw[:, None], (u < p) & here, drop)
        stays = (here & ~drop).any(dim=1) | kept_elsewhere
        # A sample with nothing present cannot be helped; leave it to the model's check.
        redraw = ~stays & here.any(dim=1)
    for j, m in enumerate(names):
        mask = here[:, j] & ~drop[:, j]
        out[f"{m}_mask"] = mask.to(batch[m].device)
    return out
