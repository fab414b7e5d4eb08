"""Video decoding over PyAV with exact random access.

:class:`VideoReader` opens a file once, builds a frame index by demuxing packets (no
decoding), and reads any set of frames by seeking to the nearest keyframe at or before
the first wanted frame and decoding forward.  Frames come back as ``(T, H, W, 3)`` uint8
RGB, identical to what a full sequential decode of the file gives.

Speed: while decoding towards a wanted frame, frames that nothing references and that
are shown before it are not decoded at all (``skip_frame="NONREF"``, where frames are
labelled by timestamp).  Colour conversion is FFmpeg's swscale on one thread: the same
pixels as PyAV's ``frame.to_ndarray(format="rgb24")`` for every pixel format, colour
matrix and range.  On one thread it decodes about as many frames/s as OpenCV's
``cvtColor`` with less CPU per frame (and OpenCV's BT.601 output differs from swscale's by
about one level on average), while PyAV >= 17's default of spreading it over all cores
competes with the decoder's own threads and costs up to half the throughput on a 2-core
machine; ``benchmarks/decode.py`` measures all three.
"""

from __future__ import annotations

import bisect
import os
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import av.logging
import numpy as np

__all__ = ["OPEN_SECONDS", "SWS_OPTIONS", "VideoDecodeError", "VideoReader", "VideoTooShortError",
           "read_video"]

# Options of every colour conversion (decoding and encoding): single-threaded swscale (the
# ``threads`` argument exists from PyAV 17 on).
SWS_OPTIONS = {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


# FFmpeg demuxers that turn any text file into "video" (ANSI art, subtitles): refused
TEXT_FORMATS = {"tty"}

# Seconds FFmpeg may spend reading a file's header, then again probing its streams.  Real
# files open in milliseconds; a damaged one can make a demuxer scan the whole file (an AVI
# header followed by 4 GB of zeros: 250 s), which the probe size limits do not bound.
OPEN_SECONDS = 5.0


class VideoDecodeError(RuntimeError):
    """A video file that cannot be opened or decoded; the message names file and cause.

    Every reader (video files, frame folders, packed videos, feature files, flow caches)
    raises it, or a subclass, for a sample that cannot be read, so that one ``except``
    clause skips bad samples and lets anything else (a bug) propagate.
    """


class VideoTooShortError(VideoDecodeError):
    """A readable video with too few frames for what is asked of it; the message names the
    file, its frame count and what was needed."""


@contextmanager
def ffmpeg_messages() -> Iterator[None]:
    """Let FFmpeg's error messages (e.g. "moov atom not found") reach PyAV's exceptions.

    PyAV drops FFmpeg's log by default, leaving only generic errors such as "Invalid
    data found".  Errors are captured here, not printed; the user's log level is kept.
    """
    if av.logging.get_level() is not None:
        yield
        return
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=True):
            yield
    finally:
        av.logging.set_level(None)


def ffmpeg_cause(exc: BaseException) -> str:
    """One line describing an FFmpeg error, with FFmpeg's own message when there is one."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    log = getattr(exc, "log", None)
    if log and log[2].strip():
        text = f"{text}: {log[2].strip()}"
    return text.splitlines()[0]


def checked_indices(indices: Sequence[int] | np.ndarray, num_frames: int, path: os.PathLike | str
                    ) -> np.ndarray:
    """``indices`` as a flat int64 array; an ``IndexError`` naming ``path`` for one outside
    ``[0, num_frames)``."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        bad = int(idx[(idx < 0) | (idx >= num_frames)][0])
        raise IndexError(f"{path}: frame index {bad} out of range (video has {num_frames} frames)")
    return idx


class VideoReader:
    """Random-access reader for one video file.

    Args:
        path: a video file readable by FFmpeg (mp4, avi, mkv, webm, ...).
        threads: decoder threads; 0 lets FFmpeg choose, 1 decodes on the calling thread.
            With frame threading every run of decoding reads up to ``threads`` frames
            past the last wanted one, so few threads suit short random clips.

    Attributes: ``num_frames``, ``fps``, ``duration`` (seconds), ``width``, ``height``,
    ``codec``, ``frame_times`` (seconds from the first frame, one per frame),
    ``keyframes`` (indices of the frames decoding can start from: reading frame ``i``
    decodes from the last keyframe at or before ``i``).

    Raises:
        VideoDecodeError: missing, empty, unreadable or truncated file, no video stream, or
            none found within ``OPEN_SECONDS`` of probing; iteration that ends before
            ``num_frames`` frames.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        began = time.monotonic()
        with ffmpeg_messages():
            try:
                self._container = av.open(str(self.path), timeout=(OPEN_SECONDS, None))
            except (av.FFmpegError, UnicodeDecodeError) as exc:
                if time.monotonic() - began >= OPEN_SECONDS:
                    raise VideoDecodeError(f"{self.path}: no video stream found within {OPEN_SECONDS:g} s "
                                           f"of probing (probe limit OPEN_SECONDS; a damaged file?)") from None
                raise VideoDecodeError(f"{self.path}: not a readable video ({ffmpeg_cause(exc)})") from None
        try:
            self._open_stream(threads)
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, threads: int) -> None:
        if self._container.format.name in TEXT_FORMATS:
            raise VideoDecodeError(f"{self.path}: a text file, not a video (FFmpeg would render it "
                                   f"as {self._container.format.name!r} text art)")
        if not self._container.streams.video:
            raise VideoDecodeError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        ctx = self._stream.codec_context
        if ctx is None:
            raise VideoDecodeError(f"{self.path}: no decoder for its video codec")
        ctx.thread_type = "AUTO" if threads != 1 else "SLICE"
        ctx.thread_count = threads
        self._by_pts = "avi" not in self._container.format.name.split(",")
        self._stamps, self._keyframes, self._seek_to = self._index()
        if not self._stamps:
            raise VideoDecodeError(f"{self.path}: the video stream holds no frames")
        self._pts_to_index = {p: i for i, p in enumerate(self._stamps)} if self._by_pts else {}
        self.keyframes = np.array(self._keyframes, np.int64)
        self.num_frames = len(self._stamps)
        self.width, self.height = ctx.width, ctx.height
        self.codec = ctx.name
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        tb = self._stream.time_base or Fraction(1, 1)
        step = 1.0 / self.fps if self.fps else 0.0
        if self._by_pts:
            first = self._stamps[0]
            self.frame_times = np.array([(p - first) * tb for p in self._stamps], np.float64)
        else:
            self.frame_times = np.arange(self.num_frames) * step
        self.duration = float(self.frame_times[-1]) + step

    def _index(self) -> tuple[list[int], list[int], list[int]]:
        """Demux every packet (cheap: no decoding).

        Returns one timestamp per frame (pts in display order, or dts in decode order),
        keyframe frame indices, and the timestamp to seek to for each keyframe.
        Containers with real presentation
        timestamps (mp4, mkv, webm, ...) label decoded frames by pts.  AVI has none (FFmpeg
        guesses them, wrongly for packed B-frames), and neither has a stream whose packets
        lack or repeat a pts; there a frame's index is its position in the decoder's
        output, and a keyframe's index is its packet's position in decode order, which
        equals its display position in a closed GOP.

        Raises VideoDecodeError for a truncated file: a packet cut short, or fewer packets
        than the demuxer's index (or an AVI header) lists.  The mp4 header's sample count
        is not used: an edit list may trim samples that are then never demuxed.
        """
        packets = []  # (pts, dts, is_keyframe) of each frame packet, in decode order
        found = 0
        with ffmpeg_messages():
            try:
                for packet in self._container.demux(self._stream):
                    if packet.size == 0 and packet.dts is None:
                        continue  # the end-of-stream marker
                    found += 1
                    if packet.is_corrupt:
                        raise VideoDecodeError(f"{self.path}: truncated or corrupt file (packet "
                                               f"{found - 1} of the video stream is incomplete)")
                    if packet.size and not packet.is_discard:
                        packets.append((packet.pts, packet.dts, packet.is_keyframe))
            except av.FFmpegError as exc:
                raise VideoDecodeError(f"{self.path}: corrupt or truncated ({ffmpeg_cause(exc)})") from None
        # The demuxer's index (mp4 sample tables, AVI idx1) lists every packet it knows
        # of, after edit lists; an AVI cut before its idx1 still has its header count.
        listed = len(getattr(self._stream, "index_entries", ()))
        if not self._by_pts:
            listed = max(listed, self._stream.frames)
        if found < listed:
            raise VideoDecodeError(f"{self.path}: truncated file (its index lists {listed} "
                                   f"frames, the file holds {found})")
        pts = [p for p, _, _ in packets]
        if self._by_pts and (None in pts or len(set(pts)) < len(pts)):
            self._by_pts = False
        if self._by_pts:
            stamps = sorted(pts)
            position = {p: i for i, p in enumerate(stamps)}
            keys = sorted((position[p], p) for p, _, key in packets if key)
        else:  # a keyframe without dts cannot be sought to
            stamps = [d for _, d, _ in packets]
            keys = [(i, d) for i, (_, d, key) in enumerate(packets) if key and d is not None]
        if not keys or keys[0][0] != 0:
            keys.insert(0, (0, stamps[0] if stamps and stamps[0] is not None else 0))
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

    def _run(self, key: int, first_wanted: Callable[[], int] | None = None
             ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek to keyframe number ``key``; yield (frame index, frame) forward in display order.

        ``first_wanted()``, when given, is the smallest frame index still wanted: packets
        of non-reference frames shown before it are not decoded.  That needs frame labels
        by pts, which skipped frames cannot shift.
        """
        start = self._keyframes[key]
        ctx = self._stream.codec_context
        skip = "DEFAULT"
        ctx.skip_frame = skip
        lookup = self._pts_to_index.get
        try:
            self._container.seek(self._seek_to[key], stream=self._stream, backward=True,
                                 any_frame=False)
            count = start
            for packet in self._container.demux(self._stream):
                if first_wanted is not None and self._by_pts:
                    shown = lookup(packet.pts, -1)
                    mode = "NONREF" if 0 <= shown < first_wanted() else "DEFAULT"
                    if mode != skip:
                        ctx.skip_frame = skip = mode
                for frame in packet.decode():
                    if self._by_pts:
                        j = lookup(frame.pts, -1)
                        if j < start:  # not in the index, or an open GOP's leading frame
                            continue
                    else:
                        j, count = count, count + 1
                    yield j, frame
        except av.FFmpegError as exc:
            raise VideoDecodeError(f"{self.path}: corrupt or truncated ({ffmpeg_cause(exc)})") from None

    def _rgb(self, frame: av.VideoFrame, index: int) -> np.ndarray:
        """One decoded frame -> ``(H, W, 3)`` uint8 RGB (swscale, one thread)."""
        if frame.width != self.width or frame.height != self.height:
            raise VideoDecodeError(f"{self.path}: frame {index} is {frame.width}x{frame.height}, "
                                   f"the stream {self.width}x{self.height} (size changes are "
                                   f"not supported)")
        return frame.to_ndarray(format="rgb24", **SWS_OPTIONS)

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

        Decodes from the keyframe before the first wanted frame and on only as far as the
        last; seeks again when the next wanted frame lies past another keyframe.

        Raises:
            IndexError: an index outside ``[0, num_frames)``, naming the file.
            VideoDecodeError: a wanted frame could not be decoded.
        """
        idx = checked_indices(indices, self.num_frames, self.path)
        wanted, where = np.unique(idx, return_inverse=True)
        wanted = wanted.tolist()
        out = np.empty((len(wanted), self.height, self.width, 3), np.uint8)
        k = 0  # out[:k] are filled; wanted[k] is the next frame to find

        def first_wanted() -> int:
            return wanted[k] if k < len(wanted) else self.num_frames

        while k < len(wanted):
            frames = self._run(self._keyframe_before(wanted[k]), first_wanted)
            reseek = False
            for j, frame in frames:
                if j > wanted[k]:
                    break
                if j == wanted[k]:
                    out[k] = self._rgb(frame, j)
                    k += 1
                    if k == len(wanted):
                        break
                    if self._keyframes[self._keyframe_before(wanted[k])] > j:
                        reseek = True  # seeking beats decoding on to the next wanted frame
                        break
            frames.close()
            if k < len(wanted) and not reseek:
                raise VideoDecodeError(f"{self.path}: frame {wanted[k]} could not be decoded "
                                       f"(corrupt or truncated file)")
        return out if np.array_equal(where, np.arange(idx.size)) else out[where]

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
        """Sequential decode: every frame in order as ``(H, W, 3)`` uint8.

        Raises ``VideoDecodeError`` where a frame is missing, as ``read`` does: decoding of a
        damaged file may end early or skip frames without an error of FFmpeg's.
        """
        frames, count = self._run(0), 0
        try:
            for j, frame in frames:
                if j < count:  # a frame shown before one already given
                    continue
                if j > count:
                    raise VideoDecodeError(f"{self.path}: frame {count} could not be decoded "
                                           f"(corrupt or truncated file)")
                yield self._rgb(frame, j)
                count += 1
                if count == self.num_frames:
                    return
        finally:
            frames.close()
        raise VideoDecodeError(f"{self.path}: decoding stopped at frame {count} of {self.num_frames} "
                               f"(corrupt or truncated file)")


def read_video(path: str | os.PathLike, threads: int = 0) -> np.ndarray:
    """Decode a whole file: ``(T, H, W, 3)`` uint8 RGB, one array filled in place."""
    with VideoReader(path, threads=threads) as reader:
        return reader.read(np.arange(reader.num_frames))
