"""Video encoding over PyAV: ``write_video(path, frames, fps)``."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["write_video"]


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, codec: str = "libx264",
                keyframe_interval: int | None = None, crf: int | None = None,
                pix_fmt: str = "yuv420p") -> Path:
    """Encode ``frames`` ``(T, H, W, 3)`` uint8 RGB to ``path``.

    Args:
        fps: frames per second (a float such as 29.97 is kept as a fraction).
        codec: an FFmpeg encoder in PyAV's build: ``libx264`` (mp4/mkv) or ``mpeg4`` (avi).
        keyframe_interval: frames between keyframes (GOP size); short GOPs make random
            clip reads cheap at some cost in file size.  ``None`` keeps the encoder default.
        crf: libx264 constant rate factor (0 lossless .. 51); ``None`` keeps the default 23.
        pix_fmt: encoder pixel format; yuv420p needs even width and height.

    Returns the path written.  Raises ``ValueError`` for a wrong frame array.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8, got "
                         f"{frames.shape} {frames.dtype}")
    if len(frames) == 0:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"{path}: yuv420p needs even width and height, got {width}x{height}")
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {}
    if crf is not None:
        options["crf"] = str(crf)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
            if codec == "libx264":
                options.update({"keyint": str(keyframe_interval), "scenecut": "0",
                                "min-keyint": str(keyframe_interval)})
        if codec == "mpeg4":
            stream.codec_context.bit_rate = max(400_000, width * height * 8)
        stream.options = options
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
