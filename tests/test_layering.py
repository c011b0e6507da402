"""The layering rule of DESIGN §2, checked on the source: no module imports to its right.

Order: base utilities (``errors``, ``lazy``, ``runtime``, ``plots``) → ``data`` →
``modules``/``hf`` → ``train`` → ``methods``/``analysis`` → ``bench`` → ``cli``.
A paper's claim check (``methods/<paper>/claim.py``, ``analysis/<name>/claim.py``)
registers with the bench, so it ranks with ``bench``; a package's ``cli.py`` is
part of the command line and ranks with ``cli``. Packages under ``methods/`` and
``analysis/`` do not import each other: a helper two of them need moves down.

Every import counts, also those inside functions and ``TYPE_CHECKING`` blocks;
module names in strings (the bench and data registries) are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "polymodal"

BASE = ("errors", "lazy", "runtime", "plots")
LAYERS = {
    **dict.fromkeys(BASE, 0),
    "data": 1,
    "modules": 2,
    "hf": 2,
    "train": 3,
    "methods": 4,
    "analysis": 4,
    "bench": 5,
    "cli": 6,
}
ROLES = {"claim": LAYERS["bench"], "cli": LAYERS["cli"]}
"""Module basenames under ``methods/`` and ``analysis/`` that rank with a later layer."""
PAPER_LAYERS = ("methods", "analysis")


def module_name(path: Path, root: Path) -> str:
    """``root/data/synth/x.py`` -> ``polymodal.data.synth.x`` (a package: its folder)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([root.name, *parts])


def rank(module: str) -> int:
    """The layer of a dotted module name inside the package (the package itself: 0)."""
    parts = module.split(".")[1:]
    if not parts:
        return 0
    if parts[0] not in LAYERS:
        raise AssertionError(f"{module}: top-level module outside every layer; add it to LAYERS")
    if parts[0] in PAPER_LAYERS and len(parts) > 2 and parts[-1] in ROLES:
        return ROLES[parts[-1]]
    return LAYERS[parts[0]]


def paper(module: str) -> str | None:
    """``polymodal.methods.aki.generate`` -> ``polymodal.methods.aki``; None outside a paper."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in PAPER_LAYERS:
        return ".".join(parts[:3])
    return None


def imported_modules(
    tree: ast.Module, name: str, is_package: bool, root: Path
) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``root``'s package in a parsed module."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # ``from polymodal.data import synth``: the submodule, where there is one.
                candidate = f"{base}.{alias.name}"
                relative = Path(root.parent, *candidate.split("."))
                is_module = relative.with_suffix(".py").is_file() or relative.is_dir()
                found.append((node.lineno, candidate if is_module else base))
    ours = {(line, m) for line, m in found if m == root.name or m.startswith(f"{root.name}.")}
    return sorted(ours)  # one entry per module and line: ``from m import a, b`` is one import


def violations(root: Path = SRC) -> list[str]:
    """One line per import that breaks the rule: ``file:line: what is wrong``."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        own_rank, own_paper = rank(name), paper(name)
        for line, target in imported_modules(tree, name, path.name == "__init__.py", root):
            where = f"{path.relative_to(root.parent)}:{line}"
            if rank(target) > own_rank:
                problems.append(
                    f"{where}: imports {target} (layer {rank(target)}) from layer {own_rank}"
                )
            elif own_paper and paper(target) not in (None, own_paper):
                problems.append(f"{where}: imports {target}, another paper's package")
    return problems


def test_no_module_imports_from_a_layer_to_its_right() -> None:
    problems = violations()
    assert not problems, "layering rule broken (DESIGN §2):\n" + "\n".join(problems)


def test_the_check_names_the_file_and_the_import(tmp_path: Path) -> None:
    root = tmp_path / "polymodal"
    for folder in ("train", "methods/aki", "methods/divprune"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "train" / "vlm.py").write_text("def f():\n    from polymodal.methods.aki import mask\n")
    (root / "methods" / "aki" / "mask.py").write_text("from ..divprune import select\n")
    (root / "methods" / "divprune" / "select.py").write_text("from polymodal import errors\n")
    (root / "errors.py").write_text("")
    assert violations(root) == [
        "polymodal/methods/aki/mask.py:1: imports polymodal.methods.divprune.select, "
        "another paper's package",
        "polymodal/train/vlm.py:2: imports polymodal.methods.aki.mask (layer 4) from layer 3",
    ]


def test_claim_checks_rank_with_the_bench_and_clis_with_the_command_line() -> None:
    assert rank("polymodal.methods.aki.claim") == rank("polymodal.bench.fusion")
    assert rank("polymodal.analysis.text_bias.cli") == rank("polymodal.cli")
    assert rank("polymodal.methods.aki.mask_function") == rank("polymodal.analysis.text_bias")
