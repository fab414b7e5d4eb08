"""Training video super-resolution on any videos, through the engine's one training loop.

No labels are needed: each sample is a random HR crop of ``frames`` consecutive frames of a
training video and its LR crop under the chosen degradation (:mod:`deepvideo.sr.degrade`),
flipped left-right and reversed in time at random.  The loss is the mean squared error of
the SR frames against the HR ones, plus ``flow_weight`` times FRVSR's flow loss.
Validation super-resolves the first ``val_frames`` frames of every held-out video whole and
reports their Y-PSNR (``val_psnr``, which chooses ``best.pt``) as :func:`~deepvideo.sr.psnr`
computes it.

Videos are decoded once into memory (up to ``max_frames`` frames each, uint8); one that
cannot be decoded or is smaller than a crop is skipped with a warning and counted.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.data.datasets import find_videos
from deepvideo.engine.task import GeneratedSet, Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.io import VideoDecodeError, open_video
from deepvideo.sr.degrade import SCALES, degrade_frames, frames_to_tensor, random_crop_pair, tensor_to_frames
from deepvideo.sr.metrics import psnr
from deepvideo.sr.models import SR_MODELS, build_sr_model

__all__ = ["SR_TRAINING", "SRTask", "VideoBank", "list_videos", "train_sr"]


def list_videos(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Video files named by ``paths``: files as given, folders searched for videos
    (:func:`~deepvideo.data.datasets.find_videos`); a missing path is a ``ValueError``."""
    videos: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            videos += find_videos(path)
        elif path.exists():
            videos.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return videos


class VideoBank:
    """The frames of ``videos`` decoded into memory: ``(name, frames (T, H, W, 3) uint8)``
    with ``T <= max_frames`` (the first frames).  A video that cannot be decoded, has fewer
    than ``min_frames`` frames or sides under ``min_side`` is skipped and listed in
    ``skipped`` as ``(path, reason)``, with a warning."""

    def __init__(self, videos: Sequence[Path], max_frames: int, min_frames: int = 1, min_side: int = 1) -> None:
        self.videos: list[tuple[str, np.ndarray]] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in videos:
            try:
                with open_video(path) as reader:
                    frames = np.stack(list(islice(iter(reader), max_frames))) if len(reader) else None
            except (VideoDecodeError, ValueError, OSError) as exc:
                self.skipped.append((path, str(exc)))
                continue
            if frames is None or len(frames) < min_frames:
                self.skipped.append((path, f"{0 if frames is None else len(frames)} frames, fewer than {min_frames}"))
            elif min(frames.shape[1:3]) < min_side:
                self.skipped.append((path, f"{frames.shape[2]}x{frames.shape[1]} is smaller than {min_side} "
                                           "pixels on a side"))
            else:
                self.videos.append((path.name, frames))
        if self.skipped:
            warnings.warn(f"skipped {len(self.skipped)} of {len(videos)} videos: "
                          + "; ".join(f"{path.name} ({why.splitlines()[0]})" for path, why in self.skipped),
                          stacklevel=2)

    def __len__(self) -> int:
        return len(self.videos)


class SRTask(Task):
    """Super-resolution of ``videos`` by ``scale`` under ``degradation`` for the engine.

    ``model`` is a registered trainable SR model (``srnet``, ``frvsr``) built with
    ``model_options``; samples are ``frames``-frame clips of ``patch x patch`` HR crops,
    ``clips_per_epoch`` of them per epoch; ``val_videos`` (held out by the caller) are
    validated on their first ``val_frames`` frames.
    """

    name = "sr"
    samples = "clips"
    monitor = "val_psnr"
    higher_is_better = True

    def __init__(self, videos: Sequence[str | os.PathLike], val_videos: Sequence[str | os.PathLike] = (),
                 model: str = "frvsr", scale: int = 4, degradation: str = "bd", patch: int = 128, frames: int = 10,
                 clips_per_epoch: int = 400, val_frames: int = 20, max_frames: int = 300, flow_weight: float = 1.0,
                 model_options: dict[str, Any] | None = None) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
        if not SR_MODELS.info(model).get("trainable"):
            raise ValueError(f"model {model!r} has no weights to train; trainable: "
                             + ", ".join(n for n in SR_MODELS.names() if SR_MODELS.info(n).get("trainable")))
        self.model_name, self.model_options = model, dict(model_options or {})
        multiple = build_sr_model(model, scale, **self.model_options).multiple
        if patch % (scale * multiple):
            raise ValueError(f"patch {patch} must be a multiple of {scale * multiple} (scale {scale} times the "
                             f"{multiple} that {model} needs at LR)")
        if frames < 2:
            raise ValueError(f"frames must be at least 2, got {frames}")
        self.scale, self.degradation, self.patch, self.frames = scale, degradation, patch, frames
        self.clips_per_epoch, self.val_frames, self.max_frames = clips_per_epoch, val_frames, max_frames
        self.flow_weight = flow_weight
        self.videos, self.val_videos = list_videos(videos), list_videos(val_videos)
        held_out = {path.resolve() for path in self.val_videos}
        self.videos = [path for path in self.videos if path.resolve() not in held_out]
        if not self.videos:
            raise ValueError("videos: no training videos (all held out, or none found)")
        self.bank: VideoBank | None = None

    def config(self) -> dict[str, Any]:
        return {"task": "sr", "model": self.model_name, "model_options": self.model_options, "scale": self.scale,
                "degradation": self.degradation, "patch": self.patch, "frames": self.frames,
                "clips_per_epoch": self.clips_per_epoch, "val_frames": self.val_frames,
                "max_frames": self.max_frames, "flow_weight": self.flow_weight,
                "videos": sorted(path.name for path in self.videos),
                "val_videos": sorted(path.name for path in self.val_videos)}

    def build_model(self) -> nn.Module:
        return build_sr_model(self.model_name, self.scale, **self.model_options)

    def example(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pair: LR ``(T, 3, p/s, p/s)`` and HR ``(T, 3, p, p)`` in ``[0, 1]``."""
        _, frames = self.bank.videos[int(rng.integers(len(self.bank)))]
        start = int(rng.integers(len(frames) - self.frames + 1))
        hr, lr = random_crop_pair(frames[start:start + self.frames], self.patch, self.scale, self.degradation, rng)
        if rng.random() < 0.5:
            hr, lr = hr.flip(-1), lr.flip(-1)
        if rng.random() < 0.5:
            hr, lr = hr.flip(0), lr.flip(0)
        return lr, hr

    def train_set(self, seed: int) -> GeneratedSet:
        self.bank = VideoBank(self.videos, self.max_frames, min_frames=self.frames, min_side=self.patch)
        if not len(self.bank):
            raise ValueError(f"videos: none of the {len(self.videos)} training videos is usable "
                             f"(first: {self.bank.skipped[0][0]}: {self.bank.skipped[0][1]})")
        return GeneratedSet(self.example, self.clips_per_epoch, seed)

    def val_set(self, seed: int) -> VideoBank | None:
        if not self.val_videos:
            return None
        bank = VideoBank(self.val_videos, self.val_frames, min_side=self.scale)
        return bank if len(bank) else None

    def training_step(self, model: nn.Module, batch) -> Step:
        lr, hr = batch
        sr, flow_loss = model(lr, with_flow_loss=True)
        loss = F.mse_loss(sr.float(), hr) + self.flow_weight * flow_loss.float()
        return Step(loss, len(hr))

    def validate(self, model: nn.Module, dataset: VideoBank, config: TrainConfig,
                 device: torch.device) -> dict[str, float]:
        scores = []
        for _, frames in dataset.videos:
            hr, lr = degrade_frames(frames, self.scale, self.degradation)
            sr = torch.stack(list(model.stream(frames_to_tensor(lr).to(device))))
            scores.append(psnr(tensor_to_frames(sr), hr, crop_border=self.scale))
        return {"val_psnr": float(np.mean(scores))}


SR_TRAINING = TrainConfig(epochs=10, batch_size=4, lr=1e-3, optimizer="adam", weight_decay=0.0, warmup_epochs=0.2,
                          min_lr=0.01, clip_grad=1.0)


def train_sr(out_dir: str | os.PathLike, videos: Sequence[str | os.PathLike],
             val_videos: Sequence[str | os.PathLike] = (), model: str = "frvsr", scale: int = 4,
             degradation: str = "bd", train: TrainConfig | None = None, resume: bool = False,
             **task_options: Any) -> dict[str, Any]:
    """Train an SR ``model`` on ``videos`` (files or folders) through
    :func:`deepvideo.engine.fit`, holding out ``val_videos`` for validation; writes
    ``out_dir/best.pt`` (for ``sr eval`` and ``sr upscale``), ``last.pt``, ``metrics.csv``
    and ``curves.png``.  ``task_options`` go to :class:`SRTask` (``patch``, ``frames``,
    ``clips_per_epoch``, ``model_options``, ...).  ``train`` defaults to
    :data:`SR_TRAINING`: Adam 1e-3 with a cosine decay, batches of 4 clips, 10 epochs of
    400 clips.  Returns :func:`~deepvideo.engine.fit`'s result.
    """
    task = SRTask(videos, val_videos, model=model, scale=scale, degradation=degradation, **task_options)
    return fit(task, train or SR_TRAINING, out_dir, resume=resume)
