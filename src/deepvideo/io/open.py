"""``open_video``: the right reader for a video file, a frame folder or a packed video.

All three readers share one interface (``num_frames``, ``fps``, ``duration``,
``frame_times``, ``width``, ``height``, ``path``, ``read(indices) -> (T, H, W, 3)``
uint8, ``read_time``, ``index_at``, iteration, context manager) and raise
:class:`~deepvideo.io.VideoDecodeError` for a source they cannot read.
"""

from __future__ import annotations

import os

from deepvideo.io.decode import VideoReader
from deepvideo.io.frames import FrameFolderReader
from deepvideo.io.packed import PackedReader, is_packed

__all__ = ["AnyReader", "open_video"]

AnyReader = VideoReader | FrameFolderReader | PackedReader


def open_video(path: str | os.PathLike, threads: int = 1) -> AnyReader:
    """Open ``path`` for random frame reads.

    * a folder: a frame folder (:class:`~deepvideo.io.frames.FrameFolderReader`);
    * a file ending in ``.tar``: a packed video (:class:`~deepvideo.io.packed.PackedReader`);
    * any other file: a video decoded by FFmpeg (:class:`~deepvideo.io.VideoReader`).

    ``threads``: decoder threads for a video file, image-decoding threads for the others
    (1: the calling thread, which suits DataLoader workers).
    """
    if os.path.isdir(path):
        return FrameFolderReader(path, threads=threads)
    if is_packed(path):
        return PackedReader(path, threads=threads)
    return VideoReader(path, threads=threads)
