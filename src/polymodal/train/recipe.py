"""The training recipe of every task: ``polymodal fit`` and ``eval``.

``fit`` trains the model a config describes, for the task its ``task.kind`` names
(:mod:`polymodal.train.tasks`: classification, masked reconstruction, contrastive
retrieval, dense prediction, sequence generation, semi-supervised), on the dataset
it names, and leaves in ``out_dir``::

    config.yaml          the resolved config (after overrides)
    checkpoints/         Lightning checkpoints (safetensors weights), incl. last.ckpt
    metrics.csv          per-step / per-epoch metrics (CSV logger)
    model.safetensors    weights of the best validation epoch (by the task's
                         monitored metric; an EMA teacher's where there is one)
    metrics.json         best validation and final test metrics
    test_predictions.safetensors
                         classification tasks: the best epoch's per-item test
                         ``logits`` (N, C) and ``label`` (N,), in test-set order
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn

from polymodal.data.contract import MODALITIES
from polymodal.errors import ConfigError
from polymodal.train.checkpoint import STATE, SafetensorsCheckpointIO, load_weights, save_weights
from polymodal.train.config import ExperimentConfig, load_config, save_config
from polymodal.train.datamodule import MultimodalDataModule
from polymodal.train.init import freeze, init_from
from polymodal.train.predictions import FILE as PREDICTIONS
from polymodal.train.predictions import Predictions
from polymodal.train.tasks import TaskModule, data_sizes, task_spec

LAST = "last.ckpt"


@dataclass
class FitResult:
    """What a finished run produced.

    Attributes:
        out_dir: the run folder.
        metrics: best validation and test metrics (``metrics.json``).
        epochs: epochs trained.
        predictions: the best epoch's per-item test predictions, in test-set order.
    """

    out_dir: Path
    metrics: dict[str, float]
    epochs: int
    predictions: Predictions | None = None


def read_run(out_dir: str | Path) -> FitResult | None:
    """A finished run's result read back from its folder; None when it is unfinished
    (no ``metrics.json`` yet: it is written last). Per-item predictions are read
    when the task writes them (classification)."""
    out_dir = Path(out_dir)
    metrics_file, predictions = out_dir / "metrics.json", out_dir / PREDICTIONS
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    items = Predictions.load(predictions) if predictions.is_file() else None
    return FitResult(out_dir, metrics, int(metrics.get("epochs", 0)), items)


def resolve_builder(path: str) -> Callable[..., nn.Module]:
    """Import a model builder named ``"package.module:function"``.

    Raises:
        ConfigError: malformed path, missing module or attribute.
    """
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ConfigError(
            f"model.options.builder must look like 'package.module:function', got {path!r}"
        )
    try:
        builder = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"model.options.builder {path!r} cannot be imported: {error}") from error
    if not callable(builder):
        raise ConfigError(f"model.options.builder {path!r} is not callable")
    return builder  # type: ignore[no-any-return]


def build_from_config(
    config: ExperimentConfig, sample: dict[str, Tensor], **sizes: int
) -> nn.Module:
    """The model a config describes, with per-sample input shapes read off ``sample``.

    Args:
        config: ``task.kind`` (its default builder), ``model.fusion``, ``model.dim``,
            ``model.modalities`` and ``model.options`` (``builder`` overrides the
            task's; the rest are the builder's options).
        sample: one sample of the training data.
        **sizes: what the task read off the data set (``num_classes``, ``vocab_size``, ...).
    """
    spec = task_spec(config.task.kind)
    options = dict(config.model.options)
    path = str(options.pop("builder", spec.builder))
    if not path:
        raise ConfigError(
            f"task {spec.name!r} has no default model; name one with model.options.builder"
        )
    builder = resolve_builder(path)
    for key in sizes:
        options.pop(key, None)
    modalities: dict[str, dict[str, Any]] = {}
    for name, extra in config.model.modalities.items():
        if name not in MODALITIES:
            raise ConfigError(f"model.modalities.{name}: unknown modality {name!r}")
        if name not in sample:
            provided = ", ".join(k for k in sample if k in MODALITIES)
            raise ConfigError(
                f"model.modalities.{name}: dataset {config.data.name!r} has no {name!r} "
                f"(it provides {provided})"
            )
        modalities[name] = {"shape": list(sample[name].shape), **extra}
    missing = [key for key in spec.targets if key not in sample]
    if missing:
        raise ConfigError(
            f"task {spec.name!r} trains on {missing}, which dataset {config.data.name!r} does not "
            f"provide (its samples hold {', '.join(sorted(sample))})"
        )
    try:
        return builder(config.model.fusion, modalities, dim=config.model.dim, **sizes, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model: {error}") from error


def build_model(
    config: ExperimentConfig, data: MultimodalDataModule
) -> tuple[nn.Module, dict[str, int]]:
    """The model a config describes and the sizes its task read off the data set.

    Input shapes are read off the first training sample; sizes (``num_classes``,
    ``vocab_size``) come from ``model.options`` or the data set.
    """
    spec = task_spec(config.task.kind)
    train = data.dataset("train")
    sizes = data_sizes(spec, train, config.model.options)
    return build_from_config(config, train[0], **sizes), sizes


def task_module(config: ExperimentConfig, model: nn.Module, sizes: dict[str, int]) -> TaskModule:
    """The task's LightningModule around ``model``, with the config's optimizer,
    schedule, seed, modality dropout and ``task.options``.

    Raises:
        ConfigError: an option the task does not take, or a value it refuses.
    """
    spec = task_spec(config.task.kind)
    needed = {k: sizes[k] for k in spec.sizes}
    try:
        return spec.module_class()(
            model,
            optim=config.optim,
            max_epochs=config.trainer.max_epochs,
            seed=config.seed,
            modality_dropout=dropout_rates(config),
            **needed,
            **config.task.options,
        )
    except TypeError as error:
        raise ConfigError(f"task.options of {spec.name!r}: {error}") from error


def deterministic_mode(accelerator: str) -> bool | Literal["warn"]:
    """Lightning's ``deterministic`` for ``accelerator``: True on the CPU; ``"warn"``
    where the run lands on CUDA, since some CUDA kernels (scatter-add, index_add in
    the backward pass) have no deterministic version and True would crash on them.

    Args:
        accelerator: ``trainer.accelerator`` (``cpu``, ``gpu``, ``cuda`` or ``auto``).

    Returns:
        True, or ``"warn"`` for ``gpu``/``cuda``, and for ``auto`` on a GPU machine.
    """
    name = accelerator.lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        return "warn"
    return True


def dropout_rates(config: ExperimentConfig) -> dict[str, float]:
    """``model.modality_dropout`` over every modality of the model (unlisted = 0),
    or empty when it is off."""
    rates = config.model.modality_dropout
    if not rates:
        return {}
    return {m: float(rates.get(m, 0.0)) for m in config.model.modalities}


def _trainer(
    config: ExperimentConfig,
    out_dir: Path,
    monitor: str = "val_acc",
    mode: str = "max",
    **extra: Any,
) -> L.Trainer:
    t = config.trainer
    callbacks: list[Any] = [
        ModelCheckpoint(
            dirpath=out_dir / "checkpoints",
            filename="best",
            monitor=monitor,
            mode=mode,
            save_last=True,
            save_top_k=1,
        )
    ]
    if t.patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=t.patience))
    if t.progress_bar:
        callbacks.append(progress_bar())
    return L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,  # type: ignore[arg-type]
        deterministic=deterministic_mode(t.accelerator),
        callbacks=callbacks,
        logger=CSVLogger(save_dir=out_dir, name="", version=""),
        plugins=[SafetensorsCheckpointIO()],
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.val_every_n_epochs,
        num_sanity_val_steps=0,
        **extra,
    )


def progress_bar() -> TQDMProgressBar:
    """A tqdm bar redrawn every 10 steps: a bar per step costs a few % of a small step."""
    return TQDMProgressBar(refresh_rate=10)


def _quiet_lightning() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*Experiment logs directory.*",
        ".*Checkpoint directory.*exists and is not empty.*",
        ".*LeafSpec.*",
        ".*smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def fit(config: ExperimentConfig, resume: bool = False) -> FitResult:
    """Train, checkpoint every epoch, then test the best epoch.

    Args:
        config: the experiment.
        resume: continue from ``out_dir/checkpoints/last.ckpt`` when it exists;
            the resumed run ends with exactly the numbers of an uninterrupted one.
    """
    _quiet_lightning()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "checkpoints" / LAST
    if not resume and last.exists():
        raise ConfigError(
            f"{out_dir} already holds a run; pass --resume to continue it or choose another out_dir"
        )
    spec = task_spec(config.task.kind)
    if spec.recipe:
        raise ConfigError(
            f"task {spec.name!r} trains with its own recipe ({spec.recipe}); "
            "run it with `polymodal fit CONFIG`"
        )
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = MultimodalDataModule(config.data, seed=config.seed, streams=spec.streams)
    model, sizes = build_model(config, data)
    if config.model.init_from:
        done = init_from(model, config.model.init_from, config.model.init_map)
        if config.trainer.progress_bar:  # quiet runs (the bench's) skip the summary
            print(
                f"init_from {config.model.init_from}: {len(done.loaded)} of "
                f"{len(model.state_dict())} tensors loaded, "
                f"{len(done.skipped)} of its tensors not in this model",
                file=sys.stderr,
            )
    if config.model.freeze:
        freeze(model, config.model.freeze)
    module = task_module(config, model, sizes)
    trainer = _trainer(config, out_dir, module.monitor, module.mode)
    if trainer.is_global_zero:
        save_config(config, out_dir / "config.yaml")
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume and last.exists() else None)
    checkpoint = trainer.checkpoint_callback
    assert isinstance(checkpoint, ModelCheckpoint)
    test = trainer.test(
        module, datamodule=data, ckpt_path=checkpoint.best_model_path, verbose=False
    )
    metrics = {k: float(v) for k, v in test[0].items()}
    if checkpoint.best_model_score is not None:
        metrics[f"best_{module.monitor}"] = float(checkpoint.best_model_score)
    metrics["world_size"] = trainer.world_size
    metrics["epochs"] = trainer.current_epoch
    predictions = getattr(module, "test_predictions", None)  # per-item, classification tasks
    if trainer.is_global_zero:
        save_weights(module.eval_model.state_dict(), out_dir / "model.safetensors")
        if predictions is not None:
            predictions.save(out_dir / PREDICTIONS)
        # metrics.json last: its presence marks a finished run (see read_run).
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return FitResult(out_dir, metrics, trainer.current_epoch, predictions)


def train_cached(config: ExperimentConfig) -> FitResult:
    """Metrics and per-item test predictions of ``config``'s run, training it unless
    a finished run is cached.

    A finished run folder is only read (:func:`read_run`); a folder that holds no
    finished run is an interrupted one and is resumed, so its numbers equal an
    uninterrupted run's; no folder means a fresh :func:`fit`.

    Args:
        config: the experiment; ``config.out_dir`` is the cache entry (callers key
            it by config and code, :func:`polymodal.data.cache.run_folder`).
    """
    cached = read_run(config.out_dir)
    if cached is not None:
        return cached
    if Path(config.out_dir).exists():  # an unfinished run: continue where it stopped
        return fit(config, resume=True)
    return fit(config)


def load_trained(
    checkpoint: str | Path,
) -> tuple[ExperimentConfig, nn.Module, MultimodalDataModule]:
    """Rebuild a trained model from a run folder or one of its checkpoint folders.

    Args:
        checkpoint: a run folder written by :func:`fit` (its ``model.safetensors``
            holds the best epoch), or ``<run>/checkpoints/<name>.ckpt``.

    Returns:
        The run's config, its model (eval mode) and the data module of its data.

    Raises:
        ConfigError: no ``config.yaml``, or one that no longer builds the model the
            weights were saved from (naming the first mismatched key or shape).
    """
    path = Path(checkpoint)
    in_checkpoints = (path / STATE).is_file()
    run_dir = path.parent.parent if in_checkpoints else path
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{path} is not a run or checkpoint folder: no {config_path} found")
    # The run may come from a GPU machine: its accelerator is not this machine's business.
    config = load_config(config_path, check_device=False)
    data = MultimodalDataModule(config.data, seed=config.seed)
    model, _ = build_model(config, data)
    weights = load_weights(path)
    if in_checkpoints:  # Lightning prefixes the module's attribute name
        weights = {k.removeprefix("model."): v for k, v in weights.items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ConfigError(
            f"{run_dir}: config.yaml no longer matches the saved weights "
            f"({_first_mismatch(model.state_dict(), weights)}); restore the run's "
            "config.yaml or train the run again"
        ) from error
    return config, model.eval(), data


def _first_mismatch(expected: dict[str, Tensor], found: dict[str, Tensor]) -> str:
    """The first key or shape where saved weights differ from the model a config builds."""
    for key, value in expected.items():
        if key not in found:
            return f"{key!r} is missing from the weights"
        if tuple(found[key].shape) != tuple(value.shape):
            return (
                f"{key!r} has shape {tuple(found[key].shape)} in the weights but "
                f"{tuple(value.shape)} in the model"
            )
    extra = next((k for k in found if k not in expected), None)
    return f"the weights hold {extra!r}, which the model has not" if extra else "unknown"


def evaluate(checkpoint: str | Path, split: str = "test") -> dict[str, float]:
    """The task's test metrics of a trained run (or checkpoint) on one split of its data
    (e.g. accuracy and macro-F1 for classification)."""
    _quiet_lightning()
    config, model, data = load_trained(checkpoint)
    sizes = data_sizes(task_spec(config.task.kind), data.dataset("train"), config.model.options)
    module = task_module(config, model, sizes)
    trainer = L.Trainer(
        accelerator=config.trainer.accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=config.trainer.progress_bar,
        enable_model_summary=False,
    )
    loader = data.test_dataloader() if split == "test" else data.val_dataloader()
    with torch.no_grad():
        result = trainer.test(module, dataloaders=loader, verbose=False)
    return {k: float(v) for k, v in result[0].items()}
