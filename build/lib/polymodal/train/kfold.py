"""Patient-level, stratified k-fold cross-validation: ``polymodal cv CONFIG --folds 5``.

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
                     metrics.json, fold.json (its sample indices), checkpoints/, metrics.csv
    cv.json          per-fold metrics, their mean and std
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.errors import ConfigError
from polymodal.train.config import ExperimentConfig, load_config, save_config

if TYPE_CHECKING:  # torch and Lightning load on first use, so `polymodal --help` stays fast
    from torch import Tensor, nn
    from torch.utils.data import Dataset

METRICS = ("accuracy", "macro_f1", "mcc", "pr_auc")


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


def predict(model: nn.Module, dataset: Dataset[Any], batch_size: int = 64) -> tuple[Tensor, Tensor]:
    """Class probabilities (S, C) and labels (S,) of a model on a dataset."""
    import torch
    from torch.utils.data import DataLoader

    from polymodal.data.contract import collate

    model.eval()
    probs, labels = [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            out = model(batch)
            logits = out if isinstance(out, torch.Tensor) else out.logits
            probs.append(logits.float().softmax(dim=-1))
            labels.append(batch["label"])
    return torch.cat(probs), torch.cat(labels)


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
    """One fold's held-out metrics and where its run lives."""

    fold: int
    metrics: dict[str, float]
    out_dir: Path
    test_size: int


@dataclass
class CVResult:
    """A finished cross-validation.

    Attributes:
        folds: per-fold results.
        mean: mean of every metric over the folds.
        std: sample standard deviation of every metric over the folds.
        out_dir: the run folder.
    """

    folds: list[FoldResult]
    mean: dict[str, float]
    std: dict[str, float]
    out_dir: Path

    def summary(self) -> dict[str, Any]:
        """The content of ``cv.json``."""
        return {
            "folds": [{"fold": f.fold, "test_size": f.test_size, **f.metrics} for f in self.folds],
            "mean": self.mean,
            "std": self.std,
        }


def fit_fold(
    config: ExperimentConfig, pool: Pool, indices: dict[str, np.ndarray], resume: bool = True
) -> dict[str, float]:
    """Train on ``indices["train"]``, select on ``"val"``, test on ``"test"``.

    The run goes to ``config.out_dir`` (a run folder, see the module doc); a
    finished fold is read back, an interrupted one resumes from its last checkpoint.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import Subset

    from polymodal.train.checkpoint import load_weights, save_weights
    from polymodal.train.classification import ClassificationModule
    from polymodal.train.datamodule import MultimodalDataModule
    from polymodal.train.recipe import LAST, _quiet_lightning, _trainer, build_from_config

    out_dir = Path(config.out_dir)
    if (out_dir / "metrics.json").is_file() and resume:
        return json.loads((out_dir / "metrics.json").read_text())  # type: ignore[no-any-return]
    _quiet_lightning()
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    parts = {split: Subset(pool.dataset, idx.tolist()) for split, idx in indices.items()}
    data = MultimodalDataModule(config.data, seed=config.seed)
    data.datasets.update(parts)  # the data module serves these instead of building splits
    model = build_from_config(config, parts["train"][0], pool.num_classes)
    module = ClassificationModule(
        model, pool.num_classes, config.optim, config.trainer.max_epochs, seed=config.seed
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
    probs, labels = predict(model, parts["test"], config.data.batch_size)
    metrics = classification_metrics(probs, labels, pool.num_classes)
    save_weights(model.state_dict(), out_dir / "model.safetensors")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


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
        metrics = fit_fold(fold_config, pool, {"train": train, "val": val, "test": test}, resume)
        results.append(FoldResult(i, metrics, Path(fold_config.out_dir), len(test)))
    values = {m: np.array([r.metrics[m] for r in results]) for m in METRICS}
    result = CVResult(
        folds=results,
        mean={m: float(v.mean()) for m, v in values.items()},
        std={m: float(v.std(ddof=1)) for m, v in values.items()},
        out_dir=out_dir,
    )
    (out_dir / "cv.json").write_text(json.dumps(result.summary(), indent=2))
    return result


# ----------------------------------------------------------------------------- command line


def cmd_cv(args: argparse.Namespace) -> int:
    """``polymodal cv``: run the CV and print the per-fold and summary metrics."""
    config = load_config(args.config, args.overrides)
    result = cross_validate(
        config,
        folds=args.folds,
        val_fraction=args.val_fraction,
        resume=args.resume,
        progress=config.trainer.progress_bar,
    )
    header = f"{'fold':<6}" + "".join(f"{m:>12}" for m in METRICS)
    print(header)
    for fold in result.folds:
        print(f"{fold.fold:<6}" + "".join(f"{fold.metrics[m]:>12.4f}" for m in METRICS))
    print(f"{'mean':<6}" + "".join(f"{result.mean[m]:>12.4f}" for m in METRICS))
    print(f"{'std':<6}" + "".join(f"{result.std[m]:>12.4f}" for m in METRICS))
    print(f"results: {result.out_dir / 'cv.json'}")
    return 0


def add_cv_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``polymodal cv`` to a subparsers object (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cv",
        help="patient-level stratified k-fold cross-validation of a YAML config",
        description=(
            "Pool the dataset's splits, split them into k stratified folds by patient "
            "(samples sharing an id stay together), train one model per fold (a validation "
            "part of the training folds selects the checkpoint) and report accuracy, "
            "macro-F1, MCC and PR-AUC per fold and as mean ± std. Writes out_dir/cv.json."
        ),
        epilog="example: polymodal cv configs/subtype_fusion.yaml model.fusion=concat --folds 5",
    )
    parser.add_argument("config", help="YAML experiment file, e.g. configs/subtype_fusion.yaml")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. trainer.max_epochs=3",
    )
    parser.add_argument("--folds", type=int, default=5, help="number of folds k (default 5)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="share of each training pool used for checkpoint selection (default 0.15)",
    )
    parser.add_argument("--resume", action="store_true", help="reuse finished folds in out_dir")
    parser.set_defaults(func=cmd_cv)
    return parser
