"""Training the video-text dual encoder as a task of the engine's one training loop.

``train_clip(out_dir, data, captions)`` trains a :class:`~deepvideo.language.model.DualEncoder`
on the videos under ``data`` named by a caption file (:func:`~deepvideo.language.data.parse_captions`)
with CLIP's symmetric InfoNCE over each batch and a learned temperature (Radford et al., ICML
2021): every step draws a random clip of each video and one of its captions, and the other
pairs of the batch are the negatives.  Towers start fresh, or from real CLIP weights in a local
file (``clip_weights``, with a spec from :func:`~deepvideo.language.model.open_clip_spec`: the
ActionCLIP / X-CLIP recipe of fine-tuning CLIP's towers on video).

A seeded ``val_fraction`` of the videos (held out by name) is embedded after every epoch (centre
clip, first caption): ``metrics.csv`` gets the InfoNCE loss over the whole validation set
(``val_loss``, which chooses ``best.pt``), text-to-video and video-to-text R@1 and R@5 and the
learned logit scale.  ``best.pt`` stores the :class:`~deepvideo.language.model.ClipSpec` under
``"clip"``, which :func:`~deepvideo.language.model.load_clip_checkpoint` rebuilds the model from.
Everything else -- resume, AMP, DDP, curves -- is the engine's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from deepvideo.engine.device import autocast, prepare_input
from deepvideo.engine.task import Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.language.data import CaptionedVideos, parse_captions
from deepvideo.language.model import ClipSpec, build_dual_encoder, clip_loss, load_clip_weights
from deepvideo.language.text import Tokenizer
from deepvideo.language.zeroshot import retrieval_metrics

__all__ = ["CLIP_TRAINING", "ClipTask", "train_clip"]

CLIP_TRAINING = TrainConfig(epochs=30, batch_size=32, lr=1e-3, weight_decay=0.1, warmup_epochs=1.0)


class ClipTask(Task):
    """Contrastive video-text training on captioned videos; ``val_loss`` chooses ``best.pt``."""

    name = "video-text"
    samples = "videos"

    def __init__(self, data: str | os.PathLike, captions: str | os.PathLike, spec: ClipSpec | None = None,
                 clip_weights: str | os.PathLike | None = None, val_fraction: float = 0.1) -> None:
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.spec = spec or ClipSpec()
        self.data, self.captions = str(data), str(captions)
        self.clip_weights = None if clip_weights is None else str(clip_weights)
        by_video = parse_captions(captions, data)
        tokenizer = Tokenizer(self.spec.context_length)
        paths = list(by_video)
        self.tokens = {path: tokenizer(texts) for path, texts in by_video.items()}
        held = max(1, round(val_fraction * len(paths))) if val_fraction > 0 else 0
        if len(paths) - held < 2:
            raise ValueError(f"{captions}: {len(paths)} captioned videos, {held} held out for validation: "
                             f"contrastive training needs two or more to train on")
        order = np.random.default_rng(len(paths)).permutation(len(paths))
        self.val_paths = sorted(paths[i] for i in order[:held])
        self.train_paths = sorted(paths[i] for i in order[held:])
        self.build_model()  # a misfit spec or weights file fails now, before anything is written

    def config(self) -> dict[str, Any]:
        return {"task": "clip", "spec": self.spec.to_dict(), "data": self.data, "captions": self.captions,
                "clip_weights": self.clip_weights, "val_videos": [str(p) for p in self.val_paths]}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"clip": self.spec.to_dict()}

    def build_model(self) -> nn.Module:
        model = build_dual_encoder(self.spec)
        if self.clip_weights is not None:
            load_clip_weights(model, self.clip_weights)
        return model

    def _dataset(self, paths: list[Path], train: bool, seed: int) -> CaptionedVideos:
        return CaptionedVideos(paths, [self.tokens[path] for path in paths], self.spec, train, seed)

    def train_set(self, seed: int) -> Dataset:
        return self._dataset(self.train_paths, True, seed)

    def val_set(self, seed: int) -> Dataset | None:
        return self._dataset(self.val_paths, False, seed + 1) if self.val_paths else None

    def training_step(self, model: nn.Module, batch: Any) -> Step:
        clips, tokens, _ = batch
        video, text, scale = model(clips, tokens)
        loss = clip_loss(video, text, scale)
        with torch.no_grad():  # in-batch video-to-text accuracy: the caption of the same video ranks first
            correct = ((video @ text.T).argmax(1) == torch.arange(len(video), device=video.device)).sum()
        return Step(loss, len(clips), {"acc": correct})

    @torch.no_grad()
    def validate(self, model: nn.Module, dataset: Dataset, config: TrainConfig,
                 device: torch.device) -> dict[str, float]:
        videos, texts = [], []
        for batch in DataLoader(dataset, batch_size=config.batch_size, num_workers=config.workers):
            clips, tokens, _ = prepare_input(batch, device, config.channels_last)
            with autocast(device, config.amp):
                video, text, scale = model(clips, tokens)
            videos.append(video.float())
            texts.append(text.float())
        video, text = torch.cat(videos), torch.cat(texts)
        similarity = video @ text.T
        t2v = retrieval_metrics(similarity.T, np.arange(len(video)))
        v2t = retrieval_metrics(similarity, np.arange(len(video)))
        return {"val_loss": float(clip_loss(video, text, model.scale().float())), "val_t2v_r1": t2v["r1"],
                "val_t2v_r5": t2v["r5"], "val_v2t_r1": v2t["r1"], "val_v2t_r5": v2t["r5"],
                "val_scale": float(model.scale())}


def train_clip(out_dir: str | os.PathLike, data: str | os.PathLike, captions: str | os.PathLike,
               spec: ClipSpec | None = None, config: TrainConfig = CLIP_TRAINING, resume: bool = False,
               clip_weights: str | os.PathLike | None = None, val_fraction: float = 0.1) -> dict[str, Any]:
    """Train a dual encoder of ``spec`` (default :class:`ClipSpec`) on the videos under ``data``
    captioned in ``captions``; ``clip_weights`` starts its towers from a local CLIP file.
    Returns :func:`~deepvideo.engine.fit`'s result plus ``train_videos`` and ``val_videos``."""
    task = ClipTask(data, captions, spec, clip_weights, val_fraction)
    result = fit(task, config, out_dir, resume)
    return {**result, "train_videos": task.train_paths, "val_videos": task.val_paths}
