"""Live sources: the frames of a video file, a camera or a network stream, in order, as they come.

:class:`LiveSource` opens what FFmpeg opens, through PyAV, and decodes it sequentially (no
index, no seeking, so a source without an end works):

* a video file, optionally paced at its frame rate (``realtime``) so that it behaves like a
  camera;
* a camera: ``/dev/video0`` or an index (``0`` is ``/dev/video0``), through FFmpeg's
  ``v4l2`` input (``avfoundation`` on macOS);
* a network stream: an ``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://`` or
  ``srt://`` URL.

Opening and every read wait at most ``timeout`` seconds: an unreachable URL or a silent
camera is a one-line :class:`StreamError`, not a hang.  A stream that breaks off after it
started ends the iteration cleanly; :attr:`LiveSource.stopped` then says why.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import av
import numpy as np

from deepvideo.io.decode import SWS_OPTIONS, TEXT_FORMATS, VideoDecodeError, ffmpeg_cause, ffmpeg_messages

__all__ = ["URL_SCHEMES", "LiveFrame", "LiveSource", "StreamError", "source_kind"]

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")


class StreamError(VideoDecodeError):
    """A live source that cannot be opened (missing file or camera, unreachable URL, no video
    in it); the message names the source and the cause on one line."""


@dataclass(frozen=True)
class LiveFrame:
    """One frame of a live source.

    ``index``: position in the stream from 0; ``time``: seconds from the first frame (the
    stream's timestamps); ``arrived``: ``time.monotonic()`` when it became available (its due
    time when a file is paced); ``image``: ``(H, W, 3)`` uint8 RGB.
    """

    index: int
    time: float
    arrived: float
    image: np.ndarray


def source_kind(source: str | os.PathLike) -> tuple[str, str, str | None]:
    """``(kind, target, format)`` of a source: kind ``"file"``, ``"camera"`` or ``"url"``;
    the target and FFmpeg input format to open (``None``: probe it)."""
    text = str(source)
    if text.isdigit():
        if sys.platform == "darwin":
            return "camera", text, "avfoundation"
        return "camera", f"/dev/video{text}", "v4l2"
    if text.startswith("/dev/video"):
        return "camera", text, "v4l2"
    if urlsplit(text).scheme.lower() in URL_SCHEMES:
        return "url", text, None
    return "file", text, None


class LiveSource:
    """Sequential frames of a file, camera or URL (see the module docstring).

    Args:
        source: a path, a camera (``/dev/videoN`` or ``N``) or a URL.
        realtime: pace a file at its frame rate (cameras and URLs are paced by themselves).
        timeout: seconds that opening, and each read, may wait.
        threads: decoder threads (0: FFmpeg chooses).

    Attributes: ``name``, ``kind``, ``width``, ``height``, ``fps`` (0 when unknown),
    ``num_frames`` (the container's count, ``None`` when unknown, as for live sources),
    ``frames`` (frames delivered so far), ``bad_packets`` (packets skipped because they did not
    decode), ``stopped`` (``None`` while running or after a
    clean end of stream; else the one-line reason it broke off).

    Iterate to get :class:`LiveFrame` s; :meth:`stop` (from any thread) ends the iteration
    after the current frame.  Raises :class:`StreamError` when the source cannot be opened.
    """

    def __init__(self, source: str | os.PathLike, realtime: bool = False, timeout: float = 10.0,
                 threads: int = 0) -> None:
        self.name = str(source)
        self.kind, target, fmt = source_kind(source)
        if self.kind == "file" and not Path(target).is_file():
            raise StreamError(f"{self.name}: no such file")
        if self.kind == "camera" and fmt == "v4l2" and not os.path.exists(target):
            raise StreamError(f"{self.name}: no such camera ({target} does not exist)")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        began = time.monotonic()
        with ffmpeg_messages():
            try:
                self._container = av.open(target, format=fmt, timeout=(timeout, timeout))
            except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
                cause = (f"no answer within {timeout:g} s" if time.monotonic() - began >= timeout
                         else ffmpeg_cause(exc))
                what = "not a readable video" if self.kind == "file" else f"cannot open the {self.kind}"
                raise StreamError(f"{self.name}: {what} ({cause})") from None
        if self._container.format.name in TEXT_FORMATS or not self._container.streams.video:
            self._container.close()
            raise StreamError(f"{self.name}: no video stream")
        self._stream = self._container.streams.video[0]
        ctx = self._stream.codec_context
        ctx.thread_type, ctx.thread_count = "AUTO", threads
        self.width, self.height = ctx.width, ctx.height
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.num_frames = (self._stream.frames or None) if self.kind == "file" else None
        self.realtime = realtime and self.kind == "file"
        self.timeout = timeout
        self.frames = self.bad_packets = 0
        self.stopped: str | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"LiveSource({self.name!r}, {self.kind}, {self.width}x{self.height} at {self.fps:.3g} fps)"

    def stop(self) -> None:
        """End the iteration after the current frame (safe from any thread)."""
        self._stop.set()

    def close(self) -> None:
        """Close the container; call it once no thread iterates any more."""
        self._container.close()

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in order.  A packet that does not decode (a live stream's packet loss)
        is skipped and counted in ``bad_packets``; when reading fails, the frames still inside
        the decoder (frame threading holds a few) come out before :attr:`stopped` is set.
        FFmpeg's messages are captured one packet at a time, so none pile up."""
        packets = self._container.demux(self._stream)
        while True:
            with ffmpeg_messages():
                try:
                    packet = next(packets, None)
                    if packet is None:
                        return
                    try:
                        frames = packet.decode()
                    except av.InvalidDataError:
                        self.bad_packets += 1
                        continue
                except av.ExitError:  # the interrupt callback: no data within the read timeout
                    cause = f"no data within {self.timeout:g} s"
                    break
                except av.FFmpegError as exc:
                    cause = ffmpeg_cause(exc)
                    break
            yield from frames
        try:
            yield from self._stream.codec_context.decode(None)
        except av.FFmpegError:
            pass
        self.stopped = f"{self.name}: the stream broke off after {self.frames} frames ({cause})"

    def __iter__(self) -> Iterator[LiveFrame]:
        start = first = None
        step = 1.0 / self.fps if self.fps else 0.0
        for frame in self._decoded():
            if self._stop.is_set():
                return
            stamp = frame.time if frame.time is not None else self.frames * step
            if first is None:
                start, first = time.monotonic(), stamp
            image = frame.to_ndarray(format="rgb24", **SWS_OPTIONS)
            if self.realtime and self._stop.wait(max(0.0, start + stamp - first - time.monotonic())):
                return
            yield LiveFrame(self.frames, stamp - first, time.monotonic(), image)
            self.frames += 1
