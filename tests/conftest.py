"""Shared fixtures and helpers (``from conftest import ...``): real sample videos from
../shared/data, small generated videos, training and CLI-error checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.recipe import Recipe
from deepvideo.flow import extract_flow_dataset
from deepvideo.io import write_video
from deepvideo.track.scenes import render_scene

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests run on 2-core CI machines: keep torch from oversubscribing them."""
    torch.set_num_threads(2)


def close_videos(a: np.ndarray, b: np.ndarray) -> bool:
    """Two decodings of the same frames encoded twice: the same shape and PSNR over 40 dB.
    x264 (one thread, PyAV 17.1 and 18.1) was seen to give other bytes between runs of the
    same frames (measured 50-55 dB apart), so re-encoded videos are compared by this, not
    byte for byte."""
    mse = ((a.astype(float) - b) ** 2).mean() if a.shape == b.shape else np.inf
    return bool(10 * np.log10(255**2 / max(mse, 1e-12)) > 40)


@pytest.fixture
def shared_data() -> Path:
    """The public sample data folder; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


def real_videos() -> list[Path]:
    """Every sample video in ../shared/data/videos (empty list when absent)."""
    folder = SHARED_DATA / "videos"
    return sorted(folder.glob("*")) if folder.is_dir() else []


def moving_square_frames(num_frames: int = 24, size: int = 64, seed: int = 0) -> np.ndarray:
    """A textured background with a bright square moving right: ``(T, H, W, 3)`` uint8.

    Each frame differs, so frame identity can be checked after decoding.
    """
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        x = (2 * t) % (size - 12)
        frames[t, 20:32, x:x + 12] = (250, 40 + 8 * (t % 20), 40)
    return frames


@pytest.fixture
def make_video(tmp_path):
    """Factory: ``make_video(name, frames=None, fps=10, codec=..., keyframe_interval=...)``."""

    def make(name: str = "clip.mp4", frames: np.ndarray | None = None, fps: float = 10,
             **kwargs) -> Path:
        frames = moving_square_frames() if frames is None else frames
        return write_video(tmp_path / name, frames, fps, **kwargs)

    return make


def two_direction_frames(direction: int, seed: int, num_frames: int = 8, size: int = 32) -> np.ndarray:
    """A bright square moving right (``direction=1``) or left (``-1``) over noise."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 80, (1, size, size, 3), dtype=np.uint8), num_frames, axis=0)
    y = int(rng.integers(4, size - 12))
    x0 = int(rng.integers(8, size - 16))
    for t in range(num_frames):
        x = x0 + direction * (t - num_frames // 2)
        frames[t, y:y + 8, x:x + 8] = 230
    return frames


@pytest.fixture(scope="session")
def tiny_motion_root(tmp_path_factory) -> Path:
    """``root/{train,val,test}/{left,right}/*.mp4``: a two-class motion dataset of real videos."""
    root = tmp_path_factory.mktemp("tiny_motion")
    counts = {"train": 6, "val": 2, "test": 3}
    for s, (split, count) in enumerate(counts.items()):
        for c, (name, direction) in enumerate((("left", -1), ("right", 1))):
            for n in range(count):
                seed = 1000 * s + 100 * c + n
                write_video(root / split / name / f"{name}_{n}.mp4", two_direction_frames(direction, seed),
                            fps=8, keyframe_interval=4)
    return root


@pytest.fixture(scope="session")
def tiny_flow_cache(tiny_motion_root, tmp_path_factory) -> Path:
    """The DIS flow cache of every ``tiny_motion_root`` video (what ``deepvideo flow-extract`` writes)."""
    out = tmp_path_factory.mktemp("tiny_flow_cache")
    extract_flow_dataset(sorted(tiny_motion_root.rglob("*.mp4")), out, method="dis", root=tiny_motion_root,
                         progress=False)
    return out


def locate_crop(view: np.ndarray, frames: np.ndarray) -> tuple[int, int, int, bool]:
    """Where an ``(h, w, C)`` crop lies among ``(N, H, W, C)`` frames: ``(frame, top, left,
    mirrored)``, the unique exact match (mirrored: the crop is left-right flipped)."""
    h, w = view.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(frames, (h, w), axis=(1, 2))  # (N, y, x, C, h, w)
    found = [(int(n), int(top), int(left), mirrored)
             for mirrored in (False, True)
             for n, top, left in np.argwhere((windows == np.moveaxis(view[:, ::-1] if mirrored else view, -1, 0)
                                              ).all(axis=(3, 4, 5)))]
    assert len(found) == 1, f"the crop matches {len(found)} places"
    return found[0]


def train_losses(model: torch.nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor,
                 steps: int = 25, lr: float = 1e-2,
                 loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] = torch.nn.functional.cross_entropy,
                 ) -> list[float]:
    """Full-batch Adam steps on one small batch; the loss of each step, before its update.

    ``inputs``: the model's input, or a tuple of its inputs (``model(*inputs)``);
    ``loss_fn(output, labels)``: cross-entropy unless given.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(*inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def overfit():
    """``overfit(model, inputs, labels, steps=25, lr=1e-2, loss_fn=cross_entropy) -> losses``
    (see ``train_losses``)."""
    return train_losses


def one_line_error(err: str, *fragments: str, command: str = "", lines_above: bool = False) -> None:
    """``deepvideo``'s stderr after a failed command: one ``deepvideo CMD: error: ...`` line
    (``CMD`` is ``command`` when given), no traceback, holding every fragment.  The error
    line is all of stderr, or with ``lines_above`` its last line (above it: a progress bar,
    a line per skipped video)."""
    lines = err.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n") and "Traceback" not in err, err
    assert lines_above or len(lines) == 1, err
    assert errors[0].startswith(f"deepvideo {command}: error: " if command else "deepvideo "), errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def randomize_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, so eval-mode equivalence tests
    exercise the whole network (fresh BN layers are the identity)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.8, 1.5)
            m.weight.data.uniform_(0.7, 1.2)
            m.bias.data.uniform_(-0.1, 0.1)
    return model


def assert_forward_backward(model: torch.nn.Module, inputs: torch.Tensor, out_shape: tuple) -> None:
    """Output shape is right and every parameter receives a non-zero gradient."""
    logits = model(inputs)
    assert logits.shape == out_shape
    logits.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def entering_scene():
    """A rendered MOT scene: background alone for 10 frames (MOG2's model settles), then two
    objects crossing the 160x120 frame in opposite directions at 4 px/frame."""
    t = np.arange(40)
    boxes = np.zeros((40, 2, 4))
    boxes[..., 2:] = [14, 36]
    boxes[:, 0, 0], boxes[:, 0, 1] = np.where(t < 10, -100, 10 + 4 * (t - 10)), 20
    boxes[:, 1, 0], boxes[:, 1, 1] = np.where(t < 10, -100, 140 - 4 * (t - 10)), 70
    return render_scene(boxes, np.array([0, 1]), (120, 160), seed=0)


@pytest.fixture
def serve_bytes():
    """Factory: ``serve_bytes(data, cut=None) -> url`` serves ``data`` over HTTP on 127.0.0.1
    (announcing all of it, sending only ``data[:cut]`` when ``cut`` is given: a stream that
    breaks off).  Servers stop when the test ends."""
    import http.server
    import threading

    servers = []

    def serve(data: bytes, cut: int | None = None, name: str = "video.mkv") -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/{name}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def small3d_checkpoint(tmp_path_factory) -> Path:
    """A small3d checkpoint (random weights, non-trivial BatchNorm) of 4-frame 32 x 32 clips."""
    torch.manual_seed(0)
    recipe = Recipe(model="small3d", classes=["down", "left", "up"], model_kwargs={"widths": [4, 8]}, clip_len=4,
                    frame_stride=2, size=32, resize=36, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    model = randomize_batchnorm(recipe.build_model())
    return save_checkpoint(tmp_path_factory.mktemp("run") / "best.pt",
                           {"model": model.state_dict(), "recipe": recipe.to_dict()})
