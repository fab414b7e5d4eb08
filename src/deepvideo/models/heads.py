"""Temporal heads over pre-extracted feature sequences (train on cached features).

The course's memory tip: run a frozen backbone once over every frame
(``deepvideo extract-features``) and train only a temporal model on the stored features.
Three heads, each mapping a sequence of ``T`` feature vectors to clip logits:

* ``lstm_head`` (in :mod:`deepvideo.models.recurrent`): LRCN's LSTM (Donahue et al. 2015);
* :func:`tcn_head`: a temporal convolutional network — stacked 1D convolutions over time
  with growing dilation, then average pooling over time (Bai et al., "An Empirical
  Evaluation of Generic Convolutional and Recurrent Networks for Sequence Modeling", 2018;
  non-causal here, since a whole clip is classified);
* :func:`transformer_head`: a transformer encoder with a class token over the projected
  feature steps (Vaswani et al. 2017; ViViT's temporal encoder, Arnab et al. 2021).

Input ``(B, T, D)`` features, or the clip layout a feature dataset serves,
``(B, D, T, 1, 1)`` (see :mod:`deepvideo.data.features`); output logits ``(B, num_classes)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from deepvideo.models.registry import register_model
from deepvideo.models.transformers import ClassTokenEncoder

__all__ = ["TCNHead", "TransformerHead", "as_sequence", "tcn_head", "transformer_head"]


def as_sequence(features: torch.Tensor) -> torch.Tensor:
    """``(B, D, T, 1, 1)`` feature clips -> ``(B, T, D)``; ``(B, T, D)`` passes through."""
    if features.dim() == 5 and features.shape[-2:] == (1, 1):
        return features.flatten(2).transpose(1, 2)
    if features.dim() != 3:
        raise ValueError(f"a temporal head expects (B, T, D) or (B, D, T, 1, 1) features, "
                         f"got shape {tuple(features.shape)}")
    return features


class TCNHead(nn.Module):
    """Residual blocks of two dilated 1D convolutions (BatchNorm, ReLU, dropout) over time,
    dilation doubling per block; average over time; a linear classifier."""

    def __init__(self, feature_dim: int, num_classes: int, widths: tuple[int, ...] = (256, 256),
                 kernel_size: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"option kernel_size must be odd (same-length output), got {kernel_size}")
        blocks, in_dim = [], feature_dim
        for i, width in enumerate(widths):
            blocks.append(_TemporalBlock(in_dim, width, kernel_size, 2 ** i, dropout))
            in_dim = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.blocks(as_sequence(features).transpose(1, 2))      # (B, D, T)
        return self.fc(x.mean(dim=2))


class _TemporalBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.convs = nn.Sequential(
            nn.Conv1d(in_dim, out_dim, kernel_size, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv1d(out_dim, out_dim, kernel_size, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm1d(out_dim), nn.Dropout(dropout))
        self.skip = nn.Identity() if in_dim == out_dim else nn.Conv1d(in_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.skip(x))


class TransformerHead(nn.Module):
    """Linear projection of every step to ``dim``, a class-token transformer encoder with
    learned position embeddings for up to ``max_len`` steps, a linear classifier."""

    def __init__(self, feature_dim: int, num_classes: int, dim: int = 256, depth: int = 2, heads: int = 4,
                 max_len: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.max_len = max_len
        self.proj = nn.Linear(feature_dim, dim)
        self.encoder = ClassTokenEncoder(max_len, dim, depth, heads, dropout=dropout)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.proj(as_sequence(features))
        if x.shape[1] > self.max_len:
            raise ValueError(f"transformer_head takes at most max_len={self.max_len} steps, got {x.shape[1]}")
        return self.fc(self.encoder(x))


@register_model
def tcn_head(num_classes: int = 400, feature_dim: int = 512, widths: tuple[int, ...] = (256, 256),
             kernel_size: int = 3, dropout: float = 0.1) -> TCNHead:
    """Temporal conv net (dilated 1D convs) on pre-extracted features. Input (B, T, D) or (B, D, T, 1, 1)."""
    return TCNHead(feature_dim, num_classes, tuple(widths), kernel_size, dropout)


@register_model
def transformer_head(num_classes: int = 400, feature_dim: int = 512, dim: int = 256, depth: int = 2,
                     heads: int = 4, max_len: int = 64, dropout: float = 0.1) -> TransformerHead:
    """Class-token transformer encoder on pre-extracted features. Input (B, T, D) or (B, D, T, 1, 1)."""
    return TransformerHead(feature_dim, num_classes, dim, depth, heads, max_len, dropout)
