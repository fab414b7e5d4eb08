"""Pretext tasks: labels that follow from the frames read, shortcut defences, the heads'
losses, and the one-line errors for a model or a folder that does not fit the task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepvideo.data.transforms import KINETICS_MEAN, KINETICS_STD
from deepvideo.ssl.pretext import PERMUTATIONS, PRETEXT_TASKS, Augment
from deepvideo.ssl.train import build_pretext_net, pretext_videos

from conftest import two_direction_frames


def numbered_frames(count: int, side: int = 8) -> np.ndarray:
    """Frames whose every pixel holds 5 * (frame index) + 10: a clip tells which frames it holds."""
    values = 5 * np.arange(count) + 10
    return np.broadcast_to(values[:, None, None, None], (count, side, side, 3)).astype(np.uint8).copy()


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """The frame indices of a ``(3, T, H, W)`` clip made by :func:`numbered_frames` through Augment."""
    mean, std = torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1), torch.tensor(KINETICS_STD).view(3, 1, 1, 1)
    values = ((clip * std + mean) * 255).mean((0, 2, 3))
    return [round((v.item() - 10) / 5) for v in values]


PLAIN = Augment(size=8, resize=8, defences=False)


@pytest.mark.parametrize("seed", range(6))
def test_arrow_and_speed_labels_follow_the_frames(seed):
    rng = np.random.default_rng(seed)
    arrow = PRETEXT_TASKS.build("arrow", clip_len=5, stride=2)
    clip, backward = arrow.sample(numbered_frames(arrow.span), PLAIN, rng)
    expected = list(range(0, 9, 2))
    assert frame_numbers(clip) == (expected[::-1] if backward else expected)
    speed = PRETEXT_TASKS.build("speed", clip_len=4, speeds=(1, 2, 4))
    clip, label = speed.sample(numbered_frames(speed.span), PLAIN, rng)
    numbers = frame_numbers(clip)
    assert speed.span == 13 and np.all(np.diff(numbers) == (1, 2, 4)[label]) and numbers[-1] < 13


@pytest.mark.parametrize("seed", range(6))
def test_order_label_is_the_permutation_of_the_clips(seed):
    order = PRETEXT_TASKS.build("order", clip_len=3, gap=2)
    assert order.span == 3 * 3 + 2 * 2
    clips, label = order.sample(numbered_frames(order.span), PLAIN, np.random.default_rng(seed))
    starts = [frame_numbers(clip)[0] for clip in clips]
    assert [starts.index(s) for s in sorted(starts)] == list(np.argsort(PERMUTATIONS[label]))
    assert sorted(starts) == [0, 5, 10] and all(frame_numbers(c) == list(range(s, s + 3)) for c, s in
                                                  zip(clips, starts))


def test_shuffle_tuples_as_in_the_paper():
    """Positives are (b, c, d) or (d, c, b); negatives (b, a, d) or (b, e, d): the middle frame
    of a negative lies outside the outer two.  Half are positive."""
    shuffle = PRETEXT_TASKS.build("shuffle", window=6, search=2)
    positives = 0
    for seed in range(40):
        frames, label = shuffle.sample(numbered_frames(shuffle.span), PLAIN, np.random.default_rng(seed))
        assert frames.shape == (3, 3, 1, 8, 8)
        first, middle, last = (frame_numbers(frame)[0] for frame in frames)
        inside = min(first, last) < middle < max(first, last)
        assert inside == bool(label) and abs(last - first) <= 5
        positives += label
    assert 10 <= positives <= 30


def test_shuffle_draws_from_the_window_that_moves():
    """Frames 0-7 are still, 8-15 change by the same amount each: windows of 5 are drawn in
    proportion to their motion, which puts 22/26 of tuple frames in the moving half
    (uniformly drawn windows: 50%)."""
    frames = numbered_frames(16)
    frames[:8] = 10
    frames[8:] = (10 + 20 * np.arange(1, 9))[:, None, None, None]
    shuffle = PRETEXT_TASKS.build("shuffle", window=5, search=3)
    numbers = [frame_numbers(f)[0] for seed in range(40)
               for f in shuffle.sample(frames, PLAIN, np.random.default_rng(seed))[0]]
    assert np.mean(np.array(numbers) > 0) > 0.75


def test_defences_give_each_clip_its_own_crop_and_colour():
    frames = np.repeat(two_direction_frames(1, seed=0, num_frames=1, size=32), 16, axis=0)  # a still video
    order = PRETEXT_TASKS.build("order", clip_len=4, gap=0)
    rng = np.random.default_rng(0)
    shared, _ = order.sample(frames[:order.span], Augment(24, 32, defences=False), rng)
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[1], shared[2])
    own, _ = order.sample(frames[:order.span], Augment(24, 32, defences=True), rng)
    assert not torch.allclose(own[0], own[1]) and not torch.allclose(own[1], own[2])
    for clip in own:  # one crop and one colour per clip: its frames stay equal
        assert torch.allclose(clip[:, 0], clip[:, -1])


def test_contrastive_loss_and_accuracy():
    contrastive = PRETEXT_TASKS.build("contrastive", temperature=0.1)
    basis = torch.eye(4)
    matched = torch.stack([basis, basis], dim=1)  # (B=4, 2 views, P=4): each view equals its positive
    loss, correct = contrastive.loss(matched, torch.zeros(4, dtype=torch.long))
    assert correct == 4 and loss < 1e-3
    swapped = torch.stack([basis, basis.roll(1, 0)], dim=1)  # every view nearest to another video's
    loss, correct = contrastive.loss(swapped, torch.zeros(4, dtype=torch.long))
    assert correct == 0 and loss > 5


@pytest.mark.parametrize("task", ["order", "arrow", "speed"])
def test_a_frame_model_cannot_take_a_temporal_task(task):
    with pytest.raises(ValueError, match=f"model single_frame does not see the order of frames.*{task} task"):
        build_pretext_net(PRETEXT_TASKS.build(task), "single_frame", {"widths": [4, 8]}, 16)


def test_shuffle_needs_a_model_that_takes_single_frames():
    with pytest.raises(ValueError, match="model c3d cannot take the shuffle task's input .*single_frame"):
        build_pretext_net(PRETEXT_TASKS.build("shuffle"), "c3d", {}, 32)


@pytest.mark.parametrize("model", ["single_frame", "small3d"])
def test_contrastive_and_shuffle_fit_frame_and_clip_models(model):
    for task in ("contrastive", "shuffle"):
        net = build_pretext_net(PRETEXT_TASKS.build(task), model, {"widths": [4, 8]}, 16)
        shape = (2, 3, 3, 1, 16, 16) if task == "shuffle" else (2, 2, 3, 8, 16, 16)
        assert net(torch.randn(shape)).shape == ((2, 2) if task == "shuffle" else (2, 2, 128))


def test_unknown_task_and_option_say_what_fits():
    with pytest.raises(ValueError, match="did you mean order"):
        PRETEXT_TASKS.build("ordr")
    with pytest.raises(ValueError, match="clip_len"):
        PRETEXT_TASKS.build("arrow", clip_length=4)


def test_a_folder_of_too_short_videos_is_one_error(make_video, tmp_path):
    for i in range(3):
        make_video(f"v{i}.mp4", two_direction_frames(1, seed=i, num_frames=6))
    (tmp_path / "broken.mp4").write_text("not a video")
    with pytest.raises(ValueError, match=r"0 of 4 videos have the 13 frames the speed task samples"):
        pretext_videos(tmp_path, 13, "speed")
    usable, skipped = pretext_videos(tmp_path, 6, "arrow")
    assert len(usable) == 3 and len(skipped) == 1 and "broken.mp4: unreadable" in skipped[0]
