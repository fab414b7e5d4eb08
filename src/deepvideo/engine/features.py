"""``deepvideo extract-features``: a frozen backbone run once over every video, features cached.

Two kinds of backbone:

* a torchvision 2D image classifier by name (``resnet18``, ``resnet50``, ``mobilenet_v3_large``,
  ...) with weights from a local file (e.g. torchvision's ImageNet ``.pth``), run on every
  ``every``-th frame (short side resized to ``size``, centre crop, ImageNet normalisation):
  one row per frame;
* a deepvideo video model by name (``r2plus1d_18``, ``r3d_18``, ``small3d``, ... with
  torchvision-layout local weights), or the path of a ``deepvideo train`` checkpoint (its
  recipe gives clip length, size and normalisation), run on consecutive non-overlapping
  clips of ``clip_len`` frames (Kinetics normalisation by default): one row per clip.

The classifier (``fc``, ``classifier``, ``head`` or ``heads``) is replaced by the identity,
so a row is the pooled feature vector.  A two-stream network (``two_stream``,
``two_stream_i3d``, trained on the ``rgb+flow`` modality) gives its spatial (RGB) stream:
``two_stream``'s 2D CNN runs per frame like an image classifier (one row per frame),
``two_stream_i3d``'s RGB I3D per clip, both fed the RGB half of the recipe's test-time
pipeline.  A checkpoint trained on flow (or feature) input cannot run on RGB frames and is
refused, as is the ``temporal_stream`` model.

Videos are decoded in chunks of ``batch_size`` frames (or clips), never whole, and each
video's features are written atomically to :func:`~deepvideo.data.features.feature_target` as
float16 with the backbone's :attr:`Backbone.name`, so a killed run resumes where it stopped
and never mixes rows of two backbones.  Unreadable or too short videos are skipped and
reported.  A named backbone without weights is randomly initialised from seed 0, the same
weights every run.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torchvision
from tqdm import tqdm

from deepvideo.data.features import feature_backbone, feature_target, save_features
from deepvideo.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform
from deepvideo.engine.recipe import RGB_FLOW, load_trained
from deepvideo.io import VideoTooShortError, open_video
from deepvideo.io.jobs import JobSummary, plan_outputs, run_jobs
from deepvideo.models import create_model, list_models
from deepvideo.models.registry import drop_classifier
from deepvideo.models.two_stream import SpatialStream, TemporalStream, TwoStream
from deepvideo.models.weights import load_weights

__all__ = ["FeatureSummary", "build_backbone", "extract_features", "features_name", "video_features"]



@dataclass
class FeatureSummary(JobSummary):
    """A :class:`~deepvideo.io.jobs.JobSummary` (files written, files already there,
    ``(video, reason)`` of skipped videos) and the feature dimension of those written."""

    dim: int | None = None


@dataclass
class Backbone:
    """A headless network and how to feed it: ``clip_len`` None means per frame (2D).

    ``name`` says what computes the features: the model, the SHA-256 of its weights file
    (or "random weights"), its input side and clip length, e.g. ``"resnet18 (weights
    sha256:1f2e..., 224 px)"``."""

    net: nn.Module
    transform: Callable
    clip_len: int | None
    name: str


def _weights_id(path: str | os.PathLike | None) -> str:
    """``"weights sha256:<16 hex digits>"`` of a weights file, ``"random weights"`` without one."""
    if path is None:
        return "random weights"
    with open(path, "rb") as fh:
        return f"weights sha256:{hashlib.file_digest(fh, 'sha256').hexdigest()[:16]}"


def _backbone_name(model: str, weights: str, size: int, clip_len: int | None) -> str:
    clips = f", {clip_len}-frame clips" if clip_len else ""
    return f"{model} ({weights}, {size} px{clips})"


def _seeded(build: Callable[..., nn.Module], *args, **kwargs) -> nn.Module:
    """``build(*args, **kwargs)`` initialised from seed 0 (the same random weights every run),
    leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(*args, **kwargs)


def _rgb_features(net: nn.Module, name: str) -> tuple[nn.Module, bool]:
    """The part of ``net`` that maps RGB input to features (its classifier removed), and
    whether that part is a 2D network (run per frame).

    A :class:`TwoStream` gives its spatial stream; a :class:`SpatialStream` its 2D image
    classifier's features (``net[0]`` of a small_cnn2d one, see ``image_classifier``).
    """
    if isinstance(net, TwoStream):
        net = net.spatial
    if isinstance(net, TemporalStream):
        raise ValueError(f"backbone {name!r} takes optical flow; extract-features runs on RGB frames")
    if isinstance(net, SpatialStream):
        image = net.net
        return (image[0] if isinstance(image, nn.Sequential) else drop_classifier(image, name)), True
    return drop_classifier(net, name), False


def build_backbone(name: str, weights: str | os.PathLike | None = None, size: int | None = None,
                   clip_len: int = 16) -> Backbone:
    """The headless backbone ``name`` (see the module docstring) in eval mode; ``weights``
    is a local state_dict file for a named model."""
    if Path(name).is_file():
        recipe, net = load_trained(name)
        if recipe.modality not in ("rgb", RGB_FLOW):
            raise ValueError(f"{name}: trained on {recipe.modality} input; extract-features runs on RGB "
                             f"frames, use a checkpoint trained on rgb or {RGB_FLOW}")
        net, per_frame = _rgb_features(net, recipe.model)
        transform = build_transform(False, size=recipe.size, resize=recipe.resize, mean=recipe.mean,
                                    std=recipe.std)
        clips = None if per_frame else recipe.clip_len
        return Backbone(net.eval(), transform, clips,
                        _backbone_name(f"{recipe.model} checkpoint", _weights_id(name), recipe.size, clips))
    if name in list_models():
        net = _seeded(create_model, name)
        if weights is not None:
            load_weights(net, weights)
        net, per_frame = _rgb_features(net, name)
        size = size or 112
        clips = None if per_frame else clip_len
        return Backbone(net.eval(), build_transform(False, size=size, resize=size), clips,
                        _backbone_name(name, _weights_id(weights), size, clips))
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown backbone {name!r}: a torchvision image classifier (resnet18, ...), "
                         f"a model of `deepvideo models` or a checkpoint file")
    net = _seeded(torchvision.models.get_model, name, weights=None)
    if weights is not None:
        load_weights(net, weights)
    size = size or 224
    transform = build_transform(False, size=size, resize=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Backbone(drop_classifier(net, name).eval(), transform, None,
                    _backbone_name(name, _weights_id(weights), size, None))


@torch.no_grad()
def video_features(video: str | os.PathLike, backbone: Backbone, batch_size: int = 32, every: int | None = None,
                   device: torch.device | str = "cpu", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, D) float32, times (N,) seconds)`` of one video, decoded in chunks.

    Per frame (2D backbone): frames ``0, every, 2 * every, ...`` (default every frame); per
    clip (3D): the clips of ``clip_len`` frames starting at ``0, every, 2 * every, ...``
    (default ``every = clip_len``: consecutive clips; less overlaps them, the fixed stride
    temporal detection wants).  A video shorter than one clip raises
    :class:`~deepvideo.io.VideoTooShortError`.
    """
    step = backbone.clip_len or 1
    every = every or step
    rows, times = [], []
    with open_video(video) as reader:
        starts = np.arange(0, reader.num_frames - step + 1, every)
        if not len(starts):
            raise VideoTooShortError(f"{video}: too short ({reader.num_frames} frames, a clip needs {step})")
        chunks = np.array_split(starts, -(-len(starts) // batch_size))
        for chunk in tqdm(chunks, desc=f"features {Path(video).name}", unit="batch", disable=not progress):
            frames = reader.read((chunk[:, None] + np.arange(step)).reshape(-1))
            if backbone.clip_len:        # (K * T, H, W, 3) -> K clips (3, T, h, w)
                windows = frames.reshape(len(chunk), step, *frames.shape[1:])
                clips = torch.stack([backbone.transform(c) for c in windows])
            else:                        # the frames as one clip, then (T, 3, h, w) images
                clips = backbone.transform(frames).transpose(0, 1)
            rows.append(backbone.net(clips.to(device)).flatten(1).float().cpu().numpy())
            times.append(reader.frame_times[chunk])
    return np.concatenate(rows), np.concatenate(times)


def features_name(backbone: Backbone, every: int | None = None) -> str:
    """What rows of :func:`video_features` ``(video, backbone, every=every)`` are, as feature
    files record it: the backbone's name and the rows' stride."""
    if not backbone.clip_len:
        return backbone.name + (f", every {every} frames" if every and every > 1 else ", every frame")
    return backbone.name + (f", a clip every {every} frames" if every and every != backbone.clip_len else "")


def extract_features(videos: list[str | os.PathLike], out_dir: str | os.PathLike, backbone: Backbone,
                     root: str | os.PathLike | None = None, batch_size: int = 32, every: int | None = None,
                     device: torch.device | str = "cpu", progress: bool = True) -> FeatureSummary:
    """Features of every video into ``out_dir`` (see the module docstring), resumably.

    Each file goes to :func:`~deepvideo.data.features.feature_target` ``(video, out_dir,
    root)``: mirroring the sub-folders under ``root`` when given, else flat.  Finished files
    are skipped, so a second run only does what is missing.  Videos that cannot be decoded or
    are shorter than one clip are skipped with a warning and listed in the summary.

    Raises:
        ValueError: no videos; two videos that would write the same file; or an existing
            file computed by another backbone (another name, weights, size, clip length or
            ``every``) or without a backbone record.
    """
    videos = [Path(v) for v in videos]
    if not videos:
        raise ValueError("no videos to extract features from")
    name = features_name(backbone, every)             # what the rows are, as stored in each file

    def check_done(video: Path, target: Path) -> None:
        stored = feature_backbone(target)
        if stored != name:
            held = repr(stored) if stored else "an unrecorded backbone (an older file)"
            raise ValueError(f"{target} holds features of {held}, not of {name!r}: use another output "
                             f"folder or delete it")

    todo, done = plan_outputs(videos, lambda video: feature_target(video, out_dir, root), root is not None,
                              check_done)
    summary = FeatureSummary(skipped=done)
    backbone.net.to(device)

    def extract(video: Path, target: Path) -> None:
        features, times = video_features(video, backbone, batch_size, every, device)
        save_features(target, features, times, name)
        summary.dim = features.shape[1]

    run_jobs(todo, extract, summary, "features", progress=progress)
    return summary
