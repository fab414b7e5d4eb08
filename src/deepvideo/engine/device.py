"""Where and how tensors run: device choice, AMP mode, autocast, channels_last layouts."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

__all__ = ["AMP_CHOICES", "AMP_MODES", "autocast", "cpu_has_native_bf16", "prepare_input", "prepare_model",
           "resolve_amp", "resolve_device"]

AMP_MODES = ("none", "bf16", "fp16")
AMP_CHOICES = (*AMP_MODES, "auto")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(name: str) -> torch.device:
    """"auto" picks CUDA when present; asking for CUDA without it is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: not a device name (cpu, cuda, cuda:N, mps or auto)") from None
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r}: this PyTorch has no MPS device (Apple GPUs only)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r}: deepvideo runs on cpu, cuda, cuda:N, mps or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA device is available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


@lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bf16 arithmetic (AVX512_BF16 or AMX-BF16), read from the kernel's
    CPU flags; ``False`` where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_amp(amp: str, device: torch.device) -> str:
    """The AMP mode to run: ``"auto"`` becomes bf16 where the hardware has it (CUDA with
    bf16 support, or a CPU with AVX512_BF16/AMX), fp16 on older CUDA GPUs, and ``"none"``
    on other CPUs.  ``"bf16"`` asked on a CPU without native bf16 warns once: there it runs
    emulated, many times slower than fp32 (``BENCHMARKS.md``)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if device.type == "cuda":
        if amp == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return amp
    native = cpu_has_native_bf16()
    if amp == "auto":
        return "bf16" if native else "none"
    if amp == "bf16" and not native:
        warnings.warn("amp='bf16' on a CPU without native bf16 (no AVX512_BF16 or AMX_BF16 flag): "
                      "it runs emulated, many times slower than fp32; use amp='auto' or 'none'",
                      stacklevel=2)
    return amp


def autocast(device: torch.device, amp: str):
    """Autocast context for ``amp`` mode on ``device`` (a no-op for "none").

    Both modes run on the CPU too, but only fast where it has the arithmetic: bf16 with
    AVX512_BF16 or AMX, fp16 with AVX512_FP16 or AMX-FP16 (``BENCHMARKS.md``).
    """
    if amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dim() == 5:
        return tensor.contiguous(memory_format=torch.channels_last_3d)
    if tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move to ``device``; with ``channels_last`` put convolution weights in channels_last
    (4-D, Conv2d) or channels_last_3d (5-D, Conv3d)."""
    model.to(device)
    if channels_last:
        for param in model.parameters():
            param.data = _channels_last(param.data)
    return model


def prepare_input(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """Every tensor of ``batch`` (a tensor, or tuples, lists and dicts of them, as the
    DataLoader collates) on ``device``; with ``channels_last``, 5-D clips ``(B, C, T, H, W)``
    in channels_last_3d and 4-D images ``(B, C, H, W)`` in channels_last.  Sequences come
    back as tuples (a two-stream pair ``(rgb, flow)`` stays a pair)."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return _channels_last(batch) if channels_last else batch
    if isinstance(batch, dict):
        return {key: prepare_input(value, device, channels_last) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return tuple(prepare_input(part, device, channels_last) for part in batch)
    return batch
