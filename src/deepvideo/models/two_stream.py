"""Two-stream networks: appearance from one RGB frame, motion from stacked optical flow.

Simonyan and Zisserman, "Two-Stream Convolutional Networks for Action Recognition in
Videos", NeurIPS 2014.  A *spatial* 2D CNN classifies a single RGB frame; a *temporal*
2D CNN classifies a stack of ``L`` consecutive optical-flow fields fed as ``2L`` input
channels.  The two streams are trained separately and fused late, by averaging their
softmax scores (or a weighted average favouring the stronger temporal stream).

The temporal stream's first convolution takes ``2L`` channels, so ImageNet weights do not
fit it directly.  *Cross-modality pre-training* (Wang et al., "Temporal Segment
Networks", ECCV 2016) averages the pretrained RGB kernel over its 3 input channels and
replicates that mean over the ``2L`` flow channels.

Two-stream I3D (Carreira and Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017)
applies the same recipe to inflated 3D networks: an RGB I3D on the clip and a flow I3D on
the ``T`` flow fields (2 channels, first conv cross-modality initialised before
inflation), fused the same way.

Layouts: RGB clips ``(B, 3, T, H, W)`` (or single frames ``(B, 3, H, W)``); flow
``(B, 2, L, H, W)`` with channel 0 the horizontal (x) and channel 1 the vertical (y)
displacement, or already stacked ``(B, 2L, H, W)`` in the order ``x1, y1, x2, y2, ...``.

Registered: ``spatial_stream`` and ``temporal_stream`` (one input each), and the fused
two-input models ``two_stream`` and ``two_stream_i3d``, registered with
``inputs=("rgb", "flow")`` (:func:`~deepvideo.models.registry.model_inputs`): they train on
the ``rgb+flow`` modality, whose dataset items are aligned ``(rgb, flow)`` pairs
(:class:`deepvideo.flow.dataset.RGBFlowReader`), both streams at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from deepvideo.models.frame import small_cnn2d
from deepvideo.models.inflate import inflate_resnet2d
from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights

BACKBONES = ("small_cnn2d", "resnet18")
FUSIONS = ("average", "weighted")


def cross_modality_init(conv_rgb: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv_rgb`` taking ``in_channels`` (e.g. ``2L`` flow) channels.

    Every input channel's kernel is the mean of ``conv_rgb``'s kernels over its input
    channels; the bias is copied.  Hence, for any flow stack ``f`` with channel sum
    ``s = f.sum(1)``: ``new(f) - b = (conv_rgb(s, s, s) - b) / 3``.
    """
    if conv_rgb.groups != 1 or in_channels < 1:
        raise ValueError(f"cross_modality_init needs an ungrouped conv and in_channels >= 1, "
                         f"got groups={conv_rgb.groups}, in_channels={in_channels}")
    weight = conv_rgb.weight
    conv = nn.Conv2d(in_channels, conv_rgb.out_channels, conv_rgb.kernel_size,
                     stride=conv_rgb.stride, padding=conv_rgb.padding, dilation=conv_rgb.dilation,
                     bias=conv_rgb.bias is not None, padding_mode=conv_rgb.padding_mode,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.mean(dim=1, keepdim=True).expand_as(conv.weight))
        if conv_rgb.bias is not None:
            conv.bias.copy_(conv_rgb.bias)
    return conv


def middle_frame(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, T, H, W) -> (B, 3, H, W)``: frame ``T // 2``; ``(B, 3, H, W)`` passes through."""
    return rgb[:, :, rgb.shape[2] // 2] if rgb.dim() == 5 else rgb


def stack_flow(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 2, L, H, W) -> (B, 2L, H, W)`` in channel order ``x1, y1, x2, y2, ...``;
    an already stacked ``(B, 2L, H, W)`` passes through."""
    if flow.dim() == 4:
        return flow
    b, c, length, h, w = flow.shape
    return flow.transpose(1, 2).reshape(b, length * c, h, w)


def _resnet18(num_classes: int, in_channels: int, weights2d: str | Path | None) -> torchvision.models.ResNet:
    """torchvision ResNet-18 with optional local 2D weights; for ``in_channels != 3`` its
    ``conv1`` is rebuilt by :func:`cross_modality_init` (after loading the weights)."""
    net = torchvision.models.resnet18(num_classes=num_classes)
    if weights2d is not None:
        load_weights(net, weights2d, head="fc")
    if in_channels != 3:
        net.conv1 = cross_modality_init(net.conv1, in_channels)
    return net


def image_classifier(num_classes: int, in_channels: int, backbone: str = "small_cnn2d",
                     widths: tuple[int, ...] = (32, 64, 128, 256),
                     weights2d: str | Path | None = None) -> nn.Module:
    """A 2D classifier ``(N, in_channels, H, W) -> (N, num_classes)`` logits.

    ``backbone="small_cnn2d"``: :func:`~deepvideo.models.frame.small_cnn2d` of ``widths``
    plus a linear head (``net[0]`` the features, ``net[1]`` the head); ``"resnet18"``:
    torchvision's ResNet-18 (state_dict keys unchanged) initialised from ``weights2d``.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown two-stream backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if backbone == "resnet18":
        return _resnet18(num_classes, in_channels, weights2d)
    if weights2d is not None:
        raise ValueError("option weights2d needs backbone='resnet18' (small_cnn2d has no pretrained weights)")
    return nn.Sequential(small_cnn2d(tuple(widths), in_channels), nn.Linear(widths[-1], num_classes))


class SpatialStream(nn.Module):
    """Appearance stream: a 2D CNN on one RGB frame.

    Input ``(B, 3, H, W)`` or a clip ``(B, 3, T, H, W)`` of which the middle frame
    (index ``T // 2``) is used; output logits ``(B, num_classes)``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(middle_frame(rgb))


class TemporalStream(nn.Module):
    """Motion stream: a 2D CNN on ``flow_frames`` stacked flow fields.

    Input ``(B, 2, L, H, W)`` or ``(B, 2L, H, W)`` (order ``x1, y1, x2, y2, ...``) with
    ``L = flow_frames``; output logits ``(B, num_classes)``.
    """

    def __init__(self, net: nn.Module, flow_frames: int) -> None:
        super().__init__()
        self.net = net
        self.flow_frames = flow_frames

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        stacked = stack_flow(flow)
        if stacked.shape[1] != 2 * self.flow_frames:
            raise ValueError(f"temporal stream expects {self.flow_frames} flow fields "
                             f"({2 * self.flow_frames} channels), got input shape {tuple(flow.shape)}")
        return self.net(stacked)


def fusion_weights(mode: str, weights: tuple[float, float]) -> tuple[float, float]:
    """The (spatial, temporal) weights of fusion ``mode``; raises ``ValueError`` on bad options."""
    if mode not in FUSIONS:
        raise ValueError(f"unknown fusion {mode!r}; choose one of {', '.join(FUSIONS)}")
    if len(weights) != 2 or min(weights) <= 0:
        raise ValueError(f"fusion weights must be two positive numbers, got {weights!r}")
    return (1.0, 1.0) if mode == "average" else (float(weights[0]), float(weights[1]))


def fuse_log_probs(logits_spatial: torch.Tensor, logits_temporal: torch.Tensor,
                   mode: str = "average", weights: tuple[float, float] = (1.0, 1.5)) -> torch.Tensor:
    """Log of :func:`fuse`, computed stably in log space: ``(B, K), (B, K) -> (B, K)``.

    Computed in (at least) float32: under autocast the streams' logits are bf16/fp16, whose
    log-softmax and weights would leave the fused probabilities percent-level off.
    """
    w = fusion_weights(mode, weights)
    dtype = torch.promote_types(torch.promote_types(logits_spatial.dtype, logits_temporal.dtype), torch.float32)
    logits_spatial, logits_temporal = logits_spatial.to(dtype), logits_temporal.to(dtype)
    log_w = torch.tensor(w, dtype=dtype, device=logits_spatial.device).log()
    parts = torch.stack([F.log_softmax(logits_spatial, -1) + log_w[0],
                         F.log_softmax(logits_temporal, -1) + log_w[1]])
    return parts.logsumexp(0) - log_w.exp().sum().log()


def fuse(logits_spatial: torch.Tensor, logits_temporal: torch.Tensor,
         mode: str = "average", weights: tuple[float, float] = (1.0, 1.5)) -> torch.Tensor:
    """Late fusion of two streams' logits ``(B, K)`` into class probabilities ``(B, K)``.

    ``"average"``: ``(softmax(s) + softmax(t)) / 2``; ``"weighted"``:
    ``(w_s softmax(s) + w_t softmax(t)) / (w_s + w_t)`` with ``weights = (w_s, w_t)``.
    """
    return fuse_log_probs(logits_spatial, logits_temporal, mode, weights).exp()


class TwoStreamOutput(NamedTuple):
    """Per-stream logits ``(B, K)`` and the fused log-probabilities ``(B, K)``
    (train with ``F.nll_loss(out.log_probs, labels)`` or per stream with cross-entropy)."""

    spatial: torch.Tensor
    temporal: torch.Tensor
    log_probs: torch.Tensor


class TwoStream(nn.Module):
    """Late fusion of a spatial (RGB) and a temporal (flow) network.

    ``forward(rgb, flow)`` runs ``spatial(rgb)`` and ``temporal(flow)`` (layouts are the
    streams' own) and returns a :class:`TwoStreamOutput`; fusion as in :func:`fuse`.
    """

    def __init__(self, spatial: nn.Module, temporal: nn.Module, fusion: str = "average",
                 weights: tuple[float, float] = (1.0, 1.5)) -> None:
        super().__init__()
        fusion_weights(fusion, weights)
        self.spatial, self.temporal = spatial, temporal
        self.fusion, self.weights = fusion, tuple(weights)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> TwoStreamOutput:
        s, t = self.spatial(rgb), self.temporal(flow)
        return TwoStreamOutput(s, t, fuse_log_probs(s, t, self.fusion, self.weights))


@register_model
def spatial_stream(num_classes: int = 400, backbone: str = "small_cnn2d",
                   widths: tuple[int, ...] = (32, 64, 128, 256),
                   weights2d: str | Path | None = None) -> SpatialStream:
    """Two-stream spatial stream: 2D CNN on the middle RGB frame. Input (B, 3, T, H, W) or (B, 3, H, W).

    ``backbone``: ``"small_cnn2d"`` (of ``widths``) or ``"resnet18"`` (with optional local
    2D checkpoint ``weights2d``, e.g. torchvision's ImageNet .pth).
    """
    return SpatialStream(image_classifier(num_classes, 3, backbone, widths, weights2d))


@register_model
def temporal_stream(num_classes: int = 400, flow_frames: int = 10, backbone: str = "small_cnn2d",
                    widths: tuple[int, ...] = (32, 64, 128, 256),
                    weights2d: str | Path | None = None) -> TemporalStream:
    """Two-stream temporal stream: 2D CNN on L stacked flow fields. Input (B, 2, L, H, W) or (B, 2L, H, W).

    ``flow_frames``: L; options as :func:`spatial_stream`; with ``resnet18`` the first conv
    takes 2L channels, initialised from ``weights2d`` by :func:`cross_modality_init`.
    """
    if flow_frames < 1:
        raise ValueError(f"option flow_frames must be >= 1, got {flow_frames}")
    return TemporalStream(image_classifier(num_classes, 2 * flow_frames, backbone, widths, weights2d),
                          flow_frames)


@register_model(inputs=("rgb", "flow"))
def two_stream(num_classes: int = 400, flow_frames: int = 10, backbone: str = "small_cnn2d",
               widths: tuple[int, ...] = (32, 64, 128, 256), weights2d: str | Path | None = None,
               fusion: str = "average", weights: tuple[float, float] = (1.0, 1.5)) -> TwoStream:
    """Two-stream network: spatial + temporal stream fused late. Inputs rgb (B, 3, T, H, W), flow (B, 2, L, H, W).

    Simonyan and Zisserman's :func:`spatial_stream` (middle RGB frame) and :func:`temporal_stream` (``flow_frames``
    = L fields) fused by ``fusion`` (:func:`fuse`); options as theirs.  Returns a
    :class:`TwoStreamOutput`.  ``forward(rgb (B, 3, T, H, W) or (B, 3, H, W),
    flow (B, 2, L, H, W) or (B, 2L, H, W))``.
    """
    return TwoStream(spatial_stream(num_classes, backbone, widths, weights2d),
                     temporal_stream(num_classes, flow_frames, backbone, widths, weights2d),
                     fusion, weights)


@register_model(inputs=("rgb", "flow"))
def two_stream_i3d(num_classes: int = 400, weights2d: str | Path | None = None, time_kernel: int = 3,
                   fusion: str = "average", weights: tuple[float, float] = (1.0, 1.5)) -> TwoStream:
    """Two-stream I3D: RGB and flow I3D ResNet-18s fused late. Inputs rgb (B, 3, T, H, W), flow (B, 2, T, H, W).

    Returns a :class:`TwoStreamOutput`.  Both streams inflate a 2D
    ResNet-18 initialised from ``weights2d``; the flow stream's ``conv1`` is made 2-channel
    by :func:`cross_modality_init` before inflation.
    """
    return TwoStream(*(inflate_resnet2d(_resnet18(num_classes, c, weights2d), time_kernel) for c in (3, 2)),
                     fusion, weights)
