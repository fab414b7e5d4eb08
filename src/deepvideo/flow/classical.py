"""Classical dense optical flow through OpenCV; the methods of :data:`FLOW_METHODS`:

* ``farneback``: Farneback, "Two-frame motion estimation based on polynomial expansion"
  (SCIA 2003) -- each neighbourhood fitted by a quadratic polynomial, displacement solved
  from how the polynomial moves, coarse to fine over a 3-level pyramid.
* ``dis``: Kroeger et al., "Fast Optical Flow using Dense Inverse Search" (ECCV 2016) --
  inverse-compositional patch search densified and refined variationally; OpenCV's
  ``FAST`` preset.
* ``tvl1``: Zach, Pock & Bischof, "A Duality Based Approach for Realtime TV-L1 Optical Flow"
  (DAGM 2007), the flow of the two-stream papers.  It lives in ``cv2.optflow``, which only
  the opencv-contrib wheels have; without it the method fails with a one-line error.

Frames are ``(H, W, 3)`` uint8 RGB as decoded; methods see them in grayscale.  A flow field
is ``(2, H, W)`` float32 ``(dx, dy)`` in pixels, from the first frame to the second.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from deepvideo.registry import Registry

__all__ = ["FLOW_METHODS", "flow_estimator", "estimate_flow", "clip_flow"]

# (frame1, frame2) grayscale uint8 (H, W) -> (H, W, 2) float32 flow
_GrayFlow = Callable[[np.ndarray, np.ndarray], np.ndarray]
FLOW_METHODS: Registry[Callable[[], _GrayFlow]] = Registry("flow method")


@FLOW_METHODS.register("farneback")
def _farneback() -> _GrayFlow:
    # OpenCV's sample settings: pyramid scale 0.5, 3 levels, 15 px window, 3 iterations,
    # polynomial neighbourhood 5 with sigma 1.2.
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _per_size(create: Callable[[], cv2.DenseOpticalFlow]) -> _GrayFlow:
    """An OpenCV flow object, rebuilt whenever the frame size changes: in OpenCV 5.0 a DIS object
    reused on frames of another size keeps its pyramid set up for the first size, and gives
    other flow (up to 20 px off on a 340x256 video) at another speed than a fresh one."""
    made: dict[tuple[int, int], cv2.DenseOpticalFlow] = {}

    def calc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.shape not in made:
            made.clear()
            made[a.shape] = create()
        return made[a.shape].calc(a, b, None)

    return calc


@FLOW_METHODS.register("dis")
def _dis() -> _GrayFlow:
    return _per_size(lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST))


@FLOW_METHODS.register("tvl1")
def _tvl1() -> _GrayFlow:
    if not hasattr(cv2, "optflow"):
        raise ValueError(f"flow method 'tvl1' needs cv2.optflow from opencv-contrib-python-headless; "
                         f"the installed OpenCV {cv2.__version__} lacks it (use 'farneback' or 'dis')")
    return _per_size(cv2.optflow.DualTVL1OpticalFlow_create)


def _gray(frame: np.ndarray, name: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def frame_batches(frame1: np.ndarray, frame2: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two equal ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 RGB inputs of a learned estimator as
    ``(B, H, W, 3)`` batches, and whether they were single frames; a clear error otherwise."""
    frame1, frame2 = np.asarray(frame1), np.asarray(frame2)
    single = frame1.ndim == 3
    if single:
        frame1, frame2 = frame1[None], frame2[None]
    if (frame1.shape != frame2.shape or frame1.ndim != 4 or frame1.shape[-1] != 3
            or frame1.dtype != np.uint8 or frame2.dtype != np.uint8):
        raise ValueError(f"{name} needs two equal (H, W, 3) or (B, H, W, 3) uint8 RGB arrays, "
                         f"got {frame1.shape} {frame1.dtype} and {frame2.shape} {frame2.dtype}")
    return frame1, frame2, single


def flow_estimator(method: str = "farneback") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``(frame1, frame2) -> (2, H, W)`` float32 flow for one of ``FLOW_METHODS``.

    Frames are ``(H, W, 3)`` uint8 RGB.  The OpenCV object behind it is built once per frame
    size, so reuse the function over a video.  Raises ``ValueError`` for an unknown or unavailable method.
    """
    flow = FLOW_METHODS.build(method)

    def estimate(frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        a, b = _gray(frame1, "frame1"), _gray(frame2, "frame2")
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape[::-1]} and {b.shape[::-1]}")
        return np.ascontiguousarray(flow(a, b).transpose(2, 0, 1), dtype=np.float32)

    return estimate


def estimate_flow(frame1: np.ndarray, frame2: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow from ``frame1`` to ``frame2`` (``(H, W, 3)`` uint8 RGB): ``(2, H, W)`` float32."""
    return flow_estimator(method)(frame1, frame2)


def clip_flow(frames: np.ndarray, method: str = "farneback", progress: bool = False) -> np.ndarray:
    """Flow between consecutive frames of ``frames`` ``(T, H, W, 3)`` uint8: ``(T-1, 2, H, W)`` float32."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) < 2:
        raise ValueError(f"clip_flow needs (T, H, W, 3) frames with T >= 2, got {frames.shape}")
    estimate = flow_estimator(method)
    pairs = tqdm(range(len(frames) - 1), desc=f"flow ({method})", unit="pair", disable=not progress)
    return np.stack([estimate(frames[t], frames[t + 1]) for t in pairs])
