"""Action recognition on a live stream: a decode thread, a ring buffer, an inference thread.

The decode thread reads a :class:`~deepvideo.io.stream.LiveSource` and puts every frame into
a :class:`ClipBuffer`, which keeps only the last clip (``clip_len`` frames at the recipe's
frame stride) and never blocks the decoder.  The inference thread (the caller's) sleeps
on the buffer's condition until a new window is due, takes the newest one, and predicts.
Windows that fall due while the network is busy are dropped and counted, never queued:
the answer always concerns the newest frames, memory stays flat however long the stream
runs, and nothing polls (MMAction2's webcam demo busy-waits on a queue and lags behind,
mmaction2#575 and #958).  Each prediction reports the latency from the arrival of its clip's
last frame, and the top classes averaged over the last ``average`` windows.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.engine.device import autocast, prepare_input
from deepvideo.engine.predict import top_classes
from deepvideo.engine.recipe import Recipe
from deepvideo.io.draw import draw_label
from deepvideo.io.encode import VideoWriter
from deepvideo.io.stream import LiveFrame, LiveSource

__all__ = ["ClipBuffer", "StreamSummary", "run_stream"]


class ClipBuffer:
    """The newest clip of a stream, shared by a producer and a consumer thread.

    Every ``stride``-th frame put is kept, the last ``clip_len`` of them (a ring buffer).
    Once ``clip_len`` are kept, a window falls due every ``step`` kept frames.  :meth:`put`
    never blocks; :meth:`take` sleeps until a window newer than the last one taken is due.
    ``due`` counts the windows that fell due, ``frames`` the frames put.
    """

    def __init__(self, clip_len: int, stride: int = 1, step: int = 1) -> None:
        if min(clip_len, stride, step) < 1:
            raise ValueError(f"clip_len, stride and step must be positive, got {clip_len}, {stride}, {step}")
        self.clip_len, self.stride, self.step = clip_len, stride, step
        self._kept: deque[LiveFrame] = deque(maxlen=clip_len)
        self._cond = threading.Condition()
        self._window: tuple[LiveFrame, ...] = ()
        self._closed = False
        self.frames = self.sampled = self.due = 0

    def put(self, frame: LiveFrame) -> None:
        """Offer the next frame of the stream (kept at the stride; may make a window due)."""
        with self._cond:
            self.frames += 1
            if (self.frames - 1) % self.stride:
                return
            self._kept.append(frame)
            self.sampled += 1
            if self.sampled >= self.clip_len and (self.sampled - self.clip_len) % self.step == 0:
                self._window = tuple(self._kept)
                self.due += 1
                self._cond.notify_all()

    def close(self) -> None:
        """No more frames: wake the consumer (it still gets a window not yet taken)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, taken: int) -> tuple[int, tuple[LiveFrame, ...]] | None:
        """Sleep until window number ``> taken`` is due; return ``(number, frames)`` of the
        newest window (``clip_len`` frames, oldest first), or ``None`` once the buffer is
        closed with no newer window."""
        with self._cond:
            self._cond.wait_for(lambda: self.due > taken or self._closed)
            return (self.due, self._window) if self.due > taken else None


@dataclass
class StreamSummary:
    """What a stream run did: ``frames`` decoded, ``sampled`` at the stride, windows ``due``,
    ``windows`` predicted, ``dropped`` (due but skipped while the network was busy),
    latency mean and 95th percentile (seconds, from a clip's last frame to its prediction),
    ``seconds`` of wall time, ``stopped`` (``None`` for a clean end, else why it broke off)."""

    source: str
    frames: int
    sampled: int
    due: int
    windows: int
    dropped: int
    dropped_share: float
    latency_mean: float
    latency_p95: float
    seconds: float
    stopped: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = (f"{self.source}: {self.frames} frames, {self.windows} windows predicted, {self.dropped} dropped "
                f"({100 * self.dropped_share:.1f}%), latency mean {self.latency_mean:.3f} s, "
                f"p95 {self.latency_p95:.3f} s, {self.seconds:.1f} s")
        return f"{text}; {self.stopped}" if self.stopped else f"{text}; end of stream"


@torch.no_grad()
def run_stream(network: Callable[[torch.Tensor], torch.Tensor], recipe: Recipe, source: LiveSource,
               on_prediction: Callable[[dict[str, Any]], None] | None = None, step: int = 1, average: int = 5,
               topk: int = 5, device: torch.device | str = "cpu", amp: str = "none",
               video_out: str | os.PathLike | None = None) -> StreamSummary:
    """Predict on ``source`` until it ends, breaks off, or is stopped (``source.stop()``, or
    KeyboardInterrupt in the caller, which is re-raised after the decode thread ended).

    Args:
        network: clips ``(B, C, T, H, W)`` float32 on ``device`` -> logits ``(B, num_classes)``
            (a checkpoint's model, or an exported file's network).
        recipe: clip length, frame stride, transform and classes of the network.
        on_prediction: called with each prediction, ``{"frame", "time", "latency", "window",
            "dropped", "top"}``: the index and stream time (s) of the clip's last frame, the
            seconds from its arrival to this prediction, the window number, the windows
            dropped so far, and the top ``topk`` classes averaged over the last ``average``
            windows (``[{"label", "prob"}]``).
        step: kept frames (at the recipe's stride) between due windows.
        video_out: also write the stream there (h264) with the current top class drawn.
    """
    if recipe.modality != "rgb":
        raise ValueError(f"stream reads RGB clips; a {recipe.model} checkpoint of the {recipe.modality} "
                         f"modality is not a stream model")
    if average < 1:
        raise ValueError(f"average must be positive, got {average}")
    device = torch.device(device)
    if isinstance(network, nn.Module):
        network.eval()
    transform = recipe.transform(train=False)
    buffer = ClipBuffer(recipe.clip_len, recipe.frame_stride, step)
    shown = [""]  # the label the decode thread draws
    failures: list[BaseException] = []

    def decode() -> None:
        try:
            with contextlib.ExitStack() as stack:
                sink = (stack.enter_context(VideoWriter(video_out, source.fps, source.width, source.height))
                        if video_out else None)
                for frame in source:
                    buffer.put(frame)
                    if sink is not None:
                        sink.write(draw_label(frame.image, shown[0]))
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)
        finally:
            buffer.close()

    started = time.monotonic()
    decoder = threading.Thread(target=decode, name="deepvideo-decode", daemon=True)
    decoder.start()
    history: deque[np.ndarray] = deque(maxlen=average)
    latencies: list[float] = []
    taken, rng = 0, np.random.default_rng(0)
    try:
        while (window := buffer.take(taken)) is not None:
            taken, frames = window
            clip = transform(np.stack([frame.image for frame in frames]), rng)
            with autocast(device, amp):
                logits = network(prepare_input(clip[None], device, False))
            history.append(F.softmax(logits.float(), dim=1)[0].cpu().numpy())
            latency = time.monotonic() - frames[-1].arrived
            latencies.append(latency)
            top = top_classes(np.mean(history, axis=0), recipe.classes, topk)
            shown[0] = f"{top[0]['label']} {top[0]['prob']:.2f}"
            if on_prediction is not None:
                on_prediction({"frame": frames[-1].index, "time": round(frames[-1].time, 3),
                               "latency": round(latency, 4), "window": taken,
                               "dropped": taken - len(latencies), "top": top})
    finally:
        source.stop()
        decoder.join()
    if failures:
        raise failures[0]
    lat = np.array(latencies) if latencies else np.zeros(1)
    return StreamSummary(source=source.name, frames=buffer.frames, sampled=buffer.sampled, due=buffer.due,
                         windows=len(latencies), dropped=buffer.due - len(latencies),
                         dropped_share=round((buffer.due - len(latencies)) / max(buffer.due, 1), 4),
                         latency_mean=round(float(lat.mean()), 4),
                         latency_p95=round(float(np.percentile(lat, 95)), 4),
                         seconds=round(time.monotonic() - started, 2), stopped=source.stopped)
