"""Optical flow as a video dataset's per-frame data: the temporal stream's input.

A :class:`FlowReader` looks like a :class:`~deepvideo.io.VideoReader` whose frames are flow
fields: frame ``i`` is the flow from video frame ``i`` to ``i + 1`` as ``(H, W, 2)`` float32
``(dx, dy)`` pixels, so a video of ``T`` frames has ``T - 1``.  Clip samplers then pick ``L``
consecutive fields for a stack, aligned in time with the RGB frames of the same indices.

The fields come from the cache that ``deepvideo flow-extract`` writes (one quantised
``.npz`` per video, :func:`~deepvideo.flow.flowio.save_flow`), or are computed on the fly
from the decoded frames with any method of :data:`~deepvideo.flow.video.ALL_METHODS`.
:class:`FlowOpener` plugs either into :class:`~deepvideo.data.datasets.VideoDataset`
(``opener=``): a missing or unreadable cache file is then a bad video, skipped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from deepvideo.flow.flowio import flow_file_info, load_flow
from deepvideo.flow.video import flow_target, make_estimator
from deepvideo.io import VideoDecodeError, VideoReader

__all__ = ["FlowOpener", "FlowReader"]

Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FlowReader:
    """The flow fields of one video, ``read(indices) -> (N, H, W, 2)`` float32.

    With ``cache`` (a file written by :func:`~deepvideo.flow.flowio.save_flow`) the fields
    are read and dequantised from it; otherwise ``estimate(frame_a, frame_b) -> (2, H, W)``
    computes them from the video's decoded frames (each needed frame decoded once).
    Raises :class:`~deepvideo.io.VideoDecodeError` naming the file when the cache is
    missing or unreadable, like a video that cannot be decoded.
    """

    def __init__(self, video: str | os.PathLike, cache: str | os.PathLike | None = None,
                 estimate: Estimator | None = None, threads: int = 1) -> None:
        if (cache is None) == (estimate is None):
            raise ValueError("FlowReader needs exactly one of cache and estimate")
        self.path, self.threads, self._estimate = Path(video), threads, estimate
        self.cache = Path(cache) if cache is not None else None
        self._video: VideoReader | None = None
        if self.cache is not None:
            if not self.cache.is_file():
                raise VideoDecodeError(f"{self.path}: no cached flow {self.cache} "
                                       f"(run deepvideo flow-extract)")
            try:
                self.num_frames = flow_file_info(self.cache)["frames"]
            except (ValueError, OSError) as exc:
                raise VideoDecodeError(f"{self.path}: unreadable flow cache ({exc})") from None
        else:
            self.num_frames = self._reader().num_frames - 1

    def _reader(self) -> VideoReader:
        if self._video is None:
            self._video = VideoReader(self.path, threads=self.threads)
        return self._video

    @property
    def frame_times(self) -> np.ndarray:
        """Start time (s) of every flow field: its first frame's time."""
        return self._reader().frame_times[:-1]

    @property
    def duration(self) -> float:
        return self._reader().duration

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Flow fields ``indices`` (any order, repeats allowed) as ``(N, H, W, 2)`` float32."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(f"{self.path}: flow index {int(indices.max())} out of range "
                             f"({self.num_frames} flow fields)")
        if self.cache is not None:
            try:
                flow = load_flow(self.cache, indices)
            except (ValueError, OSError) as exc:
                raise VideoDecodeError(f"{self.path}: unreadable flow cache ({exc})") from None
        else:
            wanted = np.unique(np.concatenate([indices, indices + 1]))
            frames = dict(zip(wanted.tolist(), self._reader().read(wanted)))
            fields = {i: self._estimate(frames[i], frames[i + 1]) for i in np.unique(indices).tolist()}
            flow = np.stack([fields[i] for i in indices.tolist()])
        return np.ascontiguousarray(flow.transpose(0, 2, 3, 1))

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None

    def __enter__(self) -> "FlowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FlowOpener:
    """``opener(video, threads) -> FlowReader`` for :class:`~deepvideo.data.datasets.VideoDataset`.

    ``cache_dir``: the folder ``deepvideo flow-extract --out`` wrote, with ``root`` the
    ``--data`` folder it mirrored (see :func:`~deepvideo.flow.video.flow_target`).  Without
    ``cache_dir`` flow is computed on the fly with ``method`` (and ``weights`` for learned
    methods); each DataLoader worker builds its own estimator on first use.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                 method: str = "farneback", weights: str | os.PathLike | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None and not self.cache_dir.is_dir():
            raise ValueError(f"--flow-dir {self.cache_dir}: no such folder")
        self.root, self.method, self.weights = root, method, weights
        self._estimate: Estimator | None = None
        if self.cache_dir is None:
            make_estimator(method, weights)  # a bad method or missing weights fails now

    def __call__(self, video: Path, threads: int = 1) -> FlowReader:
        if self.cache_dir is not None:
            return FlowReader(video, cache=flow_target(video, self.cache_dir, self.root), threads=threads)
        if self._estimate is None:
            self._estimate = make_estimator(self.method, self.weights)
        return FlowReader(video, estimate=self._estimate, threads=threads)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_estimate": None}  # OpenCV objects do not pickle: rebuild per worker

    def __repr__(self) -> str:
        source = f"cache_dir={str(self.cache_dir)!r}" if self.cache_dir else f"method={self.method!r}"
        return f"FlowOpener({source})"
