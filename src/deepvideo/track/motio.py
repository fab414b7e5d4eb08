"""MOTChallenge text files: ground truth, detections and tracker results, and ``seqinfo.ini``.

One box per line, comma separated (whitespace is accepted too, as py-motmetrics does)::

    frame, id, x, y, w, h, conf, x3d, y3d, z3d

``frame`` counts from 1, ``(x, y)`` is the top-left corner and ``(w, h)`` the size in pixels.
Detection files (``det.txt``) carry ``id = -1`` and the detector's score in ``conf``; in
ground truth ``conf = 0`` marks a box that the evaluation ignores, and MOT16/17/20 put the
class and the visibility where MOT15 has ``x3d, y3d`` -- ``read_mot`` keeps those columns
as they are.  Every reader here returns ``(N, 10)`` float64 arrays in that column order, with
the trailing columns a line leaves out filled with ``-1``.

A sequence folder of the benchmark (``<seq>/seqinfo.ini``, ``<seq>/gt/gt.txt``,
``<seq>/det/det.txt``) describes itself in ``seqinfo.ini``::

    [Sequence]
    name=MOT17-02
    imDir=img1
    frameRate=30
    seqLength=600
    imWidth=1920
    imHeight=1080
    imExt=.jpg
"""

from __future__ import annotations

import configparser
import io
import os
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_text
from deepvideo.io.text import read_text

__all__ = ["MAX_COORDINATE", "MAX_FRAME", "MOT_COLUMNS", "MotWriter", "frames_of", "mot_lines", "read_mot",
           "read_seqinfo", "write_mot"]

MAX_FRAME = 1_000_000_000  # largest frame number read (over a year at 30 fps)
MAX_COORDINATE = 10_000_000.0  # largest |x|, |y|, w and h of a box read, in pixels
MOT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "x3d", "y3d", "z3d")
_MIN_FIELDS = 6
_SEQINFO_TYPES = {"name": str, "imDir": str, "frameRate": float, "seqLength": int,
                  "imWidth": int, "imHeight": int, "imExt": str}
_SEQINFO_REQUIRED = ("name", "seqLength")


def _fields(line: str, path: Path, number: int) -> list[float]:
    """The numbers on line ``number`` of ``path``, padded with -1 to 10."""
    fields = line.split(",") if "," in line else line.split()
    if fields and not fields[-1].strip():  # a trailing comma
        fields = fields[:-1]
    if not _MIN_FIELDS <= len(fields) <= len(MOT_COLUMNS):
        raise ValueError(f"{path}:{number}: expected 6 to 10 fields (frame,id,x,y,w,h[,conf,x,y,z]), "
                         f"got {len(fields)}")
    try:
        values = [float(field) for field in fields]
    except ValueError:
        name, field = next((n, f) for n, f in zip(MOT_COLUMNS, fields) if not _is_number(f))
        raise ValueError(f"{path}:{number}: {name} {field.strip()!r} is not a number") from None
    return values + [-1.0] * (len(MOT_COLUMNS) - len(values))


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _first_invalid(rows: np.ndarray) -> tuple[int, str] | None:
    """The first row (index, what is wrong) that breaks the format's rules, or None."""
    finite = np.isfinite(rows)
    frame, track_id = rows[:, 0], rows[:, 1]
    bad = (~finite.all(axis=1) | (frame < 1) | (frame > MAX_FRAME) | (frame != np.round(frame))
           | (track_id != np.round(track_id)) | (rows[:, 4] < 0) | (rows[:, 5] < 0)
           | (np.abs(rows[:, 2:6]) > MAX_COORDINATE).any(axis=1))
    if not bad.any():
        return None
    index = int(np.argmax(bad))
    row = rows[index]
    if not finite[index].all():
        column = int(np.argmin(finite[index]))
        return index, f"{MOT_COLUMNS[column]} is {row[column]}"
    if row[0] < 1 or row[0] != round(row[0]):
        return index, f"frame {row[0]:g} is not an integer >= 1"
    if row[0] > MAX_FRAME:
        return index, f"frame {row[0]:g} is past MAX_FRAME = {MAX_FRAME}"
    if row[1] != round(row[1]):
        return index, f"id {row[1]:g} is not an integer"
    if (np.abs(row[2:6]) > MAX_COORDINATE).any():
        return index, (f"box x={row[2]:g} y={row[3]:g} w={row[4]:g} h={row[5]:g} is past "
                       f"MAX_COORDINATE = {MAX_COORDINATE:g}")
    return index, f"negative box size w={row[4]:g} h={row[5]:g}"


def read_mot(path: str | os.PathLike) -> np.ndarray:
    """Read a MOTChallenge 2D file (gt.txt, det.txt or a tracker's result) as an ``(N, 10)``
    float64 array with columns ``frame, id, x, y, w, h, conf, x3d, y3d, z3d``.

    Blank lines are skipped and missing trailing columns read as -1.  A line with fewer than 6
    or more than 10 fields, a field that is not a finite number, a frame or id that is not an
    integer, a frame below 1 or above :data:`MAX_FRAME`, a negative width or height or a box
    coordinate past :data:`MAX_COORDINATE` raises
    ``ValueError("<file>:<line>: <what is wrong>")``; a missing file raises ``FileNotFoundError``
    naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MOT file")
    numbered = [(number, line) for number, line in
                enumerate(read_text(path).splitlines(), 1) if line.strip()]
    rows = np.array([_fields(line, path, number) for number, line in numbered],
                    dtype=np.float64).reshape(len(numbered), len(MOT_COLUMNS))
    invalid = _first_invalid(rows)
    if invalid is not None:
        index, problem = invalid
        raise ValueError(f"{path}:{numbered[index][0]}: {problem}")
    return rows


def mot_lines(rows: np.ndarray, path: str | os.PathLike = "rows") -> str:
    """``rows`` (``(N, >=6)``: ``frame, id, x, y, w, h[, conf, ...]``) as MOTChallenge lines
    ``frame,id,x,y,w,h,conf,-1,-1,-1`` in the given order: frame and id as integers, ``conf``
    -1 where ``rows`` has only 6 columns.  ``ValueError`` naming ``path`` for another shape or
    a NaN or infinite value."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < _MIN_FIELDS:
        raise ValueError(f"{path}: MOT rows must be an (N, >=6) array "
                         f"(frame, id, x, y, w, h[, conf]), got shape {rows.shape}")
    if not np.isfinite(rows[:, :7]).all():
        raise ValueError(f"{path}: MOT rows hold NaN or infinite values")
    conf = rows[:, 6] if rows.shape[1] > 6 else np.full(len(rows), -1.0)
    text = io.StringIO()
    for (frame, track_id, x, y, w, h), c in zip(rows[:, :6], conf):
        text.write(f"{int(frame)},{int(track_id)},{x:.10g},{y:.10g},{w:.10g},{h:.10g},{c:.10g},-1,-1,-1\n")
    return text.getvalue()


def write_mot(path: str | os.PathLike, rows: np.ndarray) -> Path:
    """Write ``rows`` as MOTChallenge lines (:func:`mot_lines`) atomically; returns the path."""
    text = mot_lines(rows, path)
    return atomic_write_text(path, text)


class MotWriter:
    """MOTChallenge lines written as they come, for a live stream: ``with MotWriter(path) as
    out: out.write(rows)`` appends the rows of each frame (:func:`mot_lines`) and flushes, so
    that another program reading ``path`` sees every track as soon as it is confirmed; what
    was written stays when the stream is stopped."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w")

    def write(self, rows: np.ndarray) -> None:
        if len(rows):
            self._file.write(mot_lines(rows, self.path))
            self._file.flush()

    def __enter__(self) -> "MotWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def read_seqinfo(path: str | os.PathLike) -> dict:
    """Read a sequence's ``seqinfo.ini`` (``path`` is the file or the folder holding it).

    Returns the ``[Sequence]`` entries under their MOTChallenge names (``name, imDir,
    frameRate, seqLength, imWidth, imHeight, imExt``; ``seqLength, imWidth, imHeight`` as int,
    ``frameRate`` as float, keys matched case-insensitively); ``name`` and ``seqLength`` are
    required, the others are present when the file has them, unknown keys stay strings.
    """
    path = Path(path)
    file = path / "seqinfo.ini" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such seqinfo.ini")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(file), source=str(file))
    except configparser.Error as exc:
        raise ValueError(f"{file}: not an ini file ({' '.join(str(exc).split())})") from None
    if not parser.has_section("Sequence"):
        raise ValueError(f"{file}: no [Sequence] section")
    canonical = {key.lower(): key for key in _SEQINFO_TYPES}
    info: dict = {}
    for key, value in parser.items("Sequence"):
        name = canonical.get(key, key)
        convert = _SEQINFO_TYPES.get(name, str)
        try:
            info[name] = convert(value.strip())
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise ValueError(f"{file}: {name}={value.strip()!r} is not {kind}") from None
    missing = [key for key in _SEQINFO_REQUIRED if key not in info]
    if missing:
        raise ValueError(f"{file}: [Sequence] lacks {', '.join(missing)}")
    return info


def frames_of(rows: np.ndarray) -> dict[int, np.ndarray]:
    """Group MOT rows (``(N, >=2)``, frame in column 0) by frame: ``{frame: rows of that frame}``
    in increasing frame order, each group keeping the rows' file order."""
    rows = np.asarray(rows)
    if len(rows) == 0:
        return {}
    order = np.argsort(rows[:, 0], kind="stable")
    frames, starts = np.unique(rows[order, 0], return_index=True)
    return {int(frame): group for frame, group in zip(frames, np.split(rows[order], starts[1:]))}
