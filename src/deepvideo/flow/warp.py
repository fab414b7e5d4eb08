"""Backward warping with a flow field, and the photometric error it is judged by.

``backward_warp(image2, flow)`` gives, at every pixel ``p`` of frame 1, frame 2 sampled at
``p + flow(p)`` (bilinear): with the true flow from frame 1 to frame 2 it reproduces frame 1
wherever that point is visible in both frames.  It is the reconstruction at the heart of
unsupervised flow losses and of flow-based frame alignment (e.g. FRVSR).

Pixel units: pixel ``(x, y)`` has its centre at coordinate ``(x, y)``, so the corner pixel
centres are ``0`` and ``W - 1``.  ``grid_sample`` runs with ``align_corners=True``, which
maps normalised ``-1`` / ``+1`` to exactly those centres: ``x_norm = 2 x / (W - 1) - 1``.
Samples falling outside ``[0, W-1] x [0, H-1]`` are reported invalid (zero padding blends
them with black).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["backward_warp", "photometric_error"]


def _batched(x: torch.Tensor, name: str, channels: int | None = None) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        layout = f"({channels}, H, W) or (B, {channels}, H, W)" if channels else "(C, H, W) or (B, C, H, W)"
        raise ValueError(f"{name} must be {layout}, got shape {tuple(x.shape)}")
    return x


def backward_warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``p + flow(p)``.

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)`` float (the second frame).
        flow: ``(2, H, W)`` or ``(B, 2, H, W)`` ``(dx, dy)`` in pixels, from the first frame to
            the second; one flow may warp a batch of images and one image a batch of flows.
        mode: ``grid_sample`` interpolation, ``"bilinear"`` or ``"nearest"``.

    Returns ``(warped, valid)``: ``warped`` shaped like ``image`` and ``valid`` ``(..., 1, H, W)``
    bool, true where the sample point lies inside the image.
    """
    unbatched = image.dim() == 3 and flow.dim() == 3
    image, flow = _batched(image, "image"), _batched(flow, "flow", channels=2)
    if not image.is_floating_point():
        raise ValueError(f"image must be a float tensor, got {image.dtype}")
    if image.shape[-2:] != flow.shape[-2:] or 1 < image.shape[0] != flow.shape[0] > 1:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} do not match")
    batch = max(image.shape[0], flow.shape[0])
    image = image.expand(batch, -1, -1, -1)
    height, width = flow.shape[-2:]
    flow = flow.to(image.dtype)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype, device=image.device),
                            torch.arange(width, dtype=image.dtype, device=image.device), indexing="ij")
    x, y = xs + flow[:, 0], ys + flow[:, 1]                               # (B, H, W) pixels
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    grid = grid.expand(batch, -1, -1, -1)
    warped = F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=True)
    valid = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).unsqueeze(1)
    valid = valid.expand(batch, -1, -1, -1)
    return (warped[0], valid[0]) if unbatched else (warped, valid)


def photometric_error(image1: torch.Tensor, image2: torch.Tensor, mask: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Mean absolute difference of two images ``(..., C, H, W)``, over pixels where ``mask``
    (``(..., 1, H, W)`` or ``(H, W)`` bool, broadcastable) is true; a 0-d tensor."""
    if image1.shape != image2.shape:
        raise ValueError(f"images differ in shape: {tuple(image1.shape)} and {tuple(image2.shape)}")
    diff = (image1 - image2).abs()
    if mask is None:
        return diff.mean()
    weight = torch.broadcast_to(mask.to(diff.dtype), diff.shape)
    if not weight.any():
        raise ValueError("mask selects no pixels")
    return (diff * weight).sum() / weight.sum()
