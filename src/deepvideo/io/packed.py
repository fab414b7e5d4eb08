"""Packed videos: one uncompressed tar file per video, built for fast random clip reads.

A compressed video makes a random clip expensive: decoding starts at the keyframe before
the clip and runs through every frame of its span.  A packed file stores each frame on
its own, so a clip costs exactly its frames; measured on 340x256 clips
(``benchmarks/formats.py``), reading a 16-frame clip takes a fraction of the time a
short-GOP h264 file needs.  Two frame codecs:

* ``"jpeg"``: each frame a JPEG (default quality 90, mean error ~1.5 grey levels), about
  10x the size of an h264 file and several times faster to read a clip from;
* ``"raw"``: each frame raw RGB, read straight into the output array (no decoding at
  all): the fastest, and the largest (``H * W * 3`` bytes per frame), for small
  resolutions (pack with a short side of 128 or less).

Layout (a plain POSIX ustar archive: ``tar xf video.tar`` gives a frame folder that
:class:`~deepvideo.io.frames.FrameFolderReader` reads)::

    meta.json    {"format": "deepvideo-packed", "version": 1, "codec": "jpeg" | "raw",
                  "fps": ..., "width": ..., "height": ..., "num_frames": N}
    index.npy    (N, 2) uint64: byte offset in the tar and length of each frame's data
    000000.jpg   (or 000000.ppm: a binary PPM header, then the H*W*3 RGB bytes)
    ...

The index makes opening cheap (two small reads whatever the length) and every frame read
one ``pread`` at a known offset; a raw frame's index entry points past its PPM header at
the pixels.  Writing streams: the frames are encoded one at a time, the index is
reserved up front and filled in at the end, so memory does not grow with the video.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import BinaryIO, Iterable

import cv2
import numpy as np

from deepvideo.io.atomic import atomic_write
from deepvideo.io.decode import VideoDecodeError
from deepvideo.io.frames import FrameReader, decode_image

__all__ = ["PACKED_CODECS", "PACKED_FORMAT", "PACKED_SUFFIX", "PackedReader", "is_packed",
           "write_packed"]

PACKED_FORMAT = "deepvideo-packed"
PACKED_SUFFIX = ".tar"
PACKED_CODECS = ("jpeg", "raw")
_VERSION = 1
_BLOCK = tarfile.BLOCKSIZE  # 512
_EXTENSION = {"jpeg": ".jpg", "raw": ".ppm"}


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644  # mtime 0: the same frames give the same bytes
    return info.tobuf(tarfile.USTAR_FORMAT)


def _write_member(fh: BinaryIO, name: str, data: bytes) -> int:
    """Append one tar member; return the byte offset of its data."""
    fh.write(_header(name, len(data)))
    start = fh.tell()
    fh.write(data + _padding(len(data)))
    return start


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_packed(path: str | os.PathLike, frames: Iterable[np.ndarray], num_frames: int,
                 fps: float, codec: str = "jpeg", quality: int = 90) -> Path:
    """Write ``num_frames`` frames, each ``(H, W, 3)`` uint8 RGB, to a packed file, atomically.

    ``frames`` may be any iterable (a reader's iteration): one frame is held at a time.
    ``codec``: ``"jpeg"`` (``quality`` 1..100) or ``"raw"``.  Returns the path written.

    Raises:
        ValueError: bad arguments, or frames of the wrong shape/dtype, naming ``path``.
        VideoDecodeError: ``frames`` ended before ``num_frames`` frames; whatever
            ``frames`` raises is passed on.  No file is left behind on any error.
    """
    path = Path(path)
    if codec not in PACKED_CODECS:
        raise ValueError(f"{path}: codec must be one of {', '.join(PACKED_CODECS)}, got {codec!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"{path}: JPEG quality must be in 1..100, got {quality}")
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"{path}: fps must be a positive number, got {fps}")
    if num_frames < 1:
        raise ValueError(f"{path}: no frames to write")

    def write(fh: BinaryIO) -> None:
        index = np.zeros((num_frames, 2), np.uint64)
        index_at, shape, count = 0, None, 0
        for count, frame in enumerate(frames, start=1):
            if count > num_frames:
                raise ValueError(f"{path}: got more than the {num_frames} frames announced")
            if shape is None:
                shape = frame.shape
                if frame.ndim != 3 or shape[2] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"{path}: frames must be (H, W, 3) uint8, got "
                                     f"{frame.shape} {frame.dtype}")
                meta = {"format": PACKED_FORMAT, "version": _VERSION, "codec": codec,
                        "fps": float(fps), "width": shape[1], "height": shape[0],
                        "num_frames": num_frames}
                _write_member(fh, "meta.json", json.dumps(meta).encode())
                index_at = _write_member(fh, "index.npy", _npy_bytes(index))
            elif frame.shape != shape:
                raise ValueError(f"{path}: frame {count - 1} is {frame.shape}, frame 0 {shape}")
            name = f"{count - 1:06d}{_EXTENSION[codec]}"
            if codec == "jpeg":
                _, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                          [cv2.IMWRITE_JPEG_QUALITY, quality])
                index[count - 1] = _write_member(fh, name, encoded.tobytes()), encoded.size
            else:
                ppm = f"P6\n{shape[1]} {shape[0]}\n255\n".encode()
                start = _write_member(fh, name, ppm + frame.tobytes())
                index[count - 1] = start + len(ppm), frame.nbytes
        if count != num_frames:
            raise VideoDecodeError(f"{path}: got {count} frames to pack, expected {num_frames}")
        fh.write(b"\0" * 2 * _BLOCK)  # the end-of-archive marker
        fh.seek(index_at)
        fh.write(_npy_bytes(index))  # as long as the placeholder: same shape and dtype

    return atomic_write(path, write)


def _read_exact(fd: int, size: int, offset: int, path: Path) -> bytes:
    try:
        data = os.pread(fd, size, offset)
    except OSError as exc:
        raise VideoDecodeError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) != size:
        raise VideoDecodeError(f"{path}: truncated packed file (needs {offset + size} bytes, "
                               f"has {os.fstat(fd).st_size})")
    return data


def _member(fd: int, offset: int, name: str, path: Path) -> tuple[bytes, int]:
    """The data of the tar member ``name`` whose header is at ``offset``, and the next offset."""
    try:
        info = tarfile.TarInfo.frombuf(_read_exact(fd, _BLOCK, offset, path), "utf-8", "strict")
    except tarfile.HeaderError:
        info = None
    if info is None or info.name != name:
        raise VideoDecodeError(f"{path}: not a packed video (expected tar member {name!r} "
                               f"at byte {offset})")
    data = _read_exact(fd, info.size, offset + _BLOCK, path)
    return data, offset + _BLOCK + info.size + len(_padding(info.size))


def is_packed(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file with the packed suffix (its content is checked on opening)."""
    return str(path).lower().endswith(PACKED_SUFFIX) and os.path.isfile(path)


class PackedReader(FrameReader):
    """Random-access reader for a packed video, with VideoReader's interface.

    Args:
        path: a file written by :func:`write_packed` (``pack_dataset(format="jpeg"|"raw")``).
        threads: threads decoding the JPEG frames of one ``read`` (see :class:`FrameReader`).

    Attributes as :class:`~deepvideo.io.VideoReader`: ``num_frames``, ``fps``,
    ``duration``, ``width``, ``height``, ``codec`` (``"jpeg"`` or ``"raw"``),
    ``frame_times``, ``keyframes``, ``path``.  The file stays open until ``close()``.

    Raises:
        VideoDecodeError: missing, empty, truncated or foreign file, or an unknown version;
            on ``read``, an unreadable frame.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        super().__init__(threads)
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(f"{self.path}: no such file")
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise VideoDecodeError(f"{self.path}: cannot be opened ({exc.strerror})") from None
        try:
            self._open()
        except BaseException:
            os.close(self._fd)
            raise

    def _open(self) -> None:
        data, offset = _member(self._fd, 0, "meta.json", self.path)
        try:
            meta = json.loads(data)
            if meta.get("format") != PACKED_FORMAT:
                raise ValueError
            version, self.codec, self.fps = meta["version"], meta["codec"], float(meta["fps"])
            self.width, self.height = int(meta["width"]), int(meta["height"])
            self.num_frames = int(meta["num_frames"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise VideoDecodeError(f"{self.path}: not a packed video (bad meta.json)") from None
        if version != _VERSION or self.codec not in PACKED_CODECS:
            raise VideoDecodeError(f"{self.path}: packed video version {version} codec "
                                   f"{self.codec!r}; this reader knows version {_VERSION} "
                                   f"codecs {', '.join(PACKED_CODECS)}")
        data, _ = _member(self._fd, offset, "index.npy", self.path)
        try:
            self._index = np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64)
        except (ValueError, EOFError):
            raise VideoDecodeError(f"{self.path}: not a packed video (bad index.npy)") from None
        if self._index.shape != (self.num_frames, 2) or self.num_frames < 1:
            raise VideoDecodeError(f"{self.path}: index of shape {self._index.shape} for "
                                   f"{self.num_frames} frames")
        end = int((self._index[:, 0] + self._index[:, 1]).max())
        if end > os.fstat(self._fd).st_size:
            raise VideoDecodeError(f"{self.path}: truncated packed file (frames end at byte "
                                   f"{end}, the file has {os.fstat(self._fd).st_size})")
        self._set_timing()

    def _fill(self, index: int, out: np.ndarray) -> None:
        offset, size = self._index[index].tolist()
        if self.codec == "raw":
            try:
                complete = size == out.nbytes and os.preadv(self._fd, [out], offset) == size
            except OSError as exc:
                raise VideoDecodeError(f"{self.path}: frame {index} cannot be read ({exc.strerror})") from None
            if not complete:
                raise VideoDecodeError(f"{self.path}: frame {index} is truncated or corrupt")
            return
        image = decode_image(_read_exact(self._fd, size, offset, self.path),
                             f"{self.path}: frame {index}")
        if image.shape != out.shape:
            raise VideoDecodeError(f"{self.path}: frame {index} is {image.shape[1]}x"
                                   f"{image.shape[0]}, the video {self.width}x{self.height}")
        out[...] = image

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
