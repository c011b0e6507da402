"""The runs of the ``av_ssl`` check and what is read off them.

Every run is the packaged recipe ``av_ssl`` plus named overrides, cached under the
fingerprint of the code that trains it. All variants train with the same data,
labelled subset, epochs, steps (one labelled and one unlabelled batch per step,
an epoch being one pass over the unlabelled clips), schedule and optimiser; the
supervised ones are the same task with γ1 = 0 and no terms of their own, so they
see exactly the labelled batches the others do. The best epoch is chosen on
validation accuracy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from polymodal.data.cache import run_folder
from polymodal.methods.av_ssl.localisation import box_iou, map_boxes, random_boxes
from polymodal.train.config import ExperimentConfig, load_config, on_device

VIDEO, AUDIO, BOTH = "{video: {tubelet: 2, patch_size: 16, depth: 2}}", "{audio: {depth: 3}}", ""
OFF = ("task.options.unlabelled_weight=0", "model.options.contrastive_weight=0")

VARIANTS: dict[str, tuple[str, ...]] = {
    "supervised_video": (f"model.modalities={VIDEO}", "model.options.mix=none", *OFF),
    "supervised_audio": (f"model.modalities={AUDIO}", "model.options.mix=none", *OFF),
    "supervised_av": ("model.options.mix=none", *OFF),
    "ssl_video_tube": (
        f"model.modalities={VIDEO}",
        "model.options.mix=tube",
        "model.options.contrastive_weight=0",
    ),
    "ssl_audio": (
        f"model.modalities={AUDIO}",
        "model.options.mix=none",
        "model.options.contrastive_weight=0",
    ),
    "av_ssl_no_mix": ("model.options.mix=none",),
    "av_ssl_box_mix": ("model.options.mix=box",),
    "av_ssl_guided_mix": ("model.options.mix=guided",),
}
"""Method name → overrides of the ``av_ssl`` recipe (whose own setting is the last)."""

SSL_METHODS = tuple(m for m in VARIANTS if not m.startswith("supervised"))
OURS = "av_ssl_guided_mix"
LABELS_PER_CLASS = (1, 5)
FULL_LABEL_REFERENCES = {"video": VIDEO, "audio": AUDIO}


@dataclass(frozen=True)
class Budget:
    """Sizes of one run of the check (full or quick)."""

    data: str
    epochs: int
    seeds: tuple[int, ...]


FULL = Budget(data="{train: 2000, val: 200, test: 300}", epochs=4, seeds=(0, 1, 2))
QUICK = Budget(data="{train: 60, val: 20, test: 30, voices: 20}", epochs=1, seeds=(0,))
CODE = (
    "polymodal.train.recipe",
    "polymodal.methods.av_ssl.model",
    "polymodal.data.synth.av_digits_video",
)


def run_config(
    method: str, per_class: int, seed: int, budget: Budget, device: str = "cpu"
) -> ExperimentConfig:
    """The run of ``method`` (a key of :data:`VARIANTS`) with ``per_class`` labels per class."""
    data = budget.data[:-1] + f", labelled_per_class: {per_class}}}"
    overrides = [
        f"data.options={data}",
        f"trainer.max_epochs={budget.epochs}",
        f"seed={seed}",
        "trainer.progress_bar=false",
        *VARIANTS[method],
    ]
    config = on_device(load_config("av_ssl", overrides), device)
    config.out_dir = str(run_folder("bench/av_ssl", config.to_dict(), code=CODE))
    return config


def full_label_config(modality: str, budget: Budget, device: str = "cpu") -> ExperimentConfig:
    """Supervised classification of one modality on every training label (the data's
    difficulty: neither modality alone should solve it)."""
    overrides = [
        "task.kind=classification",
        "task.options={}",
        f"data.options={budget.data}",
        f"trainer.max_epochs={budget.epochs}",
        "trainer.progress_bar=false",
        f"model.modalities={FULL_LABEL_REFERENCES[modality]}",
        "model.options.mix=none",
        "model.options.contrastive_weight=0",
    ]
    config = on_device(load_config("av_ssl", overrides), device)
    config.out_dir = str(run_folder("bench/av_ssl", config.to_dict(), code=CODE))
    return config


def logged_mean(run_dir: str | Path, name: str) -> float | None:
    """Mean of ``name`` over the logged training steps of a run (its ``metrics.csv``),
    or None when the run never logged it."""
    with (Path(run_dir) / "metrics.csv").open() as rows:
        values = [float(row[name]) for row in csv.DictReader(rows) if row.get(name)]
    return float(np.mean(values)) if values else None


@dataclass
class Localisation:
    """IoU of the sounding digit's box with the box the audio localises, per test clip.

    Attributes:
        model: (N,) mean over frames of the IoU of the localised box.
        random: (N,) the same for a box of the same side at a uniform random place.
        maps: (K, t, h, w) maps of the first K clips, for the plot.
        videos: (K, T, C, S, S) those clips.
        truth: (K, T, 4) their true boxes; ``found``: (K, T, 4) the localised ones.
        labels: (K,) their classes.
    """

    model: np.ndarray
    random: np.ndarray
    maps: torch.Tensor
    videos: torch.Tensor
    truth: torch.Tensor
    found: torch.Tensor
    labels: torch.Tensor


def localisation(run_dir: str | Path, keep: int = 6, seed: int = 0) -> Localisation:
    """Localise the sounding digit in every test clip with a trained AV run's best model."""
    from polymodal.train.recipe import load_trained

    config, model, data = load_trained(run_dir)
    side = int(config.model.options.get("box_side", 12))
    generator = torch.Generator().manual_seed(seed)
    ours, chance, first = [], [], None
    with torch.no_grad():
        for batch in data.test_dataloader():
            frames, size = batch["video"].shape[1], batch["video"].shape[-1]
            maps = model(batch).localisation  # (B, t, h, w)
            found = map_boxes(maps, frames, size, side)
            guess = random_boxes(len(found), frames, size, side, generator)
            ours.append(box_iou(found, batch["boxes"]).mean(dim=1))
            chance.append(box_iou(guess, batch["boxes"]).mean(dim=1))
            if first is None:
                first = (maps, batch["video"], batch["boxes"], found, batch["label"])
    assert first is not None
    maps, videos, truth, found, labels = (t[:keep] for t in first)
    return Localisation(
        torch.cat(ours).numpy(), torch.cat(chance).numpy(), maps, videos, truth, found, labels
    )
