"""Frame-folder videos: one image file per frame, read with the interface of VideoReader.

Many datasets ship (or are pre-extracted to) folders of frames such as
``video_name/img_00001.jpg``.  :class:`FrameFolderReader` treats such a folder as a video:
the frames are the folder's image files (``FRAME_EXTENSIONS``) in natural order
(``img_2.jpg`` before ``img_10.jpg``), the frame rate comes from an optional
``meta.json`` (``{"fps": 29.97}``) in the folder, else ``DEFAULT_FPS``.  Only the wanted
frames are decoded: a 16-frame clip of a 10-minute video costs 16 image decodes.  Each
image's size is read from its header before it is decoded: frames over
``MAX_FRAME_PIXELS`` (decompression bombs) or of another size than the first are refused.

Images are decoded with ``cv2.imdecode`` then ``cv2.cvtColor`` to RGB: on 340x256 JPEGs
that is as fast as ``torchvision.io.decode_jpeg`` and twice as fast as PIL (all three
give the same pixels: libjpeg-turbo); ``benchmarks/formats.py`` measures them.

:class:`FrameReader` is the base that :class:`deepvideo.io.packed.PackedReader` shares:
it turns "fill frame ``i`` into this buffer" into ``read(indices)``, ``read_time``,
``index_at`` and iteration.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import reprlib
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from deepvideo.io.decode import VideoDecodeError, VideoReader, checked_indices

__all__ = ["DEFAULT_FPS", "FRAME_EXTENSIONS", "MAX_FRAME_PIXELS", "META_FILE", "FrameFolderReader",
           "FrameReader", "decode_image", "image_size", "is_frame_folder", "positive_fps"]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
META_FILE = "meta.json"   # optional, in a frame folder: {"fps": <frames per second>}
DEFAULT_FPS = 25.0        # frame rate of a folder without meta.json (the Kinetics/UCF norm)
# Largest frame that frame folders and packed videos accept (width * height): 8192 x 8192,
# four times 8K UHD; a header claiming more is refused before anything is allocated.
MAX_FRAME_PIXELS = 8192 * 8192


def decode_image(data: bytes | np.ndarray, what: str) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, PPM, BMP) -> ``(H, W, 3)`` uint8 RGB.

    ``what`` names the image in the error: ``VideoDecodeError`` for bytes the decoder
    refuses or fails on.
    """
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise VideoDecodeError(f"{what}: not a readable image ({str(exc).strip().splitlines()[-1]})") from None
    if image is None:
        raise VideoDecodeError(f"{what}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_size(source: str | os.PathLike | bytes, what: str) -> tuple[int, int, str]:
    """``(width, height, format)`` of an image file or encoded bytes, from its header alone.

    Raises ``VideoDecodeError`` naming ``what`` for an unreadable header or a size over
    ``MAX_FRAME_PIXELS`` (Pillow's decompression-bomb error and warning included).
    """
    limit = f"the frame limit of {MAX_FRAME_PIXELS} pixels (MAX_FRAME_PIXELS)"
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            (width, height), format = image.size, image.format.lower()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise VideoDecodeError(f"{what}: image size over {limit}") from None
    except (OSError, ValueError, struct.error):  # UnidentifiedImageError is an OSError
        raise VideoDecodeError(f"{what}: not a readable image") from None
    if width * height > MAX_FRAME_PIXELS:
        raise VideoDecodeError(f"{what}: image size {width}x{height} over {limit}")
    if width < 1 or height < 1:
        raise VideoDecodeError(f"{what}: not a readable image (size {width}x{height})")
    return width, height, format


def positive_fps(value: object, what: str) -> float:
    """``value`` as a frame rate: a VideoDecodeError naming ``what`` (file and field) unless it
    is a finite number > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise VideoDecodeError(f"{what} must be a finite number > 0, not {reprlib.repr(value)}")
    return float(value)


def _natural_key(name: str) -> list:
    """Sort key ordering digit runs by value: ``img_2.jpg`` < ``img_10.jpg``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _frame_files(folder: Path) -> list[str]:
    """Names of the image files in ``folder`` (not hidden), in natural order."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.name[0] != "."
                 and os.path.splitext(e.name)[1].lower() in FRAME_EXTENSIONS and e.is_file()]
    return sorted(names, key=_natural_key)


def is_frame_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding at least one frame image (stops at the first)."""
    if not os.path.isdir(path):
        return False
    with os.scandir(path) as entries:
        return any(e.name[0] != "." and os.path.splitext(e.name)[1].lower() in FRAME_EXTENSIONS
                   for e in entries)


class FrameReader:
    """Base of readers whose frames are stored one by one (frame folders, packed files).

    A subclass sets ``path``, ``num_frames``, ``fps``, ``width``, ``height``, ``codec``
    and implements ``_fill(index, out)`` (write frame ``index`` into the ``(H, W, 3)``
    uint8 buffer ``out``) and ``close()``.  Frame times are ``index / fps``; every frame
    is a keyframe (reading frame ``i`` touches frame ``i`` only).

    ``threads`` > 1 (or 0: one per core) fills the frames of one ``read`` in that many
    threads (image decoders release the GIL); 1 works in the calling thread.
    """

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    codec: str

    def __init__(self, threads: int = 1) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self.threads = threads or os.cpu_count() or 1

    def _set_timing(self) -> None:
        """``frame_times``, ``duration`` and ``keyframes`` from ``num_frames`` and ``fps``."""
        self.frame_times = np.arange(self.num_frames) / self.fps
        self.duration = self.num_frames / self.fps
        self.keyframes = np.arange(self.num_frames, dtype=np.int64)

    def _fill(self, index: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

        Raises:
            IndexError: an index outside ``[0, num_frames)``, naming the file.
            VideoDecodeError: a wanted frame is unreadable or of another size.
        """
        idx = checked_indices(indices, self.num_frames, self.path)
        wanted, where = np.unique(idx, return_inverse=True)
        out = np.empty((len(wanted), self.height, self.width, 3), np.uint8)
        jobs = list(zip(wanted.tolist(), out))
        if self.threads > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(min(self.threads, len(jobs))) as pool:
                list(pool.map(lambda job: self._fill(*job), jobs))
        else:
            for job in jobs:
                self._fill(*job)
        return out if np.array_equal(where, np.arange(idx.size)) else out[where]

    # The same definitions as VideoReader's: they only use frame_times, path and read().
    read_time = VideoReader.read_time
    index_at = VideoReader.index_at
    __len__ = VideoReader.__len__

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame in order as ``(H, W, 3)`` uint8 (one frame in memory at a time)."""
        for i in range(self.num_frames):
            yield self.read([i])[0]

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.codec} {self.width}x"
                f"{self.height}, {self.num_frames} frames at {self.fps:.3g} fps)")


class FrameFolderReader(FrameReader):
    """Random-access reader for a folder of frame images, with VideoReader's interface.

    Args:
        path: a folder of image files (``FRAME_EXTENSIONS``, natural order), with an
            optional ``meta.json`` holding ``{"fps": ...}`` (else ``DEFAULT_FPS``).
        threads: threads decoding the frames of one ``read`` (see :class:`FrameReader`).

    Attributes as :class:`~deepvideo.io.VideoReader`: ``num_frames``, ``fps``,
    ``duration``, ``width``, ``height`` (from the first image's header), ``codec`` (the
    first image's format, e.g. ``"jpeg"``), ``frame_times``, ``keyframes``, ``path``.

    Raises:
        VideoDecodeError: missing folder, no images, a bad ``meta.json``, or an unreadable
            first image or one over ``MAX_FRAME_PIXELS``; on ``read``, an unreadable image
            or one of another size.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        super().__init__(threads)
        self.path = Path(path)
        if not self.path.is_dir():
            raise VideoDecodeError(f"{self.path}: no such folder")
        try:
            self.files = _frame_files(self.path)
        except OSError as exc:
            raise VideoDecodeError(f"{self.path}: cannot be listed ({exc.strerror})") from None
        if not self.files:
            raise VideoDecodeError(f"{self.path}: no frame images ({', '.join(FRAME_EXTENSIONS)}) "
                                   f"in the folder")
        self.num_frames = len(self.files)
        self.fps = self._read_fps()
        first = self.path / self.files[0]
        self.width, self.height, self.codec = image_size(first, str(first))
        self._set_timing()

    def _read_fps(self) -> float:
        meta = self.path / META_FILE
        if not meta.is_file():
            return DEFAULT_FPS
        try:
            data = meta.read_bytes()
        except OSError as exc:
            raise VideoDecodeError(f"{meta}: cannot be read ({exc.strerror})") from None
        try:
            content = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise VideoDecodeError(f"{meta}: not valid JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(content, dict) or "fps" not in content:
            raise VideoDecodeError(f"{meta}: expected a JSON object with field 'fps'")
        return positive_fps(content["fps"], f"{meta}: field 'fps'")

    def _fill(self, index: int, out: np.ndarray) -> None:
        file = self.path / self.files[index]
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise VideoDecodeError(f"{file}: cannot be read ({exc.strerror})") from None
        width, height, _ = image_size(data, str(file))  # from the header: bombs are never decoded
        if (width, height) == (self.width, self.height):
            image = decode_image(data, str(file))
            if image.shape == out.shape:
                out[...] = image
                return
            height, width = image.shape[:2]
        raise VideoDecodeError(f"{file}: frame {index} is {width}x{height}, the first frame "
                               f"{self.width}x{self.height} (size changes are not supported)")

    def close(self) -> None:
        """Nothing to release: every read opens and closes its image files."""
