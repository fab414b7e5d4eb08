"""3D residual networks for video: R3D, MCx and R(2+1)D.

Tran, Wang, Torresani, Ray, LeCun and Paluri, "A Closer Look at Spatiotemporal
Convolutions for Action Recognition", CVPR 2018.  One ResNet skeleton, three ways of
convolving in space-time:

* **R3D** - every convolution is a full 3x3x3 kernel (``Conv3DSimple``);
* **MC3** (mixed convolutions) - 3D kernels in the stem and the first stage, 2D 1x3x3
  kernels afterwards (``Conv3DNoTemporal``): motion is modelled early only;
* **R(2+1)D** - every 3x3x3 kernel is factorised into a 1x3x3 spatial convolution to
  ``M`` channels, BatchNorm, ReLU and a 3x1x1 temporal convolution (``Conv2Plus1D``).
  ``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))`` (section 3.5) keeps the number
  of parameters of the 3D kernel while doubling the nonlinearities.

The state_dict keys are torchvision's (``torchvision.models.video``), so its Kinetics
checkpoints load unchanged.  Two details follow torchvision (and the authors' released
models) rather than the formula: the R(2+1)D stem uses 45 mid channels, and both convs
of a residual block use the mid width computed from the *block's* input and output
widths.  Optional non-local blocks (:mod:`deepvideo.models.attention`) can be appended
to chosen stages; they are the identity at initialisation, so pretrained weights still
give the same output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from deepvideo.models.attention import NonLocalBlock
from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights


def mid_channels(in_channels: int, out_channels: int, t: int = 3, d: int = 3) -> int:
    """R(2+1)D mid width ``M`` matching the parameters of a ``t x d x d`` 3D kernel."""
    return (t * d * d * in_channels * out_channels) // (d * d * in_channels + t * out_channels)


# --- the three space-time convolutions (each: in, out, mid, stride) ---------------------

class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D)."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
    """Spatial-only 1x3x3 convolution (the 2D stages of MCx); time is never strided."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, (1, 3, 3), stride=(1, stride, stride),
                         padding=(0, 1, 1), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


class Conv2Plus1D(nn.Sequential):
    """(2+1)D convolution: 1x3x3 to ``mid_planes``, BN, ReLU, then 3x1x1 (R(2+1)D)."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, (1, 3, 3), stride=(1, stride, stride),
                      padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, (3, 1, 1), stride=(stride, 1, 1),
                      padding=(1, 0, 0), bias=False),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


ConvBuilder = type[Conv3DSimple] | type[Conv3DNoTemporal] | type[Conv2Plus1D]


# --- stems --------------------------------------------------------------------------------

def basic_stem() -> nn.Sequential:
    """R3D/MC3 stem: 3x7x7 conv to 64 channels, stride 1x2x2, BN, ReLU."""
    return nn.Sequential(
        nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(64), nn.ReLU(inplace=True))


def r2plus1d_stem() -> nn.Sequential:
    """R(2+1)D stem: 1x7x7 conv to 45 channels (stride 1x2x2), BN, ReLU, 3x1x1 to 64, BN, ReLU."""
    return nn.Sequential(
        nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(45), nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(64), nn.ReLU(inplace=True))


# --- residual blocks ----------------------------------------------------------------------

class BasicBlock(nn.Module):
    """Two space-time convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv: ConvBuilder, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        mid = mid_channels(inplanes, planes)
        self.conv1 = nn.Sequential(conv(inplanes, planes, mid, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(planes, planes, mid), nn.BatchNorm3d(planes))
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1x1 reduce, space-time conv, 1x1x1 expand by 4, with a residual connection (ResNet-50+)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, conv: ConvBuilder, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes * self.expansion
        self.conv1 = nn.Sequential(nn.Conv3d(inplanes, planes, 1, bias=False),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(planes, planes, mid_channels(inplanes, planes), stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv3 = nn.Sequential(nn.Conv3d(planes, width, 1, bias=False), nn.BatchNorm3d(width))
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


# --- the network --------------------------------------------------------------------------

class VideoResNet(nn.Module):
    """Stem, four residual stages (64, 128, 256, 512 wide; stages 2-4 stride 2), global
    average pooling over T, H, W and a linear classifier.

    Input ``(B, 3, T, H, W)``; output logits ``(B, num_classes)``.  ``conv_makers`` gives
    the space-time convolution of each stage; ``nonlocal_stages`` (numbers 1-4) appends a
    :class:`NonLocalBlock` to the end of those stages.  Its affinity matrix grows with
    ``(T*H*W)^2``: Wang et al. use the middle stages (here 2 and 3), not stage 1.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck],
                 conv_makers: Sequence[ConvBuilder], depths: Sequence[int], stem: nn.Module,
                 num_classes: int = 400, nonlocal_stages: Sequence[int] = ()) -> None:
        super().__init__()
        for stage in nonlocal_stages:
            if stage not in (1, 2, 3, 4):
                raise ValueError(f"nonlocal_stages must hold stage numbers 1-4, got {stage!r}")
        self.inplanes = 64
        self.stem = stem
        self.layer1 = self._make_stage(block, conv_makers[0], 64, depths[0], 1, 1 in nonlocal_stages)
        self.layer2 = self._make_stage(block, conv_makers[1], 128, depths[1], 2, 2 in nonlocal_stages)
        self.layer3 = self._make_stage(block, conv_makers[2], 256, depths[2], 2, 3 in nonlocal_stages)
        self.layer4 = self._make_stage(block, conv_makers[3], 512, depths[3], 2, 4 in nonlocal_stages)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights()

    def _make_stage(self, block: type[BasicBlock] | type[Bottleneck], conv: ConvBuilder,
                    planes: int, depth: int, stride: int, non_local: bool) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, 1,
                          stride=conv.downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes * block.expansion))
        blocks: list[nn.Module] = [block(self.inplanes, planes, conv, stride, downsample)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes, conv) for _ in range(1, depth)]
        if non_local:
            blocks.append(NonLocalBlock(self.inplanes))
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        """torchvision's initialisation; non-local blocks keep their identity initialisation."""
        non_local = {id(m) for nl in self.modules() if isinstance(nl, NonLocalBlock)
                     for m in nl.modules()}
        for m in self.modules():
            if id(m) in non_local:
                continue
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.stem(video)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# --- builders -----------------------------------------------------------------------------

def _video_resnet(block: type[BasicBlock] | type[Bottleneck], conv_makers: Sequence[ConvBuilder],
                  depths: Sequence[int], stem: nn.Module, num_classes: int,
                  weights: str | Path | None, nonlocal_stages: Sequence[int]) -> VideoResNet:
    """Build a :class:`VideoResNet` and load ``weights`` (a local torchvision-keyed file).

    A checkpoint whose classifier has another number of classes loads all but ``fc``
    (with a warning); inserted non-local blocks may be absent from the checkpoint.
    """
    model = VideoResNet(block, conv_makers, depths, stem, num_classes, tuple(nonlocal_stages))
    if weights is not None:
        fresh = [name for name, m in model.named_modules() if isinstance(m, NonLocalBlock)]
        load_weights(model, weights, head="fc", fresh=fresh)
    return model


_R3D = [Conv3DSimple] * 4
_MC3 = [Conv3DSimple] + [Conv3DNoTemporal] * 3
_R2PLUS1D = [Conv2Plus1D] * 4


@register_model
def r3d_18(num_classes: int = 400, weights: str | Path | None = None,
           nonlocal_stages: Sequence[int] = ()) -> VideoResNet:
    """R3D-18 (Tran et al. 2018): ResNet-18 of 3x3x3 convs, torchvision keys. Input (B, 3, T, H, W).

    ``weights``: local .pth/.safetensors checkpoint (e.g. torchvision's Kinetics-400 file);
    ``nonlocal_stages``: stage numbers (1-4) each followed by a non-local block.
    """
    return _video_resnet(BasicBlock, _R3D, (2, 2, 2, 2), basic_stem(), num_classes, weights,
                         nonlocal_stages)


@register_model
def r3d_50(num_classes: int = 400, weights: str | Path | None = None,
           nonlocal_stages: Sequence[int] = ()) -> VideoResNet:
    """R3D-50: bottleneck ResNet-50 of 3x3x3 convs. Input (B, 3, T, H, W). Options as r3d_18."""
    return _video_resnet(Bottleneck, _R3D, (3, 4, 6, 3), basic_stem(), num_classes, weights,
                         nonlocal_stages)


@register_model
def mc3_18(num_classes: int = 400, weights: str | Path | None = None,
           nonlocal_stages: Sequence[int] = ()) -> VideoResNet:
    """MC3-18: 3D convs in stem and stage 1, 1x3x3 afterwards; torchvision keys. Input (B, 3, T, H, W).

    Options as :func:`r3d_18`.
    """
    return _video_resnet(BasicBlock, _MC3, (2, 2, 2, 2), basic_stem(), num_classes, weights,
                         nonlocal_stages)


@register_model
def r2plus1d_18(num_classes: int = 400, weights: str | Path | None = None,
                nonlocal_stages: Sequence[int] = ()) -> VideoResNet:
    """R(2+1)D-18: every 3x3x3 conv split into 1x3x3 + 3x1x1; torchvision keys. Input (B, 3, T, H, W).

    Options as :func:`r3d_18`.
    """
    return _video_resnet(BasicBlock, _R2PLUS1D, (2, 2, 2, 2), r2plus1d_stem(), num_classes,
                         weights, nonlocal_stages)


@register_model
def r2plus1d_34(num_classes: int = 400, weights: str | Path | None = None,
                nonlocal_stages: Sequence[int] = ()) -> VideoResNet:
    """R(2+1)D-34, the paper's Kinetics model: depths (3, 4, 6, 3). Input (B, 3, T, H, W).

    Options as :func:`r3d_18`.
    """
    return _video_resnet(BasicBlock, _R2PLUS1D, (3, 4, 6, 3), r2plus1d_stem(), num_classes,
                         weights, nonlocal_stages)
