"""Optical flow: classical (OpenCV) and learned (RAFT; TinyFlow, a compact PWC-Net trained here
on synthetic pairs) estimation, ``.flo`` and quantised flow files, accuracy metrics, the
Middlebury colour coding, warping, and flow over videos.

Flow fields are ``(2, H, W)`` float32 ``(dx, dy)`` in pixels from the first frame to the
second; a clip's are ``(T-1, 2, H, W)``.  Frames are ``(H, W, 3)`` uint8 RGB as decoded.
:mod:`deepvideo.flow.learned` (torchvision's RAFT) is imported on first use.
"""

from deepvideo.flow.classical import FLOW_METHODS, clip_flow, estimate_flow, flow_estimator
from deepvideo.flow.flowio import (
                                   DEFAULT_BOUND,
                                   dequantize_flow,
                                   flow_file_info,
                                   load_flow,
                                   quantize_flow,
                                   read_flo,
                                   save_flow,
                                   write_flo,
)
from deepvideo.flow.metrics import angular_error, angular_error_map, endpoint_error, endpoint_error_map
from deepvideo.flow.synthetic import PairConfig, synthetic_pairs
from deepvideo.flow.tinyflow import TinyFlow, load_tinyflow
from deepvideo.flow.video import (
                                   ALL_METHODS,
                                   ExtractSummary,
                                   extract_flow_dataset,
                                   flow_target,
                                   flow_video,
                                   make_estimator,
                                   video_flows,
)
from deepvideo.flow.viz import COLOR_WHEEL, flow_to_color
from deepvideo.flow.warp import backward_warp, photometric_error

__all__ = ["ALL_METHODS", "COLOR_WHEEL", "DEFAULT_BOUND", "ExtractSummary", "FLOW_METHODS", "PairConfig",
           "TinyFlow", "angular_error", "angular_error_map", "backward_warp", "clip_flow", "dequantize_flow",
           "endpoint_error", "endpoint_error_map", "estimate_flow", "extract_flow_dataset", "flow_estimator",
           "flow_file_info", "flow_target", "flow_to_color", "flow_video", "load_flow", "load_tinyflow",
           "make_estimator", "photometric_error", "quantize_flow", "read_flo", "save_flow", "synthetic_pairs",
           "video_flows", "write_flo"]
