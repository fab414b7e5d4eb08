"""The built-in motion dataset: determinism, files on disk, no appearance leak, motion."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from deepvideo.data.synthetic import (
    MOTION_CLASSES,
    SHAPES,
    SyntheticConfig,
    default_root,
    make_motion_dataset,
    render_object,
    render_video,
    video_rng,
)
from deepvideo.io import VideoReader

from conftest import close_videos

TINY = SyntheticConfig(train=2, val=1, test=1, num_frames=8, size=32)


def _centres(boxes: np.ndarray) -> np.ndarray:
    """Boxes ``(..., 4)`` (x, y, w, h) -> centres ``(..., 2)``."""
    return boxes[..., :2] + boxes[..., 2:] / 2


def test_render_is_deterministic_with_documented_shapes():
    config = SyntheticConfig(num_frames=12, size=48)
    frames, boxes = render_video("rotate_cw", np.random.default_rng(3), config)
    again, boxes_again = render_video("rotate_cw", np.random.default_rng(3), config)
    other, _ = render_video("rotate_cw", np.random.default_rng(4), config)
    assert frames.shape == (12, 48, 48, 3) and frames.dtype == np.uint8
    assert boxes.shape == (12, 4) and boxes.dtype == np.float32
    assert np.array_equal(frames, again) and np.array_equal(boxes, boxes_again)
    assert not np.array_equal(frames, other)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, :2] + boxes[:, 2:] <= 48).all()


@pytest.mark.parametrize("kwargs, option", [
    ({"classes": ("right", "sideways")}, "classes"), ({"classes": ("up", "up")}, "classes"),
    ({"size": 33}, "size"), ({"num_frames": 1}, "num_frames"), ({"codec": "vp9"}, "codec"),
    ({"test": -1}, "test"), ({"keyframe_interval": 0}, "keyframe_interval")])
def test_config_errors_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=f"^{option}:"):
        SyntheticConfig(**kwargs)


def test_default_root_is_per_config_under_the_cache():
    root = default_root(TINY)
    assert root.parent == Path.home() / ".cache" / "deepvideo"
    assert root == default_root(SyntheticConfig(train=2, val=1, test=1, num_frames=8, size=32))
    assert root != default_root(SyntheticConfig(train=2, val=1, test=1, num_frames=8, size=32, seed=1))


def test_dataset_is_written_once_decodable_and_balanced(tmp_path):
    root = make_motion_dataset(tmp_path / "motion", TINY, progress=False)
    videos = sorted(root.glob("*/*/*.mp4"))
    assert len(videos) == len(MOTION_CLASSES) * 4 and not (root / ".partial").exists()
    for split, per_class in TINY.counts.items():
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(MOTION_CLASSES)
        assert {len(list((root / split / c).iterdir())) for c in MOTION_CLASSES} == {per_class}
    meta = json.loads((root / "meta.json").read_text())
    assert meta["complete"] and meta["classes"] == list(MOTION_CLASSES)
    assert meta["config"] == TINY.to_dict()

    with open(root / "annotations" / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert Counter(r["label"] for r in rows) == {c: 2 * TINY.num_frames for c in MOTION_CLASSES}
    first = [r for r in rows if r["video"] == "train/up/up_0001.mp4"]
    assert [int(r["frame"]) for r in first] == list(range(TINY.num_frames))

    frames, boxes = render_video("up", video_rng(TINY, "train", "up", 1), TINY)
    other, _ = render_video("up", video_rng(TINY, "train", "up", 0), TINY)
    with VideoReader(root / "train" / "up" / "up_0001.mp4") as reader:
        assert (reader.num_frames, reader.width, reader.height) == (8, 32, 32)
        decoded = reader.read(range(8)).astype(float)
    assert np.abs(decoded - frames).mean() < 10 < 20 < np.abs(decoded - other).mean()  # lossy codec
    stored = np.array([[float(r[k]) for k in "xywh"] for r in first])
    assert np.abs(stored - boxes).max() < 1e-3

    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert make_motion_dataset(root, TINY, progress=False) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes


def test_interrupted_generation_resumes_missing_files_only(tmp_path):
    config = SyntheticConfig(classes=("left", "grow"), train=2, val=1, test=1, num_frames=8,
                             size=32)
    root = make_motion_dataset(tmp_path / "motion", config, progress=False)
    lost = root / "val" / "grow" / "grow_0000.mp4"
    with VideoReader(lost) as reader:
        before = reader.read(range(8))
    annotations = (root / "annotations" / "val.csv").read_text()
    lost.unlink()
    (root / "annotations" / "val.csv").unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in root.glob("*/*/*.mp4")}

    make_motion_dataset(root, config, progress=False)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    with VideoReader(lost) as reader:
        again = reader.read(range(8))
    assert close_videos(again, before)  # the same frames re-encoded
    assert (root / "annotations" / "val.csv").read_text() == annotations


def test_other_config_or_foreign_folder_is_refused(tmp_path):
    root = make_motion_dataset(tmp_path / "motion", TINY, progress=False)
    with pytest.raises(ValueError, match=r"meta\.json.*num_frames 8 != 10"):
        make_motion_dataset(root, SyntheticConfig(train=2, val=1, test=1, num_frames=10, size=32),
                            progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty and has no meta.json"):
        make_motion_dataset(tmp_path / "mine", TINY, progress=False)


def _per_frame_stats(frames: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """``(T, 6)``: box centre x, y and side sqrt(w h) (fractions of the frame), mean R, G, B."""
    return np.concatenate([_centres(boxes) / side, np.sqrt(boxes[:, 2:3] * boxes[:, 3:4]) / side,
                           frames.reshape(len(frames), -1, 3).mean(1) / 255], axis=1)


def test_no_appearance_leak_single_frames_look_alike_across_classes():
    """Object position, size and frame colour have the same distribution in every class."""
    config, per_class = SyntheticConfig(num_frames=8, size=32), 150
    rng = np.random.default_rng(2024)
    data = np.stack([[_per_frame_stats(*render_video(c, rng, config), config.size)
                      for _ in range(per_class)] for c in MOTION_CLASSES])  # (K, N, T, 6)
    video_means = data.mean(axis=2)  # (K, N, 6): per-video means are independent samples
    pooled_mean = video_means.reshape(-1, 6).mean(0)
    standard_error = video_means.reshape(-1, 6).std(0) / np.sqrt(per_class)
    z = (video_means.mean(axis=1) - pooled_mean) / standard_error
    assert np.abs(z).max() < 4.0, z.round(1)
    # the whole distribution of one random frame per video, class against the rest
    one = data[:, np.arange(per_class), rng.integers(0, config.num_frames, per_class)]
    for k in range(len(MOTION_CLASSES)):
        rest = np.delete(one, k, axis=0).reshape(-1, 6)
        for j in range(6):
            assert stats.ks_2samp(one[k, :, j], rest[:, j]).pvalue > 1e-3, (MOTION_CLASSES[k], j)
    # the tests have power: the first frame alone does tell right from left
    first_x = data[:, :, 0, 0]
    right, left = MOTION_CLASSES.index("right"), MOTION_CLASSES.index("left")
    assert stats.ks_2samp(first_x[right], first_x[left]).pvalue < 1e-6


def _flow_motion(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean (flow x, flow y, divergence, curl) of Farneback flow inside the object's box.

    Divergence and curl are about the box centre; curl > 0 turns +x toward +y (down),
    i.e. clockwise on screen.
    """
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    y, x = np.mgrid[0:frames.shape[1], 0:frames.shape[2]] + 0.5
    total = np.zeros(4)
    for t in range(len(frames) - 1):
        flow = cv2.calcOpticalFlowFarneback(grey[t], grey[t + 1], None, 0.5, 2, 9, 3, 5, 1.1, 0)
        (bx, by, bw, bh), (cx, cy) = boxes[t], _centres(boxes[t])
        inside = (x >= bx) & (x < bx + bw) & (y >= by) & (y < by + bh)
        fx, fy, dx, dy = flow[..., 0][inside], flow[..., 1][inside], x[inside] - cx, y[inside] - cy
        total += [fx.mean(), fy.mean(), (dx * fx + dy * fy).mean(), (dx * fy - dy * fx).mean()]
    return total / (len(frames) - 1)


# the Farneback feature that must be positive (+1) or negative (-1) for each class
EXPECTED_FLOW = {"right": (0, 1), "left": (0, -1), "down": (1, 1), "up": (1, -1),
                 "rotate_cw": (3, 1), "rotate_ccw": (3, -1), "grow": (2, 1), "shrink": (2, -1)}


@pytest.mark.parametrize("cls", MOTION_CLASSES)
def test_rendered_pixels_move_as_the_class_says(cls):
    config = SyntheticConfig(num_frames=12, size=64)
    rng = np.random.default_rng(MOTION_CLASSES.index(cls))
    feature, sign = EXPECTED_FLOW[cls]
    for _ in range(4):
        frames, boxes = render_video(cls, rng, config)
        assert np.sign(_flow_motion(frames, boxes)[feature]) == sign
        shift = (_centres(boxes[-1]) - _centres(boxes[0])) / config.size
        growth = np.sqrt(boxes[-1, 2] * boxes[-1, 3] / (boxes[0, 2] * boxes[0, 3]))
        if feature < 2:  # translation: the box moves along its axis only
            assert sign * shift[feature] > 0.25 and abs(shift[1 - feature]) < 1e-3
        else:  # in place (the box centre is not the pivot, so it drifts a little)
            assert np.abs(shift).max() < 0.1 and (feature == 3 or growth ** sign > 1.5)


def test_boxes_enclose_exactly_what_changes_between_frames():
    """Pixels that change between the first and last frame lie in the two boxes, and (for
    classes whose extreme points change) their bounding box is the boxes' hull."""
    config = SyntheticConfig(num_frames=10, size=64)
    rng = np.random.default_rng(11)
    pixel = np.arange(config.size)
    for cls in MOTION_CLASSES:
        frames, boxes = render_video(cls, rng, config)
        changed = np.linalg.norm(frames[-1].astype(float) - frames[0], axis=2) > 45  # noise ~ 15
        near_a_box = np.zeros_like(changed)
        for bx, by, bw, bh in boxes[[0, -1]]:  # pixels [i, i + 1] meeting the box grown by 1
            rows = (pixel + 1 > by - 1) & (pixel < by + bh + 1)
            cols = (pixel + 1 > bx - 1) & (pixel < bx + bw + 1)
            near_a_box |= rows[:, None] & cols[None, :]
        assert changed[~near_a_box].sum() <= 2, cls
        if not cls.startswith("rotate"):
            ys, xs = np.nonzero(changed & near_a_box)  # not a rare noise pixel far away
            found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            hull = np.concatenate([np.minimum(boxes[0, :2], boxes[-1, :2]),
                                   np.maximum(boxes[0, :2] + boxes[0, 2:], boxes[-1, :2] + boxes[-1, 2:])])
            assert np.abs(found - hull).max() < 2.5, cls  # thin tips cover little of a pixel


def test_render_object_tells_what_it_drew_and_forces_a_shape():
    config = SyntheticConfig(num_frames=6, size=32)
    frames, boxes = render_video("left", np.random.default_rng(5), config)
    drawn = render_object("left", np.random.default_rng(5), config)
    np.testing.assert_array_equal(drawn.frames, frames)
    np.testing.assert_array_equal(drawn.boxes, boxes)
    assert drawn.shape in SHAPES and drawn.colours.shape == (2, 3)
    assert 0.22 <= drawn.diameter <= 0.5
    other = next(s for s in SHAPES if s != drawn.shape)
    forced = render_object("left", np.random.default_rng(5), config, shape=other)
    assert forced.shape == other
    np.testing.assert_array_equal(forced.colours, drawn.colours)  # every other draw unchanged
    assert not np.array_equal(forced.frames, frames)
    with pytest.raises(ValueError, match="shape: unknown shape 'blob'"):
        render_object("left", np.random.default_rng(5), config, shape="blob")


@pytest.mark.parametrize("kwargs, option", [({"object_size": (0.3, 0.2)}, "object_size"),
                                            ({"object_size": (0.0, 0.2)}, "object_size"),
                                            ({"speed": (0.02, 0.01)}, "speed"), ({"speed": (-0.1, 0.1)}, "speed"),
                                            ({"camera": -0.01}, "camera"), ({"camera": 1.5}, "camera"),
                                            ({"size": 31}, "size"), ({"objects": (2, 1)}, "objects")])
def test_scene_config_errors_name_the_option(kwargs, option):
    from deepvideo.data.synthetic import SceneConfig

    with pytest.raises(ValueError, match=rf"^{option}: "):
        SceneConfig(**kwargs)
