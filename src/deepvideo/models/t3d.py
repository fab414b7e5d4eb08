"""T3D: Temporal 3D ConvNets, a 3D DenseNet with Temporal Transition Layers.

Diba, Fayyaz, Sharma, Karami, Arzani, Yousefzadeh and Van Gool, "Temporal 3D ConvNets:
New Architecture and Transfer Learning for Video Classification", arXiv:1711.08200, 2017.

**DenseNet3D.**  DenseNet-BC (Huang et al., CVPR 2017) with 3D kernels: a strided
``3 x 7 x 7`` stem convolution and a ``3 x 3 x 3`` max-pool, then dense blocks.  Every
layer of a dense block is BN-ReLU-Conv ``1 x 1 x 1`` to ``bn_size * k`` channels (the
bottleneck) followed by BN-ReLU-Conv ``3 x 3 x 3`` to ``k`` channels (the growth rate);
its output is concatenated to its input, so a block of ``L`` layers adds ``L * k``
channels and every layer sees the feature maps of all the layers before it.

**Temporal Transition Layer (TTL).**  T3D replaces DenseNet's transition layer (BN-ReLU,
``1 x 1 x 1`` conv, ``2 x 2 x 2`` average pool) by parallel BN-ReLU-Conv branches whose
kernels have *different temporal depths* - here ``1 x 1 x 1``, ``3 x 3 x 3`` and
``6 x 3 x 3`` after the first block, ``1 x 1 x 1``, ``3 x 3 x 3`` and ``4 x 3 x 3`` after
the later ones, whose maps are shorter (the released code uses depth 4 in all three;
``ttl_depths`` sets them) - so that short-, mid- and long-range temporal patterns are
all modelled, as the branches of an Inception module model several spatial scales.  The
branch outputs are concatenated along the channels and pooled ``2 x 2 x 2``.  Every
branch keeps the clip length ("same" temporal padding; an even depth pads one frame
more at the end), so the TTL output has ``len(depths) * ttl_width`` channels.

**The networks.**  T3D-121 has dense blocks of (6, 12, 24, 16) layers, T3D-169 of
(6, 12, 32, 32); both use ``k = 32``, a 64-channel stem and TTL branches of 128 channels
each.  On the paper's input, a clip of 3 x 32 x 224 x 224 (C x T x H x W)::

    conv0 + pool0    64 x 8 x 56 x 56      (T, H, W each strided twice)
    denseblock1     256 x 8 x 56 x 56      ttl1  384 x 4 x 28 x 28
    denseblock2     768 x 4 x 28 x 28      ttl2  384 x 2 x 14 x 14
    denseblock3    1152 x 2 x 14 x 14      ttl3  384 x 1 x 7 x 7       (T3D-169: 1408)
    denseblock4     896 x 1 x 7 x 7        (T3D-169: 1408)
    BN-ReLU, global average pool, linear classifier

The stem (``3 x 7 x 7`` conv, stride 2; ``3 x 3 x 3`` max-pool, stride 2) and the
128-channel TTL branches are those of the authors' released code
(github.com/MohsenFayyaz89/T3D), which also adds a ``1 x 1 x 1`` transition conv after
each TTL; here the TTL replaces the transition layer, as the paper describes.  The final
pool is global (over T, H and W) so that other clip sizes work too.  Module names follow
torchvision's DenseNet (``features.denseblock1.denselayer1.conv1``, ..., ``classifier``).

**Supervision transfer.**  The paper also initialises a 3D network from a frozen,
ImageNet-trained 2D network: the 2D net sees a frame, the 3D net a clip, and a small
classifier on their concatenated features decides whether the frame comes from that clip
(positive pair) or from another video (negative pair).  Only the 3D side learns, so its
features must come to agree with the 2D net's.  :class:`SupervisionTransfer`,
:func:`correspondence_pairs` and :func:`transfer_loss` implement that objective.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights

#: TTL temporal depths after dense blocks 1, 2 and 3 (T3D-121 and T3D-169).
PAPER_TTL_DEPTHS = ((1, 3, 6), (1, 3, 4), (1, 3, 4))


class SameConv3d(nn.Conv3d):
    """Stride-1 Conv3d (no bias) whose output keeps the input's T, H and W.

    Each axis is zero-padded by ``k - 1`` in all; for an even ``k`` the odd frame (or
    pixel) of padding goes at the end.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int, int]) -> None:
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=tuple((k - 1) // 2 for k in kernel_size), bias=False)
        self.extra_padding = tuple(p for k in reversed(self.kernel_size) for p in (0, 1 - k % 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.extra_padding) if any(self.extra_padding) else x)


class HalvingAvgPool3d(nn.Module):
    """``2 x 2 x 2`` average pool, stride 2, ceil mode: ``(B, C, T, H, W) -> (B, C, ceil(T/2),
    ceil(H/2), ceil(W/2))``.  An axis already of size 1 is left as it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(2, size) for size in x.shape[2:])
        return F.avg_pool3d(x, kernel, kernel, ceil_mode=True)


# --- the dense block ------------------------------------------------------------------------

class DenseLayer3D(nn.Module):
    """BN-ReLU-Conv 1x1x1 to ``bn_size * growth_rate``, BN-ReLU-Conv 3x3x3 to ``growth_rate``.

    ``(B, C, T, H, W) -> (B, C + growth_rate, T, H, W)``: the new maps are concatenated
    to the input.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm3d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv3d(in_channels, width, 1, bias=False)
        self.norm2 = nn.BatchNorm3d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(width, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(self.relu1(self.norm1(x)))
        new = self.conv2(self.relu2(self.norm2(new)))
        new = F.dropout(new, self.drop_rate, self.training) if self.drop_rate > 0 else new
        return torch.cat([x, new], 1)


class DenseBlock3D(nn.Sequential):
    """``num_layers`` :class:`DenseLayer3D`: ``(B, C, T, H, W) -> (B, C + num_layers * k, T, H, W)``."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int,
                 drop_rate: float) -> None:
        super().__init__(OrderedDict(
            (f"denselayer{i + 1}", DenseLayer3D(in_channels + i * growth_rate, growth_rate, bn_size,
                                                drop_rate))
            for i in range(num_layers)))
        self.out_channels = in_channels + num_layers * growth_rate


# --- the temporal transition layer ----------------------------------------------------------

class TemporalTransitionLayer(nn.Module):
    """TTL: one BN-ReLU-Conv branch per temporal depth ``d`` in ``depths`` (kernel ``1x1x1``
    for ``d = 1``, ``d x 3 x 3`` otherwise; each to ``width`` channels, stride 1, "same"
    padding), concatenated, then a ``2 x 2 x 2`` average pool (:class:`HalvingAvgPool3d`).

    ``(B, C, T, H, W) -> (B, len(depths) * width, ceil(T/2), ceil(H/2), ceil(W/2))``.
    """

    def __init__(self, in_channels: int, width: int, depths: Sequence[int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(OrderedDict(
                norm=nn.BatchNorm3d(in_channels), relu=nn.ReLU(inplace=True),
                conv=SameConv3d(in_channels, width, (1, 1, 1) if d == 1 else (d, 3, 3))))
            for d in depths)
        self.pool = HalvingAvgPool3d()
        self.out_channels = width * len(depths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.cat([branch(x) for branch in self.branches], 1))


# --- the network ----------------------------------------------------------------------------

class T3D(nn.Module):
    """T3D.  Input ``(B, 3, T, H, W)``; output logits ``(B, num_classes)``.

    ``block_config``: layers per dense block; ``growth_rate``: ``k``; ``num_init_features``:
    stem width; ``bn_size``: bottleneck width factor (``bn_size * k``); ``ttl_width``: output
    channels of each TTL branch; ``ttl_depths``: the branches' temporal depths for each of
    the ``len(block_config) - 1`` TTLs; ``drop_rate``: dropout after each dense layer.
    """

    def __init__(self, block_config: Sequence[int], growth_rate: int = 32, num_init_features: int = 64,
                 bn_size: int = 4, ttl_width: int = 128,
                 ttl_depths: Sequence[Sequence[int]] = PAPER_TTL_DEPTHS, drop_rate: float = 0.0,
                 num_classes: int = 400) -> None:
        super().__init__()
        if len(ttl_depths) != len(block_config) - 1:
            raise ValueError(f"ttl_depths needs one tuple per transition ({len(block_config) - 1} for "
                             f"{len(block_config)} dense blocks), got {len(ttl_depths)}")
        for depths in ttl_depths:
            if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
                raise ValueError(f"ttl_depths must hold positive integer temporal depths, got {depths!r}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate}")
        self.features = nn.Sequential(OrderedDict(
            conv0=nn.Conv3d(3, num_init_features, (3, 7, 7), stride=2, padding=(1, 3, 3), bias=False),
            norm0=nn.BatchNorm3d(num_init_features),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool3d(3, stride=2, padding=1)))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock3D(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            channels = block.out_channels
            if i < len(block_config) - 1:
                ttl = TemporalTransitionLayer(channels, ttl_width, tuple(ttl_depths[i]))
                self.features.add_module(f"ttl{i + 1}", ttl)
                channels = ttl.out_channels
        self.features.add_module("norm5", nn.BatchNorm3d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's DenseNet initialisation."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Clip descriptors ``(B, num_features)``: the final BN-ReLU maps averaged over T, H, W."""
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"T3D: video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        x = F.relu(self.features(video), inplace=True)
        return F.adaptive_avg_pool3d(x, 1).flatten(1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(video))


# --- cross-architecture supervision transfer (2D teacher -> 3D student) ---------------------

class SupervisionTransfer(nn.Module):
    """Frame-clip correspondence network: a frozen 2D ``teacher`` and a 3D ``student``.

    ``forward(frames, clips)`` takes frames ``(B, 3, H, W)`` and clips ``(B, 3, T, H, W)``
    and returns logits ``(B,)`` that each frame comes from the same moment of the same
    video as its clip.  ``teacher`` maps frames to ``(B, teacher_dim)`` features (e.g. an
    ImageNet DenseNet's pooled features); its weights are frozen and its BatchNorm stays in
    eval mode.  The student's :meth:`T3D.forward_features` and the teacher's features are
    concatenated and classified by fully connected layers of widths ``hidden`` (ReLU
    between), ending in one logit.
    """

    def __init__(self, teacher: nn.Module, student: T3D, teacher_dim: int,
                 hidden: Sequence[int] = (512, 128)) -> None:
        super().__init__()
        self.teacher = teacher.requires_grad_(False).eval()
        self.student = student
        widths = [teacher_dim + student.num_features, *hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU(inplace=True)]
        self.head = nn.Sequential(*layers, nn.Linear(widths[-1], 1))

    def train(self, mode: bool = True) -> SupervisionTransfer:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, frames: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4 or clips.dim() != 5 or len(frames) != len(clips):
            raise ValueError(f"SupervisionTransfer needs frames (B, 3, H, W) and clips (B, 3, T, H, W), "
                             f"got frames {tuple(frames.shape)} and clips {tuple(clips.shape)}")
        with torch.no_grad():
            taught = self.teacher(frames).flatten(1)
        learned = self.student.forward_features(clips)
        return self.head(torch.cat([taught, learned], 1)).squeeze(1)


def correspondence_pairs(clips: torch.Tensor, generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positive and negative frame-clip pairs from a batch of clips ``(B, 3, T, H, W)``, ``B >= 2``.

    Each clip gives one frame ``(3, H, W)`` drawn at a random time inside it.  The first
    ``B`` pairs join every clip to its own frame (label 1), the last ``B`` to the frame
    of another clip of the batch (label 0; the batch is rolled by a random non-zero
    shift).  Returns frames ``(2B, 3, H, W)``, clips ``(2B, 3, T, H, W)``, labels ``(2B,)``.
    ``generator``: a CPU generator for reproducible draws.
    """
    if clips.dim() != 5:
        raise ValueError(f"clips must be (B, 3, T, H, W), got shape {tuple(clips.shape)}")
    batch, _, length = clips.shape[:3]
    if batch < 2:
        raise ValueError(f"correspondence pairs need a batch of at least 2 clips, got {batch}")
    times = torch.randint(length, (batch,), generator=generator).to(clips.device)
    frames = clips[torch.arange(batch, device=clips.device), :, times]
    shift = int(torch.randint(1, batch, (1,), generator=generator))
    labels = torch.cat([clips.new_ones(batch), clips.new_zeros(batch)])
    return torch.cat([frames, frames.roll(shift, 0)]), torch.cat([clips, clips]), labels


def transfer_loss(model: SupervisionTransfer, clips: torch.Tensor,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """Binary cross-entropy of ``model`` on :func:`correspondence_pairs` of ``clips``
    ``(B, 3, T, H, W)``; returns the loss and the pair accuracy."""
    frames, paired, labels = correspondence_pairs(clips, generator)
    logits = model(frames, paired)
    accuracy = ((logits > 0).float() == labels).float().mean().item()
    return F.binary_cross_entropy_with_logits(logits, labels), accuracy


# --- builders -------------------------------------------------------------------------------

def _t3d(block_config: Sequence[int], num_classes: int, weights: str | Path | None,
         **options) -> T3D:
    """Build a :class:`T3D`; ``weights`` (a local checkpoint of the same network) is loaded,
    all but the classifier when its number of classes differs (with a warning)."""
    model = T3D(block_config, num_classes=num_classes, **options)
    if weights is not None:
        load_weights(model, weights, head="classifier")
    return model


@register_model
def t3d_121(num_classes: int = 400, weights: str | Path | None = None, drop_rate: float = 0.0) -> T3D:
    """T3D-121 (Diba et al. 2017): 3D DenseNet-121 with Temporal Transition Layers. Input (B, 3, T, H, W).

    Dense blocks (6, 12, 24, 16), growth rate 32, TTL depths (1, 3, 6) / (1, 3, 4) / (1, 3, 4);
    the paper's clips are 3 x 32 x 224 x 224.  ``weights``: local checkpoint of this model;
    ``drop_rate``: dropout after each dense layer.
    """
    return _t3d((6, 12, 24, 16), num_classes, weights, drop_rate=drop_rate)


@register_model
def t3d_169(num_classes: int = 400, weights: str | Path | None = None, drop_rate: float = 0.0) -> T3D:
    """T3D-169: 3D DenseNet-169 (blocks 6, 12, 32, 32) with Temporal Transition Layers. Input (B, 3, T, H, W).

    Options as :func:`t3d_121`.
    """
    return _t3d((6, 12, 32, 32), num_classes, weights, drop_rate=drop_rate)


@register_model
def t3d_tiny(num_classes: int = 400, weights: str | Path | None = None, drop_rate: float = 0.0) -> T3D:
    """T3D-tiny for CPUs and tests: blocks (2, 2, 2, 2), growth 8, narrow stem and TTLs. Input (B, 3, T, H, W).

    Same layers and TTL depths as T3D-121, about 130 K parameters.  The stem divides T, H
    and W by 4, as in the paper: give it clips of at least 16 frames and 112 px so that
    the TTLs have frames to span.  Options as :func:`t3d_121`.
    """
    return _t3d((2, 2, 2, 2), num_classes, weights, drop_rate=drop_rate, growth_rate=8,
                num_init_features=16, ttl_width=8)
