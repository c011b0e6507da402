"""The runs of the ``fratmae`` check: pre-training variants, then few-label fine-tuning.

Every config is a packaged recipe (``fratmae_pretrain``, ``fratmae_segment``,
``fratmae_classify``) plus named overrides, cached under the fingerprint of the
code that trains it. Pre-training sees the training cases without their labels;
fine-tuning sees a stratified share of them with labels (``train_fraction``), and
every initialisation gets the same data, epochs and schedule at a given share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from polymodal.train.config import ExperimentConfig, check_run

PRETRAIN: dict[str, tuple[str, ...]] = {
    "fratmae": (),
    "fratmae_no_text": ("model.options.text_weight=0",),
    "single_mae": ("model.options.cross_attention=false", "model.options.text_weight=0"),
    "single_mae_text": ("model.options.cross_attention=false",),
}
"""Pre-training variants. ``single_mae``: one MAE per modality — with the decoders'
cross-attention off, FratMAE's two halves share nothing but the batches and the
summed loss, so this *is* a PET MAE and a CT MAE trained side by side."""

SCRATCH = "scratch"
FRACTIONS = (0.01, 0.1, 1.0)
TASKS = ("segment", "classify")


@dataclass(frozen=True)
class Budget:
    """Sizes of one run of the check (full or quick).

    Lesions are twice the phantoms' default radius (30–65 mm, 2–4 voxels on the
    24³ grid): at the default (1–2 voxels, blurred by the PET resolution) no model,
    pre-trained or not, learned to segment them (Dice 0.00 after 30 epochs with
    every label), so the check measured a floor.
    """

    data: str
    pretrain_epochs: int
    finetune_epochs: dict[float, int]
    seeds: tuple[int, ...]
    validations: int = 5
    """Validations per fine-tuning run, evenly spaced, the last after the last epoch:
    at 1 % of the labels, validating every epoch cost five times the training."""

    def val_every(self, fraction: float) -> int:
        """Epochs between validations of a fine-tuning run on ``fraction`` of the labels."""
        return max(1, self.finetune_epochs[fraction] // self.validations)


FULL = Budget(
    data="{train: 600, val: 80, test: 200, size: 24, lesion_scale: 2.0}",
    pretrain_epochs=10,
    finetune_epochs={0.01: 30, 0.1: 20, 1.0: 6},
    seeds=(0, 1, 2),
)
QUICK = Budget(
    data="{train: 48, val: 16, test: 24, size: 16, lesion_scale: 2.0}",
    pretrain_epochs=1,
    finetune_epochs={0.01: 2, 0.1: 2, 1.0: 1},
    seeds=(0,),
)
CODE = (
    "polymodal.train.recipe",
    "polymodal.methods.fratmae.model",
    "polymodal.modules.segmenter",
    "polymodal.modules.classifier",
    "polymodal.data.synth.petct",
)


def pretrain_config(variant: str, budget: Budget, device: str = "cpu") -> ExperimentConfig:
    """The pre-training run of ``variant`` (a key of :data:`PRETRAIN`)."""
    overrides = [
        f"data.options={budget.data}",
        f"trainer.max_epochs={budget.pretrain_epochs}",
        *PRETRAIN[variant],
    ]
    return check_run("fratmae_pretrain", overrides, device, "bench/fratmae/pretrain", CODE)


def finetune_config(
    task: str,
    init: str,
    fraction: float,
    seed: int,
    budget: Budget,
    device: str = "cpu",
    linear_probe: bool = False,
) -> ExperimentConfig:
    """A fine-tuning run: ``task`` (``segment`` or ``classify``) from ``init`` (a
    pre-training variant or :data:`SCRATCH`) on ``fraction`` of the labels.

    ``linear_probe`` freezes both encoders (the head and, for classification, the
    fusion layer train)."""
    data = budget.data[:-1] + f", train_fraction: {fraction}}}"
    overrides = [
        f"data.options={data}",
        f"trainer.max_epochs={budget.finetune_epochs[fraction]}",
        f"trainer.val_every_n_epochs={budget.val_every(fraction)}",
        f"seed={seed}",
    ]
    if init != SCRATCH:
        overrides.append(f"model.init_from={pretrain_config(init, budget, device).out_dir}")
    if linear_probe:
        overrides.append("model.freeze=[encoders.*]")
    return check_run(f"fratmae_{task}", overrides, device, f"bench/fratmae/{task}", CODE)


def dice_per_case(run_dir: str | Path, threshold: float = 0.5) -> np.ndarray:
    """(N,) Dice of a segmentation run's best model on every test case, in test order.

    A case where neither prediction nor truth has a lesion voxel scores 1.
    """
    from polymodal.train.recipe import load_trained

    config, model, data = load_trained(run_dir)
    device = "cuda" if config.trainer.accelerator in ("gpu", "cuda") else "cpu"
    model.to(device)
    scores = []
    with torch.no_grad():
        for batch in data.test_dataloader():
            batch = {k: v.to(device) for k, v in batch.items()}
            predicted = model(batch).heatmap.sigmoid() > threshold  # (B, D, H, W)
            truth = batch["heatmap"] > 0.5
            overlap = (predicted & truth).flatten(1).sum(dim=1).float()
            sizes = (predicted.flatten(1).sum(dim=1) + truth.flatten(1).sum(dim=1)).float()
            dice = torch.where(sizes > 0, 2 * overlap / sizes.clamp_min(1), torch.ones_like(sizes))
            scores.append(dice.cpu())
    return torch.cat(scores).numpy()


def per_case(task: str, run_dir: str | Path) -> np.ndarray:
    """Per-test-case scores of a finished run: Dice (segment) or 1/0 correct (classify)."""
    if task == "segment":
        return dice_per_case(run_dir)
    from polymodal.train.recipe import read_run

    result = read_run(run_dir)
    assert result is not None and result.predictions is not None
    return result.predictions.correct()


def seeds_of(values: Sequence[np.ndarray]) -> list[float]:
    """The mean of each seed's per-case scores."""
    return [float(np.mean(v)) for v in values]
