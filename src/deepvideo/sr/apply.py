"""Using trained SR models: load a checkpoint, evaluate on real videos, upscale videos.

Everything streams: frames are decoded, degraded, super-resolved, scored and encoded one at
a time, and a recurrent model keeps one previous frame as its state, so memory stays flat
however long the video is.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint
from deepvideo.engine.device import resolve_device
from deepvideo.io import VideoDecodeError, open_video
from deepvideo.io.atomic import atomic_write
from deepvideo.io.encode import VideoWriter
from deepvideo.sr.degrade import SCALES, degrade, frames_to_tensor, mod_crop, tensor_to_frames
from deepvideo.sr.metrics import farneback_flow, flow_difference, psnr, ssim
from deepvideo.sr.models import VideoSR, build_sr_model
from deepvideo.sr.train import list_videos

__all__ = ["CONTAINERS", "evaluate_sr", "load_sr", "upscale_video"]

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi"}  # suffix -> FFmpeg format


def load_sr(source: str | os.PathLike, scale: int | None = None, device: str | torch.device = "cpu"
            ) -> tuple[VideoSR, dict[str, Any]]:
    """The SR model of a ``deepvideo sr train`` checkpoint, or ``"bicubic"``, in eval mode.

    Returns ``(model, info)`` with ``info`` = ``{"name", "model", "scale", "degradation"}``
    (``degradation`` is ``None`` for bicubic).  ``scale``, if given, must be the
    checkpoint's; it is required for ``"bicubic"`` (default 4).
    """
    if str(source) == "bicubic":
        scale = scale or 4
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
        info = {"name": "bicubic", "model": "bicubic", "scale": scale, "degradation": None}
        return build_sr_model("bicubic", scale).to(resolve_device(device)).eval(), info
    path = Path(source)
    state = load_checkpoint(path, required=("model", "task"))
    task = state["task"] if isinstance(state["task"], dict) else {}
    if task.get("task") != "sr":
        raise CheckpointError(f"{path}: a {task.get('task', 'unknown')} checkpoint, not a super-resolution one "
                              "(from `deepvideo sr train`)")
    if scale is not None and scale != task["scale"]:
        raise ValueError(f"scale: {path} was trained for x{task['scale']}, not x{scale}")
    model = build_sr_model(task["model"], task["scale"], **task["model_options"])
    model.load_state_dict(state["model"])
    info = {"name": task["model"], "model": task["model"], "scale": task["scale"],
            "degradation": task["degradation"]}
    return model.to(resolve_device(device)).eval(), info


def _lr_stream(frames: Iterator[np.ndarray], scale: int, degradation: str, device: torch.device
               ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``(HR frame mod-cropped (H, W, 3) uint8, LR frame (3, h, w) float)`` per decoded frame."""
    for frame in frames:
        hr = mod_crop(frame, scale)
        yield hr, degrade(frames_to_tensor(hr[None]), scale, degradation)[0].to(device)


def _sample_crop(hr: np.ndarray, baseline: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the ``side x side`` window where the bicubic baseline errs most."""
    side = min(size, *hr.shape[:2])
    error = np.abs(hr.astype(np.float32) - baseline.astype(np.float32)).mean(axis=2)
    integral = cv2.integral(error)
    sums = integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), side


def _write_samples(path: Path, lr: np.ndarray, hr: np.ndarray, outputs: dict[str, np.ndarray], scale: int,
                   size: int = 128) -> None:
    """``LR | <each output> | HR`` crops side by side, labelled, as a PNG at ``path``."""
    top, left, side = _sample_crop(hr, outputs["bicubic"], size)
    lr_up = cv2.resize(lr, (lr.shape[1] * scale, lr.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    panels = [("LR", lr_up), *outputs.items(), ("HR", hr)]
    zoom, tiles = max(1, 256 // side), []
    for label, image in panels:
        crop = image[top:top + side, left:left + side]
        crop = cv2.resize(crop, (side * zoom, side * zoom), interpolation=cv2.INTER_NEAREST)
        tile = np.full((crop.shape[0] + 24, crop.shape[1] + 4, 3), 255, np.uint8)
        tile[24:, 2:-2] = crop
        cv2.putText(tile, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR))[1]
    atomic_write(path, lambda fh: fh.write(png.tobytes()))


def evaluate_sr(checkpoints: Sequence[str | os.PathLike], videos: Sequence[str | os.PathLike],
                scale: int | None = None, degradation: str | None = None, frames: int | None = None,
                device: str | torch.device = "cpu", samples: str | os.PathLike | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Y-PSNR, Y-SSIM (``scale`` pixels cropped at each border, :mod:`deepvideo.sr.metrics`)
    and tOF of each model in ``checkpoints`` (paths or ``"bicubic"``) on ``videos`` (files
    or folders) degraded by ``degradation``, with the bicubic baseline on the same frames.

    ``scale`` and ``degradation`` default to the first checkpoint's; ``frames`` limits each
    video to its first frames.  Per video, PSNR and SSIM are means over frames and tOF over
    consecutive pairs (TecoGAN's centre crop on frames of 48 pixels and more, else the whole
    frame); ``mean`` averages the videos.  ``samples`` writes a PNG of a crop of
    the middle frame of the first video: ``LR | bicubic | <models> | HR``.  Returns
    ``{"scale", "degradation", "videos": [names], "skipped": [(path, reason)],
    "rows": {model: {video or "mean": {"psnr", "ssim", "tof"}}}}``.
    """
    device = resolve_device(device)
    loaded = [load_sr(source, scale, device) for source in checkpoints]
    trained = [info for _, info in loaded if info["degradation"]]
    scale = scale or (loaded[0][1]["scale"] if loaded else 4)
    degradation = degradation or (trained[0]["degradation"] if trained else "bd")
    models: dict[str, VideoSR] = {"bicubic": build_sr_model("bicubic", scale)}
    for source, (model, info) in zip(checkpoints, loaded):
        name = info["name"]
        if name == "bicubic":
            continue
        if name in models:  # two runs of one model: tell them apart by their run folder
            name = f"{name} ({Path(source).parent.name})"
        if info["scale"] != scale:
            raise ValueError(f"checkpoints: {name} is x{info['scale']}, the others x{scale}")
        models[name] = model
    paths = list_videos(videos)
    if not paths:
        raise ValueError("videos: no videos found")
    rows: dict[str, dict[str, dict[str, float]]] = {name: {} for name in models}
    names, skipped = [], []
    for path in tqdm(paths, desc="sr eval", unit="video", disable=not progress):
        try:
            scores = _score_video(path, models, scale, degradation, frames, device,
                                  Path(samples) if samples is not None and not names else None)
        except (VideoDecodeError, ValueError) as exc:
            skipped.append((str(path), str(exc).splitlines()[0]))
            continue
        names.append(path.name)
        for name, score in scores.items():
            rows[name][path.name] = score
    if not names:
        raise ValueError(f"videos: none of the {len(paths)} videos could be scored (first: {skipped[0][1]})")
    for table in rows.values():
        table["mean"] = {key: float(np.mean([table[name][key] for name in names])) for key in ("psnr", "ssim", "tof")}
    return {"scale": scale, "degradation": degradation, "videos": names, "skipped": skipped, "rows": rows}


def _score_video(path: Path, models: dict[str, VideoSR], scale: int, degradation: str, frames: int | None,
                 device: torch.device, samples: Path | None) -> dict[str, dict[str, float]]:
    """Per-model ``{"psnr", "ssim", "tof"}`` on one video, streamed frame by frame."""
    with open_video(path) as reader:
        total = len(reader) if frames is None else min(frames, len(reader))
        if total < 2:
            raise VideoDecodeError(f"{path}: {total} frame(s); tOF needs at least 2")
        source = _lr_stream(itertools.islice(iter(reader), total), scale, degradation, device)
        copies = itertools.tee(source, len(models) + 1)
        streams = [model.stream(lr for _, lr in copy) for model, copy in zip(models.values(), copies[1:])]
        sums = {name: {"psnr": 0.0, "ssim": 0.0, "tof": 0.0} for name in models}
        previous: tuple[np.ndarray, list[np.ndarray]] | None = None
        for index, ((hr, lr), *srs) in enumerate(zip(copies[0], *streams)):
            outputs = [tensor_to_frames(sr[None])[0] for sr in srs]
            center_crop = min(hr.shape[:2]) >= 48
            target_flow = farneback_flow(previous[0], hr) if previous is not None else None  # once for all models
            for i, (name, output) in enumerate(zip(models, outputs)):
                sums[name]["psnr"] += psnr(output, hr, crop_border=scale)
                sums[name]["ssim"] += ssim(output, hr, crop_border=scale)
                if target_flow is not None:
                    sums[name]["tof"] += flow_difference(farneback_flow(previous[1][i], output), target_flow,
                                                         center_crop)
            previous = (hr, outputs)
            if samples is not None and index == total // 2:
                _write_samples(samples, tensor_to_frames(lr[None])[0], hr, dict(zip(models, outputs)), scale)
    return {name: {"psnr": s["psnr"] / total, "ssim": s["ssim"] / total, "tof": s["tof"] / (total - 1)}
            for name, s in sums.items()}


def upscale_video(video: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike,
                  side_by_side: bool = False, scale: int | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> dict[str, Any]:
    """Super-resolve every frame of ``video`` with ``checkpoint`` (a path or ``"bicubic"``)
    and write ``out`` (h264, the frame rate kept, no audio; written whole or not at all).

    ``side_by_side`` writes ``bicubic | model`` next to each other.  Frames stream through
    one at a time: memory does not grow with the video's length.  Returns ``{"frames",
    "fps", "size": (width, height)}``.
    """
    device = resolve_device(device)
    out = Path(out)
    if out.suffix.lower() not in CONTAINERS:
        raise ValueError(f"out: {out} should end in one of {', '.join(CONTAINERS)}")
    model, info = load_sr(checkpoint, scale, device)
    scale = info["scale"]
    with open_video(video) as reader:
        if not len(reader):
            raise VideoDecodeError(f"{video}: no frames")
        width, height = reader.width * scale * (2 if side_by_side else 1), reader.height * scale
        lr = (frames_to_tensor(frame[None])[0].to(device) for frame in reader)
        sources = itertools.tee(lr, 2) if side_by_side else (lr,)
        streams = [model.stream(sources[0])]
        if side_by_side:
            streams.insert(0, build_sr_model("bicubic", scale).stream(sources[1]))
        count = 0
        with VideoWriter(out, reader.fps, width, height, format=CONTAINERS[out.suffix.lower()]) as sink:
            for srs in tqdm(zip(*streams), total=len(reader), desc="sr upscale", unit="frame", disable=not progress):
                sink.write(np.concatenate([tensor_to_frames(sr[None])[0] for sr in srs], axis=1))
                count += 1
    return {"frames": count, "fps": reader.fps, "size": (width, height)}
