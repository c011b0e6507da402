"""Lazy package exports: a name loads its submodule on first read, not before."""

from __future__ import annotations

import sys
import types

import pytest

from polymodal.lazy import lazy_exports


@pytest.fixture
def package(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A package ``lazy_pkg`` exporting ``VALUE`` from ``lazy_pkg.part`` and ``math.pi``."""
    package = types.ModuleType("lazy_pkg")
    part = types.ModuleType("lazy_pkg.part")
    part.VALUE = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lazy_pkg", package)
    monkeypatch.setitem(sys.modules, "lazy_pkg.part", part)
    getattr_, dir_ = lazy_exports("lazy_pkg", {"VALUE": ".part", "pi": "math"})
    vars(package).update(__getattr__=getattr_, __dir__=dir_)  # as a package __init__ does
    return package


def test_an_exported_name_comes_from_its_submodule(package: types.ModuleType) -> None:
    assert package.VALUE == 42


def test_an_absolute_module_name_is_imported_as_is(package: types.ModuleType) -> None:
    import math

    assert math.pi == package.pi


def test_an_unknown_name_is_an_attribute_error_naming_the_module(
    package: types.ModuleType,
) -> None:
    with pytest.raises(AttributeError, match="'lazy_pkg' has no attribute 'MISSING'"):
        _ = package.MISSING


def test_dir_lists_the_lazy_names(package: types.ModuleType) -> None:
    assert "VALUE" in dir(package)


def test_the_packages_using_it_keep_their_public_names() -> None:
    import polymodal.analysis.contribution as contribution
    import polymodal.analysis.text_bias as text_bias
    import polymodal.methods.abpem as abpem

    for module in (abpem, contribution, text_bias):
        assert set(module.__all__) <= set(dir(module)), module.__name__
    assert contribution.Patches.__name__ == "Patches"
    assert text_bias.TextAugmentedVQA.__module__ == "polymodal.data.synth.shapes_text_vqa"
