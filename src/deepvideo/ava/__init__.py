"""Spatio-temporal action detection on AVA: its box CSV files, label maps and excluded
timestamps (:mod:`~deepvideo.ava.annotations`) and its official frame-mAP
(:mod:`~deepvideo.ava.metrics`).  Boxes are normalised ``(x1, y1, x2, y2)``; a keyframe is
``(video_id, timestamp)`` in whole seconds.
"""

from deepvideo.ava.annotations import (
    ActionLabel,
    AvaBox,
    AvaFile,
    format_timestamp,
    read_detections,
    read_excluded,
    read_groundtruth,
    read_label_map,
    write_detections,
    write_excluded,
    write_groundtruth,
    write_label_map,
)
from deepvideo.ava.metrics import box_iou, frame_map

__all__ = ["ActionLabel", "AvaBox", "AvaFile", "box_iou", "format_timestamp",
           "frame_map", "read_detections", "read_excluded", "read_groundtruth", "read_label_map",
           "write_detections", "write_excluded", "write_groundtruth", "write_label_map"]
