"""Degradations: how a high-resolution (HR) video becomes its low-resolution (LR) input.

Super-resolution learns to invert a known degradation, so any video becomes training pairs
without labels.  Two are standard in the video SR literature:

- ``bi``: bicubic down-sampling with anti-aliasing, the ``imresize(x, 1/s, "bicubic")`` of
  MATLAB (cubic kernel a = -0.5, widened by ``s`` when shrinking), as most papers' "BI".
- ``bd``: a Gaussian blur of sigma 1.5 followed by decimation by ``s``, the setting of
  FRVSR (Sajjadi et al., CVPR 2018) and TecoGAN ("BD").  The Gaussian is centred on the
  centre of each LR pixel's ``s x s`` footprint, ``s i + (s - 1) / 2`` in HR pixels, so that
  both degradations keep the image where bicubic up-sampling expects it and the bicubic
  baseline is not penalised by a half-pixel shift.

LR frames are quantised to 8 bits, as stored LR frames are.  Layouts: tensors
``(..., 3, H, W)`` float in ``[0, 1]``; frames ``(T, H, W, 3)`` uint8 RGB as decoded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.registry import Registry

__all__ = ["BD_SIGMA", "DEGRADATIONS", "SCALES", "bicubic_down", "blur_down", "degrade", "degrade_frames",
           "frames_to_tensor", "mod_crop", "random_crop_pair", "tensor_to_frames"]

SCALES = (2, 4)
BD_SIGMA = 1.5

DEGRADATIONS: Registry = Registry("degradation")


def _check(hr: torch.Tensor, scale: int) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if hr.dim() < 3 or hr.shape[-3] != 3:
        raise ValueError(f"hr must be (..., 3, H, W), got shape {tuple(hr.shape)}")
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"hr size {hr.shape[-2]}x{hr.shape[-1]} is not divisible by scale {scale}")


@DEGRADATIONS.register("bi", description="bicubic down-sampling with anti-aliasing (MATLAB imresize)")
def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """``(..., 3, H, W)`` -> ``(..., 3, H/s, W/s)``: anti-aliased bicubic (a = -0.5), unclamped."""
    _check(hr, scale)
    flat = hr.reshape(-1, *hr.shape[-3:])
    lr = F.interpolate(flat, size=(hr.shape[-2] // scale, hr.shape[-1] // scale), mode="bicubic",
                       align_corners=False, antialias=True)
    return lr.reshape(*hr.shape[:-2], *lr.shape[-2:])


def gaussian_taps(scale: int, sigma: float = BD_SIGMA) -> tuple[torch.Tensor, int]:
    """The 1-D Gaussian taps of :func:`blur_down` and the offset of the first one: output
    pixel ``i`` is ``sum_j taps[j] * x[s i + first + j]``, centred on ``s i + (s - 1) / 2``
    and reaching ``3 sigma`` either side."""
    centre = (scale - 1) / 2
    first, last = math.floor(centre - 3 * sigma), math.ceil(centre + 3 * sigma)
    offsets = torch.arange(first, last + 1, dtype=torch.float64) - centre
    taps = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return taps / taps.sum(), first


@DEGRADATIONS.register("bd", description="Gaussian blur sigma 1.5, then decimation (FRVSR, TecoGAN)")
def blur_down(hr: torch.Tensor, scale: int, sigma: float = BD_SIGMA) -> torch.Tensor:
    """``(..., 3, H, W)`` -> ``(..., 3, H/s, W/s)``: Gaussian blur (``sigma`` HR pixels, borders
    reflected) sampled at the centre of each LR pixel's footprint."""
    _check(hr, scale)
    taps, first = gaussian_taps(scale, sigma)
    taps = taps.to(hr.dtype).to(hr.device)
    before, after = -first, first + len(taps) - scale
    flat = hr.reshape(-1, 1, *hr.shape[-2:])
    flat = F.pad(flat, (before, after, before, after), mode="replicate" if min(hr.shape[-2:]) <= before
                 else "reflect")
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1), stride=(1, scale))
    flat = F.conv2d(flat, taps.view(1, 1, -1, 1), stride=(scale, 1))
    return flat.reshape(*hr.shape[:-2], *flat.shape[-2:])


def degrade(hr: torch.Tensor, scale: int, kind: str = "bd") -> torch.Tensor:
    """The LR version of ``hr`` (``(..., 3, H, W)`` float in ``[0, 1]``, sides divisible by
    ``scale``) under degradation ``kind`` (``"bi"`` or ``"bd"``), clamped and quantised to
    8 bits: ``(..., 3, H/s, W/s)``."""
    lr = DEGRADATIONS.get(kind)(hr, scale)
    return (lr.clamp(0, 1) * 255).round() / 255


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255


def tensor_to_frames(clip: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` float in ``[0, 1]`` -> ``(T, H, W, 3)`` uint8 (clamped, rounded)."""
    return (clip.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def mod_crop(frames: np.ndarray, scale: int) -> np.ndarray:
    """``(..., H, W, 3)`` frames cropped at the bottom and right to sides divisible by
    ``scale`` (BasicSR's ``mod_crop``)."""
    height, width = frames.shape[-3] - frames.shape[-3] % scale, frames.shape[-2] - frames.shape[-2] % scale
    if not height or not width:
        raise ValueError(f"frames of {frames.shape[-3]}x{frames.shape[-2]} are smaller than scale {scale}")
    return frames[..., :height, :width, :]


def degrade_frames(frames: np.ndarray, scale: int, kind: str = "bd") -> tuple[np.ndarray, np.ndarray]:
    """HR frames ``(T, H, W, 3)`` uint8 -> ``(hr, lr)``: the HR frames mod-cropped to sides
    divisible by ``scale`` and their LR frames ``(T, H/s, W/s, 3)`` uint8."""
    hr = mod_crop(frames, scale)
    return hr, tensor_to_frames(degrade(frames_to_tensor(hr), scale, kind))


def random_crop_pair(frames: np.ndarray, patch: int, scale: int, kind: str, rng: np.random.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``patch x patch`` HR crop of ``frames`` (``(T, H, W, 3)`` uint8) and its LR
    crop, ``(T, 3, patch, patch)`` and ``(T, 3, patch/s, patch/s)`` float in ``[0, 1]``.

    The crop starts on the LR grid and is degraded with a margin of real pixels around it,
    so the LR crop is exactly the crop of the whole degraded frame (no border effects).
    """
    if patch % scale:
        raise ValueError(f"patch {patch} is not divisible by scale {scale}")
    height, width = frames.shape[1] - frames.shape[1] % scale, frames.shape[2] - frames.shape[2] % scale
    if height < patch or width < patch:
        raise ValueError(f"frames of {frames.shape[1]}x{frames.shape[2]} are smaller than the crop {patch}")
    top = int(rng.integers(0, (height - patch) // scale + 1)) * scale
    left = int(rng.integers(0, (width - patch) // scale + 1)) * scale
    margin = (math.ceil(3 * BD_SIGMA) // scale + 2) * scale  # covers the Gaussian and the bicubic kernel
    y0, x0 = max(top - margin, 0), max(left - margin, 0)
    y1, x1 = min(top + patch + margin, height), min(left + patch + margin, width)
    hr = frames_to_tensor(frames[:, y0:y1, x0:x1])
    lr = degrade(hr, scale, kind)
    ly, lx, lp = (top - y0) // scale, (left - x0) // scale, patch // scale
    return (hr[:, :, top - y0:top - y0 + patch, left - x0:left - x0 + patch].contiguous(),
            lr[:, :, ly:ly + lp, lx:lx + lp].contiguous())
