"""Type checks of the options a data set builder takes (``-o KEY=VALUE``, ``data.options``).

:func:`matches_type` is also what :mod:`polymodal.train.config` checks config values with.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from polymodal.errors import ConfigError


def matches_type(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits a (simple) type annotation; an int passes for a float.

    Args:
        value: the value read from YAML or the command line.
        annotation: a resolved annotation (``int``, ``float | None``, ``tuple[float, float]``, ...).

    Returns:
        True when it fits; containers are checked for their own type only.
    """
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if origin in (tuple, list) or annotation in (tuple, list):
        return isinstance(value, tuple | list)  # YAML has no tuples
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def type_name(annotation: Any) -> str:
    """A readable name of an annotation: ``int``, ``float | None``."""
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def check_option_types(cls: type, options: Mapping[str, Any], dataset: str) -> None:
    """Reject a builder option whose value has the wrong type, naming key, type and value.

    Unknown keys are left to the dataclass (its ``TypeError`` names them).

    Args:
        cls: the builder's options dataclass.
        options: the options given.
        dataset: the data set's name for the message, e.g. ``"AV-Digits"``.

    Raises:
        ConfigError: e.g. ``train='abc'`` where ``train`` is an int.
    """
    hints = typing.get_type_hints(cls)
    for key, value in options.items():
        if key in hints and not matches_type(value, hints[key]):
            raise ConfigError(
                f"{dataset} option {key!r} expects {type_name(hints[key])}, got {value!r} "
                f"({type(value).__name__}); e.g. -o {key}=... or data.options.{key}: ..."
            )
