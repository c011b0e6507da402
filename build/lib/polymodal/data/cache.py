"""The on-disk cache for generated data and trained models.

Everything polymodal generates lives under ``$POLYMODAL_HOME`` (default
``~/.cache/polymodal``). Each entry is a folder holding its files and a
``manifest.json`` (generator version, parameters, sizes, sha256 of every file). An
entry is reused only when its manifest matches the requested version and
parameters and its files still hash to the recorded values; otherwise it is rebuilt
into a temporary folder and moved into place atomically, so an interrupted build
never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"

# Entries already verified by this process, with their manifest's modification time:
# hashing every file again on each load would dominate short runs.
_VERIFIED: dict[Path, float] = {}


def home() -> Path:
    """The cache root: ``$POLYMODAL_HOME`` or ``~/.cache/polymodal``."""
    root = os.environ.get("POLYMODAL_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "polymodal"


def params_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters (sorted keys)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _is_valid(folder: Path, version: str, params: Mapping[str, Any]) -> bool:
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("version") != version:
        return False
    if manifest.get("params") != json.loads(json.dumps(params, default=str)):
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
) -> Path:
    """Return the cache folder for ``(kind, params)``, building it if needed.

    Args:
        kind: entry family, e.g. ``"av_digits"``; becomes a sub-folder.
        version: generator version; a different version forces a rebuild.
        params: everything the output depends on (seed, sizes, knobs).
        build: writes the entry's files into the folder it is given and may return
            extra manifest fields (e.g. sizes).
        root: cache root; defaults to :func:`home`.

    Returns:
        The folder holding the built files and ``manifest.json``.
    """
    folder = (root or home()) / kind / params_key({"version": version, **params})
    stamp = _manifest_time(folder)
    if stamp is not None and _VERIFIED.get(folder) == stamp:
        return folder
    if _is_valid(folder, version, params):
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
            "params": json.loads(json.dumps(params, default=str)),
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
