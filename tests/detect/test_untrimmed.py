"""The built-in untrimmed benchmark: exact ground truth, written once, resumable, deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepvideo.detect.annotations import read_activitynet
from deepvideo.detect.synthetic import (
    DISTRACTORS,
    SUBSETS,
    UntrimmedConfig,
    VideoPlan,
    default_root,
    make_untrimmed_dataset,
    plan_dataset,
    plan_video,
    render_untrimmed,
)
from deepvideo.io import read_video

from conftest import close_videos

# 4 videos of 8-10 s at 5 fps and 32 px, every action bringing a distractor where room allows
TINY = UntrimmedConfig(classes=("right", "grow"), train=2, validation=1, test=1, duration=(8.0, 10.0),
                       action_length=(1.0, 2.0), actions=(1, 2), min_gap=0.4, distractor_prob=1.0, fps=5.0,
                       size=32)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_untrimmed_dataset(tmp_path_factory.mktemp("untrimmed") / "bench", TINY, progress=False)


def video_file(root: Path, plan: VideoPlan) -> Path:
    return root / "videos" / plan.subset / f"{plan.name}.mp4"


def frames_of(plan: VideoPlan, kinds: set[str]) -> set[int]:
    """The frame indices covered by the plan's events of ``kinds``."""
    return {t for e in plan.events if e.kind in kinds for t in range(e.start, e.start + e.length)}


def snapshot(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its modification time (ns)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_annotations_read_back_as_planned(tiny_root: Path) -> None:
    plans = plan_dataset(TINY)
    assert [p.subset for p in plans] == ["training", "training", "validation", "testing"]
    videos = read_activitynet(tiny_root / "annotations.json")
    assert videos == {p.name: p.annotation(TINY.fps) for p in plans}
    assert {v.subset for v in videos.values()} == set(SUBSETS)
    assert read_activitynet(tiny_root / "annotations.json", subset="testing").keys() == {"testing_0000"}
    meta = json.loads((tiny_root / "meta.json").read_text())
    assert meta["complete"] is True and meta["config"] == TINY.to_dict()
    assert not (tiny_root / ".partial").exists()
    for plan in plans:
        assert len(read_video(video_file(tiny_root, plan))) == plan.num_frames
        assert videos[plan.name].duration == plan.num_frames / TINY.fps
        assert all(s.label in TINY.classes for s in videos[plan.name].segments)
    kinds = {e.kind for p in plans for e in p.events}
    assert kinds == {"action", *DISTRACTORS}  # the tiny set has both kinds of distractor


def test_segments_are_whole_frames_inside_the_video_and_apart() -> None:
    for plan in plan_dataset(TINY):
        annotation = plan.annotation(TINY.fps)
        assert 1 <= len(annotation.segments) <= 2
        for segment in annotation.segments:
            first, stop = segment.start * TINY.fps, segment.end * TINY.fps
            assert first == round(first) and stop == round(stop)
            assert 0 <= segment.start < segment.end <= annotation.duration
            assert 1.0 <= segment.end - segment.start + 1e-9 and segment.end - segment.start <= 2.0 + 1e-9
        events = plan.events  # actions and distractors, in time order, at least min_gap apart
        assert all(a.start + a.length + TINY.gap_frames <= b.start for a, b in zip(events, events[1:]))
        assert events[-1].start + events[-1].length <= plan.num_frames


def test_objects_show_exactly_in_their_segments_before_encoding() -> None:
    for plan in plan_dataset(TINY):
        full = np.stack(list(render_untrimmed(plan, TINY)))
        no_actions = np.stack(list(render_untrimmed(plan, TINY, actions=False)))
        no_distractors = np.stack(list(render_untrimmed(plan, TINY, distractors=False)))
        assert full.shape == (plan.num_frames, TINY.size, TINY.size, 3)
        changed = (full != no_actions).any(axis=(1, 2, 3))
        expected = {round(t) for s in plan.annotation(TINY.fps).segments
                    for t in np.arange(s.start * TINY.fps, s.end * TINY.fps)}
        assert set(np.flatnonzero(changed).tolist()) == expected == frames_of(plan, {"action"})
        # the object is no faint trace: dozens of pixels change a lot in every action frame
        strong = (np.abs(full.astype(int) - no_actions).max(-1) > 40).sum(axis=(1, 2))
        assert (strong[sorted(expected)] >= 5).all()
        changed = (full != no_distractors).any(axis=(1, 2, 3))
        assert set(np.flatnonzero(changed).tolist()) == frames_of(plan, set(DISTRACTORS))


def test_objects_show_exactly_in_their_segments_after_decoding(tiny_root: Path) -> None:
    for plan in plan_dataset(TINY):
        decoded = read_video(video_file(tiny_root, plan)).astype(int)
        background = np.stack(list(render_untrimmed(plan, TINY, actions=False, distractors=False)))
        strong = (np.abs(decoded - background).max(-1) > 40).sum(axis=(1, 2))
        actions, events = frames_of(plan, {"action"}), frames_of(plan, {"action", *DISTRACTORS})
        quiet = sorted(set(range(plan.num_frames)) - events)
        assert quiet and (strong[quiet] <= 1).all()
        assert (strong[sorted(actions)] >= 5).all()


def test_background_moves_between_actions() -> None:
    plan = plan_video(TINY, "training", 0)
    frames = np.stack(list(render_untrimmed(plan, TINY, actions=False, distractors=False))).astype(float)
    assert np.abs(frames[-1] - frames[0]).mean() > 2 * np.abs(frames[1] - frames[0]).mean() > 0


def test_second_call_writes_nothing(tiny_root: Path) -> None:
    before = snapshot(tiny_root)
    assert make_untrimmed_dataset(tiny_root, TINY, progress=False) == tiny_root
    assert snapshot(tiny_root) == before


def test_interrupted_run_is_completed(tiny_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "bench"
    shutil.copytree(tiny_root, root)
    plans = plan_dataset(TINY)
    lost, kept = video_file(root, plans[2]), video_file(root, plans[0])
    original = read_video(lost).astype(float)
    lost.unlink()
    (root / ".partial").mkdir()
    (root / ".partial" / lost.name).write_bytes(b"half a video")  # a kill mid-encode leaves this
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    kept_mtime = kept.stat().st_mtime_ns
    make_untrimmed_dataset(root, TINY, progress=False)
    assert close_videos(read_video(lost), original)  # the same video as an uninterrupted run
    assert kept.stat().st_mtime_ns == kept_mtime
    assert not (root / ".partial").exists()
    assert json.loads((root / "meta.json").read_text())["complete"] is True


def test_another_config_or_foreign_folder_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    other = UntrimmedConfig(**{**TINY.to_dict(), "seed": 1})
    with pytest.raises(ValueError, match=r"another config \(seed 0 != 1\)") as info:
        make_untrimmed_dataset(tiny_root, other, progress=False)
    assert "\n" not in str(info.value)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and has no meta.json"):
        make_untrimmed_dataset(tmp_path, TINY, progress=False)
    assert default_root(other) != default_root(TINY)
    assert default_root(TINY).name.startswith("untrimmed-")


def test_same_seed_same_files(tiny_root: Path, tmp_path: Path) -> None:
    root = make_untrimmed_dataset(tmp_path / "again", TINY, progress=False)
    assert (root / "annotations.json").read_bytes() == (tiny_root / "annotations.json").read_bytes()
    for plan in plan_dataset(TINY):
        rendered = np.stack(list(render_untrimmed(plan, TINY)))
        assert np.array_equal(np.stack(list(render_untrimmed(plan, TINY))), rendered)  # the frames: exactly
        # the encoded files: x264 (one thread) was seen to vary in the last bits between runs of the same frames
        # (PyAV 17.1 and 18.1, 32 px videos), so the decoded videos are compared, not the bytes
        again = read_video(video_file(root, plan))
        assert again.shape == rendered.shape and close_videos(again, read_video(video_file(tiny_root, plan)))
    # a video's plan and frames do not depend on which others are written
    alone = UntrimmedConfig(**{**TINY.to_dict(), "train": 0, "validation": 0})
    assert plan_video(alone, "testing", 0) == plan_video(TINY, "testing", 0)
    reseeded = UntrimmedConfig(**{**TINY.to_dict(), "seed": 1})
    assert [p.events for p in plan_dataset(reseeded)] != [p.events for p in plan_dataset(TINY)]


@pytest.mark.parametrize("field, value", [("classes", ("right", "jump")), ("train", -1), ("fps", 0.0),
                                          ("size", 31), ("duration", (10.0, 5.0)), ("action_length", (0.2, 1.0)),
                                          ("actions", (0, 2)), ("min_gap", -1.0), ("distractor_prob", 1.5),
                                          ("crf", 60), ("keyframe_interval", 0)])
def test_bad_fields_name_themselves(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: ") as info:
        UntrimmedConfig(**{**TINY.to_dict(), field: value})
    assert "\n" not in str(info.value)


def test_duration_must_hold_the_most_actions() -> None:
    with pytest.raises(ValueError, match=r"^duration: 8.0 s cannot hold 5 actions"):
        UntrimmedConfig(**{**TINY.to_dict(), "actions": (1, 5)})
