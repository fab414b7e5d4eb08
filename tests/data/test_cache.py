"""The decoded-frame cache: the same clips as decoding, shared with workers, bad and changed videos,
the disk folder's settings, the fallback when it would not fit, and the auto worker count."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deepvideo.data import cache as cache_module
from deepvideo.data.cache import FrameCache, resize_step
from deepvideo.data.datasets import BadVideoWarning, VideoDataset
from deepvideo.data.sampling import RandomClipSampler
from deepvideo.data.transforms import ResizeShort, build_transform
from deepvideo.engine import DataSpec, Recipe, TrainConfig, train
from deepvideo.engine.train import auto_workers

from conftest import moving_square_frames, real_videos


def dataset(paths: list[Path], resize: int = 24, size: int = 16, clip_len: int = 4, time_ranges=None,
            seed: int = 3) -> VideoDataset:
    """Random clips of ``paths`` (random crop and flip): the pipeline whose clips the cache must keep."""
    return VideoDataset([(p, i % 2) for i, p in enumerate(paths)], ["a", "b"], RandomClipSampler(clip_len, stride=2),
                        build_transform(True, size=size, resize=resize), seed=seed, time_ranges=time_ranges)


def cached(ds: VideoDataset, mode: str = "ram", cache_dir: Path | None = None) -> tuple[VideoDataset, str]:
    """``ds`` reading from a filled cache of ``mode``, and the cache's summary line."""
    frames = FrameCache(mode, resize_step(ds.transform), cache_dir, base=ds.opener, progress=False)
    summary = frames.fill(ds.paths)
    ds.opener = frames
    return ds, summary


def items(ds: VideoDataset, epoch: int) -> list[torch.Tensor]:
    ds.set_epoch(epoch)
    return [ds[i][0] for i in range(len(ds))]


def assert_same(first: list[torch.Tensor], second: list[torch.Tensor]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.fixture
def videos(make_video) -> list[Path]:
    """Landscape and portrait generated videos, h264 and mpeg4 (16-24 frames)."""
    square = moving_square_frames(24, 48)
    return [make_video("wide.mp4", np.ascontiguousarray(square[:, :30])),
            make_video("tall.mp4", np.ascontiguousarray(square[:16, :, :34]), keyframe_interval=4),
            make_video("mpeg4.avi", np.ascontiguousarray(square[:20, :38, :46]), codec="mpeg4")]


@pytest.mark.parametrize("mode", ["ram", "disk"])
def test_cached_clips_are_the_decoded_clips(videos, tmp_path, mode):
    ranges = [None, (0.3, 1.2), None]  # a time range: the cache keeps the source's frame times
    plain = dataset(videos, time_ranges=ranges)
    with_cache, summary = cached(dataset(videos, time_ranges=ranges), mode, tmp_path / "cache")
    assert summary.startswith(mode) and with_cache.opener.mode == mode
    for epoch in (0, 1):
        assert_same(items(plain, epoch), items(with_cache, epoch))
    assert with_cache.num_bad == 0


def test_cached_clips_are_the_decoded_clips_of_real_videos(shared_data):
    chosen = [v for v in real_videos() if v.name in ("mmaction2__test.avi", "mmaction2__rawvideo_dataset_part_0.mp4",
                                                     "mmtracking__demo.mp4")]
    assert len(chosen) == 3
    plain = dataset(chosen, resize=40, size=32, clip_len=4)
    with_cache, _ = cached(dataset(chosen, resize=40, size=32, clip_len=4))
    assert_same(items(plain, 0), items(with_cache, 0))
    assert with_cache.opener.entries[chosen[0]].shape[1:] == (40, 53)  # 320x240 -> short side 40


def test_resize_short_keeps_frames_of_its_size():
    resize = ResizeShort(24)
    for shape in ((5, 48, 30, 3), (5, 30, 48, 3), (5, 37, 45, 3), (5, 25, 24, 3)):
        once = resize(np.zeros(shape, np.uint8))
        assert resize(once) is once


def test_augmentation_differs_between_epochs(videos):
    ds, _ = cached(dataset(videos))
    first, second = items(ds, 0), items(ds, 1)
    assert any(not torch.equal(a, b) for a, b in zip(first, second))
    assert_same(first, items(ds, 0))


def test_workers_read_the_shared_cache(videos):
    ds, _ = cached(dataset(videos))
    expected = items(ds, 0)

    def no_decoding(path, threads):
        raise AssertionError(f"{path} decoded again")

    ds.opener.base = no_decoding
    assert ds.opener.frames.is_shared()
    loader = DataLoader(ds, batch_size=1, num_workers=2)
    assert_same(expected, [batch[0][0] for batch in loader])


def test_bad_videos_are_skipped_and_counted(videos, tmp_path):
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(videos[0].read_bytes()[:600])
    ds, summary = cached(dataset([*videos, text, truncated]))
    assert "(3 videos at short side 24)" in summary and set(ds.opener.errors) == {text, truncated}
    with pytest.warns(BadVideoWarning, match="text.mp4: cannot be decoded"):
        ds[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        for i in range(len(ds)):
            assert ds[i][2] < 3
    assert ds.num_bad == 2 and sorted(ds.bad_videos()) == sorted([text, truncated])


def test_disk_cache_is_reused_and_refuses_other_settings(videos, tmp_path):
    folder = tmp_path / "cache"
    _, summary = cached(dataset(videos), "disk", folder)
    assert "0 reused, 3 written" in summary
    assert len(list(folder.glob("*.tar"))) == 3
    ds, summary = cached(dataset(videos), "disk", folder)
    assert "3 reused, 0 written" in summary
    assert_same(items(dataset(videos), 0), items(ds, 0))
    with pytest.raises(ValueError, match=r"cache: made with resize 24 \(bilinear\), this run needs resize 32"):
        cached(dataset(videos, resize=32), "disk", folder)


def test_changed_video_is_cached_again(videos, make_video, tmp_path):
    folder = tmp_path / "cache"
    cached(dataset(videos), "disk", folder)
    make_video("wide.mp4", moving_square_frames(12, 40, seed=5))  # same file, new content
    stat = videos[0].stat()
    os.utime(videos[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    ds, summary = cached(dataset(videos), "disk", folder)
    assert "2 reused, 1 written, of which 1 re-cached because the video changed" in summary
    assert ds.opener.entries[videos[0]].shape == (12, 24, 24)
    assert_same(items(dataset(videos), 1), items(ds, 1))


def test_auto_falls_back_when_frames_do_not_fit(videos, monkeypatch):
    need = 3 * (24 * 24 * 38 + 16 * 33 * 24 + 20 * 24 * 29)  # (N, H, W) after the resize, 3 bytes a pixel
    monkeypatch.setattr(cache_module, "available_memory", lambda: 10 * need)
    ds, summary = cached(dataset(videos), "auto")
    assert summary.startswith(f"ram (auto), {need / 1e6:.1f} MB") and ds.opener.nbytes == need
    for mode in ("auto", "ram"):
        monkeypatch.setattr(cache_module, "available_memory", lambda: need)  # half of it: too little
        ds, summary = cached(dataset(videos), mode)
        assert summary.startswith(f"none ({mode}: the decoded frames would take more than")
        assert ds.opener.mode == "none" and ds.opener.frames is None
        assert_same(items(dataset(videos), 0), items(ds, 0))


def test_train_caches_and_chooses_workers(tiny_motion_root, tmp_path, capsys):
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    recipe = Recipe(model="small3d", classes=[], model_kwargs={"widths": [4, 8]}, clip_len=4, size=24, resize=24,
                    flip=False, test_clips=1)
    config = TrainConfig(epochs=1, batch_size=4, workers="auto", cache="ram", progress=False)
    train(recipe, data, config, tmp_path / "run")
    out = capsys.readouterr().out
    size = 12 * 8 * 24 * 24 * 3 / 1e6  # 12 videos of 8 frames, 32x32 resized to 24x24
    assert f"train cache: ram (ram), {size:.1f} MB of decoded frames (12 videos at short side 24)" in out
    assert "val cache: ram (ram), " in out
    expected, _ = auto_workers(recipe.dataset(data, "train", train=True, cache="ram"))
    assert f"workers: auto -> {expected} (" in out
    with pytest.raises(ValueError, match="cache ram: only the rgb modality's frames are cached, not flow's"):
        Recipe(model="small3d", classes=[], modality="flow").dataset(data, "train", train=True, cache="ram")


def test_auto_workers_rule(videos):
    ram, _ = cached(dataset(videos))
    files = dataset(videos)
    assert [auto_workers(ram, cores)[0] for cores in (1, 2, 4, 8, 16)] == [0, 1, 2, 2, 2]
    assert [auto_workers(files, cores)[0] for cores in (1, 2, 4, 8, 16)] == [0, 1, 3, 7, 8]
