"""CTPA phantoms: contrast-enhanced chest CT volumes with findings and radiology reports.

Each case is a chest on a (D, H, W) grid (default 32³ at 12.5 mm: 400 mm each way;
D head→feet, H front→back, W right→left) in Hounsfield units: body 40, lungs
−850, heart 45 with a right ventricle, spine 700, an air-filled trachea, and
contrast-filled pulmonary arteries at 300 HU — the trunk, a lobar artery into
each lung and segmental branches in the lower lobes. Each of the 16 findings of
:data:`~polymodal.data.synth.ctpa_reports.FINDINGS` is drawn with its own
prevalence (right-ventricular enlargement more often with central emboli) and
drawn with its own signature:

- emboli: a filling defect (40 HU) inside the artery they name;
- right-ventricular enlargement, cardiomegaly: the ventricle or the heart grows;
- pericardial effusion: a 10 HU rim around the heart;
- pleural effusion: 15 HU fluid in the back of the lung base of its side;
- consolidation: a 30 HU blob in the lower lobe of its side;
- atelectasis: a thin 0 HU band at a lung base;
- nodule: a 50 HU sphere somewhere in a lung;
- emphysema: upper-lobe lung at −960 HU instead of −850;
- lymphadenopathy: an enlarged 45 HU node beside the trachea.

Noise σ 15 HU after a partial-volume blur. Samples carry ``ct`` (HU / 1000 in
[−1, 1]), ``ct_spacing``, ``labels`` (16,) multi-hot, and ``tokens`` the report
(:func:`~polymodal.data.synth.ctpa_reports.write_report`) as word ids of
:data:`VOCAB` between BOS and EOS; :func:`decode` turns ids back into text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import binary_dilation, gaussian_filter
from torch import Tensor

from polymodal.data.dataset import TensorDictDataset, build_splits, padded_rows
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth import ctpa_reports as reports
from polymodal.data.synth.petct import CT_SCALE, ellipsoid, unit_grid
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test")
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)


def _words(text: str) -> list[str]:
    """Lower-case words and punctuation marks of a report, in order."""
    return re.findall(r"[a-z]+|[.,:;]", text.lower())


def _vocabulary() -> tuple[str, ...]:
    texts = [
        *(r.upper() + ":" for r in reports.REGIONS),
        *(s for group in reports._POSITIVE.values() for s in group),
        *reports._UNCERTAIN.values(),
        *(s for group in reports._NEGATIVE.values() for s in group),
        *reports._ABSENT.values(),
        "No consolidation, but",
    ]
    return (*SPECIALS, *sorted({w for t in texts for w in _words(t)}))


VOCAB = _vocabulary()
"""Word vocabulary of every report sentence; ids 0–3 are pad, BOS, EOS, unknown."""
_INDEX = {w: i for i, w in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    """Word ids of a report, BOS and EOS around it (unknown words -> ``<unk>``)."""
    return [BOS, *(_INDEX.get(w, UNK) for w in _words(text)), EOS]


def decode(ids: Tensor | list[int]) -> str:
    """Report text of word ids (special ids and -100 padding left out)."""
    words = [VOCAB[int(i)] for i in ids if 0 <= int(i) < len(VOCAB) and int(i) >= len(SPECIALS)]
    return re.sub(r" ([.,;:])", r"\1", " ".join(words))


@dataclass(frozen=True)
class CtpaConfig:
    """Everything a build depends on (the cache key)."""

    seed: int = 0
    train: int = 1200
    val: int = 150
    test: int = 300
    size: int = 32

    def count(self, split: str) -> int:
        return int(getattr(self, split))


def draw_labels(rng: np.random.Generator) -> np.ndarray:
    """(16,) findings of one case: independent by prevalence, except that right-
    ventricular enlargement is four times as likely with a main or lobar embolus."""
    labels = (rng.random(len(reports.FINDINGS)) < reports.PREVALENCE).astype(np.float32)
    if labels[:3].any() and rng.random() < 0.4:
        labels[5] = 1.0
    return labels


def _tube(grid, start, end, radius: float) -> np.ndarray:
    """Voxels within ``radius`` (in [0, 1] units) of the segment start→end."""
    z, y, x = grid
    p = np.stack([z, y, x], axis=-1)
    a, b = np.array(start, dtype=np.float32), np.array(end, dtype=np.float32)
    t = np.clip(((p - a) @ (b - a)) / float((b - a) @ (b - a)), 0, 1)
    closest = a + t[..., None] * (b - a)
    return np.linalg.norm(p - closest, axis=-1) <= radius


def draw_volume(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size³) float32 HU volume of one case with the signatures of its findings."""
    grid = unit_grid(size)
    z, y, x = grid
    j = lambda s=0.02: float(rng.normal(0, s))  # noqa: E731
    ct = np.full((size,) * 3, -1000.0, dtype=np.float32)
    body = (((y - 0.5) / 0.34) ** 2 + ((x - 0.5) / 0.45) ** 2) <= 1.0
    ct[body] = 40.0
    lungs = {
        side: ellipsoid(grid, (0.5 + j(), 0.5, cx), (0.4, 0.26, 0.16)) & body
        for side, cx in (("right", 0.29), ("left", 0.71))
    }
    emphysema = labels[14] > 0
    for lung in lungs.values():
        ct[lung] = -850.0
        if emphysema:
            ct[lung & (z < 0.45)] = -960.0
    heart_scale = 1.3 if labels[6] else 1.0
    heart = ellipsoid(grid, (0.62, 0.36, 0.55), tuple(r * heart_scale for r in (0.14, 0.14, 0.14)))
    rv_scale = 1.45 if labels[5] else 1.0
    rv = ellipsoid(grid, (0.62, 0.3, 0.45), tuple(r * rv_scale for r in (0.09, 0.08, 0.08)))
    if labels[7]:
        ct[binary_dilation(heart | rv, iterations=max(1, size // 32)) & ~(heart | rv)] = 10.0
    ct[heart] = 45.0
    ct[rv] = 60.0
    ct[(((y - 0.78) / 0.06) ** 2 + ((x - 0.5) / 0.06) ** 2) <= 1.0] = 700.0  # spine
    ct[(((y - 0.45) / 0.04) ** 2 + ((x - 0.5) / 0.04) ** 2 <= 1.0) & (z < 0.35)] = -1000.0
    arteries = {
        "main": _tube(grid, (0.55, 0.3, 0.48), (0.38, 0.42, 0.5), 0.045),
        "lobar_right": _tube(grid, (0.38, 0.42, 0.5), (0.45, 0.5, 0.25), 0.035),
        "lobar_left": _tube(grid, (0.38, 0.42, 0.5), (0.45, 0.5, 0.75), 0.035),
        "segmental_right": _tube(grid, (0.45, 0.5, 0.27), (0.72, 0.6, 0.3), 0.03),
        "segmental_left": _tube(grid, (0.45, 0.5, 0.73), (0.72, 0.6, 0.7), 0.03),
    }
    for vessel in arteries.values():
        ct[vessel] = 300.0
    for index, name in enumerate(
        ("main", "lobar_left", "lobar_right", "segmental_left", "segmental_right")
    ):
        if labels[index]:
            vessel = np.argwhere(arteries[name])
            centre = (vessel[int(rng.integers(len(vessel)))] + 0.5) / size
            defect = ellipsoid(grid, tuple(centre), (0.05,) * 3) & arteries[name]
            ct[defect] = 40.0
    for index, side in ((8, "left"), (9, "right")):
        if labels[index]:
            ct[lungs[side] & (y > 0.6 + j(0.03)) & (z > 0.55)] = 15.0
    for index, cx in ((10, 0.71), (11, 0.29)):
        if labels[index]:
            blob = ellipsoid(grid, (0.72 + j(), 0.5 + j(), cx + j()), (0.08, 0.07, 0.06))
            ct[blob & lungs["left" if cx > 0.5 else "right"]] = 30.0
    if labels[12]:
        side = lungs["left" if rng.random() < 0.5 else "right"]
        ct[side & (np.abs(z - 0.84) < 0.025)] = 0.0
    if labels[13]:
        inside = np.argwhere(lungs["left"] | lungs["right"])
        centre = (inside[int(rng.integers(len(inside)))] + 0.5) / size
        ct[ellipsoid(grid, tuple(centre), (0.035,) * 3)] = 50.0
    if labels[15]:
        ct[ellipsoid(grid, (0.3, 0.42, 0.58), (0.05, 0.05, 0.05))] = 45.0
    ct = gaussian_filter(ct, 0.6) + rng.normal(0, 15, ct.shape).astype(np.float32)
    return ct.astype(np.float32)


def _split(config: CtpaConfig, split: str) -> dict[str, Tensor]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split), 31])
    labels, volumes, texts = [], [], []
    for _ in range(config.count(split)):
        case = draw_labels(rng)
        labels.append(case)
        volumes.append(draw_volume(case, config.size, rng))
        texts.append(encode(reports.write_report(case, rng)))
    ids = padded_rows(texts, -100)
    spacing = torch.full((len(texts), 3), 400.0 / config.size)
    return {
        "ct": (torch.from_numpy(np.stack(volumes)) / CT_SCALE).clamp(-1, 1).to(torch.float16),
        "ct_spacing": spacing,
        "labels": torch.from_numpy(np.stack(labels)),
        "tokens": ids,
    }


def build_ctpa(**options: Any) -> Path:
    """Build (or find in the cache) every split; returns the cache folder."""
    check_option_types(CtpaConfig, options, "ctpa_phantoms")
    config = CtpaConfig(**options)
    if config.size < 16 or config.size % 8:
        raise ConfigError(
            f"ctpa_phantoms size must be a multiple of 8 and >= 16, got {config.size}"
        )
    if min(config.train, config.val, config.test) < 1:
        raise ConfigError("ctpa_phantoms needs at least one case per split")

    make = lambda split: _split(config, split)  # noqa: E731
    return build_splits("ctpa_phantoms", VERSION, config, make, SPLITS, code=(__name__,))


class CtpaPhantoms(TensorDictDataset):
    """One split; ``vocab``, ``bos`` and ``eos`` drive report decoders, ``findings``
    names the ``labels`` columns."""

    vocab = VOCAB
    bos, eos = BOS, EOS
    findings = reports.FINDINGS
    padded = {"tokens": -100}


@register_dataset("ctpa_phantoms")
def load_ctpa(split: str, **options: Any) -> CtpaPhantoms:
    """The ``split`` of the CTPA phantoms built with ``options`` (see :class:`CtpaConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"CTPA phantoms have splits {SPLITS}, not {split!r}")
    folder = build_ctpa(**options)
    return CtpaPhantoms(TensorDictDataset.load(folder / f"{split}.safetensors").tensors)
