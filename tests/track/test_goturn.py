"""GOTURN: shapes, motion model, training examples, overfitting, tracking a video file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.engine import TrainConfig
from deepvideo.track.goturn import OUTPUT_SCALE, CaffeNetTower, GOTURNConfig, GOTURNNet, goturn_example, motion_model
from deepvideo.track.sot import goturn_batch, make_tracker, synthetic_sequences, track_video, train_goturn

from conftest import moving_square_frames

TINY = GOTURNConfig(input_size=67, width=0.125, fc_dim=32, dropout=0.0)


def test_paper_shapes_and_gradients() -> None:
    with torch.no_grad():
        assert CaffeNetTower(width=0.125).eval()(torch.zeros(1, 3, 227, 227)).shape == (1, 32, 6, 6)
    net = GOTURNNet(TINY)
    out = net(torch.rand(3, 3, 67, 67) * 255, torch.rand(3, 3, 67, 67) * 255)
    assert out.shape == (3, 4)
    out.abs().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with pytest.raises(ValueError, match="input_size must be >= 67"):
        GOTURNConfig(input_size=50)


def test_motion_model_follows_the_paper() -> None:
    rng = np.random.default_rng(0)
    box = np.array([10.0, 20.0, 40.0, 20.0])
    moved = np.array([motion_model(box, rng) for _ in range(4000)])
    scale = moved[:, 2:] / box[2:]
    shift = (moved[:, :2] + moved[:, 2:] / 2 - (box[:2] + box[2:] / 2)) / box[2:]
    assert scale.min() >= 0.6 and scale.max() <= 1.4
    assert np.all(np.abs(shift) <= scale + 1e-9)
    # Laplace(0, b): median |x| = b ln 2; b = 1/5 (shift) and 1/15 (scale)
    assert np.median(np.abs(shift)) == pytest.approx(np.log(2) / 5, rel=0.08)
    assert np.median(np.abs(scale - 1)) == pytest.approx(np.log(2) / 15, rel=0.08)


def test_training_example_label_marks_the_target_in_the_search_crop() -> None:
    frame = np.zeros((100, 120, 3), np.uint8)
    box = np.array([40.0, 30.0, 24.0, 16.0])
    frame[30:46, 40:64] = 255
    rng = np.random.default_rng(2)
    for _ in range(5):
        target, search, label = goturn_example(frame, box, frame, box, 100, rng)
        assert target.shape == search.shape == (100, 100, 3)
        # the target crop is the box with k = 2 context: the box fills the middle half
        bright = np.argwhere(target[..., 0] > 127)
        assert bright.min(0).tolist() == [25, 25] and bright.max(0).tolist() == [74, 74]
        # the label's corners, in search-crop pixels, bound the bright box there
        x1, y1, x2, y2 = label / OUTPUT_SCALE * 100
        bright = np.argwhere(search[..., 0] > 127)
        (top, left), (bottom, right) = bright.min(0), bright.max(0) + 1
        assert max(abs(left - x1), abs(top - y1), abs(right - x2), abs(bottom - y2)) <= 1.0


def test_few_steps_overfit_one_batch() -> None:
    sequences = synthetic_sequences(4, num_frames=6, size=48, seed=5)
    previous, current, targets = goturn_batch(sequences, 8, TINY, np.random.default_rng(0))
    assert previous.shape == current.shape == (8, 3, 67, 67) and targets.shape == (8, 4)
    torch.manual_seed(0)
    net = GOTURNNet(TINY)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.l1_loss(net(previous, current), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_trained_weights_track_a_video_file(make_video, tmp_path: Path) -> None:
    sequences = synthetic_sequences(4, num_frames=6, size=48, seed=6)
    _, result = train_goturn(sequences, tmp_path, TINY, pairs_per_epoch=12,
                             train=TrainConfig(epochs=2, batch_size=4, optimizer="adam", progress=False))
    weights = tmp_path / "weights.safetensors"
    assert len(result["history"]) == 2 and weights.is_file() and (tmp_path / "curves.png").is_file()
    path = make_video("square.mp4", moving_square_frames(num_frames=5))
    boxes = track_video(path, (0, 20, 12, 12), tracker="goturn", weights=weights, progress=False)
    assert boxes.shape == (5, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] >= 1).all()
    with pytest.raises(ValueError, match="^box: width and height must be positive"):
        track_video(path, (0, 20, -3, 12), tracker="goturn", weights=weights, progress=False)
    with pytest.raises(ValueError, match="weights: GOTURN needs a trained weights file"):
        make_tracker("goturn")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        make_tracker("goturn", tmp_path / "missing.safetensors")
