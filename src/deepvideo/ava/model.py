"""Actor-centric action detection heads: the SlowFast / AVA recipe in small.

Feichtenhofer et al., "SlowFast Networks for Video Recognition" (ICCV 2019), Sec. 5, after
Gu et al., "AVA: A Video Dataset of Spatio-temporally Localized Atomic Visual Actions" (CVPR
2018): a 3D backbone runs over a clip centred on the keyframe; its last feature map is
averaged over time; RoIAlign (He et al., Mask R-CNN) extracts a fixed-size feature of every
actor box of the keyframe, which is pooled and classified by a per-class sigmoid (an actor
does several actions at once), trained with binary cross-entropy.

* ``roi3d``: that recipe, the backbone being the convolutional stages of ``small3d``
  (:mod:`deepvideo.models.small3d`, C3D-style: the first pool spatial only).
* ``roi2d``: the same network fed the keyframe alone (a one-frame clip, on which every
  3x3x3 convolution is a 3x3 one): what a single frame can tell, for comparison.

Boxes are ``(N, 5)`` rows ``batch index, x1, y1, x2, y2`` in pixels of the clip.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torchvision.ops import roi_align

from deepvideo.models.registry import create_model
from deepvideo.registry import Registry

__all__ = ["AVA_MODELS", "ActorActionHead", "build_ava_model"]

AVA_MODELS: Registry = Registry("AVA model")
TIME_POOLS = ("mean", "keep")


class ActorActionHead(nn.Module):
    """A 3D backbone, temporal average pooling, RoIAlign per actor box and an MLP.

    Input ``clip`` ``(B, 3, T, H, W)`` and ``boxes`` ``(N, 5)``; output logits ``(N,
    num_classes)`` (one sigmoid per action).  ``clip_len`` is the number of frames the model
    is trained on (the task samples clips of that length centred on each keyframe).
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64), clip_len: int = 8,
                 roi_size: int = 4, hidden: int = 256, dropout: float = 0.2, time_pool: str = "mean",
                 context: float = 1.0) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"option widths needs at least 2 stages, got {list(widths)}")
        if clip_len < 1 or roi_size < 1 or hidden < 1:
            raise ValueError(f"options clip_len, roi_size, hidden must be >= 1, got {clip_len}, {roi_size}, {hidden}")
        if time_pool not in TIME_POOLS:
            raise ValueError(f"option time_pool must be one of {', '.join(TIME_POOLS)}, got {time_pool!r}")
        if context < 1:
            raise ValueError(f"option context must be >= 1 (the box scale RoIAlign reads), got {context}")
        self.clip_len, self.roi_size, self.time_pool, self.context = clip_len, roi_size, time_pool, context
        self.stride = 2 ** (len(widths) - 1)  # small3d pools space by 2 after every stage but the last
        self.backbone = create_model("small3d", num_classes=1, widths=tuple(widths)).features
        steps = 1 if time_pool == "mean" else math.ceil(clip_len / 2 ** (len(widths) - 2))  # time after pooling
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * steps * roi_size * roi_size, hidden),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, clip: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        features = self.backbone(clip)  # (B, C, T', H / stride, W / stride)
        if self.time_pool == "mean":
            features = features.mean(dim=2)
        else:  # "keep": every time step's map side by side as channels
            features = features.flatten(1, 2)
        boxes = boxes.to(features.dtype)
        if self.context != 1:
            centre, half = (boxes[:, 1:3] + boxes[:, 3:]) / 2, (boxes[:, 3:] - boxes[:, 1:3]) * self.context / 2
            boxes = torch.cat([boxes[:, :1], centre - half, centre + half], dim=1)
        regions = roi_align(features, boxes, self.roi_size, spatial_scale=1.0 / self.stride,
                            sampling_ratio=2, aligned=True)
        return self.head(regions)


@AVA_MODELS.register("roi3d", description="SlowFast's AVA head in small: 3D CNN, time-pooled RoIAlign, sigmoid")
def roi3d(num_classes: int, widths: tuple[int, ...] = (16, 32, 64), clip_len: int = 8, roi_size: int = 4,
          hidden: int = 256, dropout: float = 0.2, time_pool: str = "mean", context: float = 1.0) -> ActorActionHead:
    """The 3D recipe over ``clip_len`` frames centred on the keyframe; ``time_pool="keep"``
    reads every time step of the feature map instead of their mean, ``context`` scales the
    boxes that RoIAlign reads (the surroundings show motion relative to the background)."""
    return ActorActionHead(num_classes, widths, clip_len, roi_size, hidden, dropout, time_pool, context)


@AVA_MODELS.register("roi2d", description="the same head on the keyframe alone (one frame: no motion)")
def roi2d(num_classes: int, widths: tuple[int, ...] = (16, 32, 64), roi_size: int = 4, hidden: int = 256,
          dropout: float = 0.2, context: float = 1.0) -> ActorActionHead:
    """The single-frame comparison: the keyframe alone."""
    return ActorActionHead(num_classes, widths, 1, roi_size, hidden, dropout, "mean", context)


def build_ava_model(name: str, num_classes: int, **options: Any) -> ActorActionHead:
    """The registered model ``name`` (``roi3d``, ``roi2d``) for ``num_classes`` actions."""
    return AVA_MODELS.build(name, num_classes=num_classes, **options)
