"""Temporal action annotations and detection results: ActivityNet JSON, THUMOS14 text files.

Times are seconds.  A :class:`Segment` is one action instance ``[start, end]`` with its class
label (and, for a detection, its score); a :class:`VideoAnnotation` holds the ground truth of
one video.

ActivityNet ground truth (``activity_net.v1-3.min.json``; ``taxonomy`` is not read)::

    {"version": "VERSION 1.3", "taxonomy": [...],
     "database": {"<video>": {"subset": "validation", "duration": 82.73,
                              "annotations": [{"segment": [10.5, 24.25], "label": "Mowing the lawn"}]}}}

THUMOS14 temporal annotations: a folder with one ``<class>_<subset>.txt`` per class
(``BaseballPitch_val.txt``, ``BaseballPitch_test.txt``), one ``video start end`` line per
instance (``video_validation_0000051 67.5 75.9``), and ``Ambiguous_<subset>.txt``, which is no
class: its segments are those the THUMOS evaluation ignores (:func:`read_thumos14_ambiguous`).

Detection results, the ActivityNet challenge format::

    {"version": "...", "results": {"<video>": [{"label": "Mowing the lawn", "score": 0.87,
                                              "segment": [11.0, 23.5]}]}, "external_data": {}}

Ground-truth segments must have ``0 <= start <= end``.  They may have zero length and may end
past the video's duration: the official ActivityNet v1.3 file holds a ``[0, 0]`` segment and
segments past the duration, THUMOS14 some past the end of their video, and ActivityNet's
evaluator counts all of them as they are, so they are kept unchanged.  Detections must have
``start < end`` and a finite score.  Times and durations read from files must lie within
:data:`MAX_SECONDS` of 0 (a stray ``1e300`` would overflow every IoU), and labels must not be
blank.  Every other malformed input is a one-line ``ValueError`` naming the file and the video
(ActivityNet) or ``file:line`` (THUMOS14).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from deepvideo.io.atomic import atomic_write
from deepvideo.io.text import read_text

__all__ = ["MAX_SECONDS", "Segment", "VideoAnnotation", "labels_of", "read_activitynet", "read_results",
           "read_thumos14", "read_thumos14_ambiguous", "write_activitynet", "write_results"]

_AMBIGUOUS = "Ambiguous"
MAX_SECONDS = 1_000_000.0  # largest time or duration in a file (over 11 days: longer than any video)


@dataclass(frozen=True)
class Segment:
    """One action instance from ``start`` to ``end`` seconds of class ``label``; ``score`` is a
    detection's confidence (1.0 for ground truth).  ``ValueError`` for a time or score that is
    not finite, or ``end < start``."""

    start: float
    end: float
    label: str
    score: float = 1.0

    def __post_init__(self) -> None:
        if not all(math.isfinite(value) for value in (self.start, self.end, self.score)):
            raise ValueError(f"segment [{self.start}, {self.end}] score {self.score}: not finite")
        if self.end < self.start:
            raise ValueError(f"segment [{self.start}, {self.end}]: end is before start")


@dataclass
class VideoAnnotation:
    """The ground truth of one video: its ``name`` (the ActivityNet / THUMOS video id), its
    ``duration`` in seconds (None when unknown), its ``subset`` ("training", "validation",
    "val", "test", ...) and its action ``segments``."""

    name: str
    duration: float | None
    subset: str
    segments: list[Segment]


def labels_of(videos: Mapping[str, VideoAnnotation]) -> list[str]:
    """The sorted class labels of all segments of ``videos``."""
    return sorted({segment.label for video in videos.values() for segment in video.segments})


# ----------------------------------------------------------------------------- JSON helpers


def _is_number(value: Any) -> bool:
    """A finite JSON number (not a bool, nor an integer too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (a 4000-digit number stays one short line)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _load_json(path: Path, kind: str) -> Any:
    """The JSON document in ``path`` (``kind`` names what it should be, for errors)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {kind} file")
    text = read_text(path)
    if not text.strip():
        raise ValueError(f"{path}: empty file, not an {kind} file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except ValueError as err:  # an integer of more digits than Python converts
        raise ValueError(f"{path}: not readable JSON ({err})") from None


def _object_field(data: Any, key: str, path: Path, kind: str) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise ValueError(f"{path}: no {key!r} object, not an {kind} file")
    return data[key]


def _times(item: Any, where: str) -> tuple[float, float]:
    """``item["segment"]`` as two finite numbers ``(start, end)``."""
    if not isinstance(item, dict) or "segment" not in item:
        raise ValueError(f"{where}: no 'segment'")
    times = item["segment"]
    if not isinstance(times, (list, tuple)) or len(times) != 2 or not all(map(_is_number, times)):
        raise ValueError(f"{where}: segment {_shown(times)} is not two finite numbers [start, end]")
    start, end = float(times[0]), float(times[1])
    _check_magnitude(start, end, where)
    return start, end


def _check_magnitude(start: float, end: float, where: str) -> None:
    if not (abs(start) <= MAX_SECONDS and abs(end) <= MAX_SECONDS):
        raise ValueError(f"{where}: segment [{start:g}, {end:g}] has a time beyond "
                         f"MAX_SECONDS = {MAX_SECONDS:g} s")


def _label(item: dict, where: str) -> str:
    label = item.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}: no 'label'" if label is None else f"{where}: label {_shown(label)} is not a name")
    return label


def _check_ground_truth(start: float, end: float, where: str) -> None:
    if start < 0:
        raise ValueError(f"{where}: segment [{start:g}, {end:g}] starts before 0")
    if end < start:
        raise ValueError(f"{where}: segment [{start:g}, {end:g}] ends before it starts")


def _check_detection(start: float, end: float, where: str) -> None:
    if end <= start:
        raise ValueError(f"{where}: segment [{start:g}, {end:g}] does not end after it starts")


def _dump(path: str | os.PathLike, document: dict) -> Path:
    """Write ``document`` as compact JSON atomically (floats as Python's shortest exact repr)."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    return atomic_write(path, lambda fh: fh.write(text.encode()))


# ----------------------------------------------------------------------------- ActivityNet


def _read_video(name: str, entry: Any, where: str) -> VideoAnnotation:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not an object")
    subset, duration, annotations = entry.get("subset"), entry.get("duration"), entry.get("annotations")
    if not isinstance(subset, str):
        raise ValueError(f"{where}: no 'subset'")
    if duration is not None and not (_is_number(duration) and 0 <= duration <= MAX_SECONDS):
        raise ValueError(f"{where}: duration {_shown(duration)} is not a number >= 0 and <= "
                         f"MAX_SECONDS = {MAX_SECONDS:g} s")
    if not isinstance(annotations, list):
        raise ValueError(f"{where}: no 'annotations' list")
    segments = []
    for number, item in enumerate(annotations):
        at = f"{where}, annotation {number}"
        start, end = _times(item, at)
        _check_ground_truth(start, end, at)
        segments.append(Segment(start, end, _label(item, at)))
    return VideoAnnotation(name, None if duration is None else float(duration), subset, segments)


def read_activitynet(path: str | os.PathLike, subset: str | None = None) -> dict[str, VideoAnnotation]:
    """The videos of an ActivityNet ground-truth file, ``{video: VideoAnnotation}`` in file order;
    only those of ``subset`` ("training", "validation", "testing") unless it is None.

    Every video is checked, whatever ``subset``: ``ValueError("<file>: video '<id>'...: <what is
    wrong>")`` for one without ``subset`` or ``annotations``, a duration that is not a number
    >= 0 (a missing one reads as None), an annotation without a label or a ``[start, end]``
    segment with ``0 <= start <= end``; also for a file that is not JSON or has no ``database``
    and for a ``subset`` that no video has.  ``FileNotFoundError`` for a missing file.  Segments
    that end past their video's duration are kept (the official files have some) and counted
    in one warning.
    """
    path = Path(path)
    database = _object_field(_load_json(path, "ActivityNet ground-truth"), "database", path,
                             "ActivityNet ground-truth")
    videos = {name: _read_video(name, entry, f"{path}: video {name!r}") for name, entry in database.items()}
    past = [(name, s) for name, video in videos.items() if video.duration is not None
            for s in video.segments if s.end > video.duration + 1e-6]
    if past:
        name, first = past[0]
        warnings.warn(f"{path}: {len(past)} segments end past their video's duration (first: {name!r} "
                      f"[{first.start:g}, {first.end:g}] of {videos[name].duration:g} s); kept, as ActivityNet's "
                      f"evaluator keeps them", stacklevel=2)
    if subset is None:
        return videos
    chosen = {name: video for name, video in videos.items() if video.subset == subset}
    if not chosen:
        subsets = ", ".join(sorted({video.subset for video in videos.values()})) or "none"
        raise ValueError(f"{path}: no video of subset {subset!r} (subsets: {subsets})")
    return chosen


def write_activitynet(path: str | os.PathLike, videos: Mapping[str, VideoAnnotation],
                      version: str = "deepvideo") -> Path:
    """Write ``videos`` (``{name: VideoAnnotation}``, keys equal to the names) as an ActivityNet
    ground-truth file, atomically; :func:`read_activitynet` reads it back equal.  An empty
    ``taxonomy`` is written so that ActivityNet's evaluator accepts the file; a duration of
    None is left out.  ``ValueError`` naming the video for a segment :func:`read_activitynet`
    would refuse or a key that is not the video's name."""
    database = {}
    for name, video in videos.items():
        where = f"{path}: video {name!r}"
        if video.name != name:
            raise ValueError(f"{where}: the annotation is named {video.name!r}")
        for segment in video.segments:
            _check_ground_truth(segment.start, segment.end, where)
        entry: dict[str, Any] = {"subset": video.subset}
        if video.duration is not None:
            entry["duration"] = float(video.duration)
        entry["annotations"] = [{"segment": [float(s.start), float(s.end)], "label": s.label}
                                for s in video.segments]
        database[name] = entry
    return _dump(path, {"version": version, "taxonomy": [], "database": database})


# ----------------------------------------------------------------------------- THUMOS14


def _read_thumos_file(path: Path, label: str) -> list[tuple[int, str, Segment]]:
    """The ``(line number, video, segment)`` of each non-blank line of a THUMOS14 file."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 fields 'video start end', got {len(fields)}")
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise ValueError(f"{path}:{number}: start {fields[1]!r} or end {fields[2]!r} is not a number") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"{path}:{number}: start {fields[1]!r} or end {fields[2]!r} is not finite")
        _check_magnitude(start, end, f"{path}:{number}")
        _check_ground_truth(start, end, f"{path}:{number}")
        rows.append((number, fields[0], Segment(start, end, label)))
    return rows


def read_thumos14(folder: str | os.PathLike, subset: str,
                  durations: Mapping[str, float] | None = None) -> dict[str, VideoAnnotation]:
    """The THUMOS14 ground truth of ``subset`` ("val" or "test") in ``folder``: every
    ``<class>_<subset>.txt`` but ``Ambiguous_<subset>.txt`` (see :func:`read_thumos14_ambiguous`),
    as ``{video: VideoAnnotation}`` sorted by video, segments in class then line order.

    ``durations`` (``{video: seconds}``), when given, fills each video's duration and must name
    every video.  ``ValueError("<file>:<line>: ...")`` for a line that is not ``video start
    end`` with ``0 <= start <= end`` or a video without a duration; ``ValueError`` naming the
    folder when it holds no class file of ``subset``; ``FileNotFoundError`` for a missing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such THUMOS14 annotation folder")
    suffix = f"_{subset}.txt"
    files = [path for path in sorted(folder.glob(f"*{suffix}")) if path.name != f"{_AMBIGUOUS}{suffix}"]
    if not files:
        found = ", ".join(sorted({path.stem.rpartition("_")[2] for path in folder.glob("*_*.txt")})) or "none"
        raise ValueError(f"{folder}: no THUMOS14 class file <class>{suffix} (subsets found: {found})")
    segments: dict[str, list[Segment]] = {}
    for path in files:
        for number, video, segment in _read_thumos_file(path, path.name[:-len(suffix)]):
            if durations is not None and video not in durations:
                raise ValueError(f"{path}:{number}: no duration given for video {video!r}")
            segments.setdefault(video, []).append(segment)
    return {video: VideoAnnotation(video, None if durations is None else float(durations[video]), subset,
                                   segments[video]) for video in sorted(segments)}


def read_thumos14_ambiguous(folder: str | os.PathLike, subset: str) -> dict[str, list[Segment]]:
    """The segments of ``Ambiguous_<subset>.txt`` in ``folder`` (label ``"Ambiguous"``), ``{video:
    segments}`` sorted by video; empty when the file is absent.  Same line errors as
    :func:`read_thumos14`.  ActivityNet's evaluator has no notion of them; THUMOS's own ignores
    detections on them."""
    path = Path(folder) / f"{_AMBIGUOUS}_{subset}.txt"
    if not path.is_file():
        return {}
    segments: dict[str, list[Segment]] = {}
    for _, video, segment in _read_thumos_file(path, _AMBIGUOUS):
        segments.setdefault(video, []).append(segment)
    return dict(sorted(segments.items()))


# ----------------------------------------------------------------------------- results


def read_results(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """The detections of an ActivityNet result file, ``{video: [Segment, ...]}`` in file order.

    ``ValueError("<file>: video '<id>', detection <i>: ...")`` for a detection without a label,
    a finite score or a ``[start, end]`` segment with ``start < end``; ``ValueError`` naming the
    file for an empty file, one that is not JSON or has no ``results`` object, or a video whose
    detections are not a list.  ``FileNotFoundError`` for a missing file."""
    path = Path(path)
    results = _object_field(_load_json(path, "ActivityNet results"), "results", path, "ActivityNet results")
    videos = {}
    for video, detections in results.items():
        if not isinstance(detections, list):
            raise ValueError(f"{path}: video {video!r}: detections are not a list")
        segments = []
        for number, item in enumerate(detections):
            where = f"{path}: video {video!r}, detection {number}"
            start, end = _times(item, where)
            _check_detection(start, end, where)
            label, score = _label(item, where), item.get("score")
            if not _is_number(score):
                raise ValueError(f"{where}: no 'score'" if score is None else
                                 f"{where}: score {_shown(score)} is not finite")
            segments.append(Segment(start, end, label, float(score)))
        videos[video] = segments
    return videos


def write_results(path: str | os.PathLike, results: Mapping[str, Sequence[Segment]],
                  version: str = "deepvideo") -> Path:
    """Write detections ``{video: [Segment, ...]}`` as an ActivityNet result file, atomically.

    Scores and times are written exactly (the shortest decimal that reads back as the same
    float), so :func:`read_results` returns equal segments and no two scores become tied by
    rounding, which could change the ranking and so the mAP.  ``ValueError`` naming the video
    for a segment with ``end <= start``."""
    document: dict[str, Any] = {}
    for video, segments in results.items():
        detections = []
        for number, s in enumerate(segments):
            _check_detection(s.start, s.end, f"{path}: video {video!r}, detection {number}")
            detections.append({"label": s.label, "score": float(s.score), "segment": [float(s.start), float(s.end)]})
        document[video] = detections
    return _dump(path, {"version": version, "results": document, "external_data": {}})
