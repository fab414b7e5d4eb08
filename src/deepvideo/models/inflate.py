"""I3D: inflating a 2D image network into a 3D video network.

Carreira and Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics
Dataset", CVPR 2017.  Take a 2D CNN (here any torchvision ResNet) and replace each
``Kh x Kw`` convolution / pooling layer with a ``Kt x Kh x Kw`` version.  A convolution's
2D kernel is copied ``Kt`` times along time and divided by ``Kt``; BatchNorm keeps its
statistics and affine parameters.  On a "boring" video - every frame the same image -
each inflated convolution then computes exactly the 2D convolution of that image at
every frame, so the network reproduces the 2D network's output and ImageNet weights
become a sensible initialisation for video.

Two choices keep that property exact, also at the clip borders and with temporal
strides:

* temporal padding **replicates** the border frames (spatial padding stays zero, as in
  2D).  Zero temporal padding would let the first and last frames see only part of
  the kernel's weight, so they would differ from the 2D result;
* max-pooling is inflated with the temporal kernel equal to its temporal stride (by
  default 1: a ``1 x 3 x 3`` pool, as in I3D's early pools), and the final global
  average pool averages over T, H and W before the classifier.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.nn.modules.utils import _pair

from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights

#: A temporal kernel or stride: one int for all layers, or ``rule(name, module2d) -> int``.
Rule = int | Callable[[str, nn.Module], int]


def time_stride_in_stages(name: str, module: nn.Module) -> int:
    """Default temporal stride: 2 where a residual stage (``layer2``-``layer4``) strides in
    space, 1 in the stem - time is downsampled 8x overall, as in R3D."""
    return 2 if name.startswith("layer") and _pair(module.stride)[0] > 1 else 1


class InflatedConv3d(nn.Conv3d):
    """A 2D convolution inflated to ``Kt x Kh x Kw``; input ``(B, C, T, H, W)``.

    The weight is the 2D kernel repeated ``Kt`` times along time and divided by ``Kt``;
    the bias is copied.  Time is padded by ``Kt // 2`` replicated border frames.
    """

    def __init__(self, conv2d: nn.Conv2d, time_kernel: int, time_stride: int = 1) -> None:
        if time_kernel < 1 or time_kernel % 2 == 0:
            raise ValueError(f"time_kernel must be odd and positive to inflate a conv, got {time_kernel}")
        super().__init__(conv2d.in_channels, conv2d.out_channels,
                         (time_kernel, *conv2d.kernel_size), stride=(time_stride, *conv2d.stride),
                         padding=(0, *conv2d.padding), dilation=(1, *conv2d.dilation),
                         groups=conv2d.groups, bias=conv2d.bias is not None,
                         device=conv2d.weight.device, dtype=conv2d.weight.dtype)
        self.time_padding = time_kernel // 2
        with torch.no_grad():
            self.weight.copy_(conv2d.weight.unsqueeze(2).expand_as(self.weight) / time_kernel)
            if conv2d.bias is not None:
                self.bias.copy_(conv2d.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.time_padding
        return super().forward(F.pad(x, (0, 0, 0, 0, pad, pad), mode="replicate") if pad else x)


def inflate_batchnorm(bn2d: nn.BatchNorm2d) -> nn.BatchNorm3d:
    """BatchNorm3d with the 2D layer's running statistics and affine parameters."""
    like = bn2d.weight if bn2d.weight is not None else bn2d.running_mean
    factory = {} if like is None else {"device": like.device, "dtype": like.dtype}
    bn3d = nn.BatchNorm3d(bn2d.num_features, bn2d.eps, bn2d.momentum, bn2d.affine,
                          bn2d.track_running_stats, **factory)
    bn3d.load_state_dict(bn2d.state_dict())
    return bn3d


def inflate_maxpool(pool2d: nn.MaxPool2d, time_stride: int) -> nn.MaxPool3d:
    """``time_stride x Kh x Kw`` max-pool: non-overlapping in time, the 2D pool in space."""
    return nn.MaxPool3d((time_stride, *_pair(pool2d.kernel_size)),
                        stride=(time_stride, *_pair(pool2d.stride or pool2d.kernel_size)),
                        padding=(0, *_pair(pool2d.padding)), dilation=(1, *_pair(pool2d.dilation)),
                        ceil_mode=pool2d.ceil_mode)


def inflate(module: nn.Module, time_kernel: Rule = 3, time_stride: Rule = 1,
            prefix: str = "") -> nn.Module:
    """Inflate a 2D module tree in place and return it (the root itself may be replaced).

    Conv2d -> :class:`InflatedConv3d`, BatchNorm2d -> BatchNorm3d, MaxPool2d -> MaxPool3d,
    AdaptiveAvgPool2d -> AdaptiveAvgPool3d (time pooled to 1); other 2D layers raise
    ``ValueError``.  An int ``time_kernel`` inflates every conv larger than 1x1 to that
    temporal size (1x1 convs stay 1x1x1); an int ``time_stride`` applies to every layer
    that strides in space.  A rule ``f(name, module2d) -> int`` decides per layer
    (``name`` is the qualified module name, e.g. ``"layer2.0.conv1"``).
    """
    def rule(value: Rule, name: str, layer: nn.Module, default: int) -> int:
        return value(name, layer) if callable(value) else (value if default > 1 else 1)

    if isinstance(module, nn.Conv2d):
        return InflatedConv3d(module, rule(time_kernel, prefix, module, max(module.kernel_size)),
                              rule(time_stride, prefix, module, max(module.stride)))
    if isinstance(module, nn.BatchNorm2d):
        return inflate_batchnorm(module)
    if isinstance(module, nn.MaxPool2d):
        return inflate_maxpool(module, rule(time_stride, prefix, module,
                                            max(_pair(module.stride or module.kernel_size))))
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d((1, *_pair(module.output_size)))
    if type(module).__name__.endswith("2d"):
        raise ValueError(f"cannot inflate layer {prefix or 'root'!r} of type {type(module).__name__}")
    for name, child in module.named_children():
        setattr(module, name, inflate(child, time_kernel, time_stride, f"{prefix}.{name}".lstrip(".")))
    return module


class I3DResNet(nn.Module):
    """A torchvision ResNet inflated to 3D.  Input ``(B, 3, T, H, W)``; logits ``(B, num_classes)``.

    Module names (and so state_dict keys) are those of the 2D ResNet: ``conv1``, ``bn1``,
    ``layer1``-``layer4``, ``fc``.  ``num_classes=None`` keeps the 2D classifier.
    """

    def __init__(self, resnet2d: torchvision.models.ResNet, time_kernel: Rule = 3,
                 time_stride: Rule = time_stride_in_stages, num_classes: int | None = None) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            layer = copy.deepcopy(getattr(resnet2d, name))
            setattr(self, name, inflate(layer, time_kernel, time_stride, name))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        fc = resnet2d.fc
        self.fc = (copy.deepcopy(fc) if num_classes in (None, fc.out_features)
                   else nn.Linear(fc.in_features, num_classes, device=fc.weight.device))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(video))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def inflate_resnet2d(resnet2d: torchvision.models.ResNet, time_kernel: Rule = 3,
                     time_stride: Rule = time_stride_in_stages,
                     num_classes: int | None = None) -> I3DResNet:
    """Inflate a 2D torchvision ResNet (any depth) into an :class:`I3DResNet` taking
    ``(B, 3, T, H, W)``.  The 2D network is left untouched.

    ``time_kernel``: temporal size of every conv larger than 1x1 (odd), or a rule
    ``f(name, conv2d) -> int``; ``time_stride``: temporal stride of the layers that stride
    in space, or a rule (default: 2 in ``layer2``-``layer4``, 1 in the stem);
    ``num_classes``: a new classifier of that size (``None`` keeps the 2D ``fc``).
    """
    return I3DResNet(resnet2d, time_kernel, time_stride, num_classes)


def _i3d(resnet: Callable[..., torchvision.models.ResNet], num_classes: int,
         weights2d: str | Path | None, time_kernel: int) -> I3DResNet:
    """Build the 2D ``resnet`` with ``num_classes``, load ``weights2d`` into it, inflate it.

    A 2D checkpoint with another number of classes (e.g. ImageNet's 1000) loads all but
    ``fc``, with a warning.
    """
    resnet2d = resnet(num_classes=num_classes)
    if weights2d is not None:
        load_weights(resnet2d, weights2d, head="fc")
    return inflate_resnet2d(resnet2d, time_kernel)


@register_model
def i3d_resnet18(num_classes: int = 400, weights2d: str | Path | None = None,
                 time_kernel: int = 3) -> I3DResNet:
    """I3D ResNet-18: torchvision's 2D ResNet-18 inflated to 3D. Input (B, 3, T, H, W).

    ``weights2d``: local 2D ResNet-18 checkpoint (e.g. torchvision's ImageNet .pth) used
    to initialise the inflated kernels; ``time_kernel``: temporal size of the inflated convs.
    """
    return _i3d(torchvision.models.resnet18, num_classes, weights2d, time_kernel)


@register_model
def i3d_resnet50(num_classes: int = 400, weights2d: str | Path | None = None,
                 time_kernel: int = 3) -> I3DResNet:
    """I3D ResNet-50: torchvision's 2D bottleneck ResNet-50 inflated to 3D. Input (B, 3, T, H, W).

    Options as :func:`i3d_resnet18` (``weights2d`` holds a 2D ResNet-50 checkpoint).
    """
    return _i3d(torchvision.models.resnet50, num_classes, weights2d, time_kernel)
