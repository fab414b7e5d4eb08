"""AVA spatio-temporal action annotations: box CSV files, label maps, excluded timestamps.

AVA labels one keyframe per second of each video, ``timestamp`` being its whole second in the
video (902 to 1798 in AVA v2.x, written ``%04d``: ``0902``).  Boxes are normalised to the
frame, ``0 <= x1 < x2 <= 1`` and ``0 <= y1 < y2 <= 1``; a person doing two actions has one row
per action with the same box.  The files (https://research.google.com/ava/download.html)::

    ground truth   video_id,timestamp,x1,y1,x2,y2,action_id,person_id   (ava_val_v2.2.csv)
    detections     video_id,timestamp,x1,y1,x2,y2,action_id,score       (a result file)
    excluded       video_id,timestamp                (ava_val_excluded_timestamps_v2.2.csv)

Ground truth without the ``person_id`` column (7 fields) is read too, as AVA's evaluator reads
it; detections must have their score.

The label map is protocol-buffer text, in either of AVA's two styles::

    item {                                  label {
      name: "bend/bow (at the waist)"         name: "bend/bow (at the waist)"
      id: 1                                   label_id: 1
    }                                         label_type: PERSON_MOVEMENT
                                            }

(``ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt`` and
``ava_action_list_v2.2_for_activitynet_2019.pbtxt``); blocks may also be written on one line.

Every malformed line is a one-line ``ValueError("<file>:<line>: <reason>")``: a wrong number of
fields, a field that is not a number, a box outside ``[0, 1]`` or with ``x2 <= x1`` /
``y2 <= y1``, an action id below 1 or (when a label map is given to the reader) not in it.
With ``skip_bad=True`` the box readers skip such lines instead, warn once and list them in
:attr:`AvaFile.skipped`.  Note that the official ground truth holds all 80 AVA actions while
the evaluation label map has 60: read the ground truth without the 60-class map (or with the
full 80-class list), and let :func:`deepvideo.ava.metrics.frame_map` drop the other classes as
AVA's evaluator does.  Writers are atomic (:func:`deepvideo.io.atomic.atomic_write_text`) and write
numbers as the shortest decimal that reads back as the same float, so files round-trip exactly.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterable, Iterator, Mapping

import numpy as np

from deepvideo.io.atomic import atomic_write_text
from deepvideo.io.text import read_text

__all__ = ["ActionLabel", "AvaBox", "AvaFile", "format_timestamp", "read_detections", "read_excluded",
           "read_groundtruth", "read_label_map", "write_detections", "write_excluded", "write_groundtruth",
           "write_label_map"]

_TIMESTAMP = re.compile(r"\d+")
_INTEGER = re.compile(r"[+-]?\d+")


def format_timestamp(timestamp: int) -> str:
    """A keyframe second as AVA writes it: ``902`` -> ``"0902"`` (``%04d``)."""
    return "%04d" % timestamp


@dataclass(frozen=True)
class AvaBox:
    """One AVA row: the person box ``(x1, y1, x2, y2)`` (normalised, ``0 <= x1 < x2 <= 1``, same
    for y) doing action ``action_id`` (>= 1) at keyframe ``timestamp`` (whole seconds) of
    ``video_id``.  Ground truth has ``score`` None and usually a ``person_id``; a detection has a
    finite ``score`` and no ``person_id``.  ``ValueError`` for values that break these rules;
    numpy scalars are stored as Python ints and floats."""

    video_id: str
    timestamp: int
    x1: float
    y1: float
    x2: float
    y2: float
    action_id: int
    person_id: int | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        problem = _box_problem(self)
        if problem:
            raise ValueError(problem)
        # numpy scalars become Python numbers, so that boxes compare and print plainly
        for name in ("timestamp", "action_id", "person_id"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("x1", "y1", "x2", "y2", "score"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def key(self) -> tuple[str, int]:
        """``(video_id, timestamp)``: the keyframe, AVA's evaluator's "image"."""
        return (self.video_id, self.timestamp)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)``."""
        return (self.x1, self.y1, self.x2, self.y2)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _box_problem(box: AvaBox) -> str | None:
    """Why ``box`` is not a valid AVA row, or None."""
    if not isinstance(box.video_id, str) or not box.video_id:
        return f"video id {box.video_id!r} is empty"
    if not _is_int(box.timestamp) or box.timestamp < 0:
        return f"timestamp {box.timestamp!r} is not a whole number of seconds >= 0"
    for name in ("x1", "y1", "x2", "y2"):
        value = getattr(box, name)
        if not _is_real(value):
            return f"box {name}={value!r} is not a finite number"
        if not 0.0 <= value <= 1.0:
            return f"box {name}={value!r} is outside [0, 1] (AVA boxes are normalised)"
    if box.x2 <= box.x1:
        return f"box x2={box.x2!r} is not right of x1={box.x1!r}"
    if box.y2 <= box.y1:
        return f"box y2={box.y2!r} is not below y1={box.y1!r}"
    if not _is_int(box.action_id) or box.action_id < 1:
        return f"action id {box.action_id!r} is not an integer >= 1"
    if box.person_id is not None and (not _is_int(box.person_id) or box.person_id < 0):
        return f"person id {box.person_id!r} is not an integer >= 0"
    if box.score is not None and not _is_real(box.score):
        return f"score {box.score!r} is not a finite number"
    return None


@dataclass
class AvaFile:
    """The boxes read from ``path`` in file order, and the ``file:line: reason`` message of each
    line skipped with ``skip_bad=True`` (``num_skipped`` of them).  Iterates over ``boxes``."""

    path: Path
    boxes: list[AvaBox]
    skipped: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def __iter__(self) -> Iterator[AvaBox]:
        return iter(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class ActionLabel:
    """One class of a label map: its ``id`` (>= 1), ``name`` and, in AVA v2.2's style,
    ``label_type`` (``PERSON_MOVEMENT``, ``OBJECT_MANIPULATION``, ``PERSON_INTERACTION``)."""

    id: int
    name: str
    label_type: str | None = None


# ----------------------------------------------------------------------------- box CSV files


def _lines(path: Path, kind: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, stripped fields)`` of each non-blank CSV line of ``path``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {kind} file")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            fields = next(csv.reader([line]), [])
            yield number, [f.strip() for f in fields]


def _parse_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not finite")
    return value


def _parse_int(text: str, what: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not an integer")
    return int(text)


def _parse_timestamp(text: str) -> int:
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"timestamp {text!r} is not a whole number of seconds")
    return int(text)


def _parse_box(fields: list[str], detections: bool, labels: Collection[int] | None) -> AvaBox:
    """The :class:`AvaBox` of one line's fields; ``ValueError(reason)``."""
    if detections:
        if len(fields) != 8:
            raise ValueError(f"expected 8 fields video_id,timestamp,x1,y1,x2,y2,action_id,score, got {len(fields)}")
    elif len(fields) not in (7, 8):
        raise ValueError(f"expected 8 fields video_id,timestamp,x1,y1,x2,y2,action_id,person_id (or 7 without "
                         f"person_id), got {len(fields)}")
    timestamp = _parse_timestamp(fields[1])
    x1, y1, x2, y2 = (_parse_float(text, f"box {name}") for text, name in zip(fields[2:6], ("x1", "y1", "x2", "y2")))
    action_id = _parse_int(fields[6], "action id")
    person_id = score = None
    if detections:
        score = _parse_float(fields[7], "score")
    elif len(fields) == 8:
        person_id = _parse_int(fields[7], "person id")
    box = AvaBox(fields[0], timestamp, x1, y1, x2, y2, action_id, person_id, score)
    if labels is not None and action_id not in labels:
        raise ValueError(f"action id {action_id} is not in the label map ({len(labels)} classes)")
    return box


def _read_boxes(path: str | os.PathLike, detections: bool, labels: Mapping[int, object] | Collection[int] | None,
                skip_bad: bool) -> AvaFile:
    path = Path(path)
    kind = "AVA detections" if detections else "AVA ground-truth"
    ids = None if labels is None else set(labels)
    boxes, skipped = [], []
    for number, fields in _lines(path, kind):
        try:
            boxes.append(_parse_box(fields, detections, ids))
        except ValueError as err:
            message = f"{path}:{number}: {err}"
            if not skip_bad:
                raise ValueError(message) from None
            skipped.append(message)
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} bad lines (first: {skipped[0]})", stacklevel=3)
    return AvaFile(path, boxes, skipped)


def read_groundtruth(path: str | os.PathLike, labels: Mapping[int, object] | Collection[int] | None = None, *,
                     skip_bad: bool = False) -> AvaFile:
    """The boxes of an AVA ground-truth CSV (``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]``)
    in file order, ``score`` None.  ``labels`` (a label map or class ids), when given, is the set
    of valid action ids.  ``ValueError("<file>:<line>: <reason>")`` for a bad line (see the module
    docstring), or with ``skip_bad`` a warning and the line listed in ``skipped``;
    ``FileNotFoundError`` for a missing file.  Blank lines are ignored."""
    return _read_boxes(path, False, labels, skip_bad)


def read_detections(path: str | os.PathLike, labels: Mapping[int, object] | Collection[int] | None = None, *,
                    skip_bad: bool = False) -> AvaFile:
    """The boxes of an AVA detection CSV (``video_id,timestamp,x1,y1,x2,y2,action_id,score``) in
    file order.  Same rules as :func:`read_groundtruth`; the score must be a finite number.
    (AVA's evaluator drops a detection with ``x2 <= x1`` or ``y2 <= y1`` silently; here it is a
    bad line, skipped with ``skip_bad``.)"""
    return _read_boxes(path, True, labels, skip_bad)


def _number(value: float) -> str:
    """The shortest decimal that reads back as ``value`` (``0.077``, ``1.0``)."""
    return repr(float(value))


def _write_rows(path: str | os.PathLike, rows: Iterable[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def _row(box: AvaBox) -> list[str]:
    return [box.video_id, format_timestamp(box.timestamp), *map(_number, box.box), str(box.action_id)]


def write_groundtruth(path: str | os.PathLike, boxes: Iterable[AvaBox]) -> Path:
    """Write ground-truth ``boxes`` as an AVA CSV, atomically, in the given order: 8 fields, or 7
    for a box without ``person_id``; timestamps as ``%04d``.  :func:`read_groundtruth` reads the
    same boxes back (their scores, if any, are not written)."""
    rows = []
    for box in boxes:
        rows.append(_row(box) + ([] if box.person_id is None else [str(box.person_id)]))
    return _write_rows(path, rows)


def write_detections(path: str | os.PathLike, boxes: Iterable[AvaBox]) -> Path:
    """Write ``boxes`` as an AVA detection CSV (``...,action_id,score``), atomically, in the given
    order; scores exactly (shortest round-trip decimal), so no two become tied by rounding.
    ``ValueError`` naming the file and the box's position for a box without a score."""
    rows = []
    for index, box in enumerate(boxes):
        if box.score is None:
            raise ValueError(f"{path}: detection {index} ({box.video_id},{format_timestamp(box.timestamp)}) "
                             "has no score")
        rows.append(_row(box) + [_number(box.score)])
    return _write_rows(path, rows)


# ----------------------------------------------------------------------------- excluded timestamps


def read_excluded(path: str | os.PathLike) -> set[tuple[str, int]]:
    """The ``(video_id, timestamp)`` keyframes of an AVA excluded-timestamps CSV
    (``video_id,timestamp`` lines).  ``ValueError("<file>:<line>: ...")`` for a line that is not
    two fields or whose timestamp is not a whole number; ``FileNotFoundError`` for a missing file."""
    path = Path(path)
    keys = set()
    for number, fields in _lines(path, "AVA excluded-timestamps"):
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected 2 fields video_id,timestamp, got {len(fields)}")
        if not fields[0]:
            raise ValueError(f"{path}:{number}: video id is empty")
        try:
            keys.add((fields[0], _parse_timestamp(fields[1])))
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from None
    return keys


def write_excluded(path: str | os.PathLike, keys: Iterable[tuple[str, int]]) -> Path:
    """Write ``(video_id, timestamp)`` keyframes as an AVA excluded-timestamps CSV, sorted,
    atomically."""
    return _write_rows(path, [[video, format_timestamp(timestamp)] for video, timestamp in sorted(set(keys))])


# ----------------------------------------------------------------------------- label maps

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}:;,]) | (?P<word>[A-Za-z0-9_.+-]+)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _tokens(path: Path, text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, line)`` of each token of a protobuf text file."""
    tokens, line, pos = [], 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"{path}:{line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup
        if kind == "newline":
            line += 1
        elif kind in ("string", "punct", "word"):
            tokens.append((kind, match.group(), line))
        pos = match.end()
    return tokens


def _unquote(path: Path, token: str, line: int) -> str:
    def escape(match: re.Match) -> str:
        if match[1] not in _ESCAPES:
            raise ValueError(f"{path}:{line}: unknown escape \\{match[1]} in {token}")
        return _ESCAPES[match[1]]
    return re.sub(r"\\(.)", escape, token[1:-1])


def read_label_map(path: str | os.PathLike) -> dict[int, ActionLabel]:
    """The classes of an AVA label map (``.pbtxt``, ``item { name id }`` or ``label { name
    label_id label_type }`` blocks), ``{id: ActionLabel}`` in file order.

    ``ValueError("<file>:<line>: ...")`` for text that is not such blocks, a block without a
    ``name`` or an id, a field given twice, an id that is not an integer >= 1 or that an
    earlier block has; ``ValueError`` naming the file when it has no block;
    ``FileNotFoundError`` for a missing file.  Other fields (``display_name``) are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such AVA label map file")
    tokens = _tokens(path, read_text(path))
    labels: dict[int, ActionLabel] = {}
    at = 0

    def take(expected: str | None = None) -> tuple[str, str, int]:
        nonlocal at
        if at >= len(tokens):
            raise ValueError(f"{path}:{tokens[-1][2]}: file ends inside a block" if tokens else f"{path}: empty")
        token = tokens[at]
        if expected is not None and token[1] != expected:
            raise ValueError(f"{path}:{token[2]}: expected {expected!r}, got {token[1]!r}")
        at += 1
        return token

    while at < len(tokens):
        kind, word, line = take()
        if kind != "word" or word not in ("item", "label"):
            raise ValueError(f"{path}:{line}: expected 'item {{' or 'label {{', got {word!r}")
        if at < len(tokens) and tokens[at][1] == ":":
            take()
        take("{")
        fields: dict[str, tuple[str, str, int]] = {}
        while True:
            kind, name, field_line = take()
            if name == "}":
                break
            if kind != "word":
                raise ValueError(f"{path}:{field_line}: expected a field name, got {name!r}")
            take(":")
            value = take()
            if value[0] not in ("string", "word"):
                raise ValueError(f"{path}:{value[2]}: field {name!r} has no value (got {value[1]!r})")
            if name in fields:
                raise ValueError(f"{path}:{field_line}: field {name!r} is given twice in one block")
            fields[name] = value
            if at < len(tokens) and tokens[at][1] in (",", ";"):
                take()
        ids = [fields[key] for key in ("id", "label_id") if key in fields]
        if "name" not in fields:
            raise ValueError(f"{path}:{line}: {word} block without a name")
        if not ids:
            raise ValueError(f"{path}:{line}: {word} block without an id (id: or label_id:)")
        if len(ids) == 2:
            raise ValueError(f"{path}:{ids[1][2]}: block has both id and label_id")
        kind, text, id_line = ids[0]
        if kind != "word" or not _INTEGER.fullmatch(text) or int(text) < 1:
            raise ValueError(f"{path}:{id_line}: id {text} is not an integer >= 1")
        kind, text, name_line = fields["name"]
        if kind != "string":
            raise ValueError(f"{path}:{name_line}: name {text} is not a quoted string")
        label_id, name = int(ids[0][1]), _unquote(path, text, name_line)
        if label_id in labels:
            raise ValueError(f"{path}:{id_line}: id {label_id} is already used by {labels[label_id].name!r}")
        label_type = fields.get("label_type")
        labels[label_id] = ActionLabel(label_id, name, None if label_type is None else label_type[1].strip("\"'"))
    if not labels:
        raise ValueError(f"{path}: no 'item {{...}}' or 'label {{...}}' block, not an AVA label map")
    return labels


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_label_map(path: str | os.PathLike, labels: Mapping[int, ActionLabel | str] | Iterable[ActionLabel],
                    style: str = "item") -> Path:
    """Write a label map atomically, one block per class in the given order: ``style="item"``
    writes ``item { name: ... id: N }`` (AVA v2.1's evaluation list), ``"label"`` writes ``label
    { name: ... label_id: N label_type: T }`` (AVA v2.2's, label_type when known).  ``labels`` is
    what :func:`read_label_map` returns, ``{id: name}`` or a list of :class:`ActionLabel`; it
    reads back equal.  Both styles are read by AVA's own evaluator (which wants exactly this
    two-space layout).  ``ValueError`` for an unknown style, an id below 1 or given twice."""
    if style not in ("item", "label"):
        raise ValueError(f"style {style!r}: expected 'item' or 'label'")
    if isinstance(labels, Mapping):
        entries = [value if isinstance(value, ActionLabel) else ActionLabel(key, str(value))
                   for key, value in labels.items()]
    else:
        entries = list(labels)
    lines, seen = [], set()
    for entry in entries:
        if not _is_int(entry.id) or entry.id < 1 or entry.id in seen:
            raise ValueError(f"{path}: class id {entry.id!r} is not an integer >= 1 or is given twice")
        seen.add(entry.id)
        if style == "item":
            lines += ["item {", f"  name: {_quote(entry.name)}", f"  id: {entry.id}", "}"]
        else:
            lines += ["label {", f"  name: {_quote(entry.name)}", f"  label_id: {entry.id}"]
            if entry.label_type is not None:
                lines.append(f"  label_type: {entry.label_type}")
            lines.append("}")
    return atomic_write_text(path, "\n".join(lines) + "\n")
