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

Reading trusts nothing in the file: every field of ``meta.json`` (types, ranges, a
frame of at most ``MAX_FRAME_PIXELS``), the index (exactly the array the writer makes,
every frame inside the file) and each JPEG frame's header (the video's size, checked
before decoding) are validated, and a file failing any check is a ``VideoDecodeError``
naming it and the field.
"""

from __future__ import annotations

import io
import json
import os
import re
import reprlib
import tarfile
from pathlib import Path
from typing import BinaryIO, Iterable

import cv2
import numpy as np

from deepvideo.io.atomic import atomic_write
from deepvideo.io.decode import VideoDecodeError
from deepvideo.io.frames import MAX_FRAME_PIXELS, FrameReader, decode_image, positive_fps

__all__ = ["PACKED_CODECS", "PACKED_FORMAT", "PACKED_SUFFIX", "PackedReader", "is_packed",
           "write_packed"]

PACKED_FORMAT = "deepvideo-packed"
PACKED_SUFFIX = ".tar"
PACKED_CODECS = ("jpeg", "raw")
_VERSION = 1
_BLOCK = tarfile.BLOCKSIZE  # 512
_EXTENSION = {"jpeg": ".jpg", "raw": ".ppm"}
_META_LIMIT = 1 << 16  # bytes of meta.json read at most (the writer's is about 150)
# index.npy as np.save writes a (N, 2) little-endian uint64 array: format version 1.0, then
# the header (padded with spaces to a multiple of 64 bytes), then the 16 * N data bytes
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER = re.compile(rb"\{'descr': '<u8', 'fortran_order': False, 'shape': \((\d{1,19}), 2\), \} *\n")


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


def _member(fd: int, offset: int, name: str, limit: int, path: Path) -> tuple[bytes, int]:
    """The data (at most ``limit`` bytes) of the tar member ``name`` whose header is at
    ``offset``, and the offset after it."""
    try:
        info = tarfile.TarInfo.frombuf(_read_exact(fd, _BLOCK, offset, path), "utf-8", "strict")
    except (tarfile.HeaderError, ValueError):  # ValueError: a name that is not UTF-8
        info = None
    if info is None or info.name != name:
        raise VideoDecodeError(f"{path}: not a packed video (expected tar member {name!r} "
                               f"at byte {offset})")
    if not 0 <= info.size <= limit:
        raise VideoDecodeError(f"{path}: tar member {name!r} of {info.size} bytes (a packed "
                               f"video's has 0 to {limit})")
    data = _read_exact(fd, info.size, offset + _BLOCK, path)
    return data, offset + _BLOCK + info.size + len(_padding(info.size))


def _meta_field(meta: dict, key: str, path: Path) -> int | float | str:
    """``meta[key]``, checked: an int >= 1 (``num_frames``, ``width``, ``height``, ``version``;
    a bool is not an int), a finite number > 0 (``fps``) or a string (``format``, ``codec``)."""
    if key not in meta:
        raise VideoDecodeError(f"{path}: meta.json lacks field {key!r}")
    value, what = meta[key], f"{path}: meta.json field {key!r}"
    if key == "fps":
        return positive_fps(value, what)
    if key in ("format", "codec"):
        if not isinstance(value, str):
            raise VideoDecodeError(f"{what} must be a string, not {reprlib.repr(value)}")
    elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise VideoDecodeError(f"{what} must be an integer >= 1, not {reprlib.repr(value)}")
    return value


def _parse_index(data: bytes, num_frames: int, path: Path) -> np.ndarray:
    """The ``(num_frames, 2)`` uint64 array in index.npy's bytes, as the writer saves it (no
    other header is parsed)."""
    length = int.from_bytes(data[8:10], "little")
    match = _NPY_HEADER.fullmatch(data, 10, 10 + length)
    if data[:8] != _NPY_MAGIC or match is None:
        raise VideoDecodeError(f"{path}: not a packed video (bad index.npy: not the (N, 2) "
                               f"uint64 array the writer saves)")
    if int(match[1]) != num_frames or len(data) != 10 + length + 16 * num_frames:
        raise VideoDecodeError(f"{path}: index.npy holds {match[1].decode()} entries in "
                               f"{len(data)} bytes, meta.json field 'num_frames' is {num_frames}")
    return np.frombuffer(data, "<u8", offset=10 + length).reshape(num_frames, 2)


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
        VideoDecodeError: missing, empty, truncated, unreadable or foreign file, an unknown
            version, or any field of meta.json or the index out of its range (naming the
            field); on ``read``, an unreadable frame.
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
            self._open(os.fstat(self._fd).st_size)
        except BaseException as exc:
            os.close(self._fd)
            if isinstance(exc, OSError):
                raise VideoDecodeError(f"{self.path}: cannot be read ({exc.strerror})") from None
            raise

    def _open(self, file_size: int) -> None:
        data, offset = _member(self._fd, 0, "meta.json", _META_LIMIT, self.path)
        try:
            meta = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise VideoDecodeError(f"{self.path}: not a packed video (bad meta.json: "
                                   f"{str(exc).splitlines()[0]})") from None
        if not isinstance(meta, dict) or meta.get("format") != PACKED_FORMAT:
            raise VideoDecodeError(f"{self.path}: not a packed video (meta.json field 'format' "
                                   f"is not {PACKED_FORMAT!r})")
        version, self.codec = _meta_field(meta, "version", self.path), _meta_field(meta, "codec", self.path)
        if version != _VERSION or self.codec not in PACKED_CODECS:
            raise VideoDecodeError(f"{self.path}: packed video version {version} codec "
                                   f"{reprlib.repr(self.codec)}; this reader knows version "
                                   f"{_VERSION} codecs {', '.join(PACKED_CODECS)}")
        self.fps = _meta_field(meta, "fps", self.path)
        self.width, self.height, self.num_frames = (_meta_field(meta, key, self.path)
                                                    for key in ("width", "height", "num_frames"))
        if self.width * self.height > MAX_FRAME_PIXELS:
            raise VideoDecodeError(f"{self.path}: meta.json fields 'width' x 'height' = "
                                   f"{self.width}x{self.height}, over the frame limit of "
                                   f"{MAX_FRAME_PIXELS} pixels (MAX_FRAME_PIXELS)")
        if self.num_frames > file_size // _BLOCK:  # every frame has a 512-byte tar header
            raise VideoDecodeError(f"{self.path}: meta.json field 'num_frames' is {self.num_frames}, "
                                   f"more than a file of {file_size} bytes holds")
        data, start = _member(self._fd, offset, "index.npy", 4096 + 16 * self.num_frames, self.path)
        self._index = self._checked(_parse_index(data, self.num_frames, self.path), start, file_size)
        self._set_timing()

    def _checked(self, index: np.ndarray, start: int, file_size: int) -> np.ndarray:
        """``index`` as int64 once every entry lies in the frame data, ``[start, file_size)``,
        and has a frame's length (a raw frame's exactly)."""
        offsets, lengths = index[:, 0], index[:, 1]
        raw = self.codec == "raw"
        wrong = (offsets < start) | ((lengths != self.width * self.height * 3) if raw else (lengths == 0))
        if wrong.any():
            i = int(wrong.argmax())
            raise VideoDecodeError(f"{self.path}: index.npy entry {i} (offset {offsets[i]}, length "
                                   f"{lengths[i]}) is not a {self.codec} frame of this video")
        past = (offsets > file_size) | (lengths > file_size - np.minimum(offsets, file_size))
        if past.any():
            i = int(past.argmax())
            raise VideoDecodeError(f"{self.path}: truncated packed file (index.npy entry {i} ends "
                                   f"at byte {int(offsets[i]) + int(lengths[i])}, the file has {file_size})")
        return index.astype(np.int64)

    def _fill(self, index: int, out: np.ndarray) -> None:
        offset, size = self._index[index].tolist()
        if self.codec == "raw":
            try:
                complete = os.preadv(self._fd, [out], offset) == size
            except OSError as exc:
                raise VideoDecodeError(f"{self.path}: frame {index} cannot be read ({exc.strerror})") from None
            if not complete:
                raise VideoDecodeError(f"{self.path}: frame {index} is truncated")
            return
        data = _read_exact(self._fd, size, offset, self.path)
        found = _jpeg_size(data)  # checked before decoding: a bomb is never decoded
        if found is None:
            raise VideoDecodeError(f"{self.path}: frame {index}: not a readable image (no JPEG "
                                   f"frame header)")
        if found == (self.width, self.height):
            image = decode_image(data, f"{self.path}: frame {index}")
            if image.shape == out.shape:
                out[...] = image
                return
            found = image.shape[1], image.shape[0]
        raise VideoDecodeError(f"{self.path}: frame {index} is {found[0]}x{found[1]}, the video "
                               f"{self.width}x{self.height}")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's frame header (its SOF marker); None when there is none
    before the image data."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOF0..SOF15
            return int.from_bytes(data[at + 7:at + 9], "big"), int.from_bytes(data[at + 5:at + 7], "big")
        if marker == 0xDA:  # start of scan: the image data, no frame header before it
            return None
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return None
