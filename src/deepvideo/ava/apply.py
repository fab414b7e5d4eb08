"""Actions of the actors in one video: a keyframe every second, the actors' boxes from a
file or a detector, a trained model's action scores per box.

Keyframes are the whole seconds ``1, 2, ...`` before the video's end (AVA labels one keyframe
per second), plus the time offset; the clip centred on one repeats the edge frames where it
reaches past either end, as in training and ``ava eval``.  Boxes come from
an AVA CSV (ground truth or any person detector's output: AVA's evaluation protocols), or from
a detector run on every frame (``detector(frame, number) -> (M, 5) x, y, w, h, score``
in pixels, as those of :data:`deepvideo.track.detect.DETECTORS`) (a background model
such as ``mog2`` needs the frames before the keyframe too).
"""

from __future__ import annotations

import csv
import os
import warnings
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from deepvideo.ava.annotations import AvaBox, read_detections, read_groundtruth
from deepvideo.ava.train import action_detections, clip_at, clip_transform, load_ava_model, score_boxes
from deepvideo.io import open_video
from deepvideo.io.draw import draw_boxes
from deepvideo.io.encode import VideoWriter

__all__ = ["Detector", "boxes_from_csv", "detect_actions"]

Detector = Callable[[np.ndarray, int], np.ndarray]  # (frame, number from 1) -> (M, 5) x, y, w, h, score


def boxes_from_csv(path: str | os.PathLike, video_id: str, min_score: float = 0.0) -> dict[int, np.ndarray]:
    """``{timestamp: boxes (N, 4)}`` normalised, the distinct boxes of ``video_id`` in an AVA CSV:
    ground truth (``...,action_id[,person_id]``), or a detector's (``...,action_id,score``, as
    AVA's person-box files) of which the rows scored ``>= min_score`` are kept; the actions are
    ignored.  The first line decides which (an 8th field that is not an integer is a score);
    bad lines are skipped with a warning."""
    scored = _has_scores(Path(path))
    rows = (read_detections if scored else read_groundtruth)(path, skip_bad=True)
    found: dict[int, list[tuple[float, ...]]] = defaultdict(list)
    for box in rows:
        if box.video_id == video_id and (not scored or box.score >= min_score) and box.box not in found[box.timestamp]:
            found[box.timestamp].append(box.box)
    if not found:
        raise ValueError(f"{path}: no box of video {video_id!r}")
    return {t: np.array(b, np.float32) for t, b in found.items()}


def _has_scores(path: Path) -> bool:
    """Whether the first line of the AVA CSV ``path`` ends with a score (8 fields, the last not
    an integer) rather than a person id."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for fields in csv.reader(f):
            if any(field.strip() for field in fields):
                return len(fields) == 8 and not fields[7].strip().lstrip("+-").isdigit()
    return False


def _normalised(rows: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``x, y, w, h, *`` (pixels) as normalised ``x1, y1, x2, y2`` clipped to the frame,
    and which rows are kept (those with an area left)."""
    height, width = frame.shape[:2]
    boxes = np.stack([rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]], axis=1)
    boxes = np.clip(boxes / [width, height, width, height], 0, 1).astype(np.float32)
    kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[kept], kept


def detect_actions(video: str | os.PathLike, checkpoint: str | os.PathLike, boxes: str | os.PathLike | None = None,
                   detector: Detector | None = None, tracker: Any = None, min_box_score: float = 0.0,
                   min_score: float = 0.0, video_out: str | os.PathLike | None = None,
                   device: torch.device | str = "cpu", progress: bool = False,
                   time_offset: int | None = None) -> list[AvaBox]:
    """The AVA detections (every box with its score for every class of the model, ``>=
    min_score``) of ``video`` by the model of ``checkpoint``, the boxes from the AVA CSV
    ``boxes`` (rows of the video's file stem) or from ``detector`` (rows scored ``>=
    min_box_score``).  With a ``tracker`` (``tracker.update(dets (M, 5), frame) -> (K, 5) x, y,
    w, h, id``, as those of :data:`deepvideo.track.mot.TRACKERS`) fed the detector's boxes of
    every frame, the actors are its tracks and keep their id across keyframes (the rows'
    ``person_id``).  ``video_out`` also writes the video with each keyframe's boxes and best
    action drawn over the second around it.  Timestamps (read and written) are the video's
    seconds plus ``time_offset`` (default: the checkpoint's; AVA's videos start at 900)."""
    if (boxes is None) == (detector is None):
        raise ValueError("boxes: give an AVA CSV of boxes or a detector, one of the two")
    if tracker is not None and detector is None:
        raise ValueError("tracker: needs a detector (it tracks the detector's boxes)")
    path = Path(video)
    model, info = load_ava_model(checkpoint, device)
    names = dict(zip(info["classes"], info["names"]))
    offset = info["time_offset"] if time_offset is None else time_offset
    transform = clip_transform(info["size"])
    given = boxes_from_csv(boxes, path.stem, min_box_score) if boxes is not None else {}
    results: list[AvaBox] = []
    with open_video(path) as reader, ExitStack() as stack:
        # a keyframe every whole second before the end; its clip repeats edge frames as in training
        stamps = [t for t in range(1, int(reader.duration) + 1) if t < reader.duration]
        frames_at = {reader.index_at(t): t + offset for t in stamps}
        if boxes is not None and (unmatched := sorted(set(given) - set(frames_at.values()))):
            span = f"{offset + 1}..{offset + len(stamps)} s" if stamps else "none"
            warnings.warn(f"{boxes}: {len(unmatched)} timestamps of {path.stem} have no keyframe in the video "
                          f"(first: {unmatched[0]} s; keyframes: {span}, time offset {offset})", stacklevel=2)
        drawn: dict[int, tuple[np.ndarray, list[str], list[int]]] = {}
        last = max(frames_at, default=-1)
        if detector is not None:  # every frame in order up to the last keyframe (one decode, no seeks)
            sequential = stack.enter_context(open_video(path))
            frames: Any = ((n, f) for n, f in zip(range(last + 1), sequential))
        else:
            frames = ((n, None) for n in sorted(frames_at))
        total = last + 1 if detector is not None else len(frames_at)
        for number, frame in tqdm(frames, total=total, desc=f"ava {path.name}", unit="frame", disable=not progress):
            actors = ids = None
            if detector is not None:
                rows = np.asarray(detector(frame, number + 1), np.float32).reshape(-1, 5)
                rows = rows[rows[:, 4] >= min_box_score]
                if tracker is not None:
                    rows = np.asarray(tracker.update(rows, frame), np.float32).reshape(-1, 5)
                actors, kept = _normalised(rows, frame)
                ids = rows[kept, 4].astype(int).tolist() if tracker is not None else None
            if number not in frames_at:
                continue
            stamp = frames_at[number]
            if actors is None:
                actors = given.get(stamp, np.zeros((0, 4), np.float32))
            clip = transform(clip_at(reader, stamp - offset, model.clip_len)).to(device)
            scores = score_boxes(model, clip, torch.from_numpy(actors).to(device)).cpu().numpy()
            rows = action_detections(path.stem, stamp, actors, scores, info["classes"], ids)
            results += [row for row in rows if row.score >= min_score]
            best = scores.argmax(axis=1) if len(scores) else []
            labels = [f"{names[info['classes'][b]]} {s[b]:.2f}" for b, s in zip(best, scores)]
            drawn[stamp - offset] = (actors, labels, ids if ids is not None else list(range(len(actors))))
        if video_out is not None:
            _write_overlay(reader, drawn, video_out)
    return results


def _write_overlay(reader: Any, drawn: dict[int, tuple[np.ndarray, list[str], list[int]]],
                   video_out: str | os.PathLike) -> None:
    """The video with each keyframe's boxes and labels drawn over the second around it."""
    scale = np.array([reader.width, reader.height, reader.width, reader.height], np.float32)
    with VideoWriter(video_out, reader.fps, reader.width, reader.height) as writer:
        for number, frame in enumerate(reader):
            stamp = int(round(number / reader.fps))
            if stamp in drawn:
                boxes, labels, keys = drawn[stamp]
                pixels = boxes * scale
                frame = draw_boxes(frame, np.concatenate([pixels[:, :2], pixels[:, 2:] - pixels[:, :2]], axis=1),
                                   labels, keys)
            writer.write(frame)
