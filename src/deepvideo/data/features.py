"""Cached per-frame (or per-clip) features as a video dataset's data: the course's memory tip.

``deepvideo extract-features`` runs a frozen backbone once over every video and stores one
``.npz`` per video (mirroring the videos' folders) holding ``features`` ``(N, D)`` float16
(a row per frame, or per clip for a 3D backbone), ``times`` ``(N,)`` float64 (the start
time of each row, seconds) and ``backbone``, a string naming what computed the rows (so
that a resumed run never mixes backbones; files written before it was recorded lack it).
A :class:`FeatureReader` reads such a file like a video whose "frames" are feature rows,
so :class:`~deepvideo.data.datasets.VideoDataset` with ``opener=FeatureOpener(...)`` and
:func:`features_to_clip` samples and serves sequences of features with the usual clip
samplers.

A feature sequence is served as a clip ``(D, T, 1, 1)`` float32: the ``(C, T, H, W)``
layout with the feature dimension as channels, so batching, multi-clip evaluation and
checkpoints work unchanged; the temporal heads (:mod:`deepvideo.models.heads`,
``lstm_head``) take ``(B, D, T, 1, 1)`` or ``(B, T, D)``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from deepvideo.io import VideoDecodeError
from deepvideo.io.atomic import atomic_write
from deepvideo.io.jobs import output_path

__all__ = ["FEATURE_SUFFIX", "FeatureOpener", "FeatureReader", "feature_backbone", "feature_target",
           "features_to_clip", "load_features", "save_features"]

FEATURE_SUFFIX = ".npz"


def feature_target(video: str | os.PathLike, out_dir: str | os.PathLike, root: str | os.PathLike | None = None
                   ) -> Path:
    """Where a video's features go: ``out_dir/<path under root>.npz`` (``out_dir/<name>.npz``
    without ``root``); the suffix replaces a video file's, and is appended to a frame
    folder's name."""
    return output_path(video, out_dir, root, FEATURE_SUFFIX)


def save_features(path: str | os.PathLike, features: np.ndarray, times: np.ndarray, backbone: str) -> Path:
    """Write ``features`` ``(N, D)`` (as float16), ``times`` ``(N,)`` and the ``backbone``
    that computed them to ``path`` atomically; returns ``path``."""
    return atomic_write(Path(path), lambda fh: np.savez(fh, features=features.astype(np.float16), times=times,
                                                       backbone=np.array(backbone)))


def feature_backbone(path: str | os.PathLike) -> str | None:
    """The backbone recorded in a feature file (None for a file written before it was
    recorded); :class:`~deepvideo.io.VideoDecodeError` naming the file when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return str(archive["backbone"]) if "backbone" in archive.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise VideoDecodeError(f"{path}: not a feature file ({exc})") from None


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, D) float16, times (N,) float64)`` of a file written by extract-features;
    :class:`~deepvideo.io.VideoDecodeError` naming it when missing or of another kind."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such feature file (run deepvideo extract-features)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            features, times = archive["features"], archive["times"]
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise VideoDecodeError(f"{path}: not a feature file ({exc})") from None
    if features.ndim != 2 or times.shape != (len(features),) or not len(features):
        raise VideoDecodeError(f"{path}: not a feature file (features {features.shape}, times {times.shape})")
    return features, times


class FeatureReader:
    """A video's cached features, read like frames: ``read(indices) -> (N, D)`` float32."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._features, self.frame_times = load_features(self.path)
        self.num_frames = len(self._features)

    @property
    def duration(self) -> float:
        step = float(np.median(np.diff(self.frame_times))) if self.num_frames > 1 else 0.0
        return float(self.frame_times[-1]) + step

    def read(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(f"{self.path}: feature row {int(indices.max())} out of range ({self.num_frames} rows)")
        return self._features[indices].astype(np.float32)

    def __enter__(self) -> "FeatureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FeatureOpener:
    """``opener(video, threads) -> FeatureReader`` over the cache in ``feature_dir`` made from
    the videos under ``root`` (see :func:`feature_target`)."""

    def __init__(self, feature_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
        self.feature_dir = Path(feature_dir)
        if not self.feature_dir.is_dir():
            raise ValueError(f"--feature-dir {self.feature_dir}: no such folder")
        self.root = root

    def __call__(self, video: Path, threads: int = 1) -> FeatureReader:
        return FeatureReader(feature_target(video, self.feature_dir, self.root))

    def __repr__(self) -> str:
        return f"FeatureOpener({str(self.feature_dir)!r})"


def features_to_clip(features: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
    """A sampled feature sequence ``(T, D)`` -> clip ``(D, T, 1, 1)`` float32 (a dataset transform)."""
    if features.ndim != 2:
        raise ValueError(f"features_to_clip expects (T, D) features, got shape {features.shape}")
    return torch.from_numpy(np.ascontiguousarray(features.T, dtype=np.float32))[:, :, None, None]
