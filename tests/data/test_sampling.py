"""Clip samplers: index arithmetic on hand-computed cases, short videos, ranges, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.data.sampling import RandomClipSampler, SegmentSampler, SlidingWindowSampler, UniformClipSampler


def rows(*clips):
    return np.array(clips, dtype=np.int64)


def test_random_clip_covers_every_valid_start_and_nothing_else():
    sampler = RandomClipSampler(4, stride=2)  # spans 7 frames
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        clip = sampler(10, rng)
        assert clip.shape == (1, 4) and clip.dtype == np.int64
        np.testing.assert_array_equal(np.diff(clip[0]), 2)
        starts.add(int(clip[0, 0]))
    assert starts == {0, 1, 2, 3}


def test_random_clip_is_deterministic_under_a_seed():
    sampler = RandomClipSampler(8, stride=3)
    a = [sampler(500, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    draws = {int(sampler(500, np.random.default_rng(seed))[0, 0]) for seed in range(10)}
    assert len(draws) > 1


@pytest.mark.parametrize("short, expected", [("loop", [0, 2, 4, 1]), ("pad", [0, 2, 4, 4])])
def test_short_video_policies(short, expected):
    # 4 frames at stride 2 span 7 frames; the video has 5.
    np.testing.assert_array_equal(RandomClipSampler(4, 2, short)(5, np.random.default_rng(0)),
                                  rows(expected))
    np.testing.assert_array_equal(UniformClipSampler(4, 2, 2, short)(5), rows(expected, expected))
    np.testing.assert_array_equal(SlidingWindowSampler(4, 2, short=short)(5), rows(expected))


def test_single_frame_video():
    for short in ("loop", "pad"):
        np.testing.assert_array_equal(RandomClipSampler(3, short=short)(1), rows([0, 0, 0]))


def test_uniform_clips_hand_computed():
    # span 7, last start 13: starts linspace(0, 13, 3) = 0, 6.5 -> 7, 13.
    np.testing.assert_array_equal(UniformClipSampler(4, 3, stride=2)(20),
                                  rows([0, 2, 4, 6], [7, 9, 11, 13], [13, 15, 17, 19]))
    # One clip: the centre one (last start 6 -> start 3; frames 3..6 around frame 4.5).
    np.testing.assert_array_equal(UniformClipSampler(4, 1)(10), rows([3, 4, 5, 6]))


def test_uniform_clips_ignore_rng():
    sampler = UniformClipSampler(5, 4, stride=3)
    np.testing.assert_array_equal(sampler(100, np.random.default_rng(0)),
                                  sampler(100, np.random.default_rng(1)))


def test_sliding_windows_hand_computed():
    # Default step = span (4): windows at 0, 4 and the last one aligned to the end (6).
    sampler = SlidingWindowSampler(4)
    assert sampler.num_clips is None
    np.testing.assert_array_equal(sampler(10), rows([0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]))
    np.testing.assert_array_equal(SlidingWindowSampler(4, step=2)(8),
                                  rows([0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]))
    # span 7, last start 5: steps of 3 land on 0, 3; 5 is appended.
    np.testing.assert_array_equal(SlidingWindowSampler(4, stride=2, step=3)(12),
                                  rows([0, 2, 4, 6], [3, 5, 7, 9], [5, 7, 9, 11]))


def test_segments_centre_hand_computed():
    np.testing.assert_array_equal(SegmentSampler(3, random=False)(9), rows([1, 4, 7]))
    # snippets of 2 frames at stride 2 (span 3): 18 valid starts in 3 parts, centres 3, 9, 15.
    sampler = SegmentSampler(3, frames_per_segment=2, stride=2, random=False)
    assert sampler.clip_len == 6
    np.testing.assert_array_equal(sampler(20), rows([3, 5, 9, 11, 15, 17]))
    # fewer frames than segments: segments share frames.
    np.testing.assert_array_equal(SegmentSampler(4, random=False)(2), rows([0, 0, 1, 1]))


def test_random_segments_stay_in_their_segment():
    sampler = SegmentSampler(3)
    rng = np.random.default_rng(0)
    seen = [set(), set(), set()]
    for _ in range(200):
        clip = sampler(30, rng)[0]
        for i, frame in enumerate(clip):
            assert 10 * i <= frame < 10 * (i + 1)
            seen[i].add(int(frame))
    assert all(len(s) == 10 for s in seen)
    np.testing.assert_array_equal(sampler(30, np.random.default_rng(3)),
                                  sampler(30, np.random.default_rng(3)))


SAMPLERS = [RandomClipSampler(4), RandomClipSampler(5, stride=3, short="pad"),
            UniformClipSampler(3, 4, stride=2), UniformClipSampler(6, 1, short="pad"),
            SlidingWindowSampler(4, stride=2), SlidingWindowSampler(3, step=5, short="pad"),
            SegmentSampler(4), SegmentSampler(3, frames_per_segment=4, stride=2),
            SegmentSampler(5, frames_per_segment=2, random=False, short="pad")]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=repr)
def test_indices_in_range_for_every_length(sampler):
    rng = np.random.default_rng(0)
    for num_frames in range(1, 60):
        clips = sampler(num_frames, rng)
        assert clips.dtype == np.int64 and clips.ndim == 2
        assert clips.shape[1] == sampler.clip_len
        if sampler.num_clips is not None:
            assert clips.shape[0] == sampler.num_clips
        assert clips.min() >= 0 and clips.max() < num_frames
        if num_frames >= sampler.span:  # long enough: snippets are exact strided runs
            snippets = clips.reshape(clips.shape[0], -1, (sampler.span - 1) // sampler.stride + 1)
            np.testing.assert_array_equal(np.diff(snippets, axis=-1), sampler.stride)


@pytest.mark.parametrize("sampler", [UniformClipSampler(4, 5, 2), SlidingWindowSampler(4, 2, 3)],
                         ids=repr)
def test_deterministic_samplers_cover_the_video(sampler):
    for num_frames in range(sampler.span, 60):
        clips = sampler(num_frames)
        assert clips[0, 0] == 0 and clips[-1, -1] == num_frames - 1


@pytest.mark.parametrize("make, name", [
    (lambda: RandomClipSampler(0), "clip_len"),
    (lambda: RandomClipSampler(4, stride=0), "stride"),
    (lambda: RandomClipSampler(4, short="wrap"), "short"),
    (lambda: UniformClipSampler(4, num_clips=0), "num_clips"),
    (lambda: SlidingWindowSampler(4, step=0), "step"),
    (lambda: SegmentSampler(0), "num_segments"),
    (lambda: SegmentSampler(3, frames_per_segment=2.5), "frames_per_segment"),
    (lambda: RandomClipSampler(4)(0), "num_frames"),
    (lambda: UniformClipSampler(4, 2)(True), "num_frames"),
])
def test_bad_parameters_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()
