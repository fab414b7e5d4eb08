"""Video object segmentation on DAVIS: its frame and mask folders (:mod:`~deepvideo.segment.davis`)
and its official J, F and J&F metrics (:mod:`~deepvideo.segment.metrics`).  Masks are
``(T, H, W)`` uint8 object ids (0 background; for moving-object segmentation 1 = moving),
frames ``(T, H, W, 3)`` uint8 RGB."""

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

__all__ = ["BOUNDARY_THRESHOLD", "DAVIS_PALETTE", "MAX_PROPOSALS", "VOID_ID", "DavisResult", "DavisSequence",
           "ObjectScore", "boundary_f", "boundary_radius", "db_statistics", "disk", "evaluate_sequences",
           "list_sequences", "read_frames", "read_image_set", "read_mask", "read_masks", "read_sequence",
           "region_similarity", "seg2bmap", "write_frames", "write_image_set", "write_mask", "write_masks"]
