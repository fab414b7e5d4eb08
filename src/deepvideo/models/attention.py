"""Space-time self-attention for 3D CNNs: the non-local block.

Wang, Girshick, Gupta and He, "Non-local Neural Networks", CVPR 2018.  A feature map
``(B, C, T, H, W)`` is read as a set of ``N = T*H*W`` vectors of dimension ``C``; each
position's response is a weighted sum over *all* positions (embedded Gaussian form)::

    y_i = sum_j softmax_j(theta(x_i) . phi(x_j)) g(x_j)          z = x + BN(W y)

``theta``, ``phi`` and ``g`` are 1x1x1 convolutions to ``C/2`` channels.  The
subsampling trick max-pools ``phi`` and ``g`` by 2 in space, dividing the pairwise cost
by 4.  ``W`` is a 1x1x1 convolution back to ``C`` channels followed by BatchNorm whose
scale is zero-initialised, so a freshly inserted block is the identity and a pretrained
network keeps its output until the block learns something.  As in the authors' released
code, the dot products are scaled by ``1/sqrt(C/2)`` before the softmax.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block: ``(B, C, T, H, W) -> (B, C, T, H, W)``."""

    def __init__(self, channels: int, inter_channels: int | None = None,
                 subsample: bool = True) -> None:
        super().__init__()
        self.inter_channels = inter_channels or max(channels // 2, 1)
        self.subsample = subsample
        self.theta = nn.Conv3d(channels, self.inter_channels, 1)
        self.phi = nn.Conv3d(channels, self.inter_channels, 1)
        self.g = nn.Conv3d(channels, self.inter_channels, 1)
        self.pool = nn.MaxPool3d((1, 2, 2)) if subsample else nn.Identity()
        self.out = nn.Conv3d(self.inter_channels, channels, 1)
        self.bn = nn.BatchNorm3d(channels)
        nn.init.zeros_(self.bn.weight)  # identity at initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)      # (B, N, C')
        key = self.pool(self.phi(x)).flatten(2)               # (B, C', N')
        value = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (B, N', C')
        affinity = torch.softmax(query @ key * self.inter_channels ** -0.5, dim=-1)  # (B, N, N')
        y = (affinity @ value).transpose(1, 2).reshape(b, self.inter_channels, t, h, w)
        return x + self.bn(self.out(y))

    def extra_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-accumulates of the two attention matmuls (the convs count themselves)."""
        b, _, t, h, w = inputs[0].shape
        keys = t * (h // 2) * (w // 2) if self.subsample else t * h * w
        return 2 * b * (t * h * w) * keys * self.inter_channels
