"""A small name registry of datasets that recipes can build from a config.

A builder takes ``split`` (``"train"``, ``"val"`` or ``"test"``) and the config's
``data.options`` as keyword arguments and returns a map-style dataset of contract
samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from polymodal.errors import ConfigError

DatasetBuilder = Callable[..., Dataset[Any]]

_BUILDERS: dict[str, DatasetBuilder] = {}

# Modules that register datasets on import; imported lazily so that listing or
# building one dataset does not pay for the others' dependencies.
_PROVIDERS = (
    "polymodal.data.synth.av_digits",
    "polymodal.data.synth.ctpa",
    "polymodal.data.synth.histo_omics",
    "polymodal.data.synth.petct",
    "polymodal.data.synth.shapes_scenes",
    "polymodal.data.synth.shapes_vqa",
    "polymodal.data.real.datasets",
    "polymodal.data.real.histo",
    "polymodal.data.real.nifti",
    "polymodal.data.synth.av_digits_video",
    "polymodal.data.real.video_folders",
    "polymodal.data.synth.taste_music",
    "polymodal.data.synth.affordance_rgbd",
    "polymodal.data.real.agd20k",
    "polymodal.data.synth.spoken_shapes_vqa",
    "polymodal.methods.ret.data",  # ReT's frozen-feature triples (string: no upward import)
)


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering ``builder(split, **options)`` under ``name``."""

    def decorate(builder: DatasetBuilder) -> DatasetBuilder:
        if name in _BUILDERS:
            raise ValueError(f"dataset {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorate


def _load_providers() -> None:
    for module in _PROVIDERS:
        importlib.import_module(module)


def dataset_names() -> list[str]:
    _load_providers()
    return sorted(_BUILDERS)


def build_dataset(name: str, split: str, **options: Any) -> Dataset[Any]:
    """Build dataset ``name`` for ``split``.

    Raises:
        ConfigError: unknown dataset name or an option its builder does not take.
    """
    _load_providers()
    if name not in _BUILDERS:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(sorted(_BUILDERS))}")
    try:
        return _BUILDERS[name](split, **options)
    except TypeError as error:
        if "unexpected keyword" in str(error):
            raise ConfigError(f"dataset {name!r}: {error}") from error
        raise
