"""C3D: the VGG of 3D CNNs.

Tran, Bourdev, Fergus, Torresani and Paluri, "Learning Spatiotemporal Features with 3D
Convolutional Networks", ICCV 2015.  Eight 3x3x3 convolutions (stride 1, padding 1,
with bias and ReLU) in five groups, each group closed by max-pooling; pool1 is 1x2x2
so that time is not merged too early, every other pool is 2x2x2.  Two 4096-wide fully
connected layers (ReLU, dropout 0.5) and the classifier follow.  The layer sizes for a
3 x 16 x 112 x 112 clip, as in the lecture table::

    conv1a  64 x 16 x 112 x 112    pool1  64 x 16 x 56 x 56
    conv2a 128 x 16 x 56 x 56      pool2 128 x 8 x 28 x 28
    conv3a/b 256 x 8 x 28 x 28     pool3 256 x 4 x 14 x 14
    conv4a/b 512 x 4 x 14 x 14     pool4 512 x 2 x 7 x 7
    conv5a/b 512 x 2 x 7 x 7       pool5 512 x 1 x 3 x 3
    fc6 4096, fc7 4096, fc8 C

The table's pool5 (no padding, 512 x 1 x 3 x 3 = 4608 features) is the default.  The
model released on Sports-1M pads pool5 spatially (512 x 1 x 4 x 4 = 8192 features into
fc6); ``pool5_padding=True`` gives that layout.  The released network is used as a
video feature extractor: :meth:`C3D.features` returns the fc6 or fc7 activations.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights


def _conv(in_channels: int, out_channels: int) -> nn.Conv3d:
    return nn.Conv3d(in_channels, out_channels, 3, padding=1)


class C3D(nn.Module):
    """C3D.  Input ``(B, 3, T, H, W)`` with ``(T, H, W) == input_size``; output logits ``(B, num_classes)``.

    ``input_size`` sizes fc6 (the default is the paper's 16 x 112 x 112 clip);
    ``fc_width`` is the width of fc6 and fc7 (4096 in the paper).
    """

    def __init__(self, num_classes: int = 400, input_size: tuple[int, int, int] = (16, 112, 112),
                 fc_width: int = 4096, dropout: float = 0.5, pool5_padding: bool = False) -> None:
        super().__init__()
        self.conv1a = _conv(3, 64)
        self.pool1 = nn.MaxPool3d((1, 2, 2))
        self.conv2a = _conv(64, 128)
        self.pool2 = nn.MaxPool3d(2)
        self.conv3a = _conv(128, 256)
        self.conv3b = _conv(256, 256)
        self.pool3 = nn.MaxPool3d(2)
        self.conv4a = _conv(256, 512)
        self.conv4b = _conv(512, 512)
        self.pool4 = nn.MaxPool3d(2)
        self.conv5a = _conv(512, 512)
        self.conv5b = _conv(512, 512)
        self.pool5 = nn.MaxPool3d(2, padding=(0, 1, 1) if pool5_padding else 0)
        self.fc6 = nn.Linear(512 * _pool5_volume(input_size, pool5_padding), fc_width)
        self.fc7 = nn.Linear(fc_width, fc_width)
        self.fc8 = nn.Linear(fc_width, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def conv_features(self, video: torch.Tensor) -> torch.Tensor:
        """The five conv groups: ``(B, 3, T, H, W) -> (B, 512, T/16, H/32, W/32)`` (pool5)."""
        x = self.pool1(self.relu(self.conv1a(video)))
        x = self.pool2(self.relu(self.conv2a(x)))
        x = self.pool3(self.relu(self.conv3b(self.relu(self.conv3a(x)))))
        x = self.pool4(self.relu(self.conv4b(self.relu(self.conv4a(x)))))
        return self.pool5(self.relu(self.conv5b(self.relu(self.conv5a(x)))))

    def features(self, video: torch.Tensor, layer: str = "fc6") -> torch.Tensor:
        """Clip descriptors ``(B, fc_width)``: the post-ReLU ``"fc6"`` or ``"fc7"`` activations."""
        if layer not in ("fc6", "fc7"):
            raise ValueError(f"C3D features come from 'fc6' or 'fc7', not {layer!r}")
        x = self.relu(self.fc6(self.conv_features(video).flatten(1)))
        return x if layer == "fc6" else self.relu(self.fc7(self.dropout(x)))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.fc8(self.dropout(self.features(video, "fc7")))


def _pool5_volume(input_size: tuple[int, int, int], pool5_padding: bool) -> int:
    """Number of positions (t * h * w) left after pool5 for a clip of ``input_size``."""
    t, h, w = input_size
    t, h, w = t // 8, h // 16, w // 16  # pool1 halves space only; pool2-pool4 halve everything
    pad = 1 if pool5_padding else 0
    t, h, w = t // 2, (h + 2 * pad) // 2, (w + 2 * pad) // 2
    if min(t, h, w) < 1:
        raise ValueError(f"C3D input_size {tuple(input_size)} is too small: pool5 would be empty "
                         f"(need T >= 16 and H, W >= 32)")
    return t * h * w


@register_model
def c3d(num_classes: int = 400, weights: str | Path | None = None,
        input_size: tuple[int, int, int] = (16, 112, 112), fc_width: int = 4096,
        dropout: float = 0.5, pool5_padding: bool = False) -> C3D:
    """C3D (Tran et al. 2015): 8 3x3x3 convs, 5 pools, fc6/fc7 4096. Input (B, 3, 16, 112, 112).

    ``weights``: local .pth/.safetensors checkpoint with these keys (``conv1a`` ... ``fc8``);
    ``pool5_padding=True`` for the Sports-1M release layout (fc6 takes 8192 features).
    """
    model = C3D(num_classes, tuple(input_size), fc_width, dropout, pool5_padding)
    if weights is not None:
        load_weights(model, weights, head="fc8")
    return model
