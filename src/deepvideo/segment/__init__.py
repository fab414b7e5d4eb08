"""Video object segmentation on DAVIS: its frame and mask folders (:mod:`~deepvideo.segment.davis`),
its official J, F and J&F metrics (:mod:`~deepvideo.segment.metrics`), and moving-object
segmentation: the built-in set (:mod:`~deepvideo.segment.synthetic`), U-Nets with and without a
transformer bottleneck (:mod:`~deepvideo.segment.models`) trained on the engine
(:mod:`~deepvideo.segment.train`), the flow-threshold baseline (:mod:`~deepvideo.segment.baseline`)
and segmenting a video (:mod:`~deepvideo.segment.apply`).  Masks are
``(T, H, W)`` uint8 object ids (0 background; for moving-object segmentation 1 = moving),
frames ``(T, H, W, 3)`` uint8 RGB."""

from deepvideo.segment.baseline import (
    FLOW_THRESHOLD,
    fit_flow_threshold,
    flow_threshold_masks,
    frame_flows,
    residual_speed,
)
from deepvideo.segment.davis import (
    DAVIS_PALETTE,
    VOID_ID,
    DavisSequence,
    list_sequences,
    read_frames,
    read_image_set,
    read_mask,
    read_masks,
    read_sequence,
    write_frames,
    write_image_set,
    write_mask,
    write_masks,
)
from deepvideo.segment.metrics import (
    BOUNDARY_THRESHOLD,
    MAX_PROPOSALS,
    DavisResult,
    ObjectScore,
    boundary_f,
    boundary_radius,
    db_statistics,
    disk,
    evaluate_sequences,
    region_similarity,
    seg2bmap,
)
from deepvideo.segment.models import SEGMENTERS, SegmentationUNet, build_segmenter
from deepvideo.segment.synthetic import SEGMENT_SCENES, make_segment_dataset, moving_masks, segment_scene

__all__ = ["BOUNDARY_THRESHOLD", "DAVIS_PALETTE", "MAX_PROPOSALS", "VOID_ID", "DavisResult", "DavisSequence",
           "ObjectScore", "boundary_f", "boundary_radius", "db_statistics", "disk", "evaluate_sequences",
           "list_sequences", "read_frames", "read_image_set", "read_mask", "read_masks", "read_sequence",
           "region_similarity", "seg2bmap", "write_frames", "write_image_set", "write_mask", "write_masks",
           "FLOW_THRESHOLD", "SEGMENTERS", "SEGMENT_SCENES", "SegmentationUNet", "build_segmenter",
           "fit_flow_threshold", "flow_threshold_masks", "frame_flows", "make_segment_dataset", "moving_masks",
           "residual_speed", "segment_scene"]
