"""Video decoding over PyAV with exact random access.

:class:`VideoReader` opens a file once, builds a frame index by demuxing packets (no
decoding), and reads any set of frames by seeking to the nearest keyframe at or before
the first wanted frame and decoding forward.  Frames come back as ``(T, H, W, 3)`` uint8
RGB, identical to what a full sequential decode of the file gives.

Colour conversion: for the common case (planar yuv420p, limited range, BT.601 or
unspecified matrix) the YUV planes go through OpenCV's ``cvtColor``, about 2x faster
than PyAV's ``to_ndarray("rgb24")``; it differs from FFmpeg's swscale by about one level
on average (chroma upsampling differs at edges; see ``tests/io/test_decode.py``).
Everything else (BT.709, full range, 4:2:2, RGB codecs) goes through swscale.
"""

from __future__ import annotations

import bisect
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import cv2
import numpy as np

__all__ = ["VideoDecodeError", "VideoReader", "read_video"]

# PyAV colour-space codes of the BT.601 family and "unspecified" (which swscale treats
# as BT.601), and the "limited/MPEG" range codes: where cvtColor matches swscale.
_BT601_SPACES = {2, 5, 6}  # unspecified, BT470BG, SMPTE170M
_LIMITED_RANGES = {0, 1}  # unspecified, MPEG


class VideoDecodeError(RuntimeError):
    """A video file that cannot be opened or decoded; the message names file and cause."""


def _fast_rgb(frame: av.VideoFrame) -> np.ndarray:
    """One decoded frame -> ``(H, W, 3)`` uint8 RGB, through OpenCV where that is exact enough."""
    if (frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0
            and frame.colorspace in _BT601_SPACES and frame.color_range in _LIMITED_RANGES):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


class VideoReader:
    """Random-access reader for one video file.

    Args:
        path: a video file readable by FFmpeg (mp4, avi, mkv, webm, ...).
        threads: decoder threads; 0 lets FFmpeg choose, 1 decodes on the calling thread.

    Attributes: ``num_frames``, ``fps``, ``duration`` (seconds), ``width``, ``height``,
    ``codec``, ``frame_times`` (seconds from the first frame, one per frame).

    Raises:
        VideoDecodeError: missing, empty, unreadable or truncated file, or no video stream.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise VideoDecodeError(f"{self.path}: not a readable video ({_cause(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO" if threads != 1 else "SLICE"
        self._stream.thread_count = threads
        self._by_pts = "avi" not in self._container.format.name.split(",")
        self._pts, self._keyframes, self._seek_to = self._index()
        if not self._pts:
            self.close()
            raise VideoDecodeError(f"{self.path}: the video stream holds no frames")
        self._pts_to_index = {p: i for i, p in enumerate(self._pts)}
        ctx = self._stream.codec_context
        self.num_frames = len(self._pts)
        self.width, self.height = ctx.width, ctx.height
        self.codec = ctx.name
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        tb = self._stream.time_base or Fraction(1, 1)
        step = 1.0 / self.fps if self.fps else 0.0
        if self._by_pts:
            self.frame_times = np.array([(p - self._pts[0]) * tb for p in self._pts], np.float64)
        else:
            self.frame_times = np.arange(self.num_frames) * step
        self.duration = float(self.frame_times[-1]) + step

    def _index(self) -> tuple[list[int], list[int], list[int]]:
        """Demux every packet (cheap: no decoding).

        Returns per-frame timestamps in display order, keyframe frame indices, and the
        timestamp to seek to for each keyframe.  Containers with real presentation
        timestamps (mp4, mkv, webm, ...) label decoded frames by pts.  AVI has none (FFmpeg
        guesses them, wrongly for packed B-frames), so there a frame's index is its
        position in the decoder's output, and a keyframe's index is its packet's position
        in decode order, which equals its display position in a closed GOP.
        """
        stamps, keys = [], []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                stamp = packet.dts if not self._by_pts or packet.pts is None else packet.pts
                if stamp is None:
                    continue
                if packet.is_keyframe:
                    keys.append((len(stamps), stamp))
                stamps.append(stamp)
        except av.FFmpegError as exc:
            raise VideoDecodeError(f"{self.path}: corrupt or truncated ({_cause(exc)})") from None
        if self._by_pts:
            stamps.sort()
            position = {p: i for i, p in enumerate(stamps)}
            keys = sorted((position[stamp], stamp) for _, stamp in keys)
        if not keys or keys[0][0] != 0:
            keys.insert(0, (0, stamps[0] if stamps else 0))
        return stamps, [k for k, _ in keys], [stamp for _, stamp in keys]

    def __len__(self) -> int:
        return self.num_frames

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, {self.codec} {self.width}x{self.height}, "
                f"{self.num_frames} frames at {self.fps:.3g} fps)")

    def _keyframe_before(self, index: int) -> int:
        """Position in ``self._keyframes`` of the last keyframe at or before frame ``index``."""
        return bisect.bisect_right(self._keyframes, index) - 1

    def _decode_from(self, index: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek to the keyframe at or before ``index``; yield (frame index, frame) forward."""
        key = self._keyframe_before(index)
        start = self._keyframes[key]
        try:
            self._container.seek(self._seek_to[key], stream=self._stream, backward=True,
                                 any_frame=False)
            for n, frame in enumerate(self._container.decode(self._stream)):
                j = self._pts_to_index.get(frame.pts) if self._by_pts else start + n
                if j is not None and j >= start:
                    yield j, frame
        except av.FFmpegError as exc:
            raise VideoDecodeError(f"{self.path}: corrupt or truncated ({_cause(exc)})") from None

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

        Decodes only from the keyframe before each run of wanted frames; never the whole
        file unless the wanted frames span it.

        Raises:
            IndexError: an index outside ``[0, num_frames)``, naming the file.
            VideoDecodeError: a wanted frame could not be decoded.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_frames):
            bad = int(idx[(idx < 0) | (idx >= self.num_frames)][0])
            raise IndexError(f"{self.path}: frame index {bad} out of range "
                             f"(video has {self.num_frames} frames)")
        wanted = set(idx.tolist())
        got: dict[int, np.ndarray] = {}
        frames = None
        position = -1  # index of the last frame the running decoder produced
        for target in sorted(wanted):
            if target in got:
                continue
            if frames is None or self._keyframes[self._keyframe_before(target)] > position:
                frames = self._decode_from(target)
            for j, frame in frames:
                position = j
                if j in wanted and j not in got:
                    got[j] = _fast_rgb(frame)
                if j >= target:
                    break
            else:
                frames = None
            if target not in got:
                raise VideoDecodeError(f"{self.path}: frame {target} could not be decoded "
                                       f"(corrupt or truncated file)")
        out = np.empty((idx.size, self.height, self.width, 3), np.uint8)
        for k, j in enumerate(idx.tolist()):
            out[k] = got[j]
        return out

    def read_time(self, start: float, end: float) -> np.ndarray:
        """Frames whose timestamps lie in ``[start, end)`` seconds, as ``(T, H, W, 3)`` uint8."""
        if not 0 <= start < end:
            raise ValueError(f"{self.path}: bad time range [{start}, {end})")
        lo, hi = np.searchsorted(self.frame_times, [start, end], side="left")
        return self.read(np.arange(lo, hi))

    def index_at(self, seconds: float) -> int:
        """Index of the last frame shown at or before ``seconds``."""
        return int(max(0, np.searchsorted(self.frame_times, seconds, side="right") - 1))

    def __iter__(self) -> Iterator[np.ndarray]:
        """Sequential decode: every frame in order as ``(H, W, 3)`` uint8."""
        for _, frame in self._decode_from(0):
            yield _fast_rgb(frame)


def read_video(path: str | os.PathLike, threads: int = 0) -> np.ndarray:
    """Decode a whole file sequentially: ``(T, H, W, 3)`` uint8 RGB."""
    with VideoReader(path, threads=threads) as reader:
        frames = list(reader)
        if len(frames) != reader.num_frames:
            raise VideoDecodeError(f"{path}: decoded {len(frames)} of {reader.num_frames} "
                                   f"frames (corrupt or truncated file)")
        return np.stack(frames)


def _cause(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
