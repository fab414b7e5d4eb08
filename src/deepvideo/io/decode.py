"""Video decoding over PyAV with exact random access.

:class:`VideoReader` opens a file once, builds a frame index by demuxing packets (no
decoding), and reads any set of frames by seeking to the nearest keyframe at or before
the first wanted frame and decoding forward.  Frames come back as ``(T, H, W, 3)`` uint8
RGB, identical to what a full sequential decode of the file gives.

Speed: where frames are labelled by timestamp, frames that nothing references and that are
not wanted (before, between and after the wanted ones) are not decoded at all
(``skip_frame="NONREF"``), and once the packets of all wanted frames are in, the decoder is
drained rather than fed on until it gives the last one up.  The frame index of a file is
kept in an in-process cache (``INDEX_CACHE``), so reopening it skips the demuxing pass.
Only the returned frames are converted to RGB.  Colour conversion is FFmpeg's swscale on one thread: the same
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
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Collection, Iterator, Sequence

import av
import av.logging
import numpy as np

__all__ = ["INDEX_CACHE", "OPEN_SECONDS", "SWS_OPTIONS", "FrameIndex", "IndexCache", "VideoDecodeError",
           "VideoReader", "VideoTooShortError", "read_video"]

# Options of every colour conversion (decoding and encoding): single-threaded swscale (the
# ``threads`` argument exists from PyAV 17 on).
SWS_OPTIONS = {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


# FFmpeg demuxers that turn any text file into "video" (ANSI art, subtitles): refused
TEXT_FORMATS = {"tty"}

# Seconds FFmpeg may spend reading a file's header, then again probing its streams.  Real
# files open in milliseconds; a damaged one can make a demuxer scan the whole file (an AVI
# header followed by 4 GB of zeros: 250 s), which the probe size limits do not bound.
OPEN_SECONDS = 5.0


# A file's frame index is reused from INDEX_CACHE only if the file was last changed at least
# this many seconds before it was indexed: file timestamps are coarse (a few ms on Linux), so
# a file rewritten within one tick at the same size and inode could otherwise match a stale
# entry, while any change after an old enough timestamp moves the change time (ctime, which
# no tool can set back) past it.
INDEX_CACHE_MIN_AGE = 2.0


@dataclass(frozen=True)
class FrameIndex:
    """What the demuxing pass of :class:`VideoReader` learns about a file.

    ``stamps``: one timestamp per frame (sorted pts when ``by_pts``, else dts in decode
    order); ``keyframes``: indices of the frames decoding can start from; ``seek_to``: the
    timestamp of each keyframe's packet.
    """

    by_pts: bool
    stamps: list[int]
    keyframes: list[int]
    seek_to: list[int]


class IndexCache:
    """In-process, least-recently-used frame indexes of files, bounded by their total frames.

    Keys identify a file's content by ``(device, inode, size, mtime_ns, ctime_ns)``, so a
    file that is replaced, rewritten or touched misses.  Reopening a file (a dataset's next
    clip from it) then skips the demuxing pass: 4-12 us per packet.  Thread-safe.
    """

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self._entries: OrderedDict[tuple[int, ...], FrameIndex] = OrderedDict()
        self._frames = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(stat: os.stat_result) -> tuple[int, ...] | None:
        """The cache key of a file with ``stat``; None if it changed too recently to cache."""
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < INDEX_CACHE_MIN_AGE * 1e9:
            return None
        return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns

    def get(self, key: tuple[int, ...] | None) -> FrameIndex | None:
        if key is None:
            return None
        with self._lock:
            index = self._entries.get(key)
            if index is not None:
                self._entries.move_to_end(key)
            return index

    def put(self, key: tuple[int, ...] | None, index: FrameIndex) -> None:
        """Store ``index``, evicting the least recently used entries beyond ``max_frames``."""
        if key is None or len(index.stamps) > self.max_frames:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = index
            self._frames += len(index.stamps)
            while self._frames > self.max_frames:
                self._frames -= len(self._entries.popitem(last=False)[1].stamps)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._frames = 0

    def __len__(self) -> int:
        return len(self._entries)


# About 40 bytes per frame: 500k frames (4.6 hours at 30 fps) take some 20 MB.
INDEX_CACHE = IndexCache(max_frames=500_000)


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
            Frame threading costs some 15% more CPU per clip than one thread (a decoder
            set up per file, frames handed between threads): it pays only where a core is
            idle, not in a DataLoader whose workers already fill them.  In AVI files (frames
            labelled by decode order) every run of decoding also reads up to ``threads``
            frames past the last wanted one.

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
        stat = self.path.stat()
        if stat.st_size == 0:
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
            self._open_stream(threads, IndexCache.key(stat))
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, threads: int, cache_key: tuple[int, ...] | None) -> None:
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
        index = INDEX_CACHE.get(cache_key)
        if index is None:
            index = self._index()
            if not index.stamps:
                raise VideoDecodeError(f"{self.path}: the video stream holds no frames")
            INDEX_CACHE.put(cache_key, index)
        self._by_pts, self._stamps, self._keyframes, self._seek_to = (index.by_pts, index.stamps, index.keyframes,
                                                                      index.seek_to)
        self.keyframes = np.array(self._keyframes, np.int64)
        self.num_frames = len(self._stamps)
        self.width, self.height = ctx.width, ctx.height
        self.codec = ctx.name
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        tb = self._stream.time_base or Fraction(1, 1)
        step = 1.0 / self.fps if self.fps else 0.0
        if self._by_pts:
            # int / int is correctly rounded: the same doubles as float((p - first) * tb), 50x faster
            first, num, den = self._stamps[0], tb.numerator, tb.denominator
            self.frame_times = np.array([(p - first) * num / den for p in self._stamps], np.float64)
        else:
            self.frame_times = np.arange(self.num_frames) * step
        self.duration = float(self.frame_times[-1]) + step

    def _index(self) -> FrameIndex:
        """Demux every packet (cheap: no decoding).

        Returns one timestamp per frame (pts in display order, or dts in decode order),
        keyframe frame indices, and the timestamp of each keyframe's packet.
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
        by_pts = "avi" not in self._container.format.name.split(",")
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
        if not by_pts:
            listed = max(listed, self._stream.frames)
        if found < listed:
            raise VideoDecodeError(f"{self.path}: truncated file (its index lists {listed} "
                                   f"frames, the file holds {found})")
        pts = [p for p, _, _ in packets]
        by_pts = by_pts and None not in pts and len(set(pts)) == len(pts)
        if by_pts:
            stamps = sorted(pts)
            position = {p: i for i, p in enumerate(stamps)}
            keys = sorted((position[p], p) for p, _, key in packets if key)
        else:  # a keyframe without dts cannot be sought to
            stamps = [d for _, d, _ in packets]
            keys = [(i, d) for i, (_, d, key) in enumerate(packets) if key and d is not None]
        if not keys or keys[0][0] != 0:
            keys.insert(0, (0, stamps[0] if stamps and stamps[0] is not None else 0))
        return FrameIndex(by_pts, stamps, [k for k, _ in keys], [stamp for _, stamp in keys])

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

    def _shown_at(self, pts: int | None) -> int:
        """Index of the frame with presentation timestamp ``pts``; -1 if none has it."""
        if pts is None:
            return -1
        i = bisect.bisect_left(self._stamps, pts)
        return i if i < len(self._stamps) and self._stamps[i] == pts else -1

    def _run(self, key: int, wanted: Collection[int] | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek to keyframe number ``key``; yield (frame index, frame) forward in display order.

        Decoding starts at the keyframe's own packet: packets before it, where the seek
        lands early, are dropped undecoded (a fragmented mp4 whose later fragments the
        demuxer has not read yet lands on the last keyframe it knows).

        ``wanted``, when given, holds the frames the caller needs from this run.  Where frames
        are labelled by pts, which skipped frames cannot shift, packets of non-reference
        frames not in it are not decoded, and once the packet of every wanted frame has been
        sent the decoder is drained instead of fed further packets.
        """
        start = self._keyframes[key]
        ctx = self._stream.codec_context
        skip = "DEFAULT"
        ctx.skip_frame = skip
        pending = set(wanted) if wanted is not None and self._by_pts else None
        target = self._seek_to[key] if key else None  # frame 0 need not start with a keyframe
        try:
            self._container.seek(self._seek_to[key], stream=self._stream, backward=True,
                                 any_frame=False)
            count = start
            for packet in self._container.demux(self._stream):
                if target is not None:
                    if (packet.pts if self._by_pts else packet.dts) != target:
                        continue
                    target = None
                if pending is not None:
                    shown = self._shown_at(packet.pts)
                    mode = "NONREF" if shown >= 0 and shown not in wanted else "DEFAULT"
                    if mode != skip:
                        ctx.skip_frame = skip = mode
                    pending.discard(shown)
                frames = packet.decode()
                drained = pending is not None and not pending
                if drained:
                    frames += ctx.decode(None)
                for frame in frames:
                    if self._by_pts:
                        j = self._shown_at(frame.pts)
                        if j < start:  # not in the index, or an open GOP's leading frame
                            continue
                    else:
                        j, count = count, count + 1
                    yield j, frame
                if drained:
                    return
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

        The wanted frames are read in runs, one per keyframe interval that holds any: each
        seeks to its keyframe and decodes forward only as far as its last wanted frame.
        Seeking costs about 10 us and decoding a frame 0.1-3 ms, so where the next wanted
        frame lies past a keyframe, seeking to it always beats decoding on.  Only the
        returned frames are converted to RGB, each straight into the output, once however
        often it repeats.

        Raises:
            IndexError: an index outside ``[0, num_frames)``, naming the file.
            VideoDecodeError: a wanted frame could not be decoded.
        """
        idx = checked_indices(indices, self.num_frames, self.path)
        unique, first, where = np.unique(idx, return_index=True, return_inverse=True)
        wanted, first = unique.tolist(), first.tolist()
        out = np.empty((idx.size, self.height, self.width, 3), np.uint8)
        k = 0  # wanted[:k] are in out; wanted[k] is the next frame to find
        while k < len(wanted):
            key = self._keyframe_before(wanted[k])
            end = (bisect.bisect_left(wanted, self._keyframes[key + 1]) if key + 1 < len(self._keyframes)
                   else len(wanted))
            frames = self._run(key, frozenset(wanted[k:end]))
            for j, frame in frames:
                if j > wanted[k]:
                    break
                if j == wanted[k]:
                    out[first[k]] = self._rgb(frame, j)
                    k += 1
                    if k == end:
                        break
            frames.close()
            if k < end:
                raise VideoDecodeError(f"{self.path}: frame {wanted[k]} could not be decoded "
                                       f"(corrupt or truncated file)")
        for i in np.flatnonzero(np.asarray(first)[where] != np.arange(idx.size)).tolist():
            out[i] = out[first[where[i]]]  # a repeat: copy the frame's first occurrence
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
