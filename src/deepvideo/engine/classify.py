"""Video classification as a task of the one training loop (:func:`deepvideo.engine.fit`).

``train(recipe, data, config, out_dir)`` trains ``recipe.model`` on the "train" subset of
``data`` and validates on "val" after every epoch (clip accuracy and video accuracy over
``config.val_clips`` clips per video, :func:`~deepvideo.engine.evaluate.evaluate`);
``best.pt`` holds the epoch of best validation video accuracy.  Checkpoints carry the
:class:`~deepvideo.engine.recipe.Recipe`, so :func:`~deepvideo.engine.recipe.load_trained`
rebuilds the model and its test-time pipeline from the file alone.

A two-stream model (modality ``rgb+flow``, batches ``(rgb, flow)``) trains both streams
at once: the loss is the sum of the streams' cross-entropies (see
:mod:`deepvideo.engine.batch`), accuracy is the fused prediction's, and the validation
columns add each stream's clip accuracy (``val_spatial_acc``, ``val_temporal_acc``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch.nn as nn
from torch.utils.data import Dataset

from deepvideo.engine.batch import STREAMS, forward, output_loss, prediction_scores
from deepvideo.engine.device import resolve_amp, resolve_device
from deepvideo.engine.distributed import is_main, process_group
from deepvideo.engine.evaluate import evaluate, fuse_results
from deepvideo.engine.recipe import DataSpec, Recipe, load_trained
from deepvideo.engine.task import Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.engine.transfer import Transfer
from deepvideo.io.atomic import atomic_write
from deepvideo.io.text import read_text

__all__ = ["ClassificationTask", "evaluate_checkpoints", "train"]


class ClassificationTask(Task):
    """Clips ``(B, C, T, H, W)`` (or ``(rgb, flow)`` pairs) and labels ``(B,)`` from
    ``data`` through ``recipe``'s pipeline; cross-entropy; accuracy.  An empty
    ``recipe.classes`` is filled from the training set."""

    monitor = "val_video_acc"
    higher_is_better = True
    samples = "videos"

    def __init__(self, recipe: Recipe, data: DataSpec, val_clips: int = 1, split_file: Path | None = None,
                 transfer: Transfer | None = None, cache: str = "none", cache_dir: str | os.PathLike | None = None
                 ) -> None:
        self.recipe, self.data, self.val_clips, self.split_file = recipe, data, val_clips, split_file
        self.cache, self.cache_dir = cache, cache_dir
        self.transfer = transfer or Transfer()
        self.name = recipe.model
        self.frozen: list[nn.Module] = []
        self.model: nn.Module | None = None

    def config(self) -> dict[str, Any]:
        return {"task": "classification", "model": self.recipe.model, "model_kwargs": self.recipe.model_kwargs,
                "classes": self.recipe.classes, "val_split": self.data.val_split,
                "train_per_class": self.data.train_per_class, **self.transfer.to_dict()}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"recipe": self.recipe.to_dict()}

    def build_model(self) -> nn.Module:
        self.model = self.transfer.apply(self.recipe.build_model(), self.recipe.model)
        self.frozen = self.transfer.frozen_norms(self.model, self.recipe.model)
        return self.model

    def lr_scale(self, name: str) -> float:
        return self.transfer.lr_scale(self.model, self.recipe.model, name)

    def train_set(self, seed: int) -> Dataset:
        dataset = self.recipe.dataset(self.data, "train", train=True, seed=seed, cache=self.cache,
                                      cache_dir=self.cache_dir, log=print if is_main() else None)
        if not self.recipe.classes:
            self.recipe.classes = list(dataset.classes)
        if self.data.val_split and self.split_file is not None and is_main():
            videos = "".join(f"{video}\n" for video in self.data.val_videos)
            atomic_write(self.split_file, lambda fh: fh.write(videos.encode()))
        return dataset

    def val_set(self, seed: int) -> Dataset:
        return self.recipe.dataset(self.data, "val", train=False, seed=seed, num_clips=self.val_clips, cache=self.cache,
                                   cache_dir=self.cache_dir, log=print if is_main() else None)

    def training_step(self, model: nn.Module, batch: Any) -> Step:
        for layer in self.frozen:  # a frozen backbone keeps its running statistics
            layer.eval()
        clips, labels, _ = batch
        output = forward(model, clips)
        correct = (prediction_scores(output).argmax(1) == labels).sum()
        return Step(output_loss(output, labels), len(labels), {"acc": correct})

    def validate(self, model: nn.Module, dataset: Dataset, config: TrainConfig, device) -> dict[str, Any]:
        val = evaluate(model, dataset, batch_size=config.batch_size, device=device, amp=config.amp,
                       channels_last=config.channels_last, workers=config.workers)
        row = {"val_loss": val["loss"], "val_acc": val["clip_acc"], "val_video_acc": val["video_acc1"],
               "bad_videos": val["bad_videos"]}
        row.update({f"val_{s}_acc": val[f"{s}_clip_acc"] for s in STREAMS if f"{s}_clip_acc" in val})
        return row


def train(recipe: Recipe, data: DataSpec, config: TrainConfig, out_dir: str | os.PathLike,
          resume: bool = False, transfer: Transfer | None = None) -> dict[str, Any]:
    """Train and validate a classifier; returns :func:`~deepvideo.engine.fit`'s result
    (``history``, ``checkpoint`` = ``best.pt``, ...) plus ``best_val_acc`` (the best
    validation video accuracy).  ``transfer`` starts from a checkpoint's backbone, frozen
    or with its own learning rate (:class:`~deepvideo.engine.transfer.Transfer`).

    Videos that cannot be decoded are skipped (with a warning), replaced by other videos,
    and counted per epoch in the ``bad_videos`` column of ``metrics.csv``.

    The training and validation videos are decoded once into ``config.cache``
    (:mod:`deepvideo.data.cache`; the disk cache in ``config.cache_dir``, default
    ``out_dir/cache``); a line per subset says which cache was used and its size.

    With ``data.val_split`` the held-out training videos are written to
    ``out_dir/val_split.txt`` and, on ``resume``, read back from it.
    """
    split_file = Path(out_dir) / "val_split.txt"
    if data.val_split and data.val_videos is None and resume and split_file.is_file():
        data = replace(data, val_videos=read_text(split_file).splitlines())
    task = ClassificationTask(recipe, data, config.val_clips, split_file, transfer, config.cache,
                              config.cache_dir or Path(out_dir) / "cache")
    result = fit(task, config, Path(out_dir), resume)
    return {**result, "best_val_acc": result["best"]}


def evaluate_checkpoints(paths: Sequence[str | os.PathLike], data: DataSpec, subset: str = "test",
                         clips: int | None = None, fusion_weights: Sequence[float] | None = None,
                         batch_size: int = 8, device: str = "cpu", amp: str = "none", channels_last: bool = False,
                         workers: int = 0, progress: bool = False) -> dict[str, Any]:
    """Evaluate trained classifiers on ``data``'s ``subset`` (each with its own recipe and
    modality, ``clips`` clips per video or the recipe's test clips) and, for several, their
    late fusion (:func:`~deepvideo.engine.evaluate.fuse_results`, ``fusion_weights``).

    Returns ``{"classes", "runs": {"PATH (model, modality)": metrics}, "final": the fused
    metrics or the one run's, "fused": the fused metrics or None}``; the metrics hold
    no per-video arrays.  Under ``torchrun`` the videos are shared among processes.
    """
    if not paths:
        raise ValueError("paths: no checkpoint to evaluate")
    if fusion_weights is not None and len(fusion_weights) != len(paths):
        raise ValueError(f"fusion_weights: {len(fusion_weights)} weights for {len(paths)} checkpoints")
    runs = []
    with process_group(resolve_device(device)) as dev:
        amp = resolve_amp(amp, dev)
        for path in paths:
            recipe, model = load_trained(path, device=dev)
            dataset = recipe.dataset(data, subset, train=False, num_clips=clips)
            if list(dataset.classes) != list(recipe.classes):
                raise ValueError(f"data: classes {list(dataset.classes)[:3]}... differ from {path}'s "
                                 f"{recipe.classes[:3]}...")
            runs.append((recipe, evaluate(model, dataset, batch_size=batch_size, device=dev, amp=amp,
                                          channels_last=channels_last, workers=workers, progress=progress)))
    classes = runs[0][0].classes
    if any(recipe.classes != classes for recipe, _ in runs):
        raise ValueError("paths: the checkpoints were trained on different classes")
    results = {f"{path} ({recipe.model}, {recipe.modality})": metrics for path, (recipe, metrics) in zip(paths, runs)}
    fused = fuse_results([metrics for _, metrics in runs], fusion_weights) if len(runs) > 1 else None
    for metrics in [*results.values(), *([fused] if fused else [])]:
        for key in ("video_probs", "video_indices", "video_labels"):
            metrics.pop(key)
    return {"classes": classes, "runs": results, "final": fused or runs[0][1], "fused": fused}
