"""Checkpoints: written atomically, loaded without running code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts saved with
``torch.save`` to a temporary file in the same folder, flushed, fsynced and renamed over
the target: a run killed mid-write leaves the previous checkpoint intact.  Loading uses
``torch.load(weights_only=True)``, so a checkpoint file can never execute code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from deepvideo.io.atomic import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, unreadable or not a deepvideo checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename)."""
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True``; check that ``required`` keys exist."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise CheckpointError(f"{path}: not a deepvideo checkpoint (needs keys {list(required)})")
    return state
