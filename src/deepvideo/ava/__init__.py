"""Spatio-temporal action detection on AVA: its box CSV files, label maps and excluded
timestamps (:mod:`~deepvideo.ava.annotations`), its official frame-mAP
(:mod:`~deepvideo.ava.metrics`), the built-in benchmark (:mod:`~deepvideo.ava.synthetic`), the
RoI action heads (:mod:`~deepvideo.ava.model`), training and evaluation through the engine
(:mod:`~deepvideo.ava.train`) and running on a video (:mod:`~deepvideo.ava.apply`).
Boxes are normalised ``(x1, y1, x2, y2)``; a keyframe is
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
from deepvideo.ava.apply import detect_actions
from deepvideo.ava.metrics import box_iou, frame_map
from deepvideo.ava.model import AVA_MODELS, build_ava_model
from deepvideo.ava.synthetic import AvaSynthConfig, make_ava_dataset
from deepvideo.ava.train import evaluate_ava, load_ava_model, train_ava

__all__ = ["AVA_MODELS", "ActionLabel", "AvaBox", "AvaFile", "AvaSynthConfig", "box_iou", "build_ava_model",
           "detect_actions", "evaluate_ava", "format_timestamp", "frame_map", "load_ava_model", "make_ava_dataset",
           "train_ava", "read_detections", "read_excluded", "read_groundtruth", "read_label_map",
           "write_detections", "write_excluded", "write_groundtruth", "write_label_map"]
