"""Video super-resolution metrics computed the way published tables compute them.

Frames are RGB numpy arrays, ``(H, W, 3)`` for one frame or ``(T, H, W, 3)`` for a clip, ``uint8`` or float
values on the 0-255 scale.

PSNR and SSIM follow BasicSR (XPixelGroup/BasicSR ``basicsr/metrics/psnr_ssim.py`` ``calculate_psnr`` /
``calculate_ssim`` / ``_ssim``, with ``basicsr/metrics/metric_util.py`` ``to_y_channel`` and
``basicsr/utils/color_util.py`` ``rgb2ycbcr``), the convention most VSR papers report:

* ``crop_border`` pixels are dropped at each of the four borders *before* the colour conversion;
* ``y_channel=True`` evaluates the BT.601 luma ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (MATLAB's
  ``rgb2ycbcr``; range [16, 235]), kept as an unrounded float -- BasicSR computes it on the image scaled to
  [0, 1] and multiplies the result by 255, which is the same number; ``y_channel=False`` uses the three RGB
  channels;
* PSNR is ``10 log10(255^2 / MSE)`` in float64 (``inf`` for identical frames);
* SSIM uses an 11x11 Gaussian window with sigma 1.5 (``cv2.getGaussianKernel(11, 1.5)`` outer product),
  ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, 'valid' filtering (``cv2.filter2D`` then 5 pixels cropped
  from every side) and the mean of the SSIM map; for RGB the mean over the three channels.

A clip ``(T, H, W, 3)`` is scored per frame and the per-frame values are averaged, as video SR papers average
(per frame, then over frames; a dataset score is then usually the mean over clips).  BasicSR rounds the luma
through float32; this module keeps float64, which moves Y by less than 1e-4 and PSNR by less than 1e-6 dB.

tOF is TecoGAN's temporal metric (thunil/TecoGAN ``metrics.py``): for each consecutive pair of frames the
Farneback optical flow (``cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)`` on
``cv2.COLOR_RGB2GRAY`` frames) of the output and of the target, the per-pixel L2 norm of their difference
averaged over the pixels of TecoGAN's centre crop (``crop_8x8``), then averaged over pairs.  Lower is better.
The value is unscaled; tables usually print tOF x 10.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["farneback_flow", "flow_difference", "frame_psnr_ssim", "frame_tof", "psnr", "rgb_to_y", "ssim",
           "tecogan_crop", "tof"]

# BT.601 luma weights for RGB in [0, 1] giving Y on the 0-255 scale (BasicSR rgb2ycbcr, MATLAB rgb2ycbcr).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255.0) ** 2
_SSIM_C2 = (0.03 * 255.0) ** 2

# TecoGAN metrics.py: cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)
_FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
              "flags": 0}


def _frames(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as a numpy array of ``(H, W, 3)`` or ``(T, H, W, 3)`` real-valued RGB frames."""
    array = np.asarray(array)
    if array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise ValueError(f"{name} must be RGB frames of shape (H, W, 3) or (T, H, W, 3), got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer or float pixel values, got dtype {array.dtype}")
    if 0 in array.shape:
        raise ValueError(f"{name} has no pixels: shape {array.shape}")
    return array


def _pair(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(T, H, W, 3)`` views of ``output`` and ``target`` (a single frame gets ``T = 1``)."""
    output = _frames("output", output)
    target = _frames("target", target)
    if output.shape != target.shape:
        raise ValueError(f"output and target shapes differ: output {output.shape} vs target {target.shape}")
    if output.ndim == 3:
        output, target = output[None], target[None]
    return output, target


def _crop(clip: np.ndarray, crop_border: int) -> np.ndarray:
    """``clip`` ``(T, H, W, C)`` without ``crop_border`` pixels at every border (BasicSR ``crop_border``)."""
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be an int >= 0, got {crop_border!r}")
    height, width = clip.shape[1:3]
    if 2 * crop_border >= height or 2 * crop_border >= width:
        raise ValueError(f"crop_border={crop_border} leaves no pixels of frames of shape {clip.shape[1:]}")
    if crop_border == 0:
        return clip
    return clip[:, crop_border:-crop_border, crop_border:-crop_border]


def rgb_to_y(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB frames, unrounded float64 on the 0-255 scale (range [16, 235]).

    ``frames``: ``(H, W, 3)`` or ``(T, H, W, 3)`` RGB, ``uint8`` or float in [0, 255]; returns ``(H, W)`` or
    ``(T, H, W)``.  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, i.e. BasicSR ``to_y_channel``
    (``rgb2ycbcr(img / 255, y_only=True) * 255``, basicsr/metrics/metric_util.py) and MATLAB ``rgb2ycbcr``.
    """
    frames = _frames("frames", frames)
    return frames.astype(np.float64) @ (_Y_WEIGHTS / 255.0) + _Y_OFFSET


def _planes(clip: np.ndarray, crop_border: int, y_channel: bool) -> np.ndarray:
    """Cropped float64 ``(T, H, W, C)`` planes to score: ``C = 1`` (Y) or ``3`` (RGB)."""
    clip = _crop(clip, crop_border)
    if y_channel:
        return rgb_to_y(clip)[..., None]
    return clip.astype(np.float64)


def _psnr_planes(out: np.ndarray, tgt: np.ndarray) -> float:
    """BasicSR ``calculate_psnr`` on prepared float64 planes ``(H, W, C)``."""
    mse = np.mean((out - tgt) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim_window() -> np.ndarray:
    kernel = cv2.getGaussianKernel(_SSIM_WINDOW, _SSIM_SIGMA)
    return np.outer(kernel, kernel.transpose())


def _ssim_plane(out: np.ndarray, tgt: np.ndarray, window: np.ndarray) -> float:
    """BasicSR ``_ssim`` on one float64 ``(H, W)`` plane: mean of the 'valid' SSIM map."""
    r = _SSIM_WINDOW // 2

    def blur(plane: np.ndarray) -> np.ndarray:
        return cv2.filter2D(plane, -1, window)[r:-r, r:-r]

    mu1, mu2 = blur(out), blur(tgt)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = blur(out ** 2) - mu1_sq
    sigma2_sq = blur(tgt ** 2) - mu2_sq
    sigma12 = blur(out * tgt) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)) / (
        (mu1_sq + mu2_sq + _SSIM_C1) * (sigma1_sq + sigma2_sq + _SSIM_C2))
    return float(ssim_map.mean())


def _ssim_frames(out: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of prepared ``(T, H, W, C)`` planes, mean over channels (BasicSR ``calculate_ssim``)."""
    height, width = out.shape[1:3]
    if height < _SSIM_WINDOW or width < _SSIM_WINDOW:
        raise ValueError(f"ssim needs frames of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after crop_border, "
                         f"got {height}x{width}")
    window = _ssim_window()
    return np.array([np.mean([_ssim_plane(np.ascontiguousarray(o[..., c]), np.ascontiguousarray(t[..., c]), window)
                              for c in range(out.shape[-1])]) for o, t in zip(out, tgt)], dtype=np.float64)


def frame_psnr_ssim(output: np.ndarray, target: np.ndarray, crop_border: int = 0,
                    y_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame PSNR (dB) and SSIM, each a float64 array of shape ``(T,)`` (``(1,)`` for one frame).

    ``output``/``target``: ``(H, W, 3)`` or ``(T, H, W, 3)`` RGB in [0, 255] (``uint8`` or float), same shape.
    Same conventions as :func:`psnr` and :func:`ssim` (BasicSR ``calculate_psnr`` / ``calculate_ssim``); frames
    must be at least 11x11 after cropping.
    """
    out, tgt = _pair(output, target)
    out, tgt = _planes(out, crop_border, y_channel), _planes(tgt, crop_border, y_channel)
    ssims = _ssim_frames(out, tgt)
    psnrs = np.array([_psnr_planes(o, t) for o, t in zip(out, tgt)], dtype=np.float64)
    return psnrs, ssims


def psnr(output: np.ndarray, target: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB as BasicSR ``calculate_psnr`` (basicsr/metrics/psnr_ssim.py) computes it.

    ``output``/``target``: ``(H, W, 3)`` or ``(T, H, W, 3)`` RGB in [0, 255] (``uint8`` or float), same shape.
    ``crop_border`` pixels are dropped at every border, then ``10 log10(255^2 / MSE)`` over the BT.601 Y channel
    (:func:`rgb_to_y`, ``y_channel=True``) or over R, G and B (``y_channel=False``); ``inf`` when identical.
    A clip gives the mean of its per-frame PSNRs (``inf`` if any frame is identical).
    """
    out, tgt = _pair(output, target)
    out, tgt = _planes(out, crop_border, y_channel), _planes(tgt, crop_border, y_channel)
    return float(np.mean([_psnr_planes(o, t) for o, t in zip(out, tgt)]))


def ssim(output: np.ndarray, target: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM as BasicSR ``calculate_ssim`` / ``_ssim`` (basicsr/metrics/psnr_ssim.py) computes it.

    ``output``/``target``: ``(H, W, 3)`` or ``(T, H, W, 3)`` RGB in [0, 255] (``uint8`` or float), same shape.
    ``crop_border`` pixels are dropped at every border; 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01*255)^2``,
    ``C2 = (0.03*255)^2``, 'valid' filtering, mean of the SSIM map, on Y (``y_channel=True``) or averaged over
    R, G, B.  Frames must be at least 11x11 after cropping.  A clip gives the mean of its per-frame SSIMs.
    """
    out, tgt = _pair(output, target)
    out, tgt = _planes(out, crop_border, y_channel), _planes(tgt, crop_border, y_channel)
    return float(np.mean(_ssim_frames(out, tgt)))


def tecogan_crop(height: int, width: int) -> tuple[slice, slice]:
    """TecoGAN's ``crop_8x8`` centre crop of an ``(height, width)`` frame as ``(rows, cols)`` slices.

    The largest multiple of 32 in each dimension that leaves at least 8 pixels on each side, centred
    (thunil/TecoGAN metrics.py).  Empty slices for frames smaller than 48 pixels.
    """
    h, w = (height // 32) * 32, (width // 32) * 32
    while h > height - 16:
        h -= 32
    while w > width - 16:
        w -= 32
    h, w = max(h, 0), max(w, 0)
    y, x = (height - h) // 2, (width - w) // 2
    return slice(y, y + h), slice(x, x + w)


def _grey(clip: np.ndarray) -> list[np.ndarray]:
    """``cv2.COLOR_RGB2GRAY`` of every frame of a ``(T, H, W, 3)`` clip, as ``uint8`` (TecoGAN reads PNGs)."""
    if clip.dtype != np.uint8:
        clip = np.clip(np.round(clip), 0, 255).astype(np.uint8)
    return [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in clip]


def _tof_crop(shape: tuple[int, ...], center_crop: bool) -> tuple[slice, slice]:
    """The pixels tOF averages over, for frames of ``shape`` (``(H, W, ...)``)."""
    if not center_crop:
        return slice(None), slice(None)
    rows, cols = tecogan_crop(*shape[:2])
    if rows.stop == rows.start or cols.stop == cols.start:
        raise ValueError(f"center_crop leaves no pixels of frames of shape {tuple(shape)} (TecoGAN's crop needs "
                         "H and W >= 48); pass center_crop=False")
    return rows, cols


def farneback_flow(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """TecoGAN's flow between two RGB frames ``(H, W, 3)`` (uint8; float is rounded): Farneback with
    TecoGAN's parameters on ``cv2.COLOR_RGB2GRAY`` frames, ``(H, W, 2)`` float32 ``(dx, dy)``."""
    previous_grey, current_grey = _grey(np.stack([previous, current]))
    return cv2.calcOpticalFlowFarneback(previous_grey, current_grey, None, **_FARNEBACK)


def flow_difference(output_flow: np.ndarray, target_flow: np.ndarray, center_crop: bool = True) -> float:
    """One pair's tOF: the mean over pixels (of TecoGAN's centre crop, :func:`tecogan_crop`) of the L2 norm
    of ``target_flow - output_flow``, both ``(H, W, 2)``."""
    rows, cols = _tof_crop(target_flow.shape[:2], center_crop)
    diff = (target_flow - output_flow)[rows, cols]
    return float(np.sqrt(np.sum(diff * diff, axis=-1)).mean(dtype=np.float64))


def frame_tof(output: np.ndarray, target: np.ndarray, center_crop: bool = True) -> np.ndarray:
    """Per-pair TecoGAN tOF, a float64 array of shape ``(T - 1,)``: entry ``t - 1`` scores frames ``(t-1, t)``.

    ``output``/``target``: ``(T, H, W, 3)`` RGB clips with ``T >= 2``, ``uint8`` (float is rounded and clipped to
    ``uint8`` first, as saving PNGs would).  See :func:`tof` for the convention.
    """
    out = _frames("output", output)
    tgt = _frames("target", target)
    if out.ndim != 4 or out.shape[0] < 2:
        raise ValueError(f"tof needs output clips of shape (T, H, W, 3) with T >= 2, got shape {out.shape}")
    if out.shape != tgt.shape:
        raise ValueError(f"output and target shapes differ: output {out.shape} vs target {tgt.shape}")
    _tof_crop(out.shape[1:], center_crop)  # before any flow is computed
    return np.array([flow_difference(farneback_flow(out[t - 1], out[t]), farneback_flow(tgt[t - 1], tgt[t]),
                                     center_crop) for t in range(1, len(out))], dtype=np.float64)


def tof(output: np.ndarray, target: np.ndarray, center_crop: bool = True) -> float:
    """TecoGAN's temporal optical-flow metric tOF (thunil/TecoGAN metrics.py); lower is better.

    ``output``/``target``: ``(T, H, W, 3)`` RGB clips, ``T >= 2``, ``uint8`` (float is rounded to ``uint8``).
    For each consecutive pair ``(t-1, t)``: Farneback flow (``cv2.calcOpticalFlowFarneback(prev, cur, None,
    0.5, 3, 15, 3, 5, 1.2, 0)``) of the ``cv2.COLOR_RGB2GRAY`` output frames and of the target frames, the
    per-pixel L2 norm of the flow difference, averaged over the pixels of TecoGAN's centre crop
    (:func:`tecogan_crop`; ``center_crop=False`` averages over the full frame, as TecoGAN-PyTorch does);
    returns the mean over pairs, unscaled -- the value TecoGAN's script computes per pair (about 0.1-0.3 on
    Vid4 for GAN VSR models).  Tables usually print ``tOF x 10`` (the TecoGAN paper, many later VSR papers);
    check the header before comparing.  TecoGAN's script also skips 2 frames at each end of a sequence:
    ``tof(output[2:-2], target[2:-2])`` reproduces its per-sequence number.
    """
    return float(np.mean(frame_tof(output, target, center_crop=center_crop)))
