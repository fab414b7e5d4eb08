"""Flow accuracy: endpoint error and angular error (Baker et al., "A Database and Evaluation
Methodology for Optical Flow", IJCV 2011 -- the Middlebury benchmark's definitions).

Flow fields are ``(..., 2, H, W)`` float ``(dx, dy)`` in pixels (one field ``(2, H, W)`` or a
clip ``(T, 2, H, W)``); numpy arrays or torch tensors.  A ``mask`` (``(H, W)`` or anything
broadcastable to the per-pixel error ``(..., H, W)``) keeps the pixels to score, e.g. the
non-occluded ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["endpoint_error_map", "angular_error_map", "endpoint_error", "angular_error"]


def _numpy(x, dtype) -> np.ndarray:
    """A numpy array from a numpy array or a (possibly GPU, grad-tracking) torch tensor."""
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype)


def _pair(flow, gt) -> tuple[np.ndarray, np.ndarray]:
    flow, gt = _numpy(flow, np.float64), _numpy(gt, np.float64)
    if flow.shape != gt.shape or flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"flow and ground truth must be equal (..., 2, H, W) arrays, got "
                         f"{flow.shape} and {gt.shape}")
    return flow, gt


def endpoint_error_map(flow, gt) -> np.ndarray:
    """Per-pixel endpoint error ``|flow - gt|`` (Euclidean, pixels): ``(..., H, W)`` float64."""
    flow, gt = _pair(flow, gt)
    return np.sqrt(((flow - gt) ** 2).sum(axis=-3))


def angular_error_map(flow, gt) -> np.ndarray:
    """Per-pixel angular error in degrees: the angle between ``(u, v, 1)`` and ``(u_gt, v_gt, 1)``.

    ``arccos((1 + u u_gt + v v_gt) / (sqrt(1 + u^2 + v^2) sqrt(1 + u_gt^2 + v_gt^2)))``, as in
    Barron et al. (1994) and Baker et al.: the third component makes it finite at zero flow.
    """
    flow, gt = _pair(flow, gt)
    (u, v), (ug, vg) = np.moveaxis(flow, -3, 0), np.moveaxis(gt, -3, 0)
    cos = (1 + u * ug + v * vg) / np.sqrt((1 + u ** 2 + v ** 2) * (1 + ug ** 2 + vg ** 2))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _masked_mean(error: np.ndarray, mask) -> float:
    if mask is None:
        return float(error.mean())
    mask = _numpy(mask, bool)
    try:
        mask = np.broadcast_to(mask, error.shape)
    except ValueError:
        raise ValueError(f"mask of shape {mask.shape} does not fit the error map {error.shape}") from None
    if not mask.any():
        raise ValueError("mask selects no pixels")
    return float(error[mask].mean())


def endpoint_error(flow, gt, mask=None) -> float:
    """Mean endpoint error (EPE) in pixels over all pixels, or those where ``mask`` is true."""
    return _masked_mean(endpoint_error_map(flow, gt), mask)


def angular_error(flow, gt, mask=None) -> float:
    """Mean angular error (AE) in degrees over all pixels, or those where ``mask`` is true."""
    return _masked_mean(angular_error_map(flow, gt), mask)
