"""Video encoding over PyAV: ``write_video(path, frames, fps)`` for a whole array, and
:class:`VideoWriter` streaming frames one at a time.

Both write atomically: the video is encoded under a hidden temporary name beside ``path``
(:func:`deepvideo.io.atomic.atomic_path`) and renamed to ``path`` when complete, so a
killed or failed encode never leaves a half video under the final name; the temporaries a
killed run left for ``path`` are deleted when it is written again."""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from deepvideo.io.atomic import atomic_path, remove_temps
from deepvideo.io.decode import SWS_OPTIONS

__all__ = ["VideoWriter", "write_video"]

_CRF_ENCODERS = ("libx264", "libx264rgb", "libx265")


def _gop_options(path: Path, codec: str, keyframe_interval: int | None) -> dict[str, str]:
    """Encoder options putting keyframes exactly every ``keyframe_interval`` frames (none for
    ``None``); a ``ValueError`` naming ``path`` for a bad interval."""
    if keyframe_interval is None:
        return {}
    if int(keyframe_interval) != keyframe_interval or keyframe_interval < 1:
        raise ValueError(f"{path}: keyframe_interval must be a positive integer, "
                         f"got {keyframe_interval}")
    # No extra keyframes at scene cuts: 0 turns x264's detection off, a huge threshold
    # FFmpeg's own encoders'.
    return {"g": str(keyframe_interval), "keyint_min": str(keyframe_interval),
            "sc_threshold": "0" if codec in _CRF_ENCODERS else "1000000000"}


def _check(path: Path, frames: np.ndarray, fps: float, codec: str, crf: int | None,
           pix_fmt: str | None) -> str:
    """Validate the arguments before any file is created; return the pixel format to use."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8, got "
                         f"{frames.shape} {frames.dtype}")
    if len(frames) == 0:
        raise ValueError(f"{path}: no frames to write")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"{path}: fps must be a positive number, got {fps}")
    if crf is not None and codec not in _CRF_ENCODERS:
        raise ValueError(f"{path}: crf applies to {', '.join(_CRF_ENCODERS)}, not {codec!r}")
    try:
        encoder = av.codec.Codec(codec, "w")
    except ValueError:
        raise ValueError(f"{path}: no encoder {codec!r} in this FFmpeg build") from None
    formats = [f.name for f in encoder.video_formats or ()]
    if pix_fmt is None:
        pix_fmt = next((f for f in ("yuv420p", "rgb24") if f in formats), formats[0] if formats
                       else "yuv420p")
    elif formats and pix_fmt not in formats:
        raise ValueError(f"{path}: {codec} cannot encode {pix_fmt!r} (it takes {', '.join(formats)})")
    try:
        planes = av.VideoFormat(pix_fmt, 2, 2).components  # size 1 where chroma is subsampled
    except ValueError:
        raise ValueError(f"{path}: unknown pixel format {pix_fmt!r}") from None
    height, width = frames.shape[1:3]
    if ((width % 2 and any(c.width == 1 for c in planes))
            or (height % 2 and any(c.height == 1 for c in planes))):
        raise ValueError(f"{path}: {pix_fmt} subsamples chroma and needs even frame sizes, got "
                         f"{width}x{height} (crop or pad to even sizes)")
    return pix_fmt


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, codec: str = "libx264",
                keyframe_interval: int | None = None, crf: int | None = None,
                pix_fmt: str | None = None, threads: int | None = None) -> Path:
    """Encode ``frames`` ``(T, H, W, 3)`` uint8 RGB to ``path`` (container from its suffix).

    Args:
        fps: frames per second (a float such as 29.97 is kept as a fraction).
        codec: an FFmpeg encoder in PyAV's build: ``libx264`` (mp4/mkv), ``mpeg4``
            (avi/mp4), or ``libx264rgb`` (RGB h264; with ``crf=0`` a bit-exact round trip).
        keyframe_interval: frames between keyframes: keyframes fall exactly on frames
            0, N, 2N, ... (scene-cut keyframes are turned off); short intervals make random
            clip reads cheap at some cost in file size.  ``None`` keeps the encoder default.
        crf: constant rate factor of libx264/libx264rgb/libx265 (0 lossless .. 51);
            ``None`` keeps the encoder default (23 for libx264).
        pix_fmt: encoder pixel format; ``None`` picks yuv420p, or rgb24 for RGB encoders.
            Formats that subsample chroma (yuv420p) need even width and height.
        threads: encoder threads; ``None`` lets FFmpeg choose (all cores).  1 makes the
            bytes independent of the machine's load and core count.

    Returns the path written.  Raises ``ValueError`` naming ``path`` for bad arguments
    (wrong array, odd size for the pixel format, unknown encoder); a failed encode leaves
    no file behind.
    """
    path = Path(path)
    frames = np.asarray(frames)
    pix_fmt = _check(path, frames, fps, codec, crf, pix_fmt)
    height, width = frames.shape[1:3]
    options = _gop_options(path, codec, keyframe_interval)
    if crf is not None:
        options["crf"] = str(crf)
    remove_temps([path])
    try:
        with atomic_path(path, keep_suffix=True) as tmp, av.open(str(tmp), mode="w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if codec == "mpeg4":
                stream.codec_context.bit_rate = max(400_000, width * height * 8)
            stream.options = options
            if threads is not None:
                stream.codec_context.thread_count = threads
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                if pix_fmt != "rgb24":  # convert here, single-threaded: the same pixels on every run
                    frame = frame.reformat(format=pix_fmt, **SWS_OPTIONS)
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    except (av.FFmpegError, ValueError) as exc:
        raise ValueError(f"{path}: cannot write video ({exc})") from exc
    return path


class VideoWriter:
    """Encode ``(H, W, 3)`` uint8 RGB frames one at a time to h264 (yuv420p; odd sizes padded
    by a replicated pixel), never holding the video: ``with VideoWriter(path, fps, width,
    height) as out: out.write(frame)``.  The video appears under ``path`` when the block
    ends without error (written atomically, see the module docstring); an exception inside
    the block leaves no file; an encoder failure is a ``ValueError`` naming ``path``.

    ``keyframe_interval``, ``crf`` and ``threads`` as in :func:`write_video`; ``format`` is
    the FFmpeg container (``"mp4"``), ``None`` guessing it from the suffix of ``path``.
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int,
                 keyframe_interval: int | None = None, format: str | None = None, crf: int | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        options = _gop_options(self.path, "libx264", keyframe_interval)
        if crf is not None:
            if not 0 <= crf <= 51:
                raise ValueError(f"{self.path}: crf must be in 0..51, got {crf}")
            options["crf"] = str(crf)
        remove_temps([self.path])
        self._commit = ExitStack()
        tmp = self._commit.enter_context(atomic_path(self.path, keep_suffix=True))
        try:
            self.container = av.open(str(tmp), mode="w", format=format)
        except BaseException as exc:
            self._commit.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, (av.FFmpegError, ValueError)):
                raise ValueError(f"{self.path}: cannot write video ({exc})") from None
            raise
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps or 25).limit_denominator(1001))
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = options
        if threads is not None:
            self.stream.codec_context.thread_count = threads

    def write(self, frame: np.ndarray) -> None:
        pad = ((0, self.stream.height - frame.shape[0]), (0, self.stream.width - frame.shape[1]), (0, 0))
        if any(pad[0]) or any(pad[1]):
            frame = np.pad(frame, pad, mode="edge")
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        try:
            self.container.mux(self.stream.encode(image.reformat(format="yuv420p", **SWS_OPTIONS)))
        except av.FFmpegError as error:
            raise ValueError(f"{self.path}: cannot write video ({error})") from error

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc_type is None:
                self.container.mux(self.stream.encode())
        except av.FFmpegError as error:
            exc_type, exc, tb = type(error), error, error.__traceback__
            raise ValueError(f"{self.path}: cannot write video ({error})") from error
        finally:
            self.container.close()
            self._commit.__exit__(exc_type, exc, tb)  # renames the temporary, or removes it
