"""Frame-based video classifiers: a 2D CNN that looks at one frame at a time.

Single-frame baseline (Karpathy et al., "Large-scale Video Classification with
Convolutional Neural Networks", CVPR 2014): a 2D CNN classifies every frame
independently and the per-frame class scores are averaged over the clip.  It cannot see
motion, which makes it the reference that every temporal model must beat.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from deepvideo.models.registry import register_model


def small_cnn2d(widths: tuple[int, ...] = (32, 64, 128, 256), in_channels: int = 3) -> nn.Sequential:
    """A VGG-like 2D feature extractor: ``(N, C, H, W) -> (N, widths[-1])``.

    Each stage is conv3x3-BN-ReLU then 2x2 max-pool (no pool after the last stage),
    finished by global average pooling.
    """
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers += [nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        in_channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def frame_features(cnn: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Run a 2D ``cnn`` on every frame: ``(B, C, T, H, W) -> (B, T, *cnn output shape)``."""
    b, c, t, h, w = video.shape
    out = cnn(video.transpose(1, 2).reshape(b * t, c, h, w))
    return out.view(b, t, *out.shape[1:])


class SingleFrame(nn.Module):
    """Per-frame 2D CNN; class scores averaged over time.

    Input ``(B, C, T, H, W)``; output logits ``(B, num_classes)``, the mean of the
    ``T`` per-frame logits.  ``frame_logits`` returns the per-frame ``(B, T, num_classes)``.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, num_classes)

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(frame_features(self.backbone, video)))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(video).mean(dim=1)


@register_model
def single_frame(num_classes: int = 400, widths: tuple[int, ...] = (32, 64, 128, 256),
                 dropout: float = 0.0) -> SingleFrame:
    """Single-frame baseline: small 2D CNN per frame, logits averaged over T. Input (B, 3, T, H, W)."""
    return SingleFrame(small_cnn2d(tuple(widths)), widths[-1], num_classes, dropout)
