"""Start a classifier from another network's weights: transfer learning and fine-tuning.

A :class:`Transfer` says where the starting weights come from and what trains:

- ``init``: a checkpoint whose backbone initialises the model.  A self-supervised pretext
  run (``deepvideo pretrain``, :mod:`deepvideo.ssl`) stores its backbone under the prefix
  named by the checkpoint's ``backbone_prefix`` entry; a classifier trained by ``deepvideo
  train`` gives all its weights but its classifier.  Either way the model's classifier
  (``fc``, ``classifier``, ``head``: :func:`~deepvideo.models.registry.classifier_attribute`)
  starts fresh, and every other weight of the model must be in the checkpoint with the same
  shape: the first one missing or of another shape is named in the error.
- ``freeze_backbone``: only the classifier trains (a linear probe).  The backbone's
  parameters get ``requires_grad=False`` and its BatchNorm layers stay in eval mode (their
  running statistics are the pretrained ones).
- ``backbone_lr_scale``: the backbone's learning rate is ``lr * backbone_lr_scale`` (the
  classifier's is ``lr``), the usual fine-tuning recipe with a smaller step for pretrained
  layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint
from deepvideo.models.registry import classifier_attribute

__all__ = ["BACKBONE_PREFIX", "Transfer", "backbone_state", "load_backbone", "norm_layers"]

BACKBONE_PREFIX = "backbone_prefix"  # checkpoint entry: the state_dict prefix of a pretext run's backbone
_RUNNING_STATS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@dataclass
class Transfer:
    """Where a classifier's starting weights come from and which of them train (see the
    module docstring).  The default is training from scratch, everything trainable."""

    init: str | None = None
    freeze_backbone: bool = False
    backbone_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.backbone_lr_scale > 0:
            raise ValueError(f"backbone_lr_scale must be positive, got {self.backbone_lr_scale}")
        if self.init is not None:
            self.init = str(self.init)

    def to_dict(self) -> dict[str, Any]:
        return {"init": self.init, "freeze_backbone": self.freeze_backbone,
                "backbone_lr_scale": self.backbone_lr_scale}

    def apply(self, model: nn.Module, name: str) -> nn.Module:
        """Load ``init``'s backbone into ``model`` (a ``name`` model) and freeze it if asked
        (without ``init``, the random backbone: the reference a linear probe is measured against)."""
        if self.init is not None:
            load_backbone(model, self.init, name)
        if self.freeze_backbone:
            head = classifier_attribute(model, name)
            for key, param in model.named_parameters():
                param.requires_grad_(key.startswith(f"{head}."))
        return model

    def lr_scale(self, model: nn.Module, name: str, parameter: str) -> float:
        """The learning-rate multiplier of ``model``'s parameter named ``parameter``."""
        if self.backbone_lr_scale == 1.0:
            return 1.0
        head = classifier_attribute(model, name)
        return 1.0 if parameter.startswith(f"{head}.") else self.backbone_lr_scale

    def frozen_norms(self, model: nn.Module, name: str) -> list[nn.Module]:
        """The BatchNorm layers to keep in eval mode while training (those of a frozen backbone)."""
        return norm_layers(model, classifier_attribute(model, name)) if self.freeze_backbone else []


def norm_layers(model: nn.Module, skip: str) -> list[nn.Module]:
    """``model``'s BatchNorm layers (those with running statistics) outside its child ``skip``."""
    return [m for key, m in model.named_modules()
            if isinstance(m, _RUNNING_STATS) and key != skip and not key.startswith(f"{skip}.")]


def backbone_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """The weights a checkpoint offers as a backbone (a pretext run's backbone with its prefix
    removed, or a classifier's whole state_dict) and a description of where they come from."""
    state = load_checkpoint(path, required=("model",))
    weights, prefix = state["model"], state.get(BACKBONE_PREFIX) or ""
    if not (isinstance(weights, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in weights.items())):
        raise CheckpointError(f"{Path(path)}: field model: expected a state dict of weights")
    if not isinstance(prefix, str):
        raise CheckpointError(f"{Path(path)}: field {BACKBONE_PREFIX}: expected a string, got {type(prefix).__name__}")
    weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    pretext, recipe = state.get("pretext"), state.get("recipe")
    if isinstance(pretext, dict) and {"model", "task"} <= pretext.keys():
        return weights, f"{pretext['model']} pretrained on the {pretext['task']} pretext task"
    if isinstance(recipe, dict) and "model" in recipe:
        return weights, f"a {recipe['model']} classifier"
    return weights, "an unnamed model"


def load_backbone(model: nn.Module, path: str | os.PathLike, name: str) -> list[str]:
    """Copy every weight of ``model`` (a ``name`` model) but its classifier's from the
    checkpoint ``path``; returns the keys copied.  ``CheckpointError`` naming the first weight
    that is missing or of another shape."""
    weights, source = backbone_state(path)
    head = classifier_attribute(model, name)
    target = {k: v for k, v in model.state_dict().items() if not k.startswith(f"{head}.")}
    for key, value in target.items():
        if key not in weights or weights[key].shape != value.shape:
            found = f"shape {tuple(weights[key].shape)}" if key in weights else "no such weight"
            raise CheckpointError(f"{Path(path)}: its backbone ({source}) does not fit model {name}: "
                                  f"{key} {tuple(value.shape)} has {found} there (start from a checkpoint of "
                                  f"the same model and options)")
    model.load_state_dict({**model.state_dict(), **{k: weights[k] for k in target}})
    return list(target)
