"""Synthetic image pairs with known optical flow, generated on the fly, for training flow networks.

In the spirit of FlyingChairs (Dosovitskiy et al., "FlowNet: Learning Optical Flow with
Convolutional Networks", ICCV 2015): a textured background and a few textured objects,
each moving with its own motion, composited into two frames whose flow is known exactly.

Every layer (the background, then ``objects`` shapes in front of it) has

* a texture: multi-scale noise (octaves of bicubically upsampled Gaussian noise with random
  amplitudes, a random base colour and brightness), some octaves thresholded into hard
  edges;
* an opacity in frame 2: the background is opaque, an object a soft-edged rotated
  superellipse (from ellipse to rounded rectangle);
* a flow field ``f_k`` on frame-1 pixels: a translation, a small rotation and scaling about
  the layer's centre and a smooth non-rigid part (upsampled low-resolution noise), its
  length clipped to ``max_flow``.  Speeds are log-uniform over two decades below
  ``max_flow`` (sub-pixel motion is as common as large), and a layer is still 20% of the time.

Frame 2 composites the layers' textures front to back; frame 1 composites the same layers
each backward-warped by its own flow (``layer1_k = backward_warp(layer2_k, f_k)``), and
the ground-truth flow at a frame-1 pixel is the flow of the front-most layer covering it
(opacity >= 0.5).  Both frames are cut from a canvas ``max_flow`` pixels larger on every
side, so content moves in from beyond the borders as in real video.  Hence wherever a
frame-1 pixel stays visible in frame 2 (not covered by an object in front, not moved out
of the frame) ``img1(p) = img2(p + flow(p))``, i.e. ``backward_warp(img2, flow)``
reproduces ``img1``; with ``objects=0`` and ``noise=0`` there are no occlusions at all and
the relation is exact up to float rounding.  Flow is ``(dx, dy)`` in pixels from frame 1 to
frame 2, the convention of :mod:`deepvideo.flow`.

Each batch comes from its own ``torch.Generator`` (:func:`pair_generator` keyed by a seed
and a step), so a training stream is reproducible and resumable, and a held-out set is
simply another seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.flow.warp import backward_warp

__all__ = ["PairConfig", "pair_generator", "synthetic_pairs", "to_frames"]


@dataclass(frozen=True)
class PairConfig:
    """What the generated pairs look like.

    Attributes:
        size: ``(height, width)`` of each frame.
        max_flow: the longest flow vector, pixels.
        objects: textured shapes in front of the background (each present with probability 0.8).
        noise: standard deviation of independent Gaussian noise added to each frame (images in ``[0, 1]``).
    """

    size: tuple[int, int] = (64, 64)
    max_flow: float = 10.0
    objects: int = 3
    noise: float = 0.01

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 8:
            raise ValueError(f"pair size must be (height, width) with both at least 8, got {self.size}")
        if not (math.isfinite(self.max_flow) and self.max_flow > 0):
            raise ValueError(f"max_flow must be a positive number of pixels, got {self.max_flow}")
        if self.objects < 0 or self.noise < 0:
            raise ValueError(f"objects and noise must be >= 0, got {self.objects} and {self.noise}")


def pair_generator(seed: int, step: int = 0) -> torch.Generator:
    """The CPU generator for batch ``step`` of the stream ``seed`` (independent of other steps)."""
    entropy = np.random.SeedSequence([seed, step]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(entropy[0] >> np.uint64(1)))


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen)


def _smooth_noise(gen: torch.Generator, n: int, channels: int, cells: int, size: tuple[int, int]
                  ) -> torch.Tensor:
    """Gaussian noise on a ``cells x cells`` grid upsampled bicubically: ``(n, channels, H, W)``."""
    grid = torch.randn((n, channels, cells, cells), generator=gen)
    return F.interpolate(grid, size=size, mode="bicubic", align_corners=False)


def _textures(gen: torch.Generator, n: int, size: tuple[int, int]) -> torch.Tensor:
    """``n`` random multi-scale textures ``(n, 3, H, W)`` in ``[0, 1]``."""
    octaves = max(1, int(math.log2(min(size))) - 1)           # grids of 2, 4, ... up to side / 2
    luma = torch.zeros((n, 1, *size))
    for octave in range(octaves):
        layer = _smooth_noise(gen, n, 1, 2 ** (octave + 1), size)
        hard = _uniform(gen, (n, 1, 1, 1)) < 0.3                 # some octaves become sharp edges
        layer = torch.where(hard, torch.sign(layer), layer)
        luma = luma + _uniform(gen, (n, 1, 1, 1)) * layer
    luma = luma / luma.flatten(1).std(1).clamp_min(1e-6)[:, None, None, None]
    colour = _uniform(gen, (n, 3, 1, 1), 0.2, 1.0)             # how the pattern tints each channel
    chroma = 0.3 * _smooth_noise(gen, n, 3, 4, size)           # slow colour variation
    base = _uniform(gen, (n, 3, 1, 1), 0.1, 0.9)
    contrast = _uniform(gen, (n, 1, 1, 1), 0.05, 0.35)
    brightness = _uniform(gen, (n, 1, 1, 1), 0.15, 1.0)         # dark scenes too
    return ((base + contrast * (colour * luma + chroma)) * brightness).clamp(0, 1)


def _shapes(gen: torch.Generator, n: int, size: tuple[int, int], frame: tuple[int, int]) -> torch.Tensor:
    """Soft-edged rotated superellipses ``(n, 1, H, W)`` opacity in ``[0, 1]`` (about 1 px edge),
    centred inside the central ``frame`` region of the canvas."""
    height, width = size
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    cy = (height - frame[0]) / 2 + _uniform(gen, (n, 1, 1)) * frame[0]
    cx = (width - frame[1]) / 2 + _uniform(gen, (n, 1, 1)) * frame[1]
    side = min(frame)
    a, b = (_uniform(gen, (n, 1, 1), 0.08 * side, 0.35 * side) for _ in range(2))     # half-axes
    angle = _uniform(gen, (n, 1, 1), 0, math.pi)
    power = 2.0 + 6.0 * _uniform(gen, (n, 1, 1)) ** 2             # 2: ellipse ... 8: rounded rectangle
    u = ((xs - cx) * torch.cos(angle) + (ys - cy) * torch.sin(angle)) / a
    v = (-(xs - cx) * torch.sin(angle) + (ys - cy) * torch.cos(angle)) / b
    radius = (u.abs() ** power + v.abs() ** power) ** (1 / power)
    return ((1 - radius) * torch.minimum(a, b) + 0.5).clamp(0, 1).unsqueeze(1)


def _layer_flows(gen: torch.Generator, n: int, size: tuple[int, int], centres: torch.Tensor, max_flow: float
                 ) -> torch.Tensor:
    """Random smooth flow fields ``(n, 2, H, W)``, pixels, no longer than ``max_flow``.

    ``centres`` ``(n, 2)`` ``(x, y)``: the point the rotation and scaling turn about.
    """
    height, width = size
    speed = max_flow * 10 ** (-2 * _uniform(gen, (n, 1, 1, 1)))          # log-uniform over 2 decades
    speed = torch.where(_uniform(gen, (n, 1, 1, 1)) < 0.2, 0.0, speed)    # some layers stand still
    heading = _uniform(gen, (n,), 0, 2 * math.pi)
    shift = torch.stack([torch.cos(heading), torch.sin(heading)], 1)[:, :, None, None] * speed
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    dx, dy = xs - centres[:, 0, None, None], ys - centres[:, 1, None, None]
    turn, zoom = _uniform(gen, (n, 1, 1), -0.03, 0.03), _uniform(gen, (n, 1, 1), -0.03, 0.03)
    # (exp(zoom) R(turn) - I) applied to (dx, dy), to first order in turn and zoom
    affine = torch.stack([zoom * dx - turn * dy, turn * dx + zoom * dy], 1)
    wobble = 0.2 * speed * _smooth_noise(gen, n, 2, 3, size)
    flow = shift + affine + wobble
    length = flow.norm(dim=1, keepdim=True)
    return flow * (max_flow / length.clamp_min(max_flow)).clamp(max=1.0)


def synthetic_pairs(batch: int, config: PairConfig, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch`` random pairs: ``(img1, img2, flow)``, images ``(B, 3, H, W)`` float32 in
    ``[0, 1]`` and flow ``(B, 2, H, W)`` ``(dx, dy)`` pixels from ``img1`` to ``img2``, with
    ``img1 ~ backward_warp(img2, flow)`` wherever the pixel is visible in both (module docstring)."""
    height, width = config.size
    margin = math.ceil(config.max_flow) + 1
    canvas = (height + 2 * margin, width + 2 * margin)
    layers = 1 + config.objects
    n = batch * layers
    textures = _textures(generator, n, canvas).view(batch, layers, 3, *canvas)
    alpha2 = torch.ones((batch, layers, 1, *canvas))
    if config.objects:
        shapes = _shapes(generator, batch * config.objects, canvas, config.size)
        shapes = shapes.view(batch, config.objects, 1, *canvas)
        present = _uniform(generator, (batch, config.objects, 1, 1, 1)) < 0.8
        alpha2[:, 1:] = shapes * present
    centres = margin + _uniform(generator, (n, 2)) * torch.tensor([width, height])  # inside the frame
    flows = _layer_flows(generator, n, canvas, centres, config.max_flow).view(batch, layers, 2, *canvas)
    layer2 = torch.cat([textures, alpha2], 2)                                    # (B, L, 4, H, W)
    layer1 = backward_warp(layer2.flatten(0, 1), flows.flatten(0, 1))[0].view_as(layer2)
    img1, img2, flow = layer1[:, 0, :3], layer2[:, 0, :3], flows[:, 0]
    for k in range(1, layers):                                                   # front to back
        img2 = layer2[:, k, 3:] * layer2[:, k, :3] + (1 - layer2[:, k, 3:]) * img2
        img1 = layer1[:, k, 3:] * layer1[:, k, :3] + (1 - layer1[:, k, 3:]) * img1
        flow = torch.where(layer1[:, k, 3:] >= 0.5, flows[:, k], flow)
    crop = (slice(None), slice(None), slice(margin, margin + height), slice(margin, margin + width))
    img1, img2, flow = img1[crop], img2[crop], flow[crop]
    if config.noise:
        img1 = (img1 + config.noise * torch.randn(img1.shape, generator=generator)).clamp(0, 1)
        img2 = (img2 + config.noise * torch.randn(img2.shape, generator=generator)).clamp(0, 1)
    return img1.contiguous(), img2.contiguous(), flow.contiguous()


def to_frames(images: torch.Tensor) -> np.ndarray:
    """Images ``(B, 3, H, W)`` float in ``[0, 1]`` -> frames ``(B, H, W, 3)`` uint8 RGB (as decoded video)."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
