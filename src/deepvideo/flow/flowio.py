"""Flow files: Middlebury ``.flo`` and the quantised uint8 flow that two-stream training reads.

Every flow field here is ``(2, H, W)`` float32 ``(dx, dy)`` in pixels (a clip of them
``(T-1, 2, H, W)``): pixel ``(x, y)`` of the first frame moves to ``(x + dx, y + dy)``.

``.flo`` (Middlebury, Baker et al. 2007): the float32 ``202021.25`` (bytes ``PIEH``), width
and height as int32, then ``H * W`` interleaved float32 ``(u, v)`` pairs row by row, all
little-endian.

Quantised flow (the two-stream papers, Simonyan & Zisserman 2014; TSN's ``denseflow``):
each component is clipped to ``[-bound, bound]`` (20 px by default) and mapped linearly to
``0..255``, ``q = round((f + bound) * 255 / (2 * bound))``.  Inside the bound a value comes
back within half a step, ``bound / 255`` px (0.078 px at 20); zero flow reads back as
+0.078 px since no code sits at exactly 127.5.

One ``.npz`` per video holds the quantised clip, chosen by measurement on the DIS flow of
60 frames of ``mmaction2__demo.mp4`` (59 fields 340x256, 10.3 MB raw uint8; 2 shared CPU
cores; ``python benchmarks/flow.py`` prints this table; our reads go through
``load_flow`` and include the conversion to float32 pixels):

==============================  =======  =======  ==============  ==========  ========
format                          size     write    read all 59 fr  read 10 fr  lossless
==============================  =======  =======  ==============  ==========  ========
npz, zlib, member per frame     0.77 MB  0.19 s   35 ms           5.3 ms      yes
npz, zlib, one array            0.77 MB  0.18 s   17 ms           16 ms       yes
PNG x/y planes per frame        0.90 MB  0.14 s   50 ms           8.7 ms      yes
JPEG q95 x/y planes per frame   0.46 MB  0.03 s   20 ms           3.3 ms      no (3 levels)
==============================  =======  =======  ==============  ==========  ========

One zlib-compressed member per flow frame (``"00000"``, ``"00001"``, ... each ``(2, H, W)``
uint8) is as small as one array, lossless, a single file per video (written atomically:
no half-written video is ever seen as done; planes take two files per frame), and
``load_flow(path, indices)`` decompresses only the frames asked for -- what a sampler
drawing 10 stacked flows needs, at a cost that does not grow with the video's length.
JPEG halves the size at up to 3 levels (0.47 px) of error.  Members
``bound`` and ``method`` record how the file was made.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from deepvideo.io.atomic import atomic_write

__all__ = ["FLO_MAGIC", "DEFAULT_BOUND", "check_bound", "read_flo", "write_flo", "quantize_flow",
           "dequantize_flow", "save_flow", "load_flow", "flow_file_info"]

FLO_MAGIC = 202021.25
DEFAULT_BOUND = 20.0
_MAX_FLO_SIDE = 100_000  # the Middlebury reader's sanity limit on width and height


def _check_flow(flow: np.ndarray, where: str | os.PathLike, batched: bool = False) -> np.ndarray:
    flow = np.asarray(flow)
    ndim = 4 if batched else 3
    if flow.ndim != ndim or flow.shape[-3] != 2:
        layout = "(T, 2, H, W)" if batched else "(2, H, W)"
        raise ValueError(f"{where}: flow must be {layout}, got shape {flow.shape}")
    return flow


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Read a Middlebury ``.flo`` file as ``(2, H, W)`` float32 ``(dx, dy)``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a
    wrong magic number, impossible size or truncated data.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 12:
        raise ValueError(f"{path}: truncated .flo file ({len(data)} bytes, the header alone is 12)")
    magic = np.frombuffer(data, "<f4", count=1)[0]
    if magic != np.float32(FLO_MAGIC):
        raise ValueError(f"{path}: not a Middlebury .flo file (magic {data[:4]!r}, expected b'PIEH')")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if not (0 < width < _MAX_FLO_SIDE and 0 < height < _MAX_FLO_SIDE):
        raise ValueError(f"{path}: bad .flo size {width}x{height}")
    expected = 12 + 8 * width * height
    if len(data) < expected:
        raise ValueError(f"{path}: truncated .flo file ({len(data)} bytes, {width}x{height} "
                         f"flow needs {expected})")
    uv = np.frombuffer(data, "<f4", count=2 * width * height, offset=12).reshape(height, width, 2)
    return np.ascontiguousarray(uv.transpose(2, 0, 1), dtype=np.float32)


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> Path:
    """Write ``flow`` ``(2, H, W)`` ``(dx, dy)`` to a Middlebury ``.flo`` file (atomically)."""
    path = Path(path)
    flow = _check_flow(flow, path)
    height, width = flow.shape[1:]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    body = np.ascontiguousarray(flow.transpose(1, 2, 0), dtype="<f4").tobytes()
    return atomic_write(path, lambda fh: fh.write(header + body))


def check_bound(bound: float) -> float:
    """``bound`` (pixels) as a float; ``ValueError`` unless it is positive and finite."""
    if not (np.isfinite(bound) and bound > 0):
        raise ValueError(f"flow bound must be a positive number of pixels, got {bound}")
    return float(bound)


def quantize_flow(flow: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """Clip ``flow`` (any shape, pixels) to ``[-bound, bound]`` and map it to uint8 ``0..255``."""
    bound = check_bound(bound)
    flow = np.clip(np.asarray(flow, np.float32), -bound, bound)
    return np.rint((flow + bound) * np.float32(255 / (2 * bound))).astype(np.uint8)


def dequantize_flow(codes: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """Invert :func:`quantize_flow`: uint8 codes -> float32 pixels in ``[-bound, bound]``."""
    bound = check_bound(bound)
    return np.asarray(codes, np.float32) * np.float32(2 * bound / 255) - np.float32(bound)


def save_flow(path: str | os.PathLike, flow: np.ndarray, bound: float = DEFAULT_BOUND,
              method: str = "") -> Path:
    """Quantise a clip's flow ``(T-1, 2, H, W)`` float32 (or already-quantised uint8 codes) and
    write it atomically to ``path`` (a ``.npz``, one compressed member per flow frame)."""
    path = Path(path)
    flow = _check_flow(flow, path, batched=True)
    codes = flow if flow.dtype == np.uint8 else quantize_flow(flow, bound)
    members = {f"{i:05d}": frame for i, frame in enumerate(codes)}
    meta = {"bound": np.float32(check_bound(bound)), "method": np.str_(method)}
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **meta, **members))


def _open_flow(path: Path) -> np.lib.npyio.NpzFile:
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a flow file written by save_flow ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile) or "bound" not in archive.files:
        raise ValueError(f"{path}: not a flow file written by save_flow (no 'bound' member)")
    return archive


def flow_file_info(path: str | os.PathLike) -> dict:
    """``{"frames", "bound", "method"}`` of a file written by :func:`save_flow` (reads no flow)."""
    path = Path(path)
    with _open_flow(path) as archive:
        frames = sum(name.isdigit() for name in archive.files)
        return {"frames": frames, "bound": float(archive["bound"]), "method": str(archive["method"])}


def load_flow(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Read flow written by :func:`save_flow` as ``(N, 2, H, W)`` float32 pixels.

    ``indices`` picks flow frames (flow ``i`` runs from video frame ``i`` to ``i + 1``); only
    those are decompressed.  ``None`` reads all ``T - 1`` of them.  Raises ``IndexError``
    naming the file for an index out of range, ``ValueError`` for a file of another kind.
    """
    path = Path(path)
    with _open_flow(path) as archive:
        count = sum(name.isdigit() for name in archive.files)
        idx = np.arange(count) if indices is None else np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= count):
            bad = int(idx[(idx < 0) | (idx >= count)][0])
            raise IndexError(f"{path}: flow index {bad} out of range ({count} flow frames)")
        if idx.size == 0:
            raise ValueError(f"{path}: no flow frames selected")
        codes = np.stack([archive[f"{i:05d}"] for i in idx.tolist()])
        return dequantize_flow(codes, float(archive["bound"]))
