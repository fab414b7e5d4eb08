"""Where and how tensors run: device choice, autocast, channels_last_3d layout."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["AMP_MODES", "resolve_device", "autocast", "prepare_model", "prepare_input"]

AMP_MODES = ("none", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """"auto" picks CUDA when present; asking for CUDA without it is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device name (cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def autocast(device: torch.device, amp: str):
    """Autocast context for ``amp`` mode on ``device`` (a no-op for "none").

    Both modes run on the CPU too, but only fast where it has the arithmetic: bf16 with
    AVX512_BF16 or AMX, fp16 with AVX512_FP16 or AMX-FP16 (``BENCHMARKS.md``).
    """
    if amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move to ``device``; with ``channels_last`` put 5-D (Conv3d) weights in channels_last_3d."""
    model.to(device)
    if channels_last:
        for param in model.parameters():
            if param.dim() == 5:
                param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def prepare_input(clips: torch.Tensor | Sequence[torch.Tensor], device: torch.device,
                  channels_last: bool) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Batch ``(B, C, T, H, W)`` to ``device``, channels_last_3d when asked (for 5-D tensors).

    A sequence of batches (a two-stream pair ``(rgb (B, 3, T, H, W), flow (B, 2, L, H, W))``,
    as the DataLoader collates it) gives the tuple of each one prepared.
    """
    if not isinstance(clips, torch.Tensor):
        return tuple(prepare_input(part, device, channels_last) for part in clips)
    clips = clips.to(device, non_blocking=True)
    if channels_last and clips.dim() == 5:
        return clips.contiguous(memory_format=torch.channels_last_3d)
    return clips
