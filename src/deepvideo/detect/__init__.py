"""Temporal action detection: ActivityNet / THUMOS14 annotations and results
(:mod:`~deepvideo.detect.annotations`), ActivityNet's detection mAP (:mod:`~deepvideo.detect.metrics`),
the detectors (:mod:`~deepvideo.detect.models`), training and evaluation on cached features
(:mod:`~deepvideo.detect.train`) and detection in one long video (:mod:`~deepvideo.detect.apply`).
Times are seconds; a segment is ``[start, end]``."""

from deepvideo.detect.annotations import (
    Segment,
    VideoAnnotation,
    labels_of,
    read_activitynet,
    read_results,
    read_thumos14,
    read_thumos14_ambiguous,
    write_activitynet,
    write_results,
)
from deepvideo.detect.metrics import (
    ANET_THRESHOLDS,
    THUMOS_THRESHOLDS,
    DetectionMap,
    average_precision_detection,
    detection_map,
    segment_iou,
    segment_iou_matrix,
)
from deepvideo.detect.models import DETECTORS, TemporalDetector, build_detector, nms_1d
from deepvideo.detect.train import (
    DETECT_TRAINING,
    DetectTask,
    FeatureVideos,
    Timeline,
    evaluate_detector,
    feature_files,
    load_detector,
    train_detector,
)

__all__ = ["ANET_THRESHOLDS", "DETECTORS", "DETECT_TRAINING", "THUMOS_THRESHOLDS", "DetectTask", "DetectionMap",
           "FeatureVideos", "Segment", "TemporalDetector", "Timeline", "VideoAnnotation", "build_detector",
           "evaluate_detector", "feature_files", "load_detector", "nms_1d", "train_detector",
           "average_precision_detection", "detection_map", "labels_of",
           "read_activitynet", "read_results", "read_thumos14", "read_thumos14_ambiguous", "segment_iou",
           "segment_iou_matrix", "write_activitynet", "write_results"]
