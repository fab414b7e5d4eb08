"""Flow as a dataset's per-frame data: cached and on-the-fly readers, alignment, bad caches."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deepvideo.data.datasets import BadVideoWarning, folder_dataset
from deepvideo.data.sampling import RandomClipSampler
from deepvideo.engine.recipe import DataSpec, Recipe
from deepvideo.flow import flow_target, load_flow, make_estimator
from deepvideo.flow.dataset import FlowOpener, FlowReader
from deepvideo.io import VideoDecodeError, read_video


def test_cached_and_on_the_fly_readers_agree_with_their_sources(tiny_motion_root, tiny_flow_cache):
    video = tiny_motion_root / "train" / "right" / "right_0.mp4"
    cache = flow_target(video, tiny_flow_cache, tiny_motion_root)
    indices = np.array([4, 0, 4, 6])
    with FlowReader(video, cache=cache) as reader:
        assert reader.num_frames == 7 and len(reader.frame_times) == 7
        cached = reader.read(indices)
    assert cached.shape == (4, 32, 32, 2)
    np.testing.assert_array_equal(cached, load_flow(cache, indices).transpose(0, 2, 3, 1))
    estimate = make_estimator("dis")
    frames = read_video(video)
    with FlowReader(video, estimate=estimate) as reader:
        live = reader.read(indices)
    # field i is the flow from frame i to frame i + 1: the same time alignment as the RGB clip
    for row, i in enumerate(indices):
        np.testing.assert_array_equal(live[row], estimate(frames[i], frames[i + 1]).transpose(1, 2, 0))
    np.testing.assert_allclose(cached, live, atol=20 / 127.5)  # the cache's quantisation bound
    assert live[0, ..., 0].mean() > 0.03                 # the square (1/16 of the frame) moves right
    with FlowReader(video, estimate=estimate) as reader, pytest.raises(IndexError, match="right_0.mp4"):
        reader.read([7])


def test_flow_dataset_serves_stacks_and_skips_a_missing_cache(tiny_motion_root, tiny_flow_cache, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_flow_cache, partial)
    missing = flow_target(tiny_motion_root / "train" / "left" / "left_1.mp4", partial, tiny_motion_root)
    missing.unlink()
    recipe = Recipe(model="temporal_stream", classes=[], clip_len=4, size=24, resize=32, flip=False,
                    modality="flow")
    data = DataSpec(root=str(tiny_motion_root), flow_dir=str(partial))
    dataset = recipe.dataset(data, "train", train=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [dataset[i] for i in range(len(dataset))]
    assert all(clip.shape == (2, 4, 24, 24) for clip, _, _ in items)
    assert dataset.bad_videos() == [tiny_motion_root / "train" / "left" / "left_1.mp4"]
    assert any("no cached flow" in str(w.message) and issubclass(w.category, BadVideoWarning) for w in caught)
    # the temporal stream sees rightward motion as positive dx, leftward as negative
    mean_dx = {label: np.mean([clip[0].abs().amax().item() * np.sign(clip[0].sum().item())
                               for clip, y, _ in items if y == label]) for label in (0, 1)}
    assert dataset.classes == ["left", "right"]
    assert mean_dx[0] < 0 < mean_dx[1]


def test_on_the_fly_flow_through_dataloader_workers(tiny_motion_root):
    opener = FlowOpener(method="dis")
    dataset = folder_dataset(tiny_motion_root / "val", sampler=RandomClipSampler(3),
                             transform=lambda flow, rng: torch.from_numpy(flow), opener=opener)
    batches = list(DataLoader(dataset, batch_size=4, num_workers=1))
    assert batches[0][0].shape == (4, 3, 32, 32, 2)
    with pytest.raises(ValueError, match="no such folder"):
        FlowOpener(tiny_motion_root / "nowhere")
    with pytest.raises(VideoDecodeError, match="no cached flow"):
        FlowReader(tiny_motion_root / "val" / "left" / "left_0.mp4", cache=tiny_motion_root / "x.npz")


def test_cached_opener_counts_a_video_outside_the_root_as_bad(tiny_motion_root, tiny_flow_cache, tmp_path):
    outside = tmp_path / "elsewhere.mp4"
    shutil.copy(tiny_motion_root / "train" / "left" / "left_0.mp4", outside)
    opener = FlowOpener(tiny_flow_cache, root=tiny_motion_root)
    with pytest.raises(VideoDecodeError, match="elsewhere.mp4: no cached flow"):
        opener(outside)
