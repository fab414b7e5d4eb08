"""A small 3D CNN for CPU-sized inputs (in the spirit of C3D, Tran et al. ICCV 2015).

Every stage is a 3x3x3 convolution, BatchNorm and ReLU followed by pooling; the first
pool is spatial only (1x2x2) so that early layers keep the temporal resolution, as in
C3D.  Global average pooling and one linear layer give the logits.  With the default
widths it has about 1.2 M parameters and trains on a laptop CPU in minutes.

``norm="group"`` swaps BatchNorm for GroupNorm (Wu & He, ECCV 2018), whose output does not
depend on the batch: small per-process batches in data-parallel training then compute what
one large batch would, where SyncBatchNorm is not available (PyTorch's runs on GPUs only).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from deepvideo.models.registry import register_model

NORMS = ("batch", "group")


def _norm(kind: str, width: int) -> nn.Module:
    """BatchNorm3d, or GroupNorm with groups of 4 channels (at most 32 groups)."""
    return nn.BatchNorm3d(width) if kind == "batch" else nn.GroupNorm(min(32, max(1, width // 4)), width)


class Small3DCNN(nn.Module):
    """Input ``(B, C, T, H, W)``; output logits ``(B, num_classes)``."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256),
                 in_channels: int = 3, dropout: float = 0.0, norm: str = "batch") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"option norm must be one of {', '.join(NORMS)}, got {norm!r}")
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            layers += [nn.Conv3d(in_channels, width, 3, padding=1, bias=False),
                       _norm(norm, width), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool3d((1, 2, 2) if i == 0 else 2, ceil_mode=True))
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(video)).flatten(1)
        return self.fc(self.dropout(x))


@register_model
def small3d(num_classes: int = 400, widths: tuple[int, ...] = (32, 64, 128, 256),
            dropout: float = 0.0, norm: str = "batch") -> Small3DCNN:
    """Small 3D CNN: four 3x3x3 conv stages, C3D-style pooling. Input (B, 3, T, H, W).

    ``norm``: "batch" (BatchNorm) or "group" (GroupNorm: batch-size independent).
    """
    return Small3DCNN(num_classes, tuple(widths), dropout=dropout, norm=norm)
