"""Checkpoints whose weights are safetensors.

A Lightning checkpoint becomes a folder named like the usual ``*.ckpt`` file:

    epoch=3-step=500.ckpt/
        model.safetensors   the LightningModule's state dict
        state.pt            everything else needed to resume (optimizer, scheduler,
                            loops, callbacks), read back with ``weights_only=True``

Folders are written under a temporary name and renamed, so a run killed while
saving never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from safetensors.torch import load_file, save_file

from polymodal.errors import DataError

WEIGHTS = "model.safetensors"
STATE = "state.pt"


def save_weights(state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write a state dict as safetensors (tensors made contiguous, shared storage split)."""
    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, str(path))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict, or a checkpoint folder's ``model.safetensors``."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise DataError(f"no weights at {path}; expected a .safetensors file or checkpoint folder")
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise DataError(f"{path} is not a readable safetensors file: {error}") from error


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning checkpoint I/O that stores weights as safetensors (see module doc)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        target = Path(path)
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        rest = {k: v for k, v in checkpoint.items() if k != "state_dict"}
        save_weights(checkpoint["state_dict"], staging / WEIGHTS)
        torch.save(rest, staging / STATE)
        self.remove_checkpoint(target)
        staging.rename(target)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        folder = Path(path)
        if not (folder / STATE).is_file():
            raise DataError(f"{folder} is not a polymodal checkpoint folder (no {STATE} inside)")
        checkpoint: dict[str, Any] = torch.load(
            folder / STATE, map_location=map_location, weights_only=True
        )
        checkpoint["state_dict"] = load_weights(folder)
        return checkpoint

    def remove_checkpoint(self, path: Any) -> None:
        target = Path(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
