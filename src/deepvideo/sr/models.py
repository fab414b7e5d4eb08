"""Video super-resolution networks: the bicubic baseline, SRNet frame by frame, and FRVSR.

FRVSR -- M. S. M. Sajjadi, R. Vemulapalli, M. Brown, "Frame-Recurrent Video
Super-Resolution", CVPR 2018.  Per-frame super-resolution hallucinates detail anew in
every frame, so the detail flickers.  FRVSR instead feeds its previous HR estimate back:

1. FNet estimates the LR flow from frame ``t`` to frame ``t - 1``;
2. the flow is up-sampled to HR (bilinear, values multiplied by the scale) and the previous
   HR estimate is backward-warped with it (:func:`deepvideo.flow.backward_warp`);
3. space-to-depth folds the warped estimate to LR resolution (``3 s^2`` channels);
4. SRNet maps the current LR frame and the folded estimate to the new HR frame.

The first frame sees a black previous estimate.  Training unrolls over clips and adds two
losses per frame: the HR reconstruction error and the flow loss, the previous LR frame
warped by the LR flow against the current one.  Memory at inference holds one previous
frame, however long the video.

Layouts: LR clips ``(B, T, 3, h, w)`` and SR clips ``(B, T, 3, s h, s w)``, float in
``[0, 1]``.  The defaults are small enough to train on a 2-core CPU in minutes; the paper's
sizes are ``channels=64, blocks=10, upsample="transposed"`` and ``fnet_width=32``.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.flow.warp import backward_warp
from deepvideo.registry import Registry

__all__ = ["FNet", "FRVSR", "SR_MODELS", "Bicubic", "FrameSR", "SRNet", "VideoSR", "build_sr_model",
           "space_to_depth"]

SR_MODELS: Registry = Registry("SR model")


def space_to_depth(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``(B, C, s h, s w)`` -> ``(B, C s^2, h, w)``, the inverse of ``pixel_shuffle``."""
    return F.pixel_unshuffle(x, scale)


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, s h, s w)``: bicubic up-sampling (a = -0.75, as OpenCV)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


class VideoSR(nn.Module):
    """A video super-resolution model: ``forward`` maps a clip, ``step`` one frame of a stream.

    ``forward(lr, with_flow_loss=False)``: ``(B, T, 3, h, w)`` -> ``(B, T, 3, s h, s w)``;
    with ``with_flow_loss=True`` it returns ``(sr, flow_loss)``, the flow loss a 0-d tensor
    (zero for models without flow).  ``step(lr, state)``: ``(B, 3, h, w)`` and the state of
    the previous frame (``None`` for the first) -> ``(sr, state)``.  ``multiple`` is the
    factor LR sides must be divisible by (:meth:`stream` pads for it).
    """

    scale: int
    multiple: int = 1

    def step(self, lr: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        raise NotImplementedError

    def forward(self, lr: torch.Tensor, with_flow_loss: bool = False):
        if lr.dim() != 5 or lr.shape[2] != 3:
            raise ValueError(f"lr must be (B, T, 3, h, w), got shape {tuple(lr.shape)}")
        state, outputs = None, []
        for t in range(lr.shape[1]):
            sr, state = self.step(lr[:, t], state)
            outputs.append(sr)
        sr = torch.stack(outputs, dim=1)
        return (sr, lr.new_zeros(())) if with_flow_loss else sr

    @torch.no_grad()
    def stream(self, frames: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Super-resolve LR frames ``(3, h, w)`` one at a time, holding one frame of state:
        yields ``(3, s h, s w)`` clamped to ``[0, 1]``.  Sides are padded (replicated at
        the bottom and right) to a multiple of :attr:`multiple` and cropped back."""
        state = None
        for lr in frames:
            height, width = lr.shape[-2:]
            pad_h, pad_w = -height % self.multiple, -width % self.multiple
            batch = lr.unsqueeze(0)
            if pad_h or pad_w:
                batch = F.pad(batch, (0, pad_w, 0, pad_h), mode="replicate")
            sr, state = self.step(batch, state)
            yield sr[0, :, :height * self.scale, :width * self.scale].clamp(0, 1)


@SR_MODELS.register("bicubic", trainable=False, description="bicubic up-sampling of each frame (the baseline)")
class Bicubic(VideoSR):
    """Bicubic up-sampling of each frame: no weights, the baseline of every table."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def step(self, lr: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        return bicubic_up(lr, self.scale), None


class ResidualBlock(nn.Module):
    """conv 3x3 - ReLU - conv 3x3, plus the input (no batch norm, as FRVSR and EDSR)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRNet(nn.Module):
    """FRVSR's super-resolution network: a 3x3 convolution, ``blocks`` residual blocks at LR,
    ``log2(scale)`` x2 up-sampling stages (``"shuffle"``: convolution + pixel shuffle, Shi et
    al. 2016; ``"transposed"``: a 3x3 transposed convolution of stride 2, as the paper), a 3x3
    convolution to RGB, and the bicubic up-sampled LR frame added back.

    ``(B, 3 + extra, h, w)`` (the LR frame first) -> ``(B, 3, s h, s w)``.
    """

    def __init__(self, scale: int = 4, extra_channels: int = 0, channels: int = 32, blocks: int = 4,
                 upsample: str = "shuffle") -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        if upsample not in ("shuffle", "transposed"):
            raise ValueError(f"upsample must be 'shuffle' or 'transposed', got {upsample!r}")
        self.scale = scale
        self.head = nn.Conv2d(3 + extra_channels, channels, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            if upsample == "shuffle":
                stages += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True)]
            else:
                stages += [nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1),
                           nn.ReLU(inplace=True)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.head(x))
        return self.tail(self.upsample(self.body(features))) + bicubic_up(x[:, :3], self.scale)


@SR_MODELS.register("srnet", trainable=True, description="SRNet applied to each frame alone (flickers)")
class FrameSR(VideoSR):
    """Single-image super-resolution frame by frame: :class:`SRNet` on each LR frame."""

    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 4, upsample: str = "shuffle") -> None:
        super().__init__()
        self.scale = scale
        self.srnet = SRNet(scale, 0, channels, blocks, upsample)

    def step(self, lr: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        return self.srnet(lr), None


def _conv_pair(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


class FNet(nn.Module):
    """FRVSR's flow network: an encoder of ``levels`` (two 3x3 convolutions, leaky ReLU 0.2,
    2x2 max-pool) with widths ``width, 2 width, 4 width``, a decoder of ``levels`` (two
    convolutions, bilinear x2 up-sampling) with widths ``8 width, 4 width, 2 width``, then
    a convolution of ``width`` and one to 2 channels, ``tanh`` scaled to ``+-max_flow`` LR
    pixels.  The last convolution starts at zero, so the first flows are zero.

    Frames ``(B, 3, h, w)`` ``t`` and ``t - 1`` (sides divisible by ``2^levels``) -> flow
    ``(B, 2, h, w)`` from ``t`` to ``t - 1`` in LR pixels.
    """

    def __init__(self, width: int = 16, levels: int = 3, max_flow: float = 24.0) -> None:
        super().__init__()
        self.levels, self.max_flow = levels, max_flow
        widths = [width * 2 ** i for i in range(levels)]
        self.encoder = nn.ModuleList(_conv_pair(c_in, c_out) for c_in, c_out in zip([6] + widths[:-1], widths))
        decoder = [width * 2 ** (i + 1) for i in reversed(range(levels))]
        self.decoder = nn.ModuleList(_conv_pair(c_in, c_out) for c_in, c_out in zip([widths[-1]] + decoder[:-1],
                                                                                    decoder))
        self.head = nn.Sequential(nn.Conv2d(decoder[-1], width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(width, 2, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        x = torch.cat([current, previous], dim=1)
        for block in self.encoder:
            x = F.max_pool2d(block(x), 2)
        for block in self.decoder:
            x = F.interpolate(block(x), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.head(x)) * self.max_flow


@SR_MODELS.register("frvsr", trainable=True, description="FRVSR: FNet + warped previous estimate + SRNet")
class FRVSR(VideoSR):
    """Frame-recurrent video super-resolution (Sajjadi et al., CVPR 2018): see the module
    docstring.  The state between frames is ``(previous LR frame, previous HR estimate)``."""

    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 4, upsample: str = "shuffle",
                 fnet_width: int = 16, fnet_levels: int = 3, max_flow: float = 24.0) -> None:
        super().__init__()
        self.scale, self.multiple = scale, 2 ** fnet_levels
        self.fnet = FNet(fnet_width, fnet_levels, max_flow)
        self.srnet = SRNet(scale, 3 * scale ** 2, channels, blocks, upsample)

    def recur(self, lr: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrence: the HR frame ``(B, 3, s h, s w)`` of ``lr`` (``(B, 3, h, w)``, sides
        divisible by :attr:`multiple`) and the LR flow ``(B, 2, h, w)`` to the previous frame.
        ``state`` is ``(previous LR frame, previous HR estimate)``; ``None`` for the first frame
        (itself as the previous frame, a black estimate)."""
        if lr.shape[-2] % self.multiple or lr.shape[-1] % self.multiple:
            raise ValueError(f"FRVSR needs LR sides divisible by {self.multiple}, got {tuple(lr.shape[-2:])}")
        if state is None:
            state = (lr, lr.new_zeros(lr.shape[0], 3, lr.shape[-2] * self.scale, lr.shape[-1] * self.scale))
        previous_lr, previous_sr = state
        flow = self.fnet(lr, previous_lr)
        flow_hr = F.interpolate(flow, scale_factor=self.scale, mode="bilinear", align_corners=False) * self.scale
        warped, _ = backward_warp(previous_sr, flow_hr)
        return self.srnet(torch.cat([lr, space_to_depth(warped, self.scale)], dim=1)), flow

    def step(self, lr: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        sr, _ = self.recur(lr, state)
        return sr, (lr, sr)

    def forward(self, lr: torch.Tensor, with_flow_loss: bool = False):
        if lr.dim() != 5 or lr.shape[2] != 3:
            raise ValueError(f"lr must be (B, T, 3, h, w), got shape {tuple(lr.shape)}")
        state, outputs, flow_loss = None, [], lr.new_zeros(())
        for t in range(lr.shape[1]):
            sr, flow = self.recur(lr[:, t], state)
            if state is not None:  # the flow loss: the previous LR frame warped onto this one
                warped_lr, _ = backward_warp(state[0], flow)
                flow_loss = flow_loss + F.mse_loss(warped_lr, lr[:, t]) / (lr.shape[1] - 1)
            state = (lr[:, t], sr)
            outputs.append(sr)
        sr = torch.stack(outputs, dim=1)
        return (sr, flow_loss) if with_flow_loss else sr


def build_sr_model(name: str, scale: int, **options) -> VideoSR:
    """The registered SR model ``name`` (``bicubic``, ``srnet``, ``frvsr``) for ``scale``."""
    return SR_MODELS.build(name, scale=scale, **options)
