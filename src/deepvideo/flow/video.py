"""Flow over whole videos: a side-by-side visualisation, and flow extraction for a dataset.

Both read every frame in order (from any source :func:`deepvideo.io.open_video` opens: a
video file, a frame folder, a packed video) and estimate flow between each frame and the
next (``T`` frames give ``T - 1`` flow fields, flow ``t`` running from frame ``t`` to
``t + 1``), with any method of :data:`ALL_METHODS`: the classical ones of ``FLOW_METHODS``,
and ``"raft"`` and ``"tinyflow"`` from local weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from deepvideo.flow.classical import FLOW_METHODS, flow_estimator
from deepvideo.flow.flowio import DEFAULT_BOUND, check_bound, flow_file_info, quantize_flow, save_flow
from deepvideo.flow.viz import flow_to_color
from deepvideo.io import VideoDecodeError, open_video, write_video
from deepvideo.io.jobs import JobSummary, output_path, plan_outputs, run_jobs
from deepvideo.io.open import AnyReader
from deepvideo.registry import Registry

__all__ = ["ALL_METHODS", "ExtractSummary", "make_estimator", "video_flows", "flow_video",
           "flow_target", "extract_flow_dataset"]

Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (weights, device) -> a factory giving each worker its own estimator (one network shared)
MethodBuilder = Callable[..., Callable[[], Estimator]]
ALL_METHODS: Registry[MethodBuilder] = Registry("flow method")


def _classical(method: str) -> MethodBuilder:
    """The builder of ``method`` of ``FLOW_METHODS`` (no weights)."""
    def build(weights: str | os.PathLike | None, device: str | None) -> Callable[[], Estimator]:
        flow_estimator(method)  # raises now for an unavailable method
        return lambda: flow_estimator(method)
    return build


for _method in FLOW_METHODS:
    ALL_METHODS.register(_method)(_classical(_method))


def _learned(name: str, load: Callable[[], Callable[..., Estimator]], wanted: str
             ) -> Callable[[str | os.PathLike | None, str | None], Callable[[], Estimator]]:
    """The builder of a learned method: ``load()`` gives its loader (imported only then),
    which reads ``weights``; one network serves every estimator."""

    def build(weights: str | os.PathLike | None, device: str | None) -> Callable[[], Estimator]:
        if weights is None:
            raise ValueError(f"flow method {name!r} needs weights: {wanted}")
        network = load()(weights, device=device)
        return lambda: network

    return build


def _load_raft() -> Callable[..., Estimator]:
    from deepvideo.flow.learned import load_raft

    return load_raft


def _load_tinyflow() -> Callable[..., Estimator]:
    from deepvideo.flow.tinyflow import load_tinyflow

    return load_tinyflow


ALL_METHODS.register("raft")(_learned("raft", _load_raft, "a local raft_small state_dict file"))
ALL_METHODS.register("tinyflow")(_learned("tinyflow", _load_tinyflow, "a file from `deepvideo flow-train`"))


def make_estimator(method: str = "farneback", weights: str | os.PathLike | None = None,
                   device: str | None = None) -> Estimator:
    """``(frame1, frame2) -> (2, H, W)`` float32 flow for any of ``ALL_METHODS``; frames
    ``(H, W, 3)`` uint8 RGB.  ``"raft"`` needs ``weights`` (a local raft_small state_dict),
    ``"tinyflow"`` a file written by ``deepvideo flow-train`` (``weights.safetensors``)."""
    return ALL_METHODS.get(method)(weights, device)()


def video_flows(reader: AnyReader, estimate: Estimator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode ``reader`` in order, yielding ``(frame_t, flow_t)``: ``(H, W, 3)`` uint8 and the
    ``(2, H, W)`` float32 flow to frame ``t + 1``, for ``t < T - 1``.

    Raises ``VideoDecodeError`` naming the file when it yields fewer than ``num_frames``
    frames (a truncated file) or fewer than two.
    """
    previous, count = None, 0
    for frame in reader:
        if previous is not None:
            yield previous, estimate(previous, frame)
        previous, count = frame, count + 1
    if count != reader.num_frames:
        raise VideoDecodeError(f"{reader.path}: decoded {count} of {reader.num_frames} frames "
                               f"(corrupt or truncated file)")
    if count < 2:
        raise VideoDecodeError(f"{reader.path}: flow needs at least 2 frames, the video has {count}")


def flow_video(path: str | os.PathLike, out_path: str | os.PathLike, method: str = "farneback",
               progress: bool = True, max_flow: float | None = None,
               weights: str | os.PathLike | None = None, device: str | None = None) -> Path:
    """Write a video showing each frame beside its colour-coded flow (Middlebury wheel).

    The output has ``T - 1`` frames of ``(H, 2 W, 3)`` (an odd ``H`` gains a black row, which
    the encoder's 4:2:0 chroma needs), the input's frame rate, h264 in ``out_path``'s
    container.  ``max_flow`` (pixels) fixes the colour scale; ``None`` rescales each frame
    to its own largest flow.  Frames are held in memory until encoding.

    Raises ``VideoDecodeError`` for an unreadable video, ``ValueError`` for a bad method.
    """
    estimate = make_estimator(method, weights, device)
    with open_video(path) as reader:
        height, width = reader.height, reader.width
        out = np.zeros((reader.num_frames - 1, height + height % 2, 2 * width, 3), np.uint8)
        pairs = tqdm(video_flows(reader, estimate), total=len(out), desc=f"flow ({method})",
                     unit="frame", disable=not progress)
        for t, (frame, flow) in enumerate(pairs):
            out[t, :height, :width] = frame
            out[t, :height, width:] = flow_to_color(flow, max_flow)
        fps = reader.fps or 25.0
    return write_video(out_path, out, fps)


ExtractSummary = JobSummary  # what extract_flow_dataset did (written, skipped, failed)


def flow_target(video: str | os.PathLike, out_dir: str | os.PathLike, root: str | os.PathLike | None = None
                ) -> Path:
    """Where :func:`extract_flow_dataset` puts a video's flow: ``out_dir/<name>.npz`` from the
    video's file name, or with ``root`` its path under ``root`` mirrored into ``out_dir``
    (``root/a/b.mp4 -> out_dir/a/b.npz``), for datasets whose file names repeat."""
    return output_path(video, out_dir, root, ".npz")


def _check_done(method: str, bound: float) -> Callable[[Path, Path], None]:
    """A finished flow file must hold what this run would write (cheap: reads its header)."""
    def check(video: Path, target: Path) -> None:
        info = flow_file_info(target)
        if info["method"] != method or not np.isclose(info["bound"], bound):
            raise ValueError(f"{target} holds {info['method']} flow with bound {info['bound']:g}, "
                             f"not {method} with bound {bound:g}: use another output folder")
    return check


def extract_flow_dataset(videos: list[str | os.PathLike], out_dir: str | os.PathLike,
                         method: str = "farneback", bound: float = DEFAULT_BOUND, workers: int = 0,
                         progress: bool = True, root: str | os.PathLike | None = None,
                         weights: str | os.PathLike | None = None, device: str | None = None
                         ) -> ExtractSummary:
    """Compute and store the flow of every video, resumably, for two-stream training.

    Each video's ``T - 1`` flow fields are clipped to ``+-bound`` pixels, quantised to uint8
    and saved as one ``.npz`` (see :mod:`deepvideo.flow.flowio`; read back with
    :func:`~deepvideo.flow.flowio.load_flow` as ``(T-1, 2, H, W)`` float32) at
    :func:`flow_target` ``(video, out_dir, root)``: ``out_dir/<name>.npz``, or mirroring the
    sub-folders under ``root`` when given (needed when file names repeat).  Files are
    written atomically, so an interrupted run leaves only finished files and a second run
    skips them (it refuses files made with another method or bound).
    Videos that cannot be decoded are skipped with a warning and listed in the summary.

    Args:
        workers: threads working on different videos side by side (OpenCV and the decoder
            release the GIL); 0 works in the calling thread.
    """
    bound = check_bound(bound)
    videos = [Path(v) for v in videos]
    if not videos:
        raise ValueError("no videos to extract flow from")
    todo, done = plan_outputs(videos, lambda video: flow_target(video, out_dir, root), root is not None,
                              _check_done(method, bound))
    make = ALL_METHODS.get(method)(weights, device) if todo else None

    def extract(video: Path, target: Path) -> None:
        with open_video(video) as reader:
            codes = np.stack([quantize_flow(flow, bound) for _, flow in video_flows(reader, make())])
        save_flow(target, codes, bound, method)

    return run_jobs(todo, extract, ExtractSummary(skipped=done), f"flow ({method})", workers, progress)

