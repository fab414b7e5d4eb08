"""Spatio-temporal action detection end to end: the built-in benchmark in AVA's formats, the
RoI head, deepvideo ava synth|train|eval|run through the engine, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepvideo.ava import AvaBox, read_detections, read_groundtruth, read_label_map, write_detections, write_groundtruth
from deepvideo.ava.apply import boxes_from_csv, detect_actions
from deepvideo.ava.model import build_ava_model
from deepvideo.ava.synthetic import MIN_SIDE, AvaSynthConfig, make_ava_dataset, scene_boxes
from deepvideo.ava.train import KeyframeSet, clip_at, keyframes_of, video_files
from deepvideo.cli import main
from deepvideo.data.synthetic import SCENE_ACTIONS, SceneConfig, render_scene
from deepvideo.io import VideoReader, VideoTooShortError

from conftest import one_line_error

TINY = AvaSynthConfig(train=6, val=3, seconds=2, size=32, seed=3)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_ava_dataset(tmp_path_factory.mktemp("ava") / "bench", TINY, progress=False)


def test_scene_boxes_masks_and_actions_agree():
    scene = render_scene(np.random.default_rng(7), SceneConfig(size=48, num_frames=12, objects=(3, 3), still=0.5))
    again = render_scene(np.random.default_rng(7), SceneConfig(size=48, num_frames=12, objects=(3, 3), still=0.5))
    assert np.array_equal(scene.frames, again.frames) and np.array_equal(scene.masks, again.masks)
    assert scene.frames.shape == (12, 48, 48, 3) and scene.boxes.shape == (12, 3, 4)
    for k, actions in enumerate(scene.actions):
        assert set(actions) <= set(SCENE_ACTIONS) and scene.moving[k] == (actions != ("stand",))
        for t in range(12):
            ys, xs = np.nonzero(scene.masks[t] == k + 1)
            if len(xs):  # the box is the extent of the object's visible pixels
                assert scene.boxes[t, k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            else:
                assert np.isnan(scene.boxes[t, k]).all()


def test_a_moving_object_moves_against_the_background():
    config = SceneConfig(size=64, num_frames=16, objects=(1, 1), still=0.0, change=0.0, camera=0.0)
    for seed in range(20):
        scene = render_scene(np.random.default_rng(seed), config)
        if scene.actions[0][0] == "move_right":
            centres = (scene.boxes[:, 0, 0] + scene.boxes[:, 0, 2]) / 2
            assert centres[-1] - centres[0] > 0.006 * 64 * 15 * 0.8  # the slowest speed, less rounding
            return
    pytest.fail("no move_right scene in 20 seeds")


def test_the_benchmark_is_ava_csv_and_resumes(bench):
    labels = read_label_map(bench / "annotations" / "label_map.pbtxt")
    assert [label.name for label in labels.values()] == list(SCENE_ACTIONS) and list(labels) == list(range(1, 9))
    boxes = read_groundtruth(bench / "annotations" / "train.csv")
    assert {b.video_id for b in boxes} == {f"train_{i:03d}" for i in range(6)}
    assert {b.timestamp for b in boxes} == {1}  # 2 s videos: one keyframe with a clip around it
    assert all((b.x2 - b.x1) * 32 >= MIN_SIDE - 1e-6 for b in boxes)
    with VideoReader(bench / "videos" / "train_000.mp4") as reader:
        assert (reader.num_frames, reader.fps, reader.width) == (16, 8.0, 32)
    stamp = (bench / "videos" / "val_002.mp4").stat().st_mtime_ns
    make_ava_dataset(bench, TINY, progress=False)
    assert (bench / "videos" / "val_002.mp4").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another config"):
        make_ava_dataset(bench, AvaSynthConfig(train=5, val=3, seconds=2, size=32), progress=False)


def test_scene_boxes_one_row_per_action():
    boxes = np.full((16, 2, 4), np.nan, np.float32)
    boxes[8] = [[4, 4, 12, 12], [0, 0, 2, 30]]  # the second is too thin to annotate
    rows = scene_boxes("v", boxes, (("move_up", "rotate"), ("stand",)), fps=8.0, size=32)
    assert [(r.timestamp, r.action_id, r.person_id, r.box) for r in rows] == [
        (1, 4, 0, (0.125, 0.125, 0.375, 0.375)), (1, 6, 0, (0.125, 0.125, 0.375, 0.375))]


def test_roi_features_see_only_around_their_box():
    model = build_ava_model("roi3d", 8, clip_len=4).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    boxes = torch.tensor([[0.0, 4, 4, 16, 16]])
    changed = clip.clone()
    changed[..., 40:, 40:] = torch.randn_like(changed[..., 40:, 40:])
    with torch.no_grad():
        assert torch.allclose(model(clip, boxes), model(changed, boxes), atol=1e-6)
        moved = model(changed, torch.tensor([[0.0, 44, 44, 60, 60]]))
        assert not torch.allclose(model(clip, torch.tensor([[0.0, 44, 44, 60, 60]])), moved, atol=1e-3)
    for name, options in (("roi3d", {"time_pool": "keep", "context": 1.5}), ("roi2d", {})):
        net = build_ava_model(name, 5, **options)
        out = net(torch.randn(2, 3, net.clip_len, 32, 32), torch.tensor([[0.0, 1, 1, 9, 9], [1.0, 3, 3, 30, 20],
                                                                           [1.0, 0, 0, 32, 32]]))
        assert out.shape == (3, 5)
    with pytest.raises(ValueError, match="time_pool"):
        build_ava_model("roi3d", 5, time_pool="max")
    with pytest.raises(ValueError, match="did you mean roi3d"):
        build_ava_model("roi4d", 5)


def test_mirrored_samples_swap_their_paired_actions(bench):
    labels = read_label_map(bench / "annotations" / "label_map.pbtxt")
    frames = keyframes_of(read_groundtruth(bench / "annotations" / "train.csv"))
    plain = KeyframeSet(frames, video_files(bench / "videos"), list(labels), 4)
    mirrored = KeyframeSet(frames, video_files(bench / "videos"), list(labels), 4, flip_swap=[(1, 2)], seed=5)
    flipped = 0
    for index in range(len(plain)):
        clip, boxes, actions, valid = plain[index]
        clip2, boxes2, actions2, valid2 = mirrored[index]
        if torch.equal(clip2, clip):
            assert torch.equal(boxes2, boxes) and torch.equal(actions2, actions)
            continue
        flipped += 1
        assert torch.equal(clip2, clip.flip(-1)) and torch.equal(valid2, valid)
        assert torch.allclose(boxes2[valid][:, [2, 0]], 1 - boxes[valid][:, [0, 2]])
        assert torch.equal(actions2[:, [1, 0, *range(2, 8)]], actions)  # move_right <-> move_left
    assert 0 < flipped < len(plain)


def test_train_eval_run(bench, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["ava", "train", "--data", str(bench), "--out", str(run), "--epochs", "2", "--batch-size", "4",
                 "--model-opt", "clip_len=4", "--flip-swap", "move_left:move_right"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ava: ") and out[1].startswith("epoch 1: train loss ") and "| val map " in out[1]
    assert out[-1].startswith(f"{run / 'best.pt'}: best val_map ")
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",").count("val_map") == 1 and len(rows) == 3

    detections = tmp_path / "det.csv"
    assert main(["ava", "eval", "--data", str(bench), "--checkpoint", str(run / "best.pt"), "--out", str(detections),
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert 0 <= scored["mAP"] <= 1 and scored["num_frames"] == 3
    found = read_detections(detections)
    truth = keyframes_of(read_groundtruth(bench / "annotations" / "val.csv"))
    assert len(found) == 8 * sum(len(k.boxes) for k in truth)  # every box scored for every class
    assert main(["ava", "eval", "--data", str(bench), "--pred", str(detections), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == pytest.approx(scored["mAP"], abs=1e-12)

    video, overlay, result = bench / "videos" / "val_000.mp4", tmp_path / "overlay.mp4", tmp_path / "run.csv"
    assert main(["ava", "run", str(video), "--checkpoint", str(run / "best.pt"), "--boxes",
                 str(bench / "annotations" / "val.csv"), "--out", str(result), "--video-out", str(overlay)]) == 0
    mine = [d for d in found if d.video_id == "val_000"]
    again = read_detections(result)
    assert [(d.timestamp, d.box, d.action_id) for d in again] == [(d.timestamp, d.box, d.action_id) for d in mine]
    assert np.allclose([d.score for d in again], [d.score for d in mine], atol=1e-5)
    with VideoReader(overlay) as reader:
        assert reader.num_frames == 16

    assert main(["ava", "train", "--data", str(bench), "--out", str(run), "--epochs", "2", "--batch-size", "4",
                 "--model-opt", "clip_len=4", "--flip-swap", "move_left:move_right", "--resume"]) == 0
    # a finished run resumes to nothing more
    assert (run / "metrics.csv").read_text().splitlines() == rows


def test_bad_input(bench, tmp_path, capsys):
    bad = tmp_path / "train.csv"
    rows = (bench / "annotations" / "train.csv").read_text().splitlines()
    bad.write_text("\n".join(rows + ["train_000,0001,0.5,0.5,0.4,0.9,1,0", "ghost,0001,0.1,0.1,0.5,0.5,1,0"]) + "\n")
    with pytest.warns(UserWarning) as caught:
        assert main(["ava", "train", "--data", str(bench), "--train-csv", str(bad), "--out", str(tmp_path / "r"),
                     "--epochs", "1", "--model", "roi2d"]) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert "x2" in messages and "1 videos that are not there (first: ghost)" in messages
    capsys.readouterr()
    cases = [(["run", str(bench / "videos" / "val_000.mp4"), "--checkpoint", str(tmp_path / "r" / "best.pt")],
              "--boxes"),
             (["train", "--data", str(bench), "--out", str(tmp_path / "x"), "--model-opt", "time_pool=max"],
              "time_pool"),
             (["eval", "--data", str(bench)], "--checkpoint"),
             (["train", "--data", str(bench), "--out", str(tmp_path / "x"), "--flip-swap", "left:right"],
              "--flip-swap: 'left' is not an action")]
    for argv, fragment in cases:
        assert main(["ava", *argv]) == 2
        one_line_error(capsys.readouterr().err, fragment, lines_above=True)
    # a person detector's CSV (8th column a score) as the boxes, for the single-frame model: the keyframe at
    # the video's very end (2 s of a 2 s video) has no frame and is left out with a warning, not a crash
    truth = [b for b in read_groundtruth(bench / "annotations" / "val.csv") if b.video_id == "val_000"]
    scored = [AvaBox(b.video_id, b.timestamp, *b.box, b.action_id, score=s)
              for b, s in zip(truth, [0.9, 0.2] * len(truth))]
    write_detections(tmp_path / "persons.csv", scored + [AvaBox("val_000", 2, 0.1, 0.1, 0.5, 0.5, 1, score=0.9)])
    with pytest.warns(UserWarning, match="1 timestamps of val_000 have no keyframe"):
        rows = detect_actions(bench / "videos" / "val_000.mp4", tmp_path / "r" / "best.pt",
                              boxes=tmp_path / "persons.csv", min_box_score=0.5)
    kept = {b.box for b, s in zip(truth, [0.9, 0.2] * len(truth)) if s >= 0.5}
    assert {r.timestamp for r in rows} == {1} and {r.box for r in rows} == kept and len(rows) == 8 * len(kept)
    # ground truth with person ids and a bad line: still ground truth (a person id is no score to filter on)
    lines = (bench / "annotations" / "val.csv").read_text().splitlines()
    (tmp_path / "gt_bad.csv").write_text("\n".join(lines + ["val_000,0001,0.5,0.5,0.4,0.9,1,0"]) + "\n")
    with pytest.warns(UserWarning, match="skipped 1 bad lines"):
        from_truth = boxes_from_csv(tmp_path / "gt_bad.csv", "val_000", min_score=0.5)
    assert {tuple(b) for b in from_truth[1].tolist()} == {tuple(np.float32(b.box).tolist()) for b in truth}
    write_groundtruth(tmp_path / "other.csv", read_groundtruth(bench / "annotations" / "val.csv"))
    assert main(["ava", "run", str(bench / "videos" / "train_000.mp4"), "--checkpoint", str(tmp_path / "r" / "best.pt"),
                 "--boxes", str(tmp_path / "other.csv")]) == 2
    one_line_error(capsys.readouterr().err, "no box of video 'train_000'", lines_above=True)


def test_tracked_actors_keep_their_id_across_keyframes(bench, tmp_path):
    from deepvideo.ava.train import train_ava
    from deepvideo.engine import TrainConfig
    from deepvideo.io import write_video
    from deepvideo.track.mot import make_tracker

    run = train_ava(tmp_path / "run", bench / "videos", bench / "annotations" / "train.csv",
                    bench / "annotations" / "label_map.pbtxt", model="roi3d", model_options={"clip_len": 4},
                    train=TrainConfig(epochs=1, batch_size=4, progress=False))
    scene = render_scene(np.random.default_rng(11), SceneConfig(size=32, num_frames=32, objects=(2, 2), still=0.0,
                                                                camera=0.0, speed=(0.004, 0.006)))
    video = write_video(tmp_path / "scene.mp4", scene.frames, 8.0)

    def detector(frame, number):  # the objects' true boxes, x, y, w, h, score
        boxes = scene.boxes[number - 1]
        return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], np.ones(len(boxes))])

    rows = detect_actions(video, run["checkpoint"], detector=detector, tracker=make_tracker("sort", min_hits=1))
    assert {r.timestamp for r in rows} == {1, 2, 3}
    ids_of_objects = []
    for stamp in (1, 2, 3):
        mine = [r for r in rows if r.timestamp == stamp]
        assert len(mine) == 2 * 8  # two actors, eight actions each
        truth = scene.boxes[8 * stamp] / 32
        owner = {}  # object index -> the id of the actor on its box
        for r in mine:
            k = int(np.argmin(np.abs(truth - np.array(r.box)).sum(axis=1)))
            assert np.abs(truth[k] - np.array(r.box)).max() < 0.1
            owner.setdefault(k, set()).add(r.person_id)
        ids_of_objects.append(owner)
    assert ids_of_objects[0] == ids_of_objects[1] == ids_of_objects[2]
    assert sorted(len(ids) for ids in ids_of_objects[0].values()) == [1, 1]


def test_unreadable_keyframes_are_skipped_counted_and_replaced(bench, tmp_path):
    import shutil

    from deepvideo.ava import AvaBox
    from deepvideo.data.datasets import BadVideoWarning

    videos = tmp_path / "videos"
    shutil.copytree(bench / "videos", videos)
    data = (videos / "train_001.mp4").read_bytes()
    (videos / "train_001.mp4").write_bytes(data[:len(data) // 3])  # truncated
    boxes = list(read_groundtruth(bench / "annotations" / "train.csv"))
    boxes.append(AvaBox("train_002", 9, 0.1, 0.1, 0.4, 0.4, 5, 0))  # past the end of a 2 s video
    frames = keyframes_of(boxes)
    dataset = KeyframeSet(frames, video_files(videos), list(range(1, 9)), 4)
    with pytest.warns(BadVideoWarning) as caught:
        items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == len(frames) == 7 and all(item[0].shape == (3, 4, 32, 32) for item in items)
    bad = {(frames[i].video_id, frames[i].timestamp) for i in dataset.bad_indices()}
    assert bad == {("train_001", 1), ("train_002", 9)}
    assert any("past the video's end" in str(w.message) for w in caught)
    with VideoReader(bench / "videos" / "train_000.mp4") as reader:  # a wrong time offset: before the start
        with pytest.raises(VideoTooShortError, match="before the video's start"):
            clip_at(reader, -899, 4)


def test_run_on_real_footage_with_tracked_detections(bench, tmp_path, shared_data, capsys):
    """A real multi-person clip (mmaction2's spatio-temporal demo, 340x256, 6 fps): MOG2 boxes
    tracked by SORT, scored at every whole second; the output is valid AVA."""
    from deepvideo.ava.train import train_ava
    from deepvideo.engine import TrainConfig

    video = shared_data / "videos" / "mmaction2__demo_spatiotemporal_det.mp4"
    run = train_ava(tmp_path / "run", bench / "videos", bench / "annotations" / "train.csv",
                    bench / "annotations" / "label_map.pbtxt", model="roi3d", model_options={"clip_len": 4},
                    train=TrainConfig(epochs=1, batch_size=4, progress=False))
    out, overlay = tmp_path / "real.csv", tmp_path / "real.mp4"
    assert main(["ava", "run", str(video), "--checkpoint", str(run["checkpoint"]), "--detector", "mog2",
                 "--tracker", "sort", "--out", str(out), "--video-out", str(overlay)]) == 0
    rows = read_detections(out)
    with VideoReader(video) as reader:
        duration, frames = reader.duration, reader.num_frames
    assert rows and {r.video_id for r in rows} == {video.stem}
    assert {r.timestamp for r in rows} <= set(range(1, int(duration) + 1))
    assert len(rows) % 8 == 0  # every box scored for every action
    with VideoReader(overlay) as reader:
        assert reader.num_frames == frames


def test_time_offset_excluded_and_eval_checks(bench, tmp_path, capsys):
    """AVA's keyframes name seconds of the movie (902-1798) in videos that start at 900 s:
    --time-offset 900 trains, scores and runs on them, and is kept in the checkpoint."""
    import warnings

    from deepvideo.ava import write_excluded, write_label_map
    from deepvideo.data.datasets import BadVideoWarning

    shifted = {}
    for split in ("train", "val"):
        shifted[split] = tmp_path / f"{split}.csv"
        write_groundtruth(shifted[split], [AvaBox(b.video_id, b.timestamp + 900, *b.box, b.action_id, b.person_id)
                                           for b in read_groundtruth(bench / "annotations" / f"{split}.csv")])
    # a keyframe past the end of its video, excluded: never read (a BadVideoWarning would be an error here)
    with open(shifted["train"], "a") as f:
        f.write("train_000,0909,0.1,0.1,0.5,0.5,1,0\n")
    write_excluded(tmp_path / "excluded.csv", [("train_000", 909)])
    layout = ["--videos", str(bench / "videos"), "--label-map", str(bench / "annotations" / "label_map.pbtxt"),
              "--val-csv", str(shifted["val"])]
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadVideoWarning)
        assert main(["ava", "train", *layout, "--train-csv", str(shifted["train"]), "--out", str(run), "--epochs", "1",
                     "--model", "roi2d", "--time-offset", "900", "--excluded", str(tmp_path / "excluded.csv")]) == 0
    capsys.readouterr()
    assert main(["ava", "eval", *layout, "--checkpoint", str(run / "best.pt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["num_frames"] == 3
    again = tmp_path / "again.csv"
    assert main(["ava", "eval", *layout, "--checkpoint", str(run / "best.pt"), "--out", str(again), "--json"]) == 0
    capsys.readouterr()
    rows = detect_actions(bench / "videos" / "val_001.mp4", run / "best.pt", boxes=shifted["val"])
    assert {r.timestamp for r in rows} == {901}
    mine = [d for d in read_detections(again) if d.video_id == "val_001"]
    assert [(d.box, d.action_id) for d in rows] == [(d.box, d.action_id) for d in mine]
    assert np.allclose([d.score for d in rows], [d.score for d in mine], atol=1e-5)

    # a video of the ground truth that is not there is named; a label map without the model's classes is refused
    with pytest.warns(UserWarning, match="1 videos of .* are not there"):
        assert main(["ava", "eval", *layout, "--annotations", str(shifted["train"]), "--checkpoint",
                     str(run / "best.pt"), "--videos", str(_without(bench / "videos", "train_003", tmp_path)),
                     "--excluded", str(tmp_path / "excluded.csv"), "--json"]) == 0
    capsys.readouterr()
    write_label_map(tmp_path / "other.pbtxt", {1: "move_left", 2: "move_right"})
    assert main(["ava", "eval", *layout, "--label-map", str(tmp_path / "other.pbtxt"), "--checkpoint",
                 str(run / "best.pt")]) == 2
    one_line_error(capsys.readouterr().err, "are not in the label map", lines_above=True)


def _without(videos, stem, tmp_path):
    """A copy of the folder ``videos`` without the video ``stem``."""
    import shutil

    copy = tmp_path / "some_videos"
    shutil.copytree(videos, copy, ignore=shutil.ignore_patterns(f"{stem}.*"))
    return copy


def test_video_ids_are_file_stems_and_must_be_unique(tmp_path):
    from deepvideo.io import write_video

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    write_video(tmp_path / "a" / "clip1.mp4", frames, 8.0)
    write_video(tmp_path / "b" / "clip2.mkv", frames, 8.0)
    (tmp_path / "notes.txt").write_text("not a video")
    assert video_files(tmp_path) == {"clip1": tmp_path / "a" / "clip1.mp4", "clip2": tmp_path / "b" / "clip2.mkv"}
    write_video(tmp_path / "b" / "clip1.avi", frames, 8.0)
    with pytest.raises(ValueError, match="two videos of id 'clip1'"):
        video_files(tmp_path)
