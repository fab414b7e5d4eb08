"""Optical flow as a video dataset's per-frame data: the temporal stream's input.

A :class:`FlowReader` looks like a :class:`~deepvideo.io.VideoReader` whose frames are flow
fields: frame ``i`` is the flow from video frame ``i`` to ``i + 1`` as ``(H, W, 2)`` float32
``(dx, dy)`` pixels, so a video of ``T`` frames has ``T - 1``.  Clip samplers then pick ``L``
fields for a stack (consecutive at frame stride 1), aligned in time with the RGB frames of
the same indices.

The fields come from the cache that ``deepvideo flow-extract`` writes (one quantised
``.npz`` per video, :func:`~deepvideo.flow.flowio.save_flow`), or are computed on the fly
from the decoded frames with any method of :data:`~deepvideo.flow.video.ALL_METHODS`.
:class:`FlowOpener` plugs either into :class:`~deepvideo.data.datasets.VideoDataset`
(``opener=``): a missing or unreadable cache file is then a bad video, skipped and counted.

:class:`RGBFlowReader` (``FlowOpener(..., frames=True)``) serves both streams of a
two-stream network at once (the ``rgb+flow`` modality): ``read(indices)`` gives the RGB
frames *and* the flow fields of the same indices, ``frame i`` with ``field i`` (``i -> i + 1``),
so a sampled clip of indices ``s, s + d, ...`` pairs the RGB clip starting at frame ``s``
with the flow stack starting at field ``s``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from deepvideo.flow.flowio import flow_file_info, load_flow
from deepvideo.flow.video import flow_target, make_estimator
from deepvideo.io import VideoDecodeError, open_video
from deepvideo.io.open import AnyReader

__all__ = ["FlowOpener", "FlowReader", "RGBFlowReader"]

Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FlowReader:
    """The flow fields of one video, ``read(indices) -> (N, H, W, 2)`` float32.

    With ``cache`` (a file written by :func:`~deepvideo.flow.flowio.save_flow`) the fields
    are read and dequantised from it; otherwise ``estimate(frame_a, frame_b) -> (2, H, W)``
    computes them from the video's decoded frames (each needed frame decoded once).
    Raises :class:`~deepvideo.io.VideoDecodeError` naming the file when the cache is
    missing or unreadable or the video has fewer than 2 frames, like a video that cannot
    be decoded.
    """

    def __init__(self, video: str | os.PathLike, cache: str | os.PathLike | None = None,
                 estimate: Estimator | None = None, threads: int = 1) -> None:
        if (cache is None) == (estimate is None):
            raise ValueError("FlowReader needs exactly one of cache and estimate")
        self.path, self.threads, self._estimate = Path(video), threads, estimate
        self.cache = Path(cache) if cache is not None else None
        self._video: AnyReader | None = None
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
        if self.num_frames < 1:
            self.close()
            raise VideoDecodeError(f"{self.path}: fewer than 2 frames, so no optical flow")

    def _reader(self) -> AnyReader:
        """The video's frames (:func:`~deepvideo.io.open_video`), opened on first use."""
        if self._video is None:
            self._video = open_video(self.path, threads=self.threads)
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
        indices = self._checked(indices)
        if self.cache is not None:
            return self._cached(indices)
        return self._estimated(indices, self._decode(np.concatenate([indices, indices + 1])))

    def _checked(self, indices: np.ndarray) -> np.ndarray:
        """``indices`` as flat int64; ``IndexError`` naming the video when one has no field."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(f"{self.path}: flow index {int(indices.max())} out of range "
                             f"({self.num_frames} flow fields)")
        return indices

    def _cached(self, indices: np.ndarray) -> np.ndarray:
        """Fields ``indices`` from the cache, ``(N, H, W, 2)`` float32."""
        try:
            flow = load_flow(self.cache, indices)
        except (ValueError, OSError) as exc:
            raise VideoDecodeError(f"{self.path}: unreadable flow cache ({exc})") from None
        return np.ascontiguousarray(flow.transpose(0, 2, 3, 1))

    def _decode(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        """Frames ``wanted`` (repeats allowed) decoded once each: ``{index: (H, W, 3) uint8}``."""
        wanted = np.unique(wanted)
        return dict(zip(wanted.tolist(), self._reader().read(wanted)))

    def _estimated(self, indices: np.ndarray, frames: dict[int, np.ndarray]) -> np.ndarray:
        """Fields ``indices`` estimated from ``frames`` (which hold ``i`` and ``i + 1``), ``(N, H, W, 2)``."""
        fields = {i: self._estimate(frames[i], frames[i + 1]) for i in np.unique(indices).tolist()}
        return np.ascontiguousarray(np.stack([fields[i] for i in indices.tolist()]).transpose(0, 2, 3, 1))

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None

    def __enter__(self) -> "FlowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RGBFlowReader(FlowReader):
    """RGB frames and flow fields of one video, aligned: ``read(indices) -> (frames, flow)``.

    ``frames`` ``(N, H, W, 3)`` uint8 are video frames ``indices``, ``flow`` ``(N, H, W, 2)``
    float32 the fields ``indices``; field ``i`` is the flow from frame ``i`` to ``i + 1``.
    ``num_frames`` counts the flow fields (video frames - 1), so a sampler over it only picks
    indices that have both, and a clip's flow stack starts at its RGB clip's first frame.
    On the fly, each needed frame is decoded once for both the clip and the flow; with a cache
    the frames are decoded and the fields read.  A cache that does not fit the video (another
    frame count or size, from a stale extraction) raises :class:`~deepvideo.io.VideoDecodeError`
    naming both, so the dataset skips and counts the video.
    """

    def __init__(self, video: str | os.PathLike, cache: str | os.PathLike | None = None,
                 estimate: Estimator | None = None, threads: int = 1) -> None:
        super().__init__(video, cache, estimate, threads)
        # on the fly, the fields come from these very frames: only a cache can disagree
        if self.cache is not None and (frames := self._reader().num_frames) != self.num_frames + 1:
            self.close()
            raise VideoDecodeError(f"{self.path}: flow cache {self.cache} has {self.num_frames} fields "
                                   f"for {frames} frames (re-run deepvideo flow-extract)")

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(frames (N, H, W, 3) uint8, flow (N, H, W, 2) float32)`` of ``indices``."""
        indices = self._checked(indices)
        if self.cache is None:
            decoded = self._decode(np.concatenate([indices, indices + 1]))
            return np.stack([decoded[i] for i in indices.tolist()]), self._estimated(indices, decoded)
        frames, flow = self._reader().read(indices), self._cached(indices)
        if frames.shape[1:3] != flow.shape[1:3]:
            raise VideoDecodeError(f"{self.path}: flow cache {self.cache} is {flow.shape[2]}x{flow.shape[1]}, "
                                   f"the video {frames.shape[2]}x{frames.shape[1]} (re-run deepvideo flow-extract)")
        return frames, flow


class FlowOpener:
    """``opener(video, threads) -> FlowReader`` for :class:`~deepvideo.data.datasets.VideoDataset`.

    ``cache_dir``: the folder ``deepvideo flow-extract --out`` wrote, with ``root`` the
    ``--data`` folder it mirrored (see :func:`~deepvideo.flow.video.flow_target`).  Without
    ``cache_dir`` flow is computed on the fly with ``method`` (and ``weights`` for learned
    methods); each DataLoader worker builds its own estimator on first use.  With ``frames``
    the readers are :class:`RGBFlowReader`: aligned ``(frames, flow)`` pairs for two streams.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                 method: str = "farneback", weights: str | os.PathLike | None = None,
                 frames: bool = False) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None and not self.cache_dir.is_dir():
            raise ValueError(f"--flow-dir {self.cache_dir}: no such folder")
        self.root, self.method, self.weights, self.frames = root, method, weights, frames
        self._estimate: Estimator | None = None
        if self.cache_dir is None:
            make_estimator(method, weights)  # a bad method or missing weights fails now

    def __call__(self, video: Path, threads: int = 1) -> FlowReader:
        reader = RGBFlowReader if self.frames else FlowReader
        if self.cache_dir is not None:
            try:
                cache = flow_target(video, self.cache_dir, self.root)
            except ValueError as exc:  # a video outside --data has no cache: a bad video, counted
                raise VideoDecodeError(f"{video}: no cached flow ({exc})") from None
            return reader(video, cache=cache, threads=threads)
        if self._estimate is None:
            self._estimate = make_estimator(self.method, self.weights)
        return reader(video, estimate=self._estimate, threads=threads)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_estimate": None}  # OpenCV objects do not pickle: rebuild per worker

    def __repr__(self) -> str:
        source = f"cache_dir={str(self.cache_dir)!r}" if self.cache_dir else f"method={self.method!r}"
        return f"FlowOpener({source}{', frames=True' if self.frames else ''})"
