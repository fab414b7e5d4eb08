"""SORT and ByteTrack-style association: Kalman-predicted boxes matched to detections by IoU.

SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016): every track is a
constant-velocity Kalman filter on ``(cx, cy, area, aspect)`` (:class:`SortKalman`).  Each
frame the tracks are predicted, detections are assigned to predictions by the Hungarian
algorithm on the cost ``1 - IoU`` and pairs with ``IoU < iou_threshold`` are rejected;
matched tracks are corrected, unmatched detections start new tracks and tracks unmatched
for more than ``max_age`` frames are deleted.  A track is reported in a frame when it was
matched in that frame and has ``min_hits`` consecutive matches (or while the sequence is
still in its first ``min_hits`` frames), with its filtered box -- the rule and defaults
(``max_age=1, min_hits=3, iou_threshold=0.3``) of the reference ``sort.py``.  Where the
reference solves the assignment on raw ``-IoU`` (unless the pairs over the threshold are
already one-to-one), pairs under the threshold are clipped here before solving (as
DeepSORT does), which can only keep more allowed matches; on the TUD sequences the output
is the reference's to the printed precision.

ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box", ECCV 2022): the detections a score threshold would throw away still carry objects
that are occluded or blurred.  Detections are split into high (``>= high_threshold``) and
low (``>= low_threshold``) score; the high ones are matched first to every track
(confirmed, tentative and lost ones); the low ones are then matched to the confirmed tracks
left over, at a stricter IoU, and never start tracks.  Lost tracks are kept for
``max_age`` frames (ByteTrack's track buffer) so that an object reappearing after a short
occlusion keeps its identity.

Both trackers share :meth:`update(dets, frame=None) -> tracks` with DeepSORT: ``dets`` ``(N, 5)`` rows
``x, y, w, h, score`` (pixels, top-left corner) of one frame; the result ``(K, 5)`` rows
``x, y, w, h, id`` with ids counted from 1.  Call it once per frame, also for frames with
no detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from deepvideo.track.kalman import SortKalman, xysr_to_xywh, xywh_to_xysr
from deepvideo.track.mot_metrics import iou_matrix

__all__ = ["ByteTrack", "Sort", "check_detections", "linear_assignment"]


def linear_assignment(cost: np.ndarray, max_cost: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching of the rows and columns of ``cost`` ``(N, M)`` (Hungarian
    algorithm, scipy's ``linear_sum_assignment``) where pairs costing more than
    ``max_cost`` are not allowed.

    Disallowed pairs are clipped to ``max_cost + 1e-5`` before solving and dropped after,
    as in the reference DeepSORT, so a disallowed pair never displaces an allowed one.
    Returns ``matches`` ``(K, 2)`` (row, column) and the unmatched rows and columns.
    """
    cost = np.asarray(cost, np.float64)
    rows, cols = np.arange(cost.shape[0]), np.arange(cost.shape[1])
    if cost.size == 0:
        return np.empty((0, 2), np.int64), rows, cols
    r, c = linear_sum_assignment(np.minimum(cost, max_cost + 1e-5))
    keep = cost[r, c] <= max_cost
    matches = np.stack([r[keep], c[keep]], axis=1)
    return (matches, np.setdiff1d(rows, matches[:, 0]), np.setdiff1d(cols, matches[:, 1]))


def check_detections(dets: np.ndarray) -> np.ndarray:
    """``dets`` as a float64 ``(N, 5)`` array ``x, y, w, h, score``; a clear error otherwise.

    Rows without area (``w <= 0`` or ``h <= 0``, e.g. a box clipped to nothing at the image
    border) are dropped: they overlap nothing, and as a track they would have a NaN box
    (SORT's aspect ``w / h``) that the tracker would report.  NaN or infinite values are
    an error.
    """
    dets = np.asarray(dets, np.float64)
    if dets.size == 0:
        return np.empty((0, 5))
    if dets.ndim != 2 or dets.shape[1] < 5:
        raise ValueError(f"dets must be an (N, 5) array x, y, w, h, score; got shape {dets.shape}")
    dets = dets[:, :5]
    finite = np.isfinite(dets).all(axis=1)
    if not finite.all():
        raise ValueError(f"dets: {int((~finite).sum())} of {len(dets)} rows hold NaN or infinite values "
                         f"(first: row {int(np.argmin(finite))})")
    return dets[(dets[:, 2] > 0) & (dets[:, 3] > 0)]


@dataclass
class _Track:
    """One SORT track: Kalman state and counters (as the reference's KalmanBoxTracker)."""

    id: int
    mean: np.ndarray  # (7,)
    cov: np.ndarray  # (7, 7)
    hits: int = 0  # matches since the track started (its first detection not counted)
    hit_streak: int = 0
    time_since_update: int = 0


class Sort:
    """SORT tracker (defaults: the reference settings of the paper).

    Args:
        max_age: frames a track survives without a match.
        min_hits: consecutive matches (after its first detection) before a track is reported.
        iou_threshold: smallest IoU of an accepted detection-to-track match.
    """

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3) -> None:
        self.max_age, self.min_hits, self.iou_threshold = max_age, min_hits, iou_threshold
        self.kf = SortKalman()
        self.tracks: list[_Track] = []
        self.frame_count = 0
        self._next_id = 1

    def _predict(self) -> np.ndarray:
        """Advance every track one frame; drop those whose box became invalid.  Returns
        the predicted boxes ``(T, 4)``."""
        if not self.tracks:
            return np.empty((0, 4))
        mean, cov = self.kf.predict(np.stack([t.mean for t in self.tracks]),
                                    np.stack([t.cov for t in self.tracks]))
        for t, m, c in zip(self.tracks, mean, cov):
            if t.time_since_update > 0:
                t.hit_streak = 0
            t.mean, t.cov, t.time_since_update = m, c, t.time_since_update + 1
        boxes = xysr_to_xywh(mean)
        valid = ~np.isnan(boxes).any(axis=1)
        self.tracks = [t for t, ok in zip(self.tracks, valid) if ok]
        return boxes[valid]

    def _associate(self, tracks: list[int], boxes: np.ndarray, dets: np.ndarray,
                   iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Match ``dets`` rows to the tracks at positions ``tracks`` (predicted ``boxes``
        ``(T, 4)`` in the same order) by IoU; matched tracks are corrected.  Returns the
        positions of the matched tracks and the unmatched detection rows."""
        matches, _, free = linear_assignment(1 - iou_matrix(boxes, dets[:, :4]), 1 - iou_threshold)
        positions = np.asarray(tracks, np.int64)[matches[:, 0]]
        if len(matches):
            picked = [self.tracks[i] for i in positions]
            mean, cov = self.kf.update(np.stack([t.mean for t in picked]),
                                       np.stack([t.cov for t in picked]),
                                       xywh_to_xysr(dets[matches[:, 1], :4]))
            for t, m, c in zip(picked, mean, cov):
                t.mean, t.cov = m, c
                t.time_since_update = 0
                t.hits += 1
                t.hit_streak += 1
        return positions, free

    def _start(self, dets: np.ndarray) -> None:
        """New tracks from detection rows ``dets`` ``(N, >=4)``."""
        mean, cov = self.kf.initiate(xywh_to_xysr(dets[:, :4]))
        for m, c in zip(mean, cov):
            self.tracks.append(_Track(self._next_id, m, c))
            self._next_id += 1

    def _report(self, track: _Track) -> bool:
        return track.time_since_update < 1 and (track.hit_streak >= self.min_hits
                                                or self.frame_count <= self.min_hits)

    def _output(self) -> np.ndarray:
        """Rows ``x, y, w, h, id`` of the reported tracks, then delete expired tracks."""
        shown = [t for t in self.tracks if self._report(t)]
        self.tracks = [t for t in self.tracks if t.time_since_update <= self.max_age]
        if not shown:
            return np.empty((0, 5))
        return np.column_stack([xysr_to_xywh(np.stack([t.mean for t in shown])), [t.id for t in shown]])

    def update(self, dets: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """One frame: ``dets`` ``(N, 5)`` ``x, y, w, h, score`` -> tracks ``(K, 5)``
        ``x, y, w, h, id``.  ``frame`` is not used (no appearance model)."""
        dets = check_detections(dets)
        self.frame_count += 1
        boxes = self._predict()
        _, free = self._associate(list(range(len(self.tracks))), boxes, dets, self.iou_threshold)
        self._start(dets[free])
        return self._output()


class ByteTrack(Sort):
    """ByteTrack-style two-stage association on SORT's tracks.

    Args:
        high_threshold: detections scoring at least this are matched first.
        low_threshold: detections between this and ``high_threshold`` are matched only to
            the confirmed tracks left after the first stage; lower ones are dropped.
        new_track_threshold: smallest score of a detection that starts a track.
        iou_threshold: smallest IoU of a first-stage match (ByteTrack: 0.2).
        low_iou_threshold: smallest IoU of a second-stage match (ByteTrack: 0.5).
        max_age: frames a confirmed track stays lost before it is deleted (track buffer).
        min_hits: matches after its first detection that confirm a track (ByteTrack: 1); a
            tentative track that misses a frame is deleted.
    """

    def __init__(self, high_threshold: float = 0.6, low_threshold: float = 0.1,
                 new_track_threshold: float = 0.7, iou_threshold: float = 0.2,
                 low_iou_threshold: float = 0.5, max_age: int = 30, min_hits: int = 1) -> None:
        super().__init__(max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold)
        self.high_threshold, self.low_threshold = high_threshold, low_threshold
        self.new_track_threshold, self.low_iou_threshold = new_track_threshold, low_iou_threshold

    def _confirmed(self, track: _Track) -> bool:
        return track.hits >= self.min_hits

    def _start(self, dets: np.ndarray) -> None:
        """New tracks; as in ByteTrack those of the first frame are confirmed at once."""
        first = len(self.tracks)
        super()._start(dets)
        if self.frame_count == 1:
            for track in self.tracks[first:]:
                track.hits = self.min_hits

    def update(self, dets: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """One frame: ``dets`` ``(N, 5)`` ``x, y, w, h, score`` -> tracks ``(K, 5)``
        ``x, y, w, h, id``.  ``frame`` is not used (no appearance model)."""
        dets = check_detections(dets)
        self.frame_count += 1
        high = dets[dets[:, 4] >= self.high_threshold]
        low = dets[(dets[:, 4] >= self.low_threshold) & (dets[:, 4] < self.high_threshold)]
        boxes = self._predict()
        everyone = list(range(len(self.tracks)))
        matched, free = self._associate(everyone, boxes, high, self.iou_threshold)
        left = [i for i in np.setdiff1d(everyone, matched)
                if self._confirmed(self.tracks[i]) and self.tracks[i].time_since_update == 1]
        self._associate(left, boxes[left], low, self.low_iou_threshold)
        # a tentative track missing a frame is a false start
        self.tracks = [t for t in self.tracks
                       if self._confirmed(t) or t.time_since_update == 0]
        new = high[free]
        self._start(new[new[:, 4] >= self.new_track_threshold])
        return self._output()

    def _report(self, track: _Track) -> bool:
        return track.time_since_update == 0 and self._confirmed(track)
