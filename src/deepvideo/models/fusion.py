"""Fusion models: where in a CNN do the frames of a clip meet?

Karpathy et al., "Large-scale Video Classification with Convolutional Neural Networks",
CVPR 2014, compare four ways of connecting frames in time (single frame is in frame.py):

* **late fusion**: the same 2D CNN runs on every frame (shared weights) and the frame
  features are concatenated into the first fully connected layer, so only the FC layers
  compare frames (the paper: two frames 15 apart).  ``late_fusion_pool`` is the common
  variant that pools the frame features over time (average or max) before the FC layers;
  it accepts any clip length but ignores frame order.
* **early fusion**: the first convolution spans all ``T`` frames (frames stacked as
  channels, ``Conv2d(3*T, ...)``), then an ordinary 2D CNN; motion is seen at the pixel
  level, once.
* **slow fusion**: 3D convolutions with small temporal kernels and temporal strides, so
  the temporal extent grows layer by layer (the paper: kernel 4 stride 2, then kernel 2
  stride 2 twice, after which the third layer sees all 10 input frames), then spatial
  layers.

Every model ends in the same fully connected head (hidden layers then the class layer).
Widths are small by default so that the models train on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from deepvideo.models.frame import frame_features, small_cnn2d
from deepvideo.models.registry import register_model

_WIDTHS = (32, 64, 128, 256)


def fc_head(in_features: int, hidden: tuple[int, ...], num_classes: int,
            dropout: float = 0.0) -> nn.Sequential:
    """Fully connected layers: ``(N, in_features) -> (N, num_classes)``.

    One dropout-Linear-ReLU per ``hidden`` width, then dropout and the class layer.
    """
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers += [nn.Dropout(dropout), nn.Linear(in_features, num_classes)]
    return nn.Sequential(*layers)


def _check_frames(model: str, expected: int, video: torch.Tensor) -> None:
    if video.dim() != 5 or video.shape[2] != expected:
        raise ValueError(f"{model} was built for num_frames={expected}; got input of shape "
                         f"{tuple(video.shape)}, expected (B, C, {expected}, H, W)")


class LateFusion(nn.Module):
    """A shared 2D CNN per frame; frame features merged, then FC layers.

    ``pool=None``: the ``num_frames`` feature vectors are concatenated (the paper's late
    fusion; the input must have exactly ``num_frames`` frames).  ``pool="avg"`` / ``"max"``:
    features pooled over time (any ``T``).  Input ``(B, C, T, H, W)``; logits ``(B, num_classes)``.
    """

    def __init__(self, cnn: nn.Module, feature_dim: int, num_classes: int, pool: str | None = None,
                 num_frames: int = 2, hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> None:
        super().__init__()
        if pool not in (None, "avg", "max"):
            raise ValueError(f"late fusion option pool must be 'avg' or 'max', got {pool!r}")
        self.cnn = cnn
        self.pool = pool
        self.num_frames = num_frames
        in_features = feature_dim * num_frames if pool is None else feature_dim
        self.head = fc_head(in_features, hidden, num_classes, dropout)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if self.pool is None:
            _check_frames("late_fusion", self.num_frames, video)
        features = frame_features(self.cnn, video)  # (B, T, D)
        if self.pool is None:
            merged = features.flatten(1)
        elif self.pool == "avg":
            merged = features.mean(dim=1)
        else:
            merged = features.amax(dim=1)
        return self.head(merged)


class EarlyFusion(nn.Module):
    """Frames stacked as channels; the first conv has ``3 * num_frames`` input channels.

    Input ``(B, C, num_frames, H, W)``, stacked frame-major (frame 0's C channels first);
    logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, num_frames: int = 10, widths: tuple[int, ...] = _WIDTHS,
                 hidden: tuple[int, ...] = (256,), dropout: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.cnn = small_cnn2d(widths, in_channels=in_channels * num_frames)
        self.head = fc_head(widths[-1], hidden, num_classes, dropout)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_frames("early_fusion", self.num_frames, video)
        b, c, t, h, w = video.shape
        stacked = video.transpose(1, 2).reshape(b, t * c, h, w)
        return self.head(self.cnn(stacked))


def slow_fusion_min_frames(temporal_kernels: tuple[int, ...], temporal_strides: tuple[int, ...]) -> int:
    """Fewest input frames for which valid temporal convolutions leave one frame."""
    frames = 1
    for kernel, stride in zip(reversed(temporal_kernels), reversed(temporal_strides)):
        frames = (frames - 1) * stride + kernel
    return frames


class SlowFusion(nn.Module):
    """3D conv stages whose temporal extent grows with depth.

    Stage ``i``: Conv3d with kernel ``(temporal_kernels[i], 3, 3)``, temporal stride
    ``temporal_strides[i]`` and no temporal padding (valid, as in the paper), BN, ReLU, then
    2x2 spatial max-pool (none after the last stage).  Global average pooling over what is
    left of (T, H, W), then the FC head.  Input ``(B, C, T, H, W)`` with
    ``T >= min_frames``; logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = _WIDTHS,
                 temporal_kernels: tuple[int, ...] = (4, 2, 2, 1),
                 temporal_strides: tuple[int, ...] = (2, 2, 2, 1),
                 hidden: tuple[int, ...] = (256,), dropout: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        if not len(widths) == len(temporal_kernels) == len(temporal_strides):
            raise ValueError(f"slow_fusion options widths, temporal_kernels and temporal_strides must "
                             f"have the same length, got {len(widths)}, {len(temporal_kernels)}, "
                             f"{len(temporal_strides)}")
        self.min_frames = slow_fusion_min_frames(temporal_kernels, temporal_strides)
        layers: list[nn.Module] = []
        for i, (width, kt, st) in enumerate(zip(widths, temporal_kernels, temporal_strides)):
            layers += [nn.Conv3d(in_channels, width, (kt, 3, 3), stride=(st, 1, 1),
                                 padding=(0, 1, 1), bias=False),
                       nn.BatchNorm3d(width), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool3d((1, 2, 2)))
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = fc_head(widths[-1], hidden, num_classes, dropout)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.shape[2] < self.min_frames:
            raise ValueError(f"slow_fusion needs at least {self.min_frames} frames for its "
                             f"temporal_kernels/temporal_strides; got input {tuple(video.shape)}")
        return self.head(self.pool(self.features(video)).flatten(1))


@register_model
def late_fusion(num_classes: int = 400, num_frames: int = 2, widths: tuple[int, ...] = _WIDTHS,
                hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> LateFusion:
    """Late fusion (Karpathy 2014): per-frame 2D CNN features concatenated into FC layers.
    Input (B, 3, num_frames, H, W)."""
    widths = tuple(widths)
    return LateFusion(small_cnn2d(widths), widths[-1], num_classes, None, num_frames,
                      tuple(hidden), dropout)


@register_model
def late_fusion_pool(num_classes: int = 400, pool: str = "avg", widths: tuple[int, ...] = _WIDTHS,
                     hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> LateFusion:
    """Late fusion with pooling: per-frame 2D CNN features avg/max-pooled over T, then FC. Input (B, 3, T, H, W)."""
    widths = tuple(widths)
    return LateFusion(small_cnn2d(widths), widths[-1], num_classes, pool, hidden=tuple(hidden),
                      dropout=dropout)


@register_model
def early_fusion(num_classes: int = 400, num_frames: int = 10, widths: tuple[int, ...] = _WIDTHS,
                 hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> EarlyFusion:
    """Early fusion (Karpathy 2014): first conv spans all frames (Conv2d(3*T)), then 2D CNN.
    Input (B, 3, num_frames, H, W)."""
    return EarlyFusion(num_classes, num_frames, tuple(widths), tuple(hidden), dropout)


@register_model
def slow_fusion(num_classes: int = 400, widths: tuple[int, ...] = _WIDTHS,
                temporal_kernels: tuple[int, ...] = (4, 2, 2, 1),
                temporal_strides: tuple[int, ...] = (2, 2, 2, 1),
                hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> SlowFusion:
    """Slow fusion (Karpathy 2014): temporally strided 3D convs, time extent grows with depth.
    Input (B, 3, T>=10, H, W)."""
    return SlowFusion(num_classes, tuple(widths), tuple(temporal_kernels), tuple(temporal_strides),
                      tuple(hidden), dropout)
