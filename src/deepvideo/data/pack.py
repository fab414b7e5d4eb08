"""Convert a video dataset once into a format built for fast random clip reads.

Decoding compressed video starves training: a random clip decodes from the keyframe
before it through its whole span.  :func:`pack_dataset` converts every video once,
mirroring the dataset's folders, into one of ``PACK_FORMATS`` (numbers from
``benchmarks/formats.py``, which times the training input pipeline on each):

* ``"jpeg"`` (default): a packed ``.tar`` of JPEG frames
  (:mod:`deepvideo.io.packed`): a clip costs only its own frames; ~10x an h264 file's size.
* ``"raw"``: a packed ``.tar`` of raw RGB frames read without decoding: fastest and
  largest (``H * W * 3`` bytes a frame), for small frames (use ``size=128`` or less).
* ``"mp4"``: h264 re-encoded with a keyframe every ``keyframe_interval`` frames: about
  the original's size, faster clip reads than long-GOP originals.
* ``"folder"``: a frame folder ``<video>/img_00001.jpg ...`` plus ``meta.json`` (fps),
  the layout many tools expect (:class:`deepvideo.io.frames.FrameFolderReader`).

Any source :func:`deepvideo.io.open_video` reads can be converted (a video file, a frame
folder, a packed file), optionally with its short side resized to ``size``.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from deepvideo.data.transforms import ResizeShort
from deepvideo.io import PackedReader, VideoDecodeError, VideoReader, open_video, write_packed
from deepvideo.io.atomic import atomic_path
from deepvideo.io.encode import VideoWriter
from deepvideo.io.frames import DEFAULT_FPS, META_FILE
from deepvideo.io.jobs import JobSummary, output_path, plan_outputs, run_jobs
from deepvideo.io.packed import PACKED_CODECS

__all__ = ["PACK_FORMATS", "PackSummary", "pack_dataset", "pack_target", "pack_video"]

PACK_FORMATS = ("jpeg", "raw", "mp4", "folder")
_SUFFIX = {"jpeg": ".tar", "raw": ".tar", "mp4": ".mp4", "folder": ""}

PathLike = str | os.PathLike


PackSummary = JobSummary  # what pack_dataset did (written, skipped, failed)


def pack_target(video: PathLike, out_dir: PathLike, root: PathLike | None = None,
                format: str = "jpeg") -> Path:
    """Where :func:`pack_dataset` puts ``video``: ``out_dir/<name><suffix>``, or with ``root``
    its path under ``root`` mirrored into ``out_dir`` (``root/a/b.mp4 -> out_dir/a/b.tar``).

    The suffix is ``.tar`` for ``jpeg``/``raw``, ``.mp4`` for ``mp4``, none for ``folder``
    (a source frame folder keeps its name).
    """
    return output_path(video, out_dir, root, _SUFFIX[format])


def _check_options(format: str, size: int | None, quality: int, keyframe_interval: int) -> None:
    if format not in PACK_FORMATS:
        raise ValueError(f"format must be one of {', '.join(PACK_FORMATS)}, got {format!r}")
    if size is not None and (int(size) != size or size < 1):
        raise ValueError(f"size must be a positive integer (short side in pixels), got {size}")
    if format == "mp4" and size is not None and size < 2:
        raise ValueError(f"size must be at least 2 for mp4 (h264 in yuv420p needs even sides of "
                         f"2 or more; odd sizes are rounded down), got {size}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100 (JPEG quality), got {quality}")
    if int(keyframe_interval) != keyframe_interval or keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be a positive integer, got {keyframe_interval}")


def _frames(frames: Iterable[np.ndarray], size: int | None, even: bool) -> Iterator[np.ndarray]:
    """Frames ``(H, W, 3)`` uint8 one at a time, short side resized to ``size``; with
    ``even``, the last row/column dropped where a side is odd (for yuv420p encoding)."""
    resize = ResizeShort(size) if size is not None else None
    for frame in frames:
        if resize is not None:
            frame = resize(frame)
        if even:
            frame = frame[:frame.shape[0] // 2 * 2, :frame.shape[1] // 2 * 2]
        yield frame


def _write_folder(target: Path, frames: Iterable[np.ndarray], fps: float, quality: int) -> Path:
    """A frame folder ``target/img_00001.jpg ...`` + ``meta.json``, built under a hidden
    temporary name and renamed into place, so that a finished folder is always complete."""
    with atomic_path(target, folder=True) as tmp:
        for i, frame in enumerate(frames, start=1):
            _, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
            (tmp / f"img_{i:05d}.jpg").write_bytes(data.tobytes())
        (tmp / META_FILE).write_text(json.dumps({"fps": fps}), encoding="utf-8")
    return target


def _write_mp4(video: Path, target: Path, frames: Iterator[np.ndarray], fps: float,
               keyframe_interval: int) -> Path:
    """Stream ``frames`` (even sizes) through h264 to ``target``; VideoWriter writes it
    atomically, so that a finished ``.mp4`` is always whole."""
    first = next(frames, None)
    if first is None:
        raise VideoDecodeError(f"{video}: no frames to pack")
    height, width = first.shape[:2]
    if min(height, width) == 0:  # a side of 1 pixel, cropped to an even 0
        raise VideoDecodeError(f"{video}: a frame side of 1 pixel cannot be encoded as mp4 (h264 in "
                               f"yuv420p needs even sides of 2 or more)")
    with VideoWriter(target, fps, width, height, keyframe_interval, format="mp4") as out:
        for frame in itertools.chain([first], frames):
            out.write(frame)
    return target


def pack_video(video: PathLike, target: PathLike, format: str = "jpeg", size: int | None = None,
               quality: int = 90, keyframe_interval: int = 8, threads: int = 1) -> Path:
    """Convert one video (file, frame folder or packed file) to ``format`` at ``target``.

    Frames stream through one at a time.  The output appears atomically (built under a
    hidden temporary name, renamed when complete): a failure or a kill leaves no output.
    The frame rate is the source's (``DEFAULT_FPS`` where it has none); variable frame
    timing is not kept.  ``threads`` goes to :func:`~deepvideo.io.open_video`.  Returns
    ``target``.

    Raises:
        VideoDecodeError: ``video`` cannot be opened or decoded (also where decoding ends
            before its ``num_frames`` frames: no short output is written), or is too small
            for mp4.
        ValueError: a bad option.
    """
    _check_options(format, size, quality, keyframe_interval)
    target = Path(target)
    with open_video(video, threads=threads) as reader:
        fps = reader.fps or DEFAULT_FPS
        frames = _frames(reader, size, even=format == "mp4")
        if format == "folder":
            return _write_folder(target, frames, fps, quality)
        if format == "mp4":
            return _write_mp4(Path(video), target, frames, fps, keyframe_interval)
        return write_packed(target, frames, reader.num_frames, fps, format, quality)


def _check_done(format: str, size: int | None) -> Callable[[Path, Path], None]:
    """An existing output must not be the video itself, and a finished packed or mp4 file must
    open and hold what this run would write (cheap: reads its header or index)."""
    codec = {"jpeg": "jpeg", "raw": "raw", "mp4": "h264"}.get(format)
    opener = PackedReader if format in PACKED_CODECS else VideoReader
    short_side = size if size is None or format != "mp4" else size // 2 * 2  # mp4: even sizes

    def check(video: Path, target: Path) -> None:
        if os.path.abspath(target) == os.path.abspath(video):
            raise ValueError(f"{video}: packing would overwrite the video itself; use another "
                             f"output folder")
        if codec is None:
            return
        try:
            with opener(target, threads=1) as reader:
                found, short = reader.codec, min(reader.width, reader.height)
        except VideoDecodeError as exc:
            raise ValueError(f"{exc}: delete it to pack it again") from None
        if found != codec or (size is not None and short != short_side):
            raise ValueError(f"{target} holds {found} frames with short side {short}, not "
                             f"{format}{f' at {size}' if size else ''}: use another output folder")
    return check


def pack_dataset(videos: list[PathLike], out_dir: PathLike, root: PathLike | None = None,
                 format: str = "jpeg", size: int | None = None, workers: int = 0,
                 progress: bool = True, quality: int = 90, keyframe_interval: int = 8
                 ) -> PackSummary:
    """Convert every video once to ``format`` under ``out_dir``, resumably.

    Each output goes to :func:`pack_target` ``(video, out_dir, root, format)``: mirroring
    the sub-folders under ``root`` when given (needed when file names repeat), else flat.
    Outputs are written under a hidden temporary name (``.<output name>.<8 characters>.tmp``)
    and renamed when complete, so an interrupted run leaves only finished outputs, and a
    second run skips them (it refuses packed or mp4 files of another codec or size, or that
    do not open) and deletes the temporaries a killed run left for the outputs it makes.
    Videos that cannot be decoded are skipped with a warning and listed in the summary.

    Args:
        format: one of ``PACK_FORMATS`` (see the module docstring).
        size: resize the short side to ``size`` pixels (aspect kept); ``None`` keeps it.
        workers: threads packing different videos side by side (decoders and JPEG
            encoders release the GIL); 0 works in the calling thread.
        quality: JPEG quality (``jpeg`` and ``folder``).
        keyframe_interval: frames between keyframes (``mp4``).
    """
    _check_options(format, size, quality, keyframe_interval)
    videos = [Path(v) for v in videos]
    if not videos:
        raise ValueError("no videos to pack")
    todo, done = plan_outputs(videos, lambda video: pack_target(video, out_dir, root, format),
                              root is not None, _check_done(format, size))
    threads = 0 if workers == 0 else 1  # one video at a time may use every core

    def pack(video: Path, target: Path) -> None:
        pack_video(video, target, format, size, quality, keyframe_interval, threads)

    return run_jobs(todo, pack, PackSummary(skipped=done), f"pack ({format})", workers, progress)
