"""Self-supervised pretraining as a task of the engine's one training loop.

``pretrain(out_dir, videos, task="order", model="small3d")`` trains a registered video
model's backbone (its classifier removed) with a pretext head (:mod:`deepvideo.ssl.pretext`)
on a folder of unlabelled videos (recursively; labels and class folders ignored).
``out_dir/best.pt`` holds the network under ``backbone.`` and ``head.`` and names the
backbone's prefix, so that ``deepvideo train --init out_dir/best.pt``
(:class:`~deepvideo.engine.transfer.Transfer`) starts a classifier of the same model from
it.  Everything else -- resume, AMP, DDP, ``metrics.csv`` with the pretext accuracy per
epoch, curves -- is the engine's.

A seeded ``val_fraction`` of the videos (held out by name, at least one) measures the
pretext accuracy on videos the network never trained on.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from deepvideo.data.datasets import VideoDataset, find_videos
from deepvideo.data.sampling import RandomClipSampler
from deepvideo.engine.task import Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.engine.transfer import BACKBONE_PREFIX
from deepvideo.io import VideoDecodeError, open_video
from deepvideo.models import create_model
from deepvideo.models.registry import check_model_options, drop_classifier
from deepvideo.ssl.pretext import PRETEXT_TASKS, Augment, Pretext

__all__ = ["PRETRAINING", "PretextDataset", "PretextNet", "PretextTask", "build_pretext_net", "pretext_videos",
           "pretrain"]

PRETRAINING = TrainConfig(epochs=30, batch_size=16, lr=2e-3, weight_decay=1e-4, warmup_epochs=1.0)


class PretextNet(nn.Module):
    """A backbone ``(B, 3, T, H, W) -> (B, D)`` and a pretext head; ``forward(inputs)`` gives
    the head's output for a batch of pretext samples (layouts in :mod:`deepvideo.ssl.pretext`)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, pretext: Pretext) -> None:
        super().__init__()
        self.backbone, self.head, self.pretext = backbone, head, pretext

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.pretext.features(self.backbone, inputs))


def build_pretext_net(pretext: Pretext, model: str, model_kwargs: dict[str, Any] | None = None,
                      size: int = 112) -> PretextNet:
    """``model``'s backbone (a fresh registered model without its classifier) with
    ``pretext``'s head.  The backbone is probed once on random input of the task's shape:
    ``ValueError`` when it cannot take that input, or when the task needs the order of frames
    and the backbone's features do not change when the clip is reversed (a per-frame model)."""
    check_model_options(model, model_kwargs or {})
    backbone = drop_classifier(create_model(model, num_classes=2, **(model_kwargs or {})), model)
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 3, pretext.clip_frames, size, size, generator=generator)
    backbone.eval()
    try:
        with torch.no_grad():
            features = backbone(probe)
    except RuntimeError as exc:
        fit = "a 2D frame model such as single_frame" if pretext.single_frames else "clips of that length"
        raise ValueError(f"model {model} cannot take the {pretext.name} task's input {tuple(probe.shape[1:])} "
                         f"({str(exc).splitlines()[0][:120]}); the task needs {fit}") from None
    if features.dim() != 2:
        raise ValueError(f"model {model}: without its classifier it gives {tuple(features.shape)}, not (B, D) "
                         f"features; the {pretext.name} task needs a model that pools to one vector per clip")
    if pretext.temporal:
        with torch.no_grad():
            reversed_features = backbone(probe.flip(2))
        if torch.allclose(features, reversed_features, rtol=1e-4, atol=1e-5):
            raise ValueError(f"model {model} does not see the order of frames (its features of a clip and of the "
                             f"clip reversed are equal), so it cannot learn the {pretext.name} task; use a 3D "
                             f"model (small3d, r3d_18, r2plus1d_18, c3d, ...) or the shuffle or contrastive task")
    backbone.train()
    return PretextNet(backbone, pretext.head(features.shape[1]), pretext)


def pretext_videos(folder: str | os.PathLike, span: int, task: str) -> tuple[list[Path], list[str]]:
    """The videos under ``folder`` (recursively) with at least ``span`` frames, and one line per
    video left out (too short, or unreadable).  ``ValueError`` naming the folder when fewer
    than two are left."""
    found = find_videos(folder)
    usable, skipped = [], []
    for path in found:
        try:
            with open_video(path) as reader:
                frames = reader.num_frames
        except VideoDecodeError as exc:
            skipped.append(f"{path}: unreadable ({exc})")
            continue
        if frames < span:
            skipped.append(f"{path}: {frames} frames, fewer than the {span} the {task} task samples")
        else:
            usable.append(path)
    if len(usable) < 2:
        why = f"; first left out: {skipped[0]}" if skipped else ""
        raise ValueError(f"{folder}: {len(usable)} of {len(found)} videos have the {span} frames the {task} task "
                         f"samples (it needs two or more){why}; give longer videos or make the task's samples shorter "
                         f"(its options for clip length, stride, gap, speeds or window)")
    return usable, skipped


class PretextDataset(VideoDataset):
    """Pretext samples ``(inputs, label, video_index)`` from unlabelled videos: each item reads
    a random window of ``pretext.span`` consecutive frames of one video (``samples_per_video``
    items per video per epoch) and lets the task build its sample (:meth:`Pretext.sample`)
    with ``augment``.  Unreadable videos are skipped, replaced and counted as in
    :class:`~deepvideo.data.datasets.VideoDataset`."""

    def __init__(self, paths: list[Path], pretext: Pretext, augment: Augment, seed: int = 0,
                 samples_per_video: int = 1) -> None:
        samples = [(path, 0) for path in paths for _ in range(samples_per_video)]
        super().__init__(samples, ["unlabelled"], RandomClipSampler(pretext.span, short="pad"), augment, seed=seed)
        self.pretext, self.augment = pretext, augment

    def make_item(self, clips: list[np.ndarray], target: int, rng: np.random.Generator) -> tuple[Any, int, int]:
        inputs, label = self.pretext.sample(clips[0], self.augment, rng)
        return inputs, label, target


class PretextTask(Task):
    """A pretext task (:data:`~deepvideo.ssl.pretext.PRETEXT_TASKS`) on a folder of videos;
    ``val_acc`` (the pretext accuracy on the held-out videos) chooses ``best.pt``."""

    monitor = "val_acc"
    higher_is_better = True
    samples = "videos"

    def __init__(self, videos: str | os.PathLike, task: str = "order", model: str = "small3d",
                 model_kwargs: dict[str, Any] | None = None, task_options: dict[str, Any] | None = None,
                 size: int = 112, resize: int = 128, defences: bool = True, samples_per_video: int = 1,
                 val_fraction: float = 0.1) -> None:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if resize < size:
            raise ValueError(f"resize ({resize}) must be at least size ({size})")
        self.pretext: Pretext = PRETEXT_TASKS.build(task, **(task_options or {}))
        self.videos, self.task, self.model = str(videos), task, model
        self.model_kwargs = dict(model_kwargs or {})
        self.size, self.resize, self.defences = size, resize, defences
        self.samples_per_video, self.val_fraction = samples_per_video, val_fraction
        self.name = f"{task} pretext ({model})"
        build_pretext_net(self.pretext, model, self.model_kwargs, size)  # fails early on a misfit
        paths, self.skipped = pretext_videos(videos, self.pretext.span, task)
        if self.skipped:
            warnings.warn(f"{videos}: left out {len(self.skipped)} of {len(paths) + len(self.skipped)} videos "
                          f"(first: {self.skipped[0]})", stacklevel=2)
        held = max(1, round(val_fraction * len(paths)))
        order = np.random.default_rng(len(paths)).permutation(len(paths))
        self.val_paths = sorted(paths[i] for i in order[:held])
        self.train_paths = sorted(paths[i] for i in order[held:])

    def config(self) -> dict[str, Any]:
        return {"task": f"pretext:{self.task}", "options": self.pretext.options(), "model": self.model,
                "model_kwargs": self.model_kwargs, "size": self.size, "resize": self.resize,
                "defences": self.defences, "videos": self.videos, "val_videos": [str(p) for p in self.val_paths]}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"pretext": {"task": self.task, "model": self.model, "model_kwargs": self.model_kwargs,
                            "options": self.pretext.options(), "size": self.size, "resize": self.resize},
                BACKBONE_PREFIX: "backbone."}

    def build_model(self) -> nn.Module:
        return build_pretext_net(self.pretext, self.model, self.model_kwargs, self.size)

    def _dataset(self, paths: list[Path], seed: int, samples_per_video: int) -> PretextDataset:
        return PretextDataset(paths, self.pretext, Augment(self.size, self.resize, self.defences), seed,
                              samples_per_video)

    def train_set(self, seed: int) -> Dataset:
        return self._dataset(self.train_paths, seed, self.samples_per_video)

    def val_set(self, seed: int) -> Dataset:
        return self._dataset(self.val_paths, seed + 1, max(1, self.samples_per_video))

    def training_step(self, model: nn.Module, batch: Any) -> Step:
        inputs, labels, _ = batch
        loss, correct = self.pretext.loss(model(inputs), labels)
        return Step(loss, len(labels), {"acc": correct})


def pretrain(out_dir: str | os.PathLike, videos: str | os.PathLike, task: str = "order", model: str = "small3d",
             config: TrainConfig = PRETRAINING, resume: bool = False, **options: Any) -> dict[str, Any]:
    """Pretrain ``model``'s backbone on ``task`` over the videos under ``videos``; ``options``
    are :class:`PretextTask`'s (``model_kwargs``, ``task_options``, ``size``, ``resize``,
    ``defences``, ``samples_per_video``, ``val_fraction``).  Returns :func:`~deepvideo.engine.fit`'s
    result plus ``skipped`` (the videos left out, one line each) and ``val_videos``."""
    pretext = PretextTask(videos, task, model, **options)
    result = fit(pretext, config, out_dir, resume)
    return {**result, "skipped": pretext.skipped, "val_videos": pretext.val_paths}
