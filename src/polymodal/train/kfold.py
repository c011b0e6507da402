"""Patient-level, stratified k-fold cross-validation (command: ``polymodal cv CONFIG --folds 5``).

The dataset a config names is **pooled** (its ``train``, ``val`` and ``test``
splits together) and split into k folds, stratified by label and grouped by
patient: samples that carry the same ``id`` are one patient and always land in
the same fold (a sample without ``id`` is its own patient). For fold i the other
folds are the training pool; a stratified, patient-level validation part
(``val_fraction``) is carved out of it for checkpoint selection and early
stopping, so the held-out fold is never looked at before testing. Training uses
the standard recipe's pieces (:class:`ClassificationModule`, the Lightning trainer
with safetensors checkpoints, early stopping and CSV logs).

Metrics on each held-out fold (torchmetrics): accuracy, macro-F1, Matthews
correlation (MCC) and macro precision-recall AUC (average precision); the summary
is their mean and sample standard deviation over the folds.

The model comes from ``model.options.builder`` (``"module:function"``, called like
:func:`~polymodal.modules.classifier.build_classifier`; that is the default), so a
method's own model trains by naming its builder in the YAML file.

Output folder (``out_dir``)::

    config.yaml      the resolved config
    folds.json       the fold of every pooled sample and its patient id
    fold_<i>/        a run folder per fold: config.yaml, model.safetensors,
                     metrics.json, fold.json (its sample indices), checkpoints/, metrics.csv,
                     test_predictions.safetensors (held-out logits, labels, ids, indices)
    cv.json          per-fold metrics, their mean and std
    oof_predictions.safetensors
                     pooled out-of-fold predictions: every pooled sample once, in
                     pooled order, predicted by the fold that held it out
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.errors import ConfigError
from polymodal.train.config import ExperimentConfig, save_config
from polymodal.train.predictions import FILE as PREDICTIONS
from polymodal.train.predictions import Predictions

if TYPE_CHECKING:  # torch and Lightning load on first use, so `polymodal --help` stays fast
    from torch import Tensor, nn
    from torch.utils.data import Dataset

METRICS = ("accuracy", "macro_f1", "mcc", "pr_auc")
OUT_OF_FOLD = "oof_predictions.safetensors"


# ----------------------------------------------------------------------------- folds


@dataclass
class Pool:
    """Every sample of a dataset's splits, with what the folds are made from.

    Attributes:
        dataset: the pooled samples (train, val and test splits in that order).
        labels: (S,) class of every sample.
        groups: (S,) patient id of every sample.
        num_classes: number of classes C.
    """

    dataset: Dataset[Any]
    labels: np.ndarray
    groups: np.ndarray
    num_classes: int


def _labels_and_ids(dataset: Dataset[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and patient ids of a dataset, read from its tensors when it has them."""
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, dict) and "label" in tensors:
        ids = tensors.get("id")
        return tensors["label"].numpy(), None if ids is None else ids.numpy()
    samples = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
    labels = np.array([int(s["label"]) for s in samples])
    if all("id" in s for s in samples):
        return labels, np.array([int(s["id"]) for s in samples])
    return labels, None


def pool_dataset(
    config: ExperimentConfig, splits: Sequence[str] = ("train", "val", "test")
) -> Pool:
    """Pool the splits of the dataset ``config.data`` names.

    Raises:
        ConfigError: unknown dataset or options (from the registry).
    """
    from torch.utils.data import ConcatDataset

    from polymodal.data.registry import build_dataset

    parts = [build_dataset(config.data.name, s, **config.data.options) for s in splits]
    labels, groups = [], []
    offset = 0
    for part in parts:
        y, ids = _labels_and_ids(part)
        labels.append(y)
        # Without patient ids every sample is its own patient (ids offset past the ids seen).
        groups.append(ids if ids is not None else offset + np.arange(len(y)) + 10**12)
        offset += len(y)
    label_array = np.concatenate(labels).astype(np.int64)
    known = getattr(parts[0], "num_classes", None)
    num_classes = int(config.model.options.get("num_classes") or known or label_array.max() + 1)
    return Pool(ConcatDataset(parts), label_array, np.concatenate(groups), num_classes)


def patient_folds(
    labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
) -> list[np.ndarray]:
    """Stratified, patient-level folds.

    Args:
        labels: (S,) class of every sample.
        groups: (S,) patient id of every sample; a patient's samples share a fold.
        folds: number of folds k (>= 2).
        seed: shuffling seed.

    Returns:
        k sorted index arrays, the held-out samples of each fold; together they
        partition ``range(S)``.

    Raises:
        ConfigError: fewer than 2 folds, or a class with fewer patients than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    for label in np.unique(labels):
        patients = len(np.unique(groups[labels == label]))
        if patients < folds:
            raise ConfigError(
                f"class {int(label)} has {patients} patients, fewer than the {folds} folds; "
                "use fewer folds or more data"
            )
    dummy = np.zeros(len(labels))
    if len(np.unique(groups)) == len(groups):  # one sample per patient: the plain (fast) splitter
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(dummy, labels)
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(dummy, labels, groups)
    return [np.sort(test) for _, test in splits]


def carve_validation(
    pool: Pool, train: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, val), stratified and by patient.

    The validation part is one fold of ``round(1 / fraction)`` patient-level
    stratified folds of ``train`` (fewer folds, so a larger part, when a class has
    fewer patients than that).
    """
    if not 0.0 < fraction < 0.5:
        raise ConfigError(f"val_fraction must be in (0, 0.5), got {fraction}")
    labels, groups = pool.labels[train], pool.groups[train]
    smallest = min(len(np.unique(groups[labels == y])) for y in np.unique(labels))
    parts = patient_folds(labels, groups, max(2, min(round(1 / fraction), smallest)), seed)
    val = np.zeros(len(train), dtype=bool)
    val[parts[0]] = True
    return train[~val], train[val]


# ----------------------------------------------------------------------------- models


# ----------------------------------------------------------------------------- metrics


def predict_logits(
    model: nn.Module, dataset: Dataset[Any], batch_size: int = 64
) -> tuple[Tensor, Tensor]:
    """Logits (S, C) and labels (S,) of a model on a dataset, in its order, computed
    on the device the model's parameters are on."""
    import torch
    from torch.utils.data import DataLoader

    from polymodal.data.contract import collate

    model.eval()
    device = next(model.parameters()).device
    logits, labels = [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            out = model({k: v.to(device) for k, v in batch.items()})
            logits.append((out if isinstance(out, torch.Tensor) else out.logits).float().cpu())
            labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def predict(model: nn.Module, dataset: Dataset[Any], batch_size: int = 64) -> tuple[Tensor, Tensor]:
    """Class probabilities (S, C) and labels (S,) of a model on a dataset."""
    logits, labels = predict_logits(model, dataset, batch_size)
    return logits.softmax(dim=-1), labels


def classification_metrics(probs: Tensor, labels: Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1, MCC and macro PR-AUC of predicted probabilities.

    Args:
        probs: (S, C) class probabilities.
        labels: (S,) true classes.
        num_classes: number of classes C.
    """
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_average_precision,
        multiclass_f1_score,
        multiclass_matthews_corrcoef,
    )

    preds = probs.argmax(dim=-1)
    return {
        "accuracy": float(multiclass_accuracy(preds, labels, num_classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, labels, num_classes, average="macro")),
        "mcc": float(multiclass_matthews_corrcoef(preds, labels, num_classes)),
        "pr_auc": float(multiclass_average_precision(probs, labels, num_classes, average="macro")),
    }


# ----------------------------------------------------------------------------- training


@dataclass
class FoldResult:
    """One fold's held-out metrics and predictions, and where its run lives."""

    fold: int
    metrics: dict[str, float]
    out_dir: Path
    test_size: int
    predictions: Predictions


@dataclass
class CVResult:
    """A finished cross-validation.

    Attributes:
        folds: per-fold results.
        mean: mean of every metric over the folds.
        std: sample standard deviation of every metric over the folds.
        out_dir: the run folder.
        predictions: pooled out-of-fold predictions, one per pooled sample in pooled
            order (``index`` 0..S-1, ``ids`` the patients), each from the fold that
            held the sample out.
    """

    folds: list[FoldResult]
    mean: dict[str, float]
    std: dict[str, float]
    out_dir: Path
    predictions: Predictions

    def summary(self) -> dict[str, Any]:
        """The content of ``cv.json``."""
        return {
            "folds": [{"fold": f.fold, "test_size": f.test_size, **f.metrics} for f in self.folds],
            "mean": self.mean,
            "std": self.std,
        }


def fit_fold(
    config: ExperimentConfig, pool: Pool, indices: dict[str, np.ndarray], resume: bool = True
) -> tuple[dict[str, float], Predictions]:
    """Train on ``indices["train"]``, select on ``"val"``, test on ``"test"``.

    The run goes to ``config.out_dir`` (a run folder, see the module doc); a
    finished fold is read back, an interrupted one resumes from its last checkpoint.

    Returns:
        The held-out metrics, and the per-item held-out predictions (logits (N, C),
        labels, patient ids and pooled indices (N,), in ``indices["test"]`` order).
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import Subset

    from polymodal.train.checkpoint import load_weights, save_weights
    from polymodal.train.datamodule import MultimodalDataModule
    from polymodal.train.recipe import (
        LAST,
        _quiet_lightning,
        _trainer,
        build_from_config,
        dropout_rates,
    )
    from polymodal.train.tasks.classification import ClassificationModule

    out_dir = Path(config.out_dir)
    finished = (out_dir / "metrics.json").is_file() and (out_dir / PREDICTIONS).is_file()
    if finished and resume:
        metrics = json.loads((out_dir / "metrics.json").read_text())
        return metrics, Predictions.load(out_dir / PREDICTIONS)
    _quiet_lightning()
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    parts = {split: Subset(pool.dataset, idx.tolist()) for split, idx in indices.items()}
    data = MultimodalDataModule(config.data, seed=config.seed)
    data.datasets.update(parts)  # the data module serves these instead of building splits
    model = build_from_config(config, parts["train"][0], num_classes=pool.num_classes)
    module = ClassificationModule(
        model,
        pool.num_classes,
        config.optim,
        config.trainer.max_epochs,
        seed=config.seed,
        modality_dropout=dropout_rates(config),
    )
    trainer = _trainer(config, out_dir)
    # The pooled data need not know its class count: record it so that
    # `recipe.load_trained` can rebuild the fold's model from its folder alone.
    config.model.options = {**config.model.options, "num_classes": pool.num_classes}
    save_config(config, out_dir / "config.yaml")
    (out_dir / "fold.json").write_text(json.dumps({k: v.tolist() for k, v in indices.items()}))
    last = out_dir / "checkpoints" / LAST
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume and last.exists() else None)
    checkpoint = trainer.checkpoint_callback
    assert isinstance(checkpoint, ModelCheckpoint)
    best = {
        k.removeprefix("model."): v
        for k, v in load_weights(checkpoint.best_model_path).items()
        if k.startswith("model.")
    }
    model.load_state_dict(best)
    logits, labels = predict_logits(model, parts["test"], config.data.batch_size)
    metrics = classification_metrics(logits.softmax(dim=-1), labels, pool.num_classes)
    test = indices["test"]
    predictions = Predictions(
        logits,
        labels.long(),
        torch.from_numpy(pool.groups[test].astype(np.int64)),
        torch.from_numpy(test.astype(np.int64)),
    )
    save_weights(model.state_dict(), out_dir / "model.safetensors")
    predictions.save(out_dir / PREDICTIONS)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics, predictions


def cross_validate(
    config: ExperimentConfig,
    folds: int = 5,
    val_fraction: float = 0.15,
    resume: bool = False,
    progress: bool = True,
) -> CVResult:
    """Run patient-level stratified k-fold cross-validation (see the module doc).

    Args:
        config: the experiment; ``out_dir`` receives the CV run.
        folds: number of folds k.
        val_fraction: share of each training pool held out for checkpoint selection.
        resume: reuse finished folds and continue an interrupted one.
        progress: show a progress bar over the folds.

    Raises:
        ConfigError: ``out_dir`` already holds a CV run and ``resume`` is False, or
            the data are too small for ``folds`` folds.
    """
    from tqdm.auto import tqdm

    out_dir = Path(config.out_dir)
    if not resume and (out_dir / "folds.json").exists():
        raise ConfigError(
            f"{out_dir} already holds a CV run; pass --resume to continue it "
            "or choose another out_dir"
        )
    pool = pool_dataset(config)
    held_out = patient_folds(pool.labels, pool.groups, folds, config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    assignment = np.zeros(len(pool.labels), dtype=np.int64)
    for i, test in enumerate(held_out):
        assignment[test] = i
    (out_dir / "folds.json").write_text(
        json.dumps({"fold": assignment.tolist(), "patient": pool.groups.tolist()})
    )
    results = []
    for i, test in enumerate(tqdm(held_out, desc="cv folds", disable=not progress)):
        train, val = carve_validation(
            pool, np.setdiff1d(np.arange(len(pool.labels)), test), val_fraction, config.seed + i
        )
        fold_config = copy.deepcopy(config)
        fold_config.out_dir = str(out_dir / f"fold_{i}")
        indices = {"train": train, "val": val, "test": test}
        metrics, predictions = fit_fold(fold_config, pool, indices, resume)
        results.append(FoldResult(i, metrics, Path(fold_config.out_dir), len(test), predictions))
    values = {m: np.array([r.metrics[m] for r in results]) for m in METRICS}
    result = CVResult(
        folds=results,
        mean={m: float(v.mean()) for m, v in values.items()},
        std={m: float(v.std(ddof=1)) for m, v in values.items()},
        out_dir=out_dir,
        predictions=Predictions.concat([r.predictions for r in results]).sorted_by_index(),
    )
    result.predictions.save(out_dir / OUT_OF_FOLD)
    (out_dir / "cv.json").write_text(json.dumps(result.summary(), indent=2))
    return result
