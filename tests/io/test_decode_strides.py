"""Strided clips from every sample video equal the same frames of a full sequential decode.

The training sampler's clips (16 frames at a frame stride) are what ``VideoReader.read``
serves most; its shortcuts (non-reference frames between and around the wanted ones left
undecoded, the decoder drained after the last wanted packet, the frame index reused from
the in-process cache, the keyframe's packet found after a seek that lands early in a
fragmented mp4) must not change a single pixel.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from deepvideo.io import VideoReader
from deepvideo.io.decode import INDEX_CACHE

from conftest import real_videos

VIDEOS = real_videos()
STRIDES = range(1, 9)
CLIP_LEN = 16


def strided_clip(num_frames: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``CLIP_LEN``-frame clip at ``stride``, or as many frames as the video allows."""
    span = (CLIP_LEN - 1) * stride + 1
    if num_frames < span:
        return np.arange(0, num_frames, stride)[:CLIP_LEN]
    start = int(rng.integers(0, num_frames - span + 1))
    return start + stride * np.arange(CLIP_LEN)


def sequential_frames(path: Path, keep: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """Plain PyAV sequential decode (the reference): the frames in ``keep`` and the frame count."""
    frames, count = {}, 0
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in keep:
                frames[i] = frame.to_ndarray(format="rgb24")
            count = i + 1
    return frames, count


@pytest.mark.skipif(not VIDEOS, reason="../shared/data/videos is absent")
@pytest.mark.parametrize("video", VIDEOS, ids=[v.name for v in VIDEOS])
def test_strided_clips_equal_sequential_decode(video: Path) -> None:
    """Strides 1-8, one random clip each, read by a fresh reader as a dataset does; the first
    read indexes the file by demuxing, the others take the index from the cache.  Odd strides
    decode on one thread, even ones with frame threading."""
    INDEX_CACHE.clear()
    rng = np.random.default_rng(zlib.crc32(video.name.encode()))
    with VideoReader(video) as reader:
        num_frames = reader.num_frames
    clips = {stride: strided_clip(num_frames, stride, rng) for stride in STRIDES}
    reference, count = sequential_frames(video, set(np.concatenate(list(clips.values())).tolist()))
    assert count == num_frames
    for stride, indices in clips.items():
        with VideoReader(video, threads=1 if stride % 2 else 2) as reader:
            frames = reader.read(indices)
        assert frames.shape[0] == len(indices)
        for k, j in enumerate(indices.tolist()):
            assert np.array_equal(frames[k], reference[j]), f"{video.name}: stride {stride}, frame {j} of {indices}"
