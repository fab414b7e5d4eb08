"""The flow-threshold baseline finds a moving square on a panning background (the camera's
motion is subtracted), and its threshold is fitted by J&F on given sequences."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepvideo.segment import fit_flow_threshold, flow_threshold_masks, frame_flows, residual_speed
from deepvideo.segment.train import network_flows


def panning_square(num_frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A textured background panned 1 px/frame left and a textured square moving 4 px/frame
    right: frames ``(T, 64, 64, 3)`` uint8 and the square's masks ``(T, 64, 64)``."""
    rng = np.random.default_rng(0)
    world = cv2.GaussianBlur(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), (0, 0), 1.5)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8), (0, 0), 1.0)
    frames = np.stack([world[8:72, 8 + t:72 + t] for t in range(num_frames)])
    masks = np.zeros(frames.shape[:3], np.uint8)
    for t in range(num_frames):
        frames[t, 22:42, 8 + 4 * t:28 + 4 * t] = patch
        masks[t, 22:42, 8 + 4 * t:28 + 4 * t] = 1
    return frames, masks


def test_flow_baseline_finds_the_moving_square_not_the_panning_background():
    frames, truth = panning_square()
    flows = frame_flows(frames)
    assert flows.shape == (8, 2, 64, 64) and flows.dtype == np.float32
    background = cv2.dilate(truth, np.ones((21, 21), np.uint8)) == 0  # away from the square's blur
    assert np.median(flows[:, 0][background]) == pytest.approx(-1.0, abs=0.2)  # the pan: 1 px/frame
    speed = residual_speed(flows)
    assert np.median(speed[background]) < 0.2 and np.median(speed[truth > 0]) > 2.5
    residual = network_flows(frames)  # the networks' flow channels: the square's own motion, the pan gone
    assert np.allclose(np.sqrt((residual ** 2).sum(1)), speed, atol=1e-5)
    assert np.abs(np.median(residual[:, 0][background])) < 0.2 and np.median(residual[:, 0][truth > 0]) > 2.5
    masks = flow_threshold_masks(frames, 1.5, flows=flows)
    assert masks.dtype == np.uint8 and masks.shape == truth.shape
    assert masks[truth > 0].mean() > 0.8 and masks[background].mean() < 0.05
    # without the camera subtracted, a threshold below the pan flags the background
    assert (np.sqrt((flows ** 2).sum(1))[background] > 0.5).mean() > 0.9
    assert flow_threshold_masks(frames, 0.5, flows=flows)[background].mean() < 0.1
    with pytest.raises(ValueError, match="threshold"):
        flow_threshold_masks(frames, -1.0)


def test_fit_flow_threshold_picks_the_best_candidate():
    frames, truth = panning_square()
    threshold, score = fit_flow_threshold({"square": (frames, truth)}, candidates=(0.1, 1.5, 20.0))
    assert threshold == 1.5 and 0.3 < score <= 1
    with pytest.raises(ValueError, match="no sequences"):
        fit_flow_threshold({})


def test_a_video_is_segmented_a_chunk_at_a_time_with_the_masks_of_the_whole(tmp_path):
    from deepvideo.io import VideoReader, write_video
    from deepvideo.segment import read_masks
    from deepvideo.segment.apply import segment_video

    frames, _ = panning_square(num_frames=10)
    video = write_video(tmp_path / "square.mp4", frames, 10.0, codec="libx264rgb", crf=0)  # lossless
    whole = flow_threshold_masks(frames, threshold=1.0)
    result = segment_video(video, "flow", tmp_path / "masks", video_out=tmp_path / "overlay.mp4", threshold=1.0,
                           chunk=4)
    assert result["frames"] == 10 and np.array_equal(read_masks(tmp_path / "masks"), whole)
    assert result["moving_fraction"] == pytest.approx(whole.mean(), abs=1e-4)
    with VideoReader(tmp_path / "overlay.mp4") as reader:
        assert reader.num_frames == 10
    with pytest.raises(ValueError, match="masks: not empty"):  # masks of two videos would mix
        segment_video(video, "flow", tmp_path / "masks")
    with pytest.raises(ValueError, match="threshold: only for the flow baseline"):
        segment_video(video, tmp_path / "best.pt", tmp_path / "other", threshold=1.0)
