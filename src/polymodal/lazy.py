"""Lazy package exports: names that load their submodule on first use.

A package ``__init__`` that re-exports names from heavy submodules (torch, ...)
would import them all as soon as the package is touched; the command line only
needs a parser. :func:`lazy_exports` gives the package a module ``__getattr__``
(PEP 562) that imports a name's module when the name is first read::

    __getattr__, __dir__ = lazy_exports(__name__, {"ABPEM": ".methods", ...})

Module names follow :func:`importlib.import_module`: ``".methods"`` is relative
to the package, ``"polymodal.data.synth.shapes_text_vqa"`` absolute (for a name a
package re-exports from another layer).

This module imports nothing from polymodal, so any layer may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module_name: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for names that live in other modules.

    Args:
        module_name: the package's ``__name__``.
        exports: exported name -> module defining it, relative to the package
            with a leading dot (``".probe"``) or absolute.

    Returns:
        ``(__getattr__, __dir__)``: ``__getattr__(name)`` imports the module of
        ``name`` and returns its ``name`` (an unknown name raises
        ``AttributeError`` as for any module); ``__dir__()`` lists the package's
        own names and the lazy ones.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return getattr(importlib.import_module(target, package=module_name), name)

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module_name]), *table})

    return __getattr__, __dir__
