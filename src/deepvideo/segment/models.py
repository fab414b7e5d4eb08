"""Moving-object segmentation networks: a U-Net over a short clip, with or without a
transformer bottleneck.

* ``unet`` -- U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
  Biomedical Image Segmentation", MICCAI 2015) made spatio-temporal: each level is two 3x3x3
  convolutions (GroupNorm, ReLU), the encoder halves height and width (never time) between
  levels, the decoder doubles them back with transposed convolutions and concatenates the
  encoder's features of the same level (the skip connections); a 1x1x1 convolution gives one
  logit per pixel and frame.
* ``unet_transformer`` -- the same U-Net whose bottleneck is a transformer encoder, as in
  TransUNet (Chen et al., "TransUNet: Transformers Make Strong Encoders for Medical Image
  Segmentation", 2021): the bottleneck's ``T x h x w`` feature vectors become tokens, get a
  fixed sinusoidal space-time position code (any clip length and frame size), and pass
  through pre-norm self-attention layers, so that every token sees the whole clip.  Telling
  an object's own motion from the camera's needs the motion of the whole frame; the
  convolutional bottleneck only sees a neighbourhood.

Input: a normalised clip ``(B, C, T, H, W)`` (RGB, optionally followed by optical-flow
channels), ``H`` and ``W`` multiples of :attr:`SegmentationUNet.stride`; output: logits
``(B, T, H, W)`` of "this pixel belongs to a moving object".
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from deepvideo.registry import Registry

__all__ = ["SEGMENTERS", "SegmentationUNet", "SpaceTimeTransformer", "build_segmenter", "space_time_positions"]

SEGMENTERS: Registry = Registry("segmenter")


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3x3 Conv3d + GroupNorm + ReLU on ``(B, C, T, H, W)``, sizes kept."""
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers += [nn.Conv3d(channels, out_channels, 3, padding=1, bias=False),
                   nn.GroupNorm(min(8, out_channels), out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def space_time_positions(dim: int, t: int, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed sinusoidal position codes ``(t * h * w, dim)`` of a ``t x h x w`` token grid
    (time-major order): a third of the channels (rounded to an even count) code each axis with
    the sines and cosines of the Transformer (Vaswani et al. 2017); leftover channels are 0."""
    per_axis = (dim // 3) // 2 * 2
    codes = []
    for size in (t, h, w):
        position = torch.arange(size, dtype=torch.float32, device=device)[:, None]
        frequency = torch.exp(torch.arange(0, per_axis, 2, dtype=torch.float32, device=device)
                              * (-math.log(10000.0) / max(per_axis, 1)))
        codes.append(torch.cat([torch.sin(position * frequency), torch.cos(position * frequency)], dim=1))
    grid = torch.cat([codes[0][:, None, None].expand(t, h, w, -1), codes[1][None, :, None].expand(t, h, w, -1),
                      codes[2][None, None, :].expand(t, h, w, -1)], dim=-1).reshape(t * h * w, -1)
    return nn.functional.pad(grid, (0, dim - grid.shape[1]))


class SpaceTimeTransformer(nn.Module):
    """Self-attention over every position of a feature volume ``(B, C, T, h, w)``: tokens plus
    their position code, ``layers`` pre-norm transformer encoder layers, back to the volume."""

    def __init__(self, dim: int, layers: int = 2, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads: {heads} must divide the bottleneck width {dim}")
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2) + space_time_positions(c, t, h, w, x.device).to(x.dtype)
        tokens = self.norm(self.encoder(tokens))
        return x + tokens.transpose(1, 2).reshape(b, c, t, h, w)


class SegmentationUNet(nn.Module):
    """A spatio-temporal U-Net (see the module docstring).

    Args:
        in_channels: input channels (3 for RGB, 5 for RGB + flow).
        width: channels of the first level, doubled at each level down.
        depth: halvings of height and width (the bottleneck is at ``H / 2**depth``).
        bottleneck: ``None`` for a convolutional one, or a module on the bottleneck's features.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 3,
                 bottleneck: nn.Module | None = None) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be at least 1, got {depth} and {width}")
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.stride = 2 ** depth
        self.encoder = nn.ModuleList([conv_block(in_channels, widths[0])]
                                     + [conv_block(widths[i], widths[i + 1]) for i in range(depth)])
        self.pool = nn.MaxPool3d((1, 2, 2))
        self.bottleneck = bottleneck if bottleneck is not None else nn.Identity()
        self.up = nn.ModuleList(nn.ConvTranspose3d(widths[i + 1], widths[i], (1, 2, 2), stride=(1, 2, 2))
                                for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(conv_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv3d(widths[0], 1, 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, H, W)`` of a clip ``(B, C, T, H, W)``."""
        if clip.shape[-1] % self.stride or clip.shape[-2] % self.stride:
            raise ValueError(f"frame size {clip.shape[-1]}x{clip.shape[-2]} must be a multiple of {self.stride}")
        skips = []
        x = clip
        for level, block in enumerate(self.encoder):
            x = block(self.pool(x) if level else x)
            skips.append(x)
        x = self.bottleneck(skips.pop())
        for up, block in zip(self.up, self.decoder):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)[:, 0]


@SEGMENTERS.register("unet", description="Ronneberger et al. 2015: spatio-temporal U-Net, convolutional bottleneck")
def unet(in_channels: int = 3, width: int = 16, depth: int = 3) -> SegmentationUNet:
    """A plain U-Net (no attention)."""
    return SegmentationUNet(in_channels, width, depth)


@SEGMENTERS.register("unet_transformer",
                     description="TransUNet-style (Chen et al. 2021): U-Net with space-time self-attention bottleneck")
def unet_transformer(in_channels: int = 3, width: int = 16, depth: int = 3, layers: int = 2, heads: int = 4,
                     mlp_ratio: float = 2.0, dropout: float = 0.0) -> SegmentationUNet:
    """A U-Net whose bottleneck is ``layers`` transformer encoder layers over its space-time tokens."""
    dim = width * 2 ** depth
    return SegmentationUNet(in_channels, width, depth, SpaceTimeTransformer(dim, layers, heads, mlp_ratio, dropout))


def build_segmenter(name: str, in_channels: int = 3, **options) -> SegmentationUNet:
    """Segmenter ``name`` of :data:`SEGMENTERS` with ``options`` (checked against its builder)."""
    return SEGMENTERS.build(name, in_channels=in_channels, **options)
