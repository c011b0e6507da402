"""Experiment configs: YAML files with ``data:``, ``model:``, ``optim:``, ``trainer:`` sections.

A config is parsed into typed dataclasses. Unknown keys, wrong types and malformed
YAML raise :class:`~polymodal.errors.ConfigError` with the offending key's dotted
path and, for a misspelt key, the closest valid one. Command-line overrides use
dotted paths (``trainer.max_epochs=3``); their values are parsed as YAML scalars.

The recipes' YAML files ship inside the package (``polymodal/configs/``, also
reachable as ``configs/`` in a source checkout), so a bare name such as
``load_config("fusion_av_digits")`` works from an installed wheel.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from polymodal.data.options import matches_type as _matches
from polymodal.data.options import type_name
from polymodal.errors import ConfigError


@dataclass
class DataConfig:
    """Which dataset to train on and how to batch it.

    ``options`` go to the dataset builder unchanged (e.g. AV-Digits difficulty
    knobs, or the folders of a real dataset).
    """

    name: str = "av_digits"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    num_workers: int = 0


@dataclass
class ModelConfig:
    """A multimodal classifier: one encoder per modality and a fusion head.

    ``modality_dropout`` maps a modality to the probability of hiding it from a
    training sample (``{image: 0.3, audio: 0.3}``; unlisted = 0; empty = off), see
    :mod:`polymodal.modules.modality_dropout`. Training steps only; a sample always
    keeps at least one modality.
    """

    fusion: str = "cross_attention"
    dim: int = 64
    modalities: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"image": {"encoder": "cnn"}, "audio": {"encoder": "spectrogram"}}
    )
    options: dict[str, Any] = field(default_factory=dict)
    modality_dropout: dict[str, float] = field(default_factory=dict)
    init_from: str | None = None
    init_map: dict[str, str] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)


@dataclass
class TaskConfig:
    """What the run learns: a registered task ``kind`` (:mod:`polymodal.train.tasks`)
    and the options of its module (e.g. ``target: saliency`` for ``dense_prediction``)."""

    kind: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW with a cosine learning-rate decay over ``trainer.max_epochs``."""

    lr: float = 2e-3
    weight_decay: float = 1e-4


@dataclass
class TrainerConfig:
    """Options passed to ``lightning.Trainer`` (plus early stopping)."""

    max_epochs: int = 10
    patience: int | None = 3
    accelerator: str = "cpu"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    progress_bar: bool = True
    log_every_n_steps: int = 10
    val_every_n_epochs: int = 1
    """Validate after every n-th epoch (best checkpoint chosen among those): short
    runs over many epochs on a few labels spend most of their time validating."""

    def to_dict(self) -> dict[str, Any]:
        """The options, less ``val_every_n_epochs`` at its default, so runs that do not
        use it keep the config (and cache key) they had before it existed."""
        values = dataclasses.asdict(self)
        if values["val_every_n_epochs"] == 1:
            del values["val_every_n_epochs"]
        return values


@dataclass
class ExperimentConfig:
    """One training run. ``out_dir`` receives checkpoints, metrics and the exported model."""

    name: str = "experiment"
    seed: int = 0
    out_dir: str = "runs/experiment"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        # Defaults of options added later are left out, so a run that does not use
        # them has the config (and cache key params) it had before they existed.
        if values["task"] == dataclasses.asdict(TaskConfig()):
            del values["task"]
        for key in ("modality_dropout", "init_from", "init_map", "freeze"):
            if not values["model"][key]:
                del values["model"][key]
        values["trainer"] = self.trainer.to_dict()
        return values


T = TypeVar("T")
C = TypeVar("C")

PACKAGED = Path(__file__).resolve().parents[1] / "configs"
"""The folder of the recipes' YAML files shipped with the package."""


def packaged_configs() -> list[str]:
    """Names of the packaged YAML configs (file names without ``.yaml``), sorted."""
    return sorted(p.stem for p in PACKAGED.glob("*.yaml"))


def resolve_config(path: str | Path) -> Path:
    """The YAML file ``path`` names: an existing file, or a packaged config's bare name.

    Args:
        path: a file path, or a name like ``"fusion_av_digits"`` (with or without
            ``.yaml``) of a config in :data:`PACKAGED`.

    Returns:
        The file to read.

    Raises:
        ConfigError: neither a file nor a packaged name (the message lists the names).
    """
    path = Path(path)
    if path.is_file():
        return path
    # Only a bare name (no folder part) may mean a packaged config: a missing
    # ``runs/x/config.yaml`` must not silently load a recipe of the same name.
    if len(path.parts) == 1 and path.suffix in ("", ".yaml"):
        packaged = PACKAGED / f"{path.stem}.yaml"
        if packaged.is_file():
            return packaged
        raise ConfigError(
            f"config {str(path)!r} is neither a file nor a packaged config; "
            f"available: {', '.join(packaged_configs())}"
        )
    raise ConfigError(f"config file {path} does not exist")


def from_dict(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown config key {path!r}{hint} (valid: {', '.join(sorted(fields))})"
            )
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = from_dict(annotation, value or {}, path)  # type: ignore[arg-type]
            continue
        if isinstance(value, int) and annotation is float:
            value = float(value)
        if not _matches(value, annotation):
            raise ConfigError(
                f"config key {path!r} expects {type_name(annotation)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        kwargs[key] = value
    return cls(**kwargs)


def apply_overrides(values: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (values parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = values
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {key!r} is not a section")
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({error})") from error
    return values


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (empty for an empty file).

    Args:
        path: a YAML file, or the bare name of a packaged config (:func:`resolve_config`).

    Raises:
        ConfigError: missing file or unknown name, malformed YAML, or a top level that
            is not a mapping.
    """
    path = resolve_config(path)
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(
            f"{path} must hold a mapping of sections (data:, model:, optim:, trainer:) at its "
            f"top level, got a {type(loaded).__name__} ({loaded!r:.40})"
        )
    return loaded or {}


def check_values(config: Any, check_device: bool = True) -> None:
    """Reject values no run can use, naming the key and how to fix it.

    Args:
        config: a config with ``data``, ``optim`` and ``trainer`` sections
            (:class:`ExperimentConfig` or the VLM recipe's).
        check_device: also require a GPU when ``trainer.accelerator`` asks for one
            (off when reading a finished run, which may come from another machine).

    Raises:
        ConfigError: ``data.batch_size`` < 1, ``optim.lr`` <= 0,
            ``trainer.val_every_n_epochs`` < 1, or a GPU
            accelerator on a machine without CUDA.
    """
    if config.data.batch_size < 1:
        raise ConfigError(
            f"data.batch_size must be >= 1, got {config.data.batch_size}; "
            "set e.g. data.batch_size=32"
        )
    if not config.optim.lr > 0:  # also catches NaN
        raise ConfigError(f"optim.lr must be > 0, got {config.optim.lr}; set e.g. optim.lr=0.001")
    every = getattr(config.trainer, "val_every_n_epochs", 1)
    if not every >= 1:
        raise ConfigError(
            f"trainer.val_every_n_epochs must be >= 1, got {every}; set e.g. "
            "trainer.val_every_n_epochs=1 to validate after every epoch"
        )
    task = getattr(config, "task", None)
    if task is not None:
        from polymodal.train.tasks import task_spec

        task_spec(task.kind)
    rates = getattr(config.model, "modality_dropout", None)
    if rates:
        from polymodal.modules.modality_dropout import check_rates

        check_rates(rates, config.model.modalities)
    accelerator = str(config.trainer.accelerator)
    if check_device and accelerator.lower() in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.accelerator={accelerator}, but this machine has no GPU "
                "(torch.cuda.is_available() is False); use trainer.accelerator=cpu or auto"
            )


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), check_device: bool = True
) -> ExperimentConfig:
    """Read a YAML experiment file (or the defaults when ``path`` is None) plus overrides.

    Args:
        path: the YAML file, or the bare name of a packaged config (``fusion_av_digits``).
        overrides: dotted ``section.key=value`` overrides.
        check_device: require a GPU when ``trainer.accelerator`` asks for one.

    Raises:
        ConfigError: missing file, malformed YAML, unknown key, wrong type, or a
            value out of range (see :func:`check_values`).
    """
    values = read_config_file(path) if path is not None else {}
    config = from_dict(ExperimentConfig, apply_overrides(values, overrides))
    check_values(config, check_device)
    return config


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


DEVICES = ("auto", "cpu", "cuda")
"""What ``--device`` accepts: ``auto`` picks CUDA when torch sees a GPU."""


def resolve_device(device: str) -> str:
    """The torch device a run asked for as ``auto``, ``cpu`` or ``cuda``.

    Args:
        device: one of :data:`DEVICES`.

    Returns:
        ``"cuda"`` or ``"cpu"`` (``auto``: CUDA when ``torch.cuda.is_available()``).

    Raises:
        ConfigError: an unknown name, or ``cuda`` on a machine without a GPU.
    """
    if device not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    import torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise ConfigError(
            "device cuda asked for, but this machine has no GPU "
            "(torch.cuda.is_available() is False); use --device cpu or auto"
        )
    if device == "auto":
        return "cuda" if available else "cpu"
    return device


def on_device(config: C, device: str) -> C:
    """A copy of ``config`` whose trainer runs on ``device`` (a check applies its
    context's device this way; the run cache keys on the config, so CPU and GPU
    runs never share an entry).

    Args:
        config: a config with a ``trainer.accelerator`` (:class:`ExperimentConfig`
            or the VLM recipe's).
        device: ``"cpu"`` or ``"cuda"`` (:func:`resolve_device`).

    Returns:
        The copy, with ``trainer.accelerator`` ``"gpu"`` for CUDA, else ``"cpu"``.
    """
    accelerator = "gpu" if device == "cuda" else "cpu"
    trainer = dataclasses.replace(config.trainer, accelerator=accelerator)  # type: ignore[attr-defined]
    return dataclasses.replace(config, trainer=trainer)  # type: ignore[type-var]


def check_run(
    recipe: str, overrides: Sequence[str], device: str, kind: str, code: Sequence[str]
) -> ExperimentConfig:
    """A claim check's run: the packaged ``recipe`` with ``overrides``, without progress
    bars, on ``device``, its ``out_dir`` the cache folder ``<cache>/<kind>/<key>`` — the
    key covering the config and the code of the ``code`` modules
    (:func:`polymodal.data.cache.run_folder`)."""
    from polymodal.data.cache import run_folder

    config = on_device(load_config(recipe, [*overrides, "trainer.progress_bar=false"]), device)
    config.out_dir = str(run_folder(kind, config.to_dict(), code=code))
    return config
