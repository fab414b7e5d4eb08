"""Multi-object tracking end to end: detections in, MOTChallenge rows (and an annotated
video) out.

Tracking-by-detection runs online, one frame at a time: the detector (``deepvideo.track.
detect``) gives boxes, the tracker (SORT, ByteTrack-style or DeepSORT) links them into
tracks.  :func:`track_detections` runs a tracker over precomputed detections;
:func:`track_video` decodes a video file, camera or network stream frame by frame (never
holding it whole), detects, tracks, writes the confirmed tracks as they come, and optionally
encodes a copy with every track's box and id drawn in a colour fixed by the id.  Results
are ``(N, 10)`` MOT rows ``frame, id, x, y, w, h, 1, -1, -1, -1`` (frames and ids from 1),
for :func:`deepvideo.track.motio.write_mot` and
:func:`deepvideo.track.mot_metrics.evaluate_mot`.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np
from tqdm import tqdm

from deepvideo.io.draw import draw_boxes
from deepvideo.io.encode import VideoWriter
from deepvideo.io.stream import LiveSource
from deepvideo.registry import Registry
from deepvideo.track.deepsort import AppearanceEncoder, DeepSort, load_embedding
from deepvideo.track.detect import Detector, FileDetections, make_detector
from deepvideo.track.motio import MotWriter, frames_of, write_mot
from deepvideo.track.sort import ByteTrack, Sort

__all__ = ["TRACKERS", "draw_tracks", "make_tracker", "track_detections", "track_video"]

Tracker = Union[Sort, ByteTrack, DeepSort]
TRACKERS: Registry[Callable[..., Tracker]] = Registry("tracker")
TRACKERS.register("sort")(Sort)
TRACKERS.register("bytetrack")(ByteTrack)


def _deepsort_settings(max_age: int | None, min_hits: int | None, iou_threshold: float | None
                       ) -> dict[str, Any]:
    """The common settings in DeepSORT's terms: ``min_hits`` is ``n_init``, and the smallest
    IoU of a match ``iou_threshold`` is ``1 - max_iou_distance``."""
    return {key: value for key, value in (("max_age", max_age), ("n_init", min_hits),
                                          ("max_iou_distance", None if iou_threshold is None else 1 - iou_threshold))
            if value is not None}


@TRACKERS.register("deepsort", settings=_deepsort_settings)
def _deepsort(embedder: str | os.PathLike | None = None, device: str = "cpu", **options) -> DeepSort:
    """DeepSORT with the appearance network of the ``embedder`` file (written by
    ``deepsort.save_embedding``) on ``device``; without one it associates by motion alone."""
    encoder = AppearanceEncoder(load_embedding(embedder), device) if embedder is not None else None
    return DeepSort(encoder, **options)


# the builder's options, as the registry checks and lists them: its own, then DeepSort's
_deepsort.__signature__ = inspect.signature(_deepsort).replace(parameters=[  # type: ignore[attr-defined]
    *(p for p in inspect.signature(_deepsort).parameters.values() if p.kind is not p.VAR_KEYWORD),
    *(p for p in inspect.signature(DeepSort).parameters.values() if p.name != "encoder")])


def _check_setting(name: str, value: Any, integer: bool) -> None:
    """``value`` a non-negative integer (``integer``) or a number in ``[0, 1]``."""
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not integer and (isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def make_tracker(name: str, embedder: str | os.PathLike | None = None, device: str = "cpu", *,
                 max_age: int | None = None, min_hits: int | None = None, iou_threshold: float | None = None,
                 options: Mapping[str, Any] | None = None, **kwargs: Any) -> Tracker:
    """A tracker of :data:`TRACKERS` by name: ``"sort"``, ``"bytetrack"`` or ``"deepsort"``.

    Args:
        embedder: DeepSORT's appearance network file, run on ``device`` (only DeepSORT takes one).
        max_age: frames a track survives unmatched (default: the tracker's).
        min_hits: matches before a track is reported (DeepSORT's ``n_init``).
        iou_threshold: smallest IoU of a match, in ``[0, 1]`` (DeepSORT's
            ``1 - max_iou_distance``).
        kwargs, options: any other argument of the tracker (``options``, a mapping, e.g.
            parsed from a command line; given last, these win over the arguments above).
            ``max_age``, ``min_hits`` and ``iou_threshold`` among them are translated too.

    Raises ``ValueError`` for an unknown name (naming the closest), an argument the tracker
    does not take (listing those it does), a setting out of range or a value of the wrong
    type (naming the argument).
    """
    translate = TRACKERS.info(name).get("settings")  # first: an unknown name is the first error
    extra = {**kwargs, **(options or {})}
    common = {"max_age": max_age, "min_hits": min_hits, "iou_threshold": iou_threshold}
    for key in common:
        common[key] = extra.pop(key, common[key])
        if common[key] is not None:
            _check_setting(key, common[key], integer=key != "iou_threshold")
    settings = (translate(**common) if translate is not None else
                {key: value for key, value in common.items() if value is not None})
    if embedder is not None:
        settings.update(embedder=embedder, device=device)
    settings.update(extra)
    return TRACKERS.build(name, **settings)


def _rows(number: int, tracks: np.ndarray) -> np.ndarray:
    """Tracker output ``(K, 5)`` ``x, y, w, h, id`` of frame ``number`` -> MOT rows ``(K, 10)``."""
    rows = np.full((len(tracks), 10), -1.0)
    rows[:, 0], rows[:, 1], rows[:, 2:6], rows[:, 6] = number, tracks[:, 4], tracks[:, :4], 1
    return rows


def _idle(tracker: Tracker) -> bool:
    """Whether a frame without detections would change nothing of ``tracker`` but SORT's frame
    count: a SORT, ByteTrack or DeepSORT tracker without a live track."""
    return isinstance(tracker, (Sort, DeepSort)) and not tracker.tracks


def track_detections(dets_by_frame: Mapping[int, np.ndarray] | np.ndarray, tracker: str | Tracker = "sort",
                     num_frames: int | None = None, progress: bool = False) -> np.ndarray:
    """Run a tracker over precomputed detections (no frames: DeepSORT then uses motion only).

    Args:
        dets_by_frame: ``{frame number: MOT rows (M, >=7)}`` (``motio.frames_of`` of a
            ``det.txt``), or the ``(N, >=7)`` rows themselves.
        tracker: a name of ``TRACKERS`` (default settings) or a tracker object.
        num_frames: frames ``1..num_frames`` are run (default: up to the last with a detection);
            detections on other frames are left out.

    The rows are those of running every frame, but a frame without detections is run only
    while the tracker has a live track (tracks die ``max_age`` frames after their last match):
    a SORT, ByteTrack or DeepSORT tracker without one jumps to the next frame with detections
    (SORT's frame count moved on as if it had run them), so a lone detection at frame 10**8
    costs what one at frame 3 does.  Any other tracker object is run frame by frame.

    Returns the tracks as ``(N, 10)`` MOT rows.
    """
    if not isinstance(dets_by_frame, Mapping):
        dets_by_frame = frames_of(np.asarray(dets_by_frame, np.float64))
    tracker = make_tracker(tracker) if isinstance(tracker, str) else tracker
    last = num_frames if num_frames is not None else max(dets_by_frame, default=0)
    busy = sorted(number for number in dets_by_frame if 1 <= number <= last and number == int(number))
    out: list[np.ndarray] = []
    number = 0  # the last frame run
    with tqdm(total=last, desc="track", unit="frame", disable=not progress) as bar:
        for target in [*busy, last + 1]:
            while number + 1 < target and not _idle(tracker):  # an empty frame a live track needs
                number += 1
                out.append(_rows(number, tracker.update(np.empty((0, 5)))))
            if number + 1 < target:  # the rest of the gap changes nothing but SORT's frame count
                if isinstance(tracker, Sort):
                    tracker.frame_count += target - 1 - number
                number = target - 1
            if target <= last:
                number = target
                out.append(_rows(number, tracker.update(dets_by_frame[target][:, 2:7])))
            bar.update(number - bar.n)
    return np.concatenate(out) if out else np.empty((0, 10))


def draw_tracks(frame: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """A copy of ``frame`` ``(H, W, 3)`` uint8 RGB with tracks ``(K, 5)`` ``x, y, w, h, id``
    drawn as boxes labelled by id (rows with a NaN or infinite value are skipped)."""
    tracks = np.asarray(tracks, np.float64)
    if tracks.size and (tracks.ndim != 2 or tracks.shape[1] != 5):
        raise ValueError(f"tracks must be a (K, 5) array x, y, w, h, id; got shape {tracks.shape}")
    tracks = tracks.reshape(-1, 5)
    tracks = tracks[np.isfinite(tracks).all(axis=1)]
    ids = tracks[:, 4].astype(int)
    return draw_boxes(frame, tracks[:, :4], [str(i) for i in ids], ids)


def _warn_past_end(detector: FileDetections, last: int) -> None:
    """One warning counting ``detector``'s detections on frames after ``last`` (never used)."""
    past = sorted(frame for frame, boxes in detector.by_frame.items() if frame > last and len(boxes))
    if past:
        count = sum(len(detector.by_frame[frame]) for frame in past)
        warnings.warn(f"dets: {count} detections on {len(past)} frames past the video's last frame {last} "
                      f"were ignored (first: frame {past[0]})", stacklevel=3)


def track_video(video: str | os.PathLike, tracker: str | Tracker = "sort", detector: str | Detector = "mog2",
                dets: str | os.PathLike | np.ndarray | None = None, weights: str | os.PathLike | None = None,
                embedder: str | os.PathLike | None = None, video_out: str | os.PathLike | None = None,
                progress: bool = True, device: str = "cpu", out: str | os.PathLike | None = None,
                realtime: bool = False, timeout: float = 10.0) -> np.ndarray:
    """Track the objects of a video file, camera or network stream, frame by frame.

    Args:
        video: a video file, a camera (``/dev/video0`` or ``0``) or a stream URL (anything
            :class:`deepvideo.io.stream.LiveSource` opens, ``realtime`` and ``timeout`` as there).
        tracker: ``"sort"``, ``"bytetrack"``, ``"deepsort"`` or a tracker object.
        detector: ``"mog2"`` (moving objects, static camera), ``"dets"`` (the MOT detection
            file ``dets``, frame numbers from 1; detections on frames past the end of a video
            file are ignored, counted in one warning), ``"torchvision"`` (a Faster R-CNN whose
            state_dict file is ``weights``; persons only), or a detector object
            (``detector(frame, number) -> (M, 5)``, see ``deepvideo.track.detect``).
        embedder: DeepSORT's appearance network file (``deepsort.save_embedding``).
        video_out: where to write the video with the tracks drawn (h264 ``.mp4``/``.mkv``).
        device: torch device of the torchvision detector and the appearance network.
        out: also write the tracks to this MOTChallenge file: for a camera or stream, each
            frame's confirmed tracks as they come (:class:`~deepvideo.track.motio.MotWriter`;
            Ctrl-C keeps what was written, and ``video_out`` whole); for a file, atomically
            at the end.

    Returns the tracks as ``(N, 10)`` MOT rows.  A stream that breaks off ends the tracking
    with a warning (the rows so far are returned and written).
    """
    if isinstance(detector, str):
        detector = make_detector(detector, dets=dets, weights=weights, device=device)
    tracker = make_tracker(tracker, embedder=embedder, device=device) if isinstance(tracker, str) else tracker
    found: list[np.ndarray] = []
    number = 0  # the last frame tracked
    interrupted = False
    with LiveSource(video, realtime=realtime, timeout=timeout) as source, contextlib.ExitStack() as stack:
        live = source.kind != "file"
        sink = (stack.enter_context(VideoWriter(video_out, source.fps, source.width, source.height))
                if video_out else None)
        writer = stack.enter_context(MotWriter(out)) if out and live else None
        frames = tqdm(source, total=source.num_frames, desc=f"track {Path(str(video)).name}",
                      unit="frame", disable=not progress)
        try:
            for frame in frames:
                number = frame.index + 1
                tracks = tracker.update(detector(frame.image, number), frame.image)
                found.append(_rows(number, tracks))
                if writer is not None:
                    writer.write(found[-1])
                if sink is not None:
                    sink.write(draw_tracks(frame.image, tracks))
        except KeyboardInterrupt:  # how a camera or stream is stopped: keep what was written
            if not live:
                raise
            interrupted = True
    if source.stopped:
        warnings.warn(source.stopped, stacklevel=2)
    if isinstance(detector, FileDetections) and not live:
        _warn_past_end(detector, number)
    rows = np.concatenate(found) if found else np.empty((0, 10))
    if out and not live:
        write_mot(out, rows)
    if interrupted:
        raise KeyboardInterrupt
    return rows
