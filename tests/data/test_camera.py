"""The real-footage camera-motion dataset: geometry, motion direction, files on disk, resume."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from deepvideo.data.camera import (
    CAMERA_CLASSES,
    DEFAULT_CAMERA_SPLITS,
    CameraClip,
    CameraConfig,
    camera_splits,
    clip_rng,
    cut_free_starts,
    draw_clip,
    frame_jumps,
    make_camera_dataset,
    render_clip,
)
from deepvideo.data.datasets import BadVideoWarning, parse_folder
from deepvideo.io import VideoReader, open_video, read_video, write_video

from conftest import close_videos

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos"
TINY = CameraConfig(num_frames=8, size=32, clips_per_video=1)


def texture(seed: int, width: int = 160, height: int = 120, sigma: float = 2.0) -> np.ndarray:
    """A smooth random grey texture ``(H, W, 3)`` uint8 spanning the grey levels (grey: no
    detail is lost to yuv420p's half-resolution chroma)."""
    noise = np.random.default_rng(seed).standard_normal((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.repeat(np.round(20 + 215 * smooth).astype(np.uint8)[..., None], 3, axis=2)


def still_video(path: Path, seed: int = 0, num_frames: int = 40, width: int = 160, height: int = 120,
                fps: float = 10) -> Path:
    """A video of one still texture: any motion in a clip cut from it is the camera's."""
    frames = np.repeat(texture(seed, width, height)[None], num_frames, axis=0)
    return write_video(path, frames, fps, keyframe_interval=8, crf=4)


def measured_shift(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """How far the content moved from grey image ``first`` to ``last`` ``(dx, dy)``: phase
    correlation (biased toward whole pixels), refined by a 0.05-pixel search."""
    window = cv2.createHanningWindow(first.shape[::-1], cv2.CV_32F)
    coarse = np.array(cv2.phaseCorrelate(first, last, window)[0])
    height, width = first.shape
    x0, y0 = int(abs(coarse[0])) + 3, int(abs(coarse[1])) + 3  # compare where both images have content
    cols = slice(x0, None) if coarse[0] > 0 else slice(0, width - x0)
    rows = slice(y0, None) if coarse[1] > 0 else slice(0, height - y0)
    candidates = [coarse + (dx, dy) for dx in np.arange(-1, 1.01, 0.05) for dy in np.arange(-1, 1.01, 0.05)]
    errors = [np.abs(cv2.warpAffine(first, np.float32([[1, 0, x], [0, 1, y]]), (width, height))
                     - last)[rows, cols].mean() for x, y in candidates]
    return candidates[int(np.argmin(errors))]


def growth(first: np.ndarray, last: np.ndarray) -> tuple[float, float]:
    """How much the content of grey ``(64, 64)`` image ``first`` grew about the centre in
    ``last`` (searched in 1..2), and the mean absolute difference left at that scale."""
    scales = np.exp(np.linspace(0, np.log(2.0), 201))
    errors = [np.abs(cv2.warpAffine(first, cv2.getRotationMatrix2D((31.5, 31.5), 0, s), (64, 64))
                     - last)[8:56, 8:56].mean() for s in scales]
    best = int(np.argmin(errors))
    return float(scales[best]), float(errors[best])


def text_file(path: Path) -> Path:
    path.write_text("this is not a video\n")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    return {"a": still_video(folder / "a.mp4", 0), "b": still_video(folder / "b.mp4", 1, fps=12),
            "c": still_video(folder / "c.mp4", 2), "d": still_video(folder / "d.mp4", 3),
            "short": still_video(folder / "short.mp4", 4, num_frames=6),
            "text": text_file(folder / "text.mp4")}


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory) -> tuple[Path, list[warnings.WarningMessage]]:
    """A dataset with a too-short train source and an undecodable val source."""
    root = tmp_path_factory.mktemp("camera") / "data"
    config = CameraConfig(num_frames=8, size=32, clips_per_video={"train": 2, "val": 1, "test": 1})
    splits = {"train": [sources["a"], sources["b"], sources["short"]], "val": [sources["c"], sources["text"]],
              "test": [sources["d"]]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_camera_dataset(splits, root, config)
    return root, caught


def clips(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))


# -- configuration and splits ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"classes": ("pan_left", "tilt")}, "classes"), ({"classes": ("zoom_in", "zoom_in")}, "classes"),
    ({"classes": ()}, "classes"), ({"clips_per_video": 0}, "clips_per_video"),
    ({"clips_per_video": {"train": 3}}, "clips_per_video"), ({"num_frames": 1}, "num_frames"),
    ({"size": 33}, "size"), ({"size": 8}, "size"), ({"stride": 0}, "stride"), ({"fps": 0}, "fps"),
    ({"side_range": (0.5, 0.7)}, "side_range"), ({"zoom_range": (0.9, 1.5)}, "zoom_range"),
    ({"travel_range": (0.4, 0.3)}, "travel_range"), ({"crf": 52}, "crf"),
    ({"keyframe_interval": 0}, "keyframe_interval")])
def test_config_errors_are_one_line_and_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: ") as info:
        CameraConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_normalises_counts_and_is_json_ready():
    config = CameraConfig(clips_per_video=3, classes=["zoom_out", "pan_up"])
    assert config.clips_per_video == {"train": 3, "val": 3, "test": 3}
    assert config.classes == ("zoom_out", "pan_up")
    assert config == CameraConfig(clips_per_video={"test": 3, "val": 3, "train": 3}, classes=("zoom_out", "pan_up"))
    assert json.loads(json.dumps(config.to_dict()))["clips_per_video"] == {"train": 3, "val": 3, "test": 3}
    assert CameraConfig(num_frames=16, stride=3).span == 46
    assert CAMERA_CLASSES == ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")


def test_splits_hold_sources_out_by_name(sources, tmp_path):
    other = still_video(tmp_path / "a.mp4", 9)  # same name as sources["a"], other folder
    with pytest.raises(ValueError, match=r"^a\.mp4: source is in both train and test") as info:
        make_camera_dataset({"train": [sources["a"]], "test": [other]}, tmp_path / "out", TINY)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^a\.mp4: source is twice in train"):
        make_camera_dataset({"train": [sources["a"], sources["a"]]}, tmp_path / "out", TINY)
    with pytest.raises(ValueError, match="same stem"):
        make_camera_dataset({"train": [sources["a"], sources["a"].with_suffix(".mkv")]}, tmp_path / "out", TINY)
    with pytest.raises(ValueError, match=r"missing\.mp4: no such file"):
        make_camera_dataset({"train": [tmp_path / "missing.mp4"]}, tmp_path / "out", TINY)
    with pytest.raises(ValueError, match="^splits: unknown split 'holdout'"):
        make_camera_dataset({"holdout": [sources["a"]]}, tmp_path / "out", TINY)
    assert not (tmp_path / "out").exists()


def test_camera_splits_resolves_names_and_names_a_missing_file(sources):
    folder = sources["a"].parent
    assert camera_splits(folder, {"train": ["a.mp4", "b.mp4"], "test": ["d.mp4"]}) == {
        "train": [folder / "a.mp4", folder / "b.mp4"], "test": [folder / "d.mp4"]}
    with pytest.raises(ValueError, match=r"nope\.mp4: no such file \(a val source"):
        camera_splits(folder, {"train": ["a.mp4"], "val": ["nope.mp4"]})


# -- geometry ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, axis, sign", [("pan_left", 0, -1), ("pan_right", 0, 1), ("pan_up", 1, -1),
                                             ("pan_down", 1, 1)])
def test_pans_move_the_centre_at_constant_speed_and_keep_the_side(cls, axis, sign):
    config = CameraConfig()
    clip = draw_clip(cls, clip_rng(config, "train", "v.mp4", cls, 0), config, 100, 320, 240)
    step = np.diff(clip.centres, axis=0)
    assert np.allclose(step[:, axis], step[0, axis]) and sign * step[0, axis] > 0
    assert np.allclose(step[:, 1 - axis], 0) and np.allclose(clip.sides, clip.sides[0])
    travel = abs(clip.centres[-1, axis] - clip.centres[0, axis])
    assert 0.3 * 0.74 <= travel / clip.sides[0] <= 0.45 * 1.35  # travel_range, in units of the mid side
    assert np.array_equal(clip.indices, clip.indices[0] + np.arange(16))


@pytest.mark.parametrize("cls", ["zoom_in", "zoom_out"])
def test_zooms_scale_the_window_about_a_fixed_centre(cls):
    config = CameraConfig(stride=2)
    clip = draw_clip(cls, clip_rng(config, "val", "v.mp4", cls, 3), config, 100, 320, 240)
    assert np.allclose(clip.centres, clip.centres[0])
    ratio = clip.sides[0] / clip.sides[-1]
    assert (ratio > 1) == (cls == "zoom_in") and 1.4 <= max(ratio, 1 / ratio) <= 1.8 + 1e-9
    assert np.allclose(np.diff(np.log(clip.sides), 2), 0)  # constant log-rate
    assert np.array_equal(np.diff(clip.indices), np.full(15, 2)) and clip.indices[-1] < 100


def test_windows_stay_inside_the_frame_and_start_where_allowed():
    config = CameraConfig(side_range=(0.5, 0.55))  # the largest windows the default law allows
    for k in range(300):
        cls = CAMERA_CLASSES[k % 6]
        width, height = (1024, 436) if k % 2 else (240, 320)
        clip = draw_clip(cls, clip_rng(config, "test", f"{k}.mp4", cls, k), config, 60, width, height,
                         starts=[3, 40])
        boxes = clip.boxes()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= width).all()
        assert (boxes[:, 1] + boxes[:, 3] <= height).all()
        assert clip.indices[0] in (3, 40)
    with pytest.raises(ValueError, match="^starts: "):
        draw_clip("pan_up", np.random.default_rng(0), config, 60, 320, 240, starts=[50])


def test_a_random_frames_window_follows_the_same_law_for_every_class():
    """No appearance leak: (x, y, log-side, start) of a random frame of a clip has one law."""
    config, rng = CameraConfig(), np.random.default_rng(0)
    samples = {}
    for cls in CAMERA_CLASSES:
        rows = []
        for i in range(800):
            clip = draw_clip(cls, clip_rng(config, "train", "v.mp4", cls, i), config, 200, 320, 240)
            t = rng.integers(16)
            rows.append((*clip.centres[t], np.log(clip.sides[t]), clip.indices[0]))
        samples[cls] = np.array(rows)
    for cls in CAMERA_CLASSES[1:]:
        for j in range(4):
            assert stats.ks_2samp(samples["pan_left"][:, j], samples[cls][:, j]).pvalue > 1e-3, (cls, j)
    # the same generator gives every class the same start frame
    same = [draw_clip(cls, np.random.default_rng(7), config, 200, 320, 240) for cls in CAMERA_CLASSES]
    assert len({int(c.indices[0]) for c in same}) == 1


def test_render_cuts_exact_windows_with_subpixel_centres():
    frame = texture(5, 200, 150)
    # side == size and an integer corner: an exact copy of the pixels
    clip = CameraClip(np.array([0]), np.array([[30 + 32, 20 + 32]], float), np.array([64.0]))
    assert np.array_equal(render_clip(frame[None], clip, 64)[0], frame[20:84, 30:94])
    # a half-pixel centre: the mean of the two neighbouring integer windows (bilinear)
    half = CameraClip(np.array([0]), np.array([[30.5 + 32, 20 + 32]], float), np.array([64.0]))
    expected = (frame[20:84, 30:94].astype(float) + frame[20:84, 31:95]) / 2
    assert np.abs(render_clip(frame[None], half, 64)[0] - expected).max() <= 1
    # a 128-pixel window shrinks to 64 by 2x2 averaging (INTER_AREA)
    big = CameraClip(np.array([0]), np.array([[100.0, 75.0]]), np.array([128.0]))
    window = frame[11:139, 36:164].astype(float)
    expected = window.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(render_clip(frame[None], big, 64)[0] - expected).max() <= 1


def test_cuts_are_found_and_clips_avoid_them():
    a = texture(0, 64, 48)
    b = 255 - a  # another shot
    drift = np.arange(40)[:, None, None, None] // 2  # a slow change everywhere: no cut
    frames = np.clip(np.stack([a] * 20 + [b] * 20).astype(int) + drift, 0, 255).astype(np.uint8)
    jumps = frame_jumps(iter(frames), 40)
    assert jumps.shape == (39,) and np.flatnonzero(jumps).tolist() == [19]
    starts = cut_free_starts(jumps, 8)
    assert starts.tolist() == list(range(13)) + list(range(20, 33))
    assert cut_free_starts(np.ones(10, bool), 2).size == 0 and cut_free_starts(np.zeros(3, bool), 5).size == 0
    assert frame_jumps(iter(frames[:30]), 40)[29:].all()  # frames that never came: jumps


def test_dataset_clips_stay_within_one_shot(tmp_path):
    shots = np.stack([texture(1)] * 20 + [255 - texture(1)] * 20)
    source = write_video(tmp_path / "shots.mp4", shots, 10, keyframe_interval=8, crf=4)
    flicker = write_video(tmp_path / "flicker.mp4", np.stack(([texture(2)] * 5 + [255 - texture(2)] * 5) * 4), 10)
    config = CameraConfig(num_frames=8, size=32, clips_per_video=3, classes=("pan_left", "zoom_out"))
    with pytest.warns(BadVideoWarning, match=r"flicker\.mp4: skipped .*no stretch of 8 frames without a shot cut"):
        root = make_camera_dataset({"train": [source, flicker]}, tmp_path / "data", config)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["clips"] == {"train": 6} and [s["source"] for s in meta["skipped"]] == ["flicker.mp4"]
    decoded = read_video(source)
    starts = cut_free_starts(frame_jumps(iter(decoded), 40), 8)
    assert starts.tolist() == list(range(13)) + list(range(20, 33))
    for cls in config.classes:
        for i in range(3):
            clip = draw_clip(cls, clip_rng(config, "train", "shots.mp4", cls, i), config, 40, 160, 120, starts)
            assert clip.indices[0] // 20 == clip.indices[-1] // 20  # one shot
            written = read_video(root / "train" / cls / f"shots_{i:03d}.mp4").astype(float)
            assert np.abs(written - render_clip(decoded[clip.indices], clip, 32)).mean() < 3
    loose = make_camera_dataset({"train": [flicker]}, tmp_path / "loose", CameraConfig(**{**config.to_dict(),
                                                                                         "avoid_cuts": False}))
    assert len(clips(loose)) == 6


# -- the dataset on disk ------------------------------------------------------------------------

def test_layout_counts_and_meta(built, sources):
    root, _ = built
    names = clips(root)
    assert len(names) == 24 + 6 + 6
    assert names[:2] == ["test/pan_down/d_000.mp4", "test/pan_left/d_000.mp4"]
    for cls in CAMERA_CLASSES:
        assert {n for n in names if n.startswith(f"train/{cls}/")} == {
            f"train/{cls}/{stem}_{i:03d}.mp4" for stem in "ab" for i in range(2)}
    meta = json.loads((root / "meta.json").read_text())
    assert meta["complete"] and meta["classes"] == list(CAMERA_CLASSES)
    assert meta["clips"] == {"train": 24, "val": 6, "test": 6}
    assert meta["splits"] == {"train": ["a.mp4", "b.mp4", "short.mp4"], "val": ["c.mp4", "text.mp4"],
                              "test": ["d.mp4"]}
    assert meta["sources"]["train"]["a.mp4"] == {"frames": 40, "width": 160, "height": 120, "fps": 10.0,
                                                 "clips": 12}
    assert meta["config"] == CameraConfig(num_frames=8, size=32, clips_per_video={"train": 2, "val": 1,
                                                                                   "test": 1}).to_dict()
    assert not (root / ".partial").exists()
    # what the "folder" data format reads, labels in the dataset's class order
    samples, classes = parse_folder(root / "train", classes=meta["classes"])
    assert len(samples) == 24 and classes == list(CAMERA_CLASSES)
    assert all(CAMERA_CLASSES[label] == path.parent.name for path, label in samples)
    with VideoReader(root / "train" / "zoom_in" / "b_001.mp4") as reader:
        assert (reader.num_frames, reader.width, reader.height, reader.fps) == (8, 32, 32, 12.0)
        assert reader.keyframes.tolist() == [0]


def test_bad_sources_are_skipped_counted_and_warned(built):
    root, caught = built
    meta = json.loads((root / "meta.json").read_text())
    skipped = {s["source"]: s for s in meta["skipped"]}
    assert set(skipped) == {"short.mp4", "text.mp4"}
    assert skipped["short.mp4"]["split"] == "train" and "too short: 6 frames, a clip needs 8" in \
        skipped["short.mp4"]["reason"]
    assert skipped["text.mp4"]["split"] == "val" and "cannot be decoded" in skipped["text.mp4"]["reason"]
    assert "short.mp4" not in meta["sources"]["train"] and "text.mp4" not in meta["sources"]["val"]
    messages = [str(w.message) for w in caught if issubclass(w.category, BadVideoWarning)]
    assert len(messages) == 2
    assert any("short.mp4: skipped" in m and "train" in m for m in messages)
    assert any("text.mp4: skipped" in m and "val" in m for m in messages)
    assert not [n for n in clips(root) if "short" in n or "text" in n]


def test_a_split_left_without_clips_is_an_error(sources, tmp_path):
    with pytest.warns(BadVideoWarning) as caught, \
            pytest.raises(ValueError, match=r"^val: no clips.*\(text\.mp4, short\.mp4\)$"):
        make_camera_dataset({"train": [sources["a"]], "val": [sources["text"], sources["short"]]},
                            tmp_path / "out", TINY)
    assert sorted(str(w.message).split(":")[0].rsplit("/", 1)[1] for w in caught) == ["short.mp4", "text.mp4"]
    assert not (tmp_path / "out").exists()


def test_equal_configs_give_identical_clips_and_files_do_not_depend_on_others(built, sources, tmp_path):
    root, _ = built
    config = CameraConfig(num_frames=8, size=32, clips_per_video={"train": 2, "val": 1, "test": 1},
                          classes=("zoom_out", "pan_right"))
    other = make_camera_dataset({"train": [sources["b"]]}, tmp_path / "other", config)
    names = clips(other)
    assert len(names) == 4
    for name in names:  # the same clip, with other classes, sources and splits around it
        assert close_videos(read_video(other / name), read_video(root / name)), name
    reseeded = make_camera_dataset({"train": [sources["b"]]}, tmp_path / "reseeded",
                                   CameraConfig(**{**config.to_dict(), "seed": 1}))
    assert not close_videos(read_video(reseeded / names[0]), read_video(root / names[0]))


def test_rerun_writes_only_missing_clips_and_refuses_another_config(sources, tmp_path):
    root = tmp_path / "data"
    config = CameraConfig(num_frames=8, size=32, clips_per_video=2, classes=("pan_up", "zoom_in"))
    splits = {"train": [sources["a"]], "test": [sources["d"]]}
    make_camera_dataset(splits, root, config, progress=True)
    files = sorted(root.rglob("*.mp4"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    meta_stamp = (root / "meta.json").stat().st_mtime_ns
    assert make_camera_dataset(splits, root, config) == root  # complete: nothing touched
    assert (root / "meta.json").stat().st_mtime_ns == meta_stamp
    removed = root / "train" / "zoom_in" / "a_001.mp4"
    frames = read_video(removed)
    removed.unlink()
    make_camera_dataset(splits, root, config)
    assert close_videos(read_video(removed), frames)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files if p != removed)
    assert sorted(root.rglob("*.mp4")) == files and json.loads((root / "meta.json").read_text())["complete"]
    with pytest.raises(ValueError, match=r"meta\.json: the dataset there was made with another config "
                                         r"\(seed 0 != 1\)"):
        make_camera_dataset(splits, root, CameraConfig(**{**config.to_dict(), "seed": 1}))
    with pytest.raises(ValueError, match="other test sources"):
        make_camera_dataset({"train": [sources["a"]], "test": [sources["c"]]}, root, config)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and has no meta.json"):
        make_camera_dataset(splits, tmp_path / "busy", config)


def test_written_clips_move_as_their_class_says(tmp_path):
    """On a still texture, the content moves against the window: pan_right -> content left,
    pan_down -> content up, zoom_in -> content grows, by the drawn amounts."""
    source = still_video(tmp_path / "still.mp4", 11, width=320, height=240)
    config = CameraConfig(num_frames=8, size=64, stride=2, clips_per_video=2)
    root = make_camera_dataset({"train": [source]}, tmp_path / "data", config)
    for cls in CAMERA_CLASSES:
        for i in range(2):
            frames = read_video(root / "train" / cls / f"still_{i:03d}.mp4").astype(np.float32).mean(-1)
            clip = draw_clip(cls, clip_rng(config, "train", "still.mp4", cls, i), config, 40, 320, 240)
            if cls.startswith("pan"):
                dx, dy = measured_shift(frames[0], frames[-1])
                expected = -(clip.centres[-1] - clip.centres[0]) * 64 / np.round(clip.sides[0])  # whole-pixel sides
                assert np.abs(np.array([dx, dy]) - expected).max() < 0.4, (cls, dx, dy, expected)
                axis, sign = {"pan_left": (0, 1), "pan_right": (0, -1), "pan_up": (1, 1), "pan_down": (1, -1)}[cls]
                assert sign * (dx, dy)[axis] > 8
            else:  # content grows from first to last frame (zoom_in) or from last to first
                (grow, fit), (back, misfit) = growth(frames[0], frames[-1]), growth(frames[-1], frames[0])
                if cls == "zoom_out":
                    (grow, fit), (back, misfit) = (back, misfit), (grow, fit)
                assert grow == pytest.approx(max(clip.sides) / min(clip.sides), rel=0.02), cls
                assert grow > 1.35 and fit < misfit / 3, (cls, fit, misfit)
    with VideoReader(root / "train" / "pan_up" / "still_000.mp4") as reader:
        assert reader.fps == 5.0  # the source's 10 fps over stride 2


# -- the real sample videos ------------------------------------------------------------------

@pytest.fixture
def shared_videos() -> Path:
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"{SHARED_VIDEOS} is absent")
    return SHARED_VIDEOS


def test_default_splits_are_held_out_and_long_enough(shared_videos):
    splits = camera_splits(shared_videos)
    assert set(splits) == {"train", "val", "test"}
    names = [p.name for ps in splits.values() for p in ps]
    assert len(names) == len(set(names)) == sum(map(len, DEFAULT_CAMERA_SPLITS.values()))
    for left_out in ("mmaction2__rawvideo_dataset_part_0.mp4", "mmaction2__demo_spatiotemporal_det.mp4",
                     "mmflow__demo_gt_flowviz.mp4", "mmtracking__demo.mp4"):
        assert left_out not in names  # copies of other sources' footage, a flow picture, 8 frames
    for path in sum(splits.values(), []):
        with open_video(path) as reader:
            assert reader.num_frames >= CameraConfig().span + 100, path


def test_real_footage_clips(shared_videos, tmp_path):
    config = CameraConfig(num_frames=8, size=32, clips_per_video=3, classes=("pan_right", "pan_down"))
    splits = camera_splits(shared_videos, {"train": ["mmaction2__test.avi"], "test": ["mmaction2__demo.mp4"]})
    root = make_camera_dataset(splits, tmp_path / "real", config)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["clips"] == {"train": 6, "test": 6} and meta["skipped"] == []
    with open_video(splits["test"][0]) as reader:
        jumps = frame_jumps(reader, reader.num_frames)
    assert jumps[186:230].sum() >= 5 and not jumps[:40].any()  # demo.mp4: whip pans from frame 186
    starts = cut_free_starts(jumps, config.span)
    for i in range(3):
        clip = draw_clip("pan_right", clip_rng(config, "test", "mmaction2__demo.mp4", "pan_right", i), config,
                         280, 340, 256, starts)
        assert not jumps[clip.indices[0]:clip.indices[-1]].any()
    window = cv2.createHanningWindow((32, 32), cv2.CV_32F)
    for split, stem in (("train", "mmaction2__test"), ("test", "mmaction2__demo")):
        for cls, axis in (("pan_right", 0), ("pan_down", 1)):
            for i in range(3):  # the content moves against the camera, frame after frame
                frames = read_video(root / split / cls / f"{stem}_{i:03d}.mp4").astype(np.float32).mean(-1)
                shift = sum(np.array(cv2.phaseCorrelate(a, b, window)[0]) for a, b in zip(frames, frames[1:]))
                assert shift[axis] < -3, (split, cls, i, shift)
