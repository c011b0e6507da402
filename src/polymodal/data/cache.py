"""The on-disk cache for generated data and trained models.

Everything polymodal generates lives under ``$POLYMODAL_HOME`` (default
``~/.cache/polymodal``), one folder per entry at ``<home>/<kind>/<key>`` (kinds such
as ``av_digits``, ``vlm`` or ``bench/fusion``). Each entry holds a
``manifest.json``: its kind, parameters, code fingerprint and creation time, plus,
for data builds, the generator version, sizes and the sha256 of every file.

**Keys cover config and code.** A key hashes the entry's parameters (its config)
together with :func:`code_fingerprint` of the modules that produce it, so a change
to the code yields a new key and the old result is never re-used:

* the fingerprint is a sha256 over the source text of the named modules and of
  every module of the same top-level package (``polymodal``) that they import,
  transitively, read from each file's ``ast`` (``import`` and ``from`` statements
  anywhere in the file, function bodies included; relative imports resolved; a
  package means its ``__init__.py``, and importing ``a.b.c`` also runs ``a`` and
  ``a.b``). It is transitive because a result depends on everything its code
  calls: a model is defined by its builder *and* the layers the builder uses.
* other packages (torch, numpy, ...) are not hashed, nor is this module: it decides
  where results are stored, not what they contain.
* the files are hashed on every call (exact, a few milliseconds); only their parsed
  imports are kept per process, re-parsed when a file's content changes.

Data builds (:func:`cached_build`) also keep a hand-set generator version, and an
entry is reused only when its files still hash to the recorded values; otherwise it
is rebuilt into a temporary folder and moved into place atomically, so an
interrupted build never leaves a half-written entry behind. Trained models get
their folder from :func:`run_folder`. :func:`cache_entries` lists the entries and
:func:`clear_cache` removes them (``polymodal cache list`` / ``clear``).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError

MANIFEST = "manifest.json"

# Entries already verified by this process, with their manifest's modification time:
# hashing every file again on each load would dominate short runs.
_VERIFIED: dict[Path, float] = {}

_RUNNING: dict[str, tuple[str, frozenset[str]]] = {}
"""Source sha256 and imported names of modules this process has imported, taken the
first time each is hashed: an edit on disk after the import does not change the
code that runs, so it must not move the keys of a run in progress (a check that
derives one run's folder from another's would look for a folder never written)."""


def home() -> Path:
    """The cache root: ``$POLYMODAL_HOME`` or ``~/.cache/polymodal``."""
    root = os.environ.get("POLYMODAL_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "polymodal"


def params_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters (sorted keys)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Parsed imports of each source file, with the sha256 of the text they were read
# from: parsing is the slow part of a fingerprint, reading and hashing are not.
_IMPORTS: dict[Path, tuple[str, frozenset[str]]] = {}


def _source_file(module: str) -> Path | None:
    """The ``.py`` file of ``module`` (a package: its ``__init__.py``), found without
    importing it; None when there is none (a namespace package, an extension)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        origin = Path(spec.origin) if spec.origin else None
        return origin if origin is not None and origin.suffix == ".py" else None
    if not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> frozenset[str]:
    """Every module name an ``import`` or ``from`` statement in ``tree`` may load.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule);
    names that are not modules are dropped later, when no file is found for them.
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb ``level - 1`` packages up from our own
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _imports_of(path: Path, module: str, digest: str, text: bytes) -> frozenset[str]:
    cached = _IMPORTS.get(path)
    if cached is not None and cached[0] == digest:
        return cached[1]
    tree = ast.parse(text, filename=str(path))
    names = _imported_names(tree, module, path.name == "__init__.py")
    _IMPORTS[path] = (digest, names)
    return names


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a module runs its packages first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def code_digests(*modules: str) -> dict[str, str]:
    """The sha256 of each source file that :func:`code_fingerprint` covers.

    Args:
        modules: dotted module names, e.g. ``"polymodal.train.recipe"``.

    Returns:
        ``{module name: sha256 of its source}`` for the named modules, their parent
        packages and, transitively, every module of the same package they import.

    Raises:
        ValueError: a named module has no source file.
    """
    pending: list[str] = []
    for name in modules:
        if _source_file(name) is None:
            raise ValueError(f"code fingerprint: no source file for module {name!r}")
        pending.extend(_with_parents(name))
    digests: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in digests or name == __name__:
            continue
        path = _source_file(name)
        if path is None:  # an attribute imported by name, or a namespace package
            continue
        digests[name], imports = _module_record(name, path)
        top = name.split(".")[0]
        for imported in imports:
            if imported.split(".")[0] == top:  # other packages are not hashed
                pending.extend(_with_parents(imported))
    return digests


def _module_record(name: str, path: Path) -> tuple[str, frozenset[str]]:
    """The sha256 of module ``name``'s source at ``path`` and the modules it imports;
    for a module imported in this process, the record it had when first read here
    (:data:`_RUNNING`), without reading the file again."""
    if name in _RUNNING:
        return _RUNNING[name]
    text = path.read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    record = (digest, _imports_of(path, name, digest, text))
    if name in sys.modules:
        _RUNNING[name] = record
    return record


def code_fingerprint(*modules: str) -> str:
    """A hash of the source of ``modules`` and of all they import from their package.

    Args:
        modules: dotted module names, e.g. ``"polymodal.train.recipe"``.

    Returns:
        16 hex digits over the sorted ``(module name, source sha256)`` pairs of
        :func:`code_digests`; any edit to any of those files changes them, except
        edits to modules this process has already imported and hashed: those do
        not change the code that runs here (a new process sees them).
    """
    total = hashlib.sha256()
    for name, digest in sorted(code_digests(*modules).items()):
        total.update(f"{name}\0{digest}\n".encode())
    return total.hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it is absent or unreadable."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _manifest_time(folder: Path) -> float | None:
    try:
        return (folder / MANIFEST).stat().st_mtime
    except OSError:
        return None


def _as_json(params: Mapping[str, Any]) -> Any:
    """``params`` as they read back from a manifest (tuples become lists, ...)."""
    return json.loads(json.dumps(params, default=str))


def _is_valid(
    folder: Path, version: str, params: Mapping[str, Any], fingerprint: str | None
) -> bool:
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("version") != version:
        return False
    if manifest.get("params") != _as_json(params) or manifest.get("fingerprint") != fingerprint:
        return False
    files = manifest.get("files", {})
    return all(
        (folder / name).is_file() and sha256_file(folder / name) == digest
        for name, digest in files.items()
    )


def cached_build(
    kind: str,
    version: str,
    params: Mapping[str, Any],
    build: Callable[[Path], Mapping[str, Any] | None],
    root: Path | None = None,
    code: Sequence[str] = (),
) -> Path:
    """Return the cache folder for ``(kind, version, params, code)``, building it if needed.

    Args:
        kind: entry family, e.g. ``"av_digits"``; becomes a sub-folder.
        version: generator version; a different version forces a rebuild.
        params: everything the output depends on (seed, sizes, knobs).
        build: writes the entry's files into the folder it is given and may return
            extra manifest fields (e.g. sizes).
        root: cache root; defaults to :func:`home`.
        code: modules that generate the entry (e.g. ``("polymodal.data.synth.av_digits",)``);
            their :func:`code_fingerprint` is part of the key, so editing them rebuilds.

    Returns:
        The folder holding the built files and ``manifest.json``.
    """
    fingerprint = code_fingerprint(*code) if code else None
    key = {"version": version, **params}
    if fingerprint is not None:  # without code, keys stay as they were
        key["code fingerprint"] = fingerprint
    folder = (root or home()) / kind / params_key(key)
    stamp = _manifest_time(folder)
    if stamp is not None and _VERIFIED.get(folder) == stamp:
        return folder
    if _is_valid(folder, version, params, fingerprint):
        _VERIFIED[folder] = _manifest_time(folder) or 0.0
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        started = time.perf_counter()
        extra = build(staging) or {}
        files = {
            str(p.relative_to(staging)): sha256_file(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "kind": kind,
            "version": version,
            "params": _as_json(params),
            "code": list(code),
            "fingerprint": fingerprint,
            "created": time.time(),
            "files": files,
            "build_seconds": round(time.perf_counter() - started, 3),
            **extra,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def run_folder(
    kind: str, params: Mapping[str, Any], code: Sequence[str], root: Path | None = None
) -> Path:
    """The cache folder of a trained model, keyed by its config and code fingerprint.

    The folder is created with a ``manifest.json`` (kind, params, code modules,
    fingerprint, creation time) so that ``polymodal cache list`` can describe it;
    what goes inside is up to the caller (a training run's files).

    Args:
        kind: entry family, e.g. ``"bench/fusion"`` or ``"vlm"``.
        params: the run's config, JSON-serialisable.
        code: modules that define the model, its recipe and its data; builders and
            datasets named by a string in the config must be listed here, as no
            import statement leads to them.
        root: cache root; defaults to :func:`home`.

    Returns:
        ``<root>/<kind>/<key>``, existing.
    """
    fingerprint = code_fingerprint(*code)
    folder = (root or home()) / kind / params_key({"params": params, "code": fingerprint})
    if read_manifest(folder) is None:
        manifest = {
            "kind": kind,
            "params": _as_json(params),
            "code": list(code),
            "fingerprint": fingerprint,
            "created": time.time(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return folder


def empty_run_folder(folder: Path) -> None:
    """Delete everything in a :func:`run_folder` but its manifest (to train afresh)."""
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.name == MANIFEST:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file, so readers never see half of it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


# Listing and clearing.

_KEY = re.compile(r"[0-9a-f]{16}")
"""A folder named like a key, without a manifest: an entry made before manifests."""


@dataclass(frozen=True)
class CacheEntry:
    """One cached artefact.

    Attributes:
        kind: its family, the folder path below the cache root (``bench/fusion``).
        key: its folder name.
        path: its folder.
        size: bytes of all its files.
        created: when it was made (seconds since the epoch).
        summary: what it is, e.g. ``v3, seed=0, train=1500, code 1a2b3c4d``.
    """

    kind: str
    key: str
    path: Path
    size: int
    created: float
    summary: str


def _folder_size(folder: Path) -> int:
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we walk
                total += (Path(parent) / name).lstat().st_size
    return total


def _summary(manifest: Mapping[str, Any] | None, limit: int = 72) -> str:
    """A one-line description of an entry from its manifest."""
    if manifest is None:
        return "no manifest (made before code fingerprints)"
    parts: list[str] = []
    if "version" in manifest:
        version = str(manifest["version"])
        parts.append(f"v{version}" if version[:1].isdigit() else version)
    params = manifest.get("params")
    params = params if isinstance(params, Mapping) else {}
    # Scalars only: a run config's nested sections would drown the line.
    scalars = {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    scalars.pop("out_dir", None)
    if "name" in scalars:
        parts.append(str(scalars.pop("name")))
    if manifest.get("fingerprint"):  # before the parameters, which may be cut off
        parts.append(f"code {str(manifest['fingerprint'])[:8]}")
    parts += [f"{k}={v}" for k, v in scalars.items()]
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _entry(folder: Path, root: Path) -> CacheEntry:
    manifest = read_manifest(folder)
    created = manifest.get("created") if manifest else None
    if not isinstance(created, int | float):  # older manifests: when it was written
        created = (_manifest_time(folder) if manifest else None) or folder.stat().st_mtime
    return CacheEntry(
        kind=folder.parent.relative_to(root).as_posix(),
        key=folder.name,
        path=folder,
        size=_folder_size(folder),
        created=float(created),
        summary=_summary(manifest),
    )


def _entry_folders(folder: Path) -> Iterator[Path]:
    """Entry folders below a kind folder; an entry's own sub-folders are not searched."""
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith("."):  # staging folders
            continue
        if (child / MANIFEST).is_file() or _KEY.fullmatch(child.name):
            yield child
        else:
            yield from _entry_folders(child)


def cache_entries(root: Path | None = None) -> list[CacheEntry]:
    """Every entry in the cache, sorted by kind and key.

    An entry is a folder with a ``manifest.json`` (or, from before manifests, a
    folder named like a key) at least one level below the root.

    Args:
        root: cache root; defaults to :func:`home`.
    """
    root = root or home()
    if not root.is_dir():
        return []
    kinds = [c for c in sorted(root.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    return [_entry(folder, root) for kind in kinds for folder in _entry_folders(kind)]


def _matches(entry: CacheEntry, name: str) -> bool:
    return (
        entry.kind == name
        or entry.kind.startswith(name + "/")  # "bench" covers "bench/fusion"
        or entry.key == name
        or f"{entry.kind}/{entry.key}" == name
    )


def clear_cache(name: str | None = None, root: Path | None = None) -> list[CacheEntry]:
    """Remove cache entries: all of them, one kind's, or one key's.

    Args:
        name: None for everything; a kind (``av_digits``, ``vlm``, ``bench/fusion``,
            or ``bench`` for all its kinds); a key; or ``kind/key``.
        root: cache root; defaults to :func:`home`.

    Returns:
        The entries removed.

    Raises:
        ConfigError: ``name`` matches no entry; the message lists the kinds present.
    """
    root = root or home()
    entries = cache_entries(root)
    if name is not None:
        name = name.strip("/")
        entries = [entry for entry in entries if _matches(entry, name)]
        if not entries:
            kinds = sorted({entry.kind for entry in cache_entries(root)})
            present = ", ".join(kinds) if kinds else "none, the cache is empty"
            raise ConfigError(f"no cache entry matches {name!r}; kinds present: {present}")
    for entry in entries:
        shutil.rmtree(entry.path, ignore_errors=True)
        _VERIFIED.pop(entry.path, None)
        _remove_empty_parents(entry.path.parent, root)
    return entries


def _remove_empty_parents(folder: Path, root: Path) -> None:
    """Remove kind folders left empty, up to (not including) the root."""
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def format_size(size: float) -> str:
    """Bytes in human units: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_age(seconds: float) -> str:
    """An age in the largest whole unit: ``40s``, ``5m``, ``3h``, ``12d``."""
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{unit}"
    return f"{max(int(seconds), 0)}s"


def entries_table(entries: Sequence[CacheEntry], now: float | None = None) -> str:
    """A fixed-width table of ``entries`` (kind, key, size, age, what) and their total."""
    now = time.time() if now is None else now
    rows = [("kind", "key", "size", "age", "what")]
    rows += [
        (e.kind, e.key, format_size(e.size), format_age(now - e.created), e.summary)
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]])
        for row in rows
    ]
    total = sum(e.size for e in entries)
    lines.append(f"total: {len(entries)} entries, {format_size(total)}")
    return "\n".join(line.rstrip() for line in lines)
