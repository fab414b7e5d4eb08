"""Video datasets: official split parsing, and items decoded from real generated videos."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deepvideo.data.datasets import (
    BadVideoWarning,
    VideoDataset,
    folder_dataset,
    kinetics_csv,
    list_dataset,
    parse_folder,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_ucf101,
)
from deepvideo.data.sampling import RandomClipSampler, UniformClipSampler
from deepvideo.data.transforms import build_transform
from deepvideo.io import VideoDecodeError, VideoTooShortError, read_video

from conftest import moving_square_frames

UCF_SIZES = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}  # official train/test counts


def to_tensor(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Identity transform: ``(T,H,W,3)`` uint8 -> ``(3,T,H,W)`` float32 in [0, 255]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float()


def two_views(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A multi-view transform: ``(2,3,T,H,W)``, the clip and its horizontal flip."""
    clip = to_tensor(frames, rng)
    return torch.stack([clip, clip.flip(-1)])


# ------------------------------------------------------------------ official split files


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_official_splits(shared_data, split):
    split_dir = shared_data / "splits" / "ucf101"
    train, classes = parse_ucf101("/ucf", split_dir, split, train=True)
    test, test_classes = parse_ucf101("/ucf", split_dir, split, train=False)
    assert (len(train), len(test)) == UCF_SIZES[split]
    assert len(classes) == 101 and classes == test_classes
    assert classes[0] == "ApplyEyeMakeup" and classes[-1] == "YoYo"
    assert not any("\r" in str(p) or "\r" in c for p, _ in train + test for c in classes)
    assert {label for _, label in train} == set(range(101)) == {label for _, label in test}
    assert not {p for p, _ in train} & {p for p, _ in test}
    for path, label in train + test:  # every label is the class of the video's folder
        assert path.parent.name == classes[label]
    if split == 1:
        assert train[0] == (Path("/ucf/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"), 0)
        assert train[-1] == (Path("/ucf/YoYo/v_YoYo_g25_c05.avi"), 100)
        assert test[0] == (Path("/ucf/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"), 0)
        assert test[-1] == (Path("/ucf/YoYo/v_YoYo_g07_c04.avi"), 100)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_official_splits(shared_data, split):
    split_dir = shared_data / "splits" / "hmdb51"
    train, classes = parse_hmdb51("/hmdb", split_dir, split, train=True)
    test, _ = parse_hmdb51("/hmdb", split_dir, split, train=False)
    assert (len(train), len(test)) == (3570, 1530)
    listed = (split_dir / "class_list.txt").read_text().split()
    assert classes == sorted(classes) == sorted(listed) and len(classes) == 51
    assert not {p for p, _ in train} & {p for p, _ in test}
    assert train[0][0].parent == Path("/hmdb/brush_hair") and train[0][1] == 0
    assert {label for _, label in train} == set(range(51))
    assert Path("/hmdb/chew/#2_Gum_chew_h_nm_np1_fr_med_0.avi") in {p for p, _ in train + test}
    for path, label in train + test:
        assert path.parent.name == classes[label] and path.suffix == ".avi"


def test_split_file_errors(tmp_path):
    (tmp_path / "classInd.txt").write_bytes(b"1 Alpha\r\n2 Beta\r\n")
    (tmp_path / "trainlist01.txt").write_bytes(b"Alpha/a.avi 1\r\nBeta/b.avi 1\r\n")
    (tmp_path / "testlist01.txt").write_bytes(b"Alpha/a.avi\r\nGamma/c.avi\r\n")
    with pytest.raises(ValueError, match=r"trainlist01.txt:2: label 1 is not .*'Beta'"):
        parse_ucf101(tmp_path, tmp_path, 1, train=True)
    with pytest.raises(ValueError, match=r"testlist01.txt:2: .*'Gamma/c.avi'"):
        parse_ucf101(tmp_path, tmp_path, 1, train=False)
    with pytest.raises(ValueError, match=r"trainlist02.txt: no such file"):
        parse_ucf101(tmp_path, tmp_path, 2)
    with pytest.raises(ValueError, match="split must be 1, 2 or 3"):
        parse_ucf101(tmp_path, tmp_path, 4)
    (tmp_path / "jump_test_split1.txt").write_text("a.avi 1 \nb.avi 2\nc.avi 3\n")
    with pytest.raises(ValueError, match=r"jump_test_split1.txt:3: expected"):
        parse_hmdb51(tmp_path, tmp_path, 1)
    with pytest.raises(ValueError, match=r"no HMDB51 split files '<class>_test_split2.txt'"):
        parse_hmdb51(tmp_path, tmp_path, 2)


def test_list_file(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# path label\nclips/a b.mp4 1\n\n/abs/c.avi 0\n")
    samples, classes = parse_list_file(lst)
    assert samples == [(tmp_path / "clips/a b.mp4", 1), (Path("/abs/c.avi"), 0)]
    assert classes == ["0", "1"]
    samples, classes = parse_list_file(lst, root="/data", classes=["x", "y", "z"])
    assert samples[0] == (Path("/data/clips/a b.mp4"), 1) and classes == ["x", "y", "z"]
    with pytest.raises(ValueError, match=r"list.txt:2: label 1 outside \[0, 1\)"):
        parse_list_file(lst, classes=["only"])
    lst.write_text("a.mp4 0\n\nb.mp4 one\n")
    with pytest.raises(ValueError, match=r"list.txt:3: expected 'path label', got 'b.mp4 one'"):
        parse_list_file(lst)
    with pytest.raises(ValueError, match=r"nothing.txt: no such file"):
        parse_list_file(tmp_path / "nothing.txt")


# ------------------------------------------------------------------ datasets over real video


def tiny(num_frames: int = 12, seed: int = 0) -> np.ndarray:
    return moving_square_frames(num_frames, size=32, seed=seed)


@pytest.fixture
def video_tree(tmp_path, make_video) -> Path:
    """``videos/{cat,dog}/{0,1}.mp4``: 2 classes x 2 tiny real videos of 12 frames."""
    for c, name in enumerate(["dog", "cat"]):
        for v in range(2):
            make_video(f"videos/{name}/{v}.mp4", tiny(seed=2 * c + v), keyframe_interval=4)
    (tmp_path / "videos" / "dog" / "notes.txt").write_text("not a video")
    (tmp_path / "videos" / "dog" / "._0.mp4").write_text("macOS resource fork")
    (tmp_path / "videos" / ".ipynb_checkpoints").mkdir()
    return tmp_path / "videos"


def test_parse_folder(video_tree, tmp_path):
    samples, classes = parse_folder(video_tree)
    assert classes == ["cat", "dog"]
    assert [(p.relative_to(video_tree).as_posix(), label) for p, label in samples] == [
        ("cat/0.mp4", 0), ("cat/1.mp4", 0), ("dog/0.mp4", 1), ("dog/1.mp4", 1)]
    samples, classes = parse_folder(video_tree, classes=["ant", "cat", "dog"])
    assert classes == ["ant", "cat", "dog"] and [label for _, label in samples] == [1, 1, 2, 2]
    with pytest.raises(ValueError, match=r"dog: folder is not one of the 1 given classes"):
        parse_folder(video_tree, classes=["cat"])
    with pytest.raises(ValueError, match="no such folder"):
        parse_folder(tmp_path / "absent")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty: no videos"):
        parse_folder(tmp_path / "empty")


def test_folder_dataset_items(video_tree):
    ds = folder_dataset(video_tree, sampler=RandomClipSampler(4, stride=2),
                        transform=build_transform(train=True, size=16, resize=20))
    assert len(ds) == 4 and ds.labels == [0, 0, 1, 1] and ds.classes == ["cat", "dog"]
    assert ds.paths[2] == video_tree / "dog" / "0.mp4"
    clip, label, index = ds[2]
    assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
    assert (label, index) == (1, 2)
    assert ds.num_bad == 0 and ds.bad_videos() == []


def test_items_are_the_decoded_frames(video_tree):
    ds = folder_dataset(video_tree, sampler=UniformClipSampler(3, num_clips=2, stride=2),
                        transform=to_tensor)
    clip, label, index = ds[1]
    frames = read_video(video_tree / "cat" / "1.mp4")
    expected = np.stack([frames[[0, 2, 4]], frames[[7, 9, 11]]])  # (K, T, H, W, 3)
    assert clip.shape == (2, 3, 3, 32, 32)
    np.testing.assert_array_equal(clip.permute(0, 2, 3, 4, 1).numpy(), expected)


def test_multi_clip_and_multi_view(video_tree):
    ds = folder_dataset(video_tree, sampler=UniformClipSampler(4, num_clips=3),
                        transform=build_transform(train=False, size=16, resize=20))
    clip, _, _ = ds[0]
    assert clip.shape == (3, 3, 4, 16, 16) and clip.dtype == torch.float32
    ds.sampler = UniformClipSampler(4, num_clips=2)
    ds.transform = build_transform(train=False, size=16, resize=20, three_crop=True)
    assert ds[0][0].shape == (6, 3, 4, 16, 16)  # 2 clips x 3 crops
    ds.sampler = RandomClipSampler(4)
    ds.transform = two_views
    clip, _, _ = ds[0]
    assert clip.shape == (2, 3, 4, 32, 32)
    torch.testing.assert_close(clip[1], clip[0].flip(-1))


def test_randomness_is_keyed_on_seed_epoch_index(video_tree):
    def make(seed):
        return folder_dataset(video_tree, sampler=RandomClipSampler(4), seed=seed,
                              transform=build_transform(train=True, size=16, resize=20))

    a, b = make(0), make(0)
    first = [a[i][0] for i in range(4)]
    for i in reversed(range(4)):  # another instance, another order: same items
        torch.testing.assert_close(b[i][0], first[i], rtol=0, atol=0)
    a.set_epoch(1)
    assert a.epoch == 1
    assert any(not torch.equal(a[i][0], first[i]) for i in range(4))
    a.set_epoch(0)
    torch.testing.assert_close(a[3][0], first[3], rtol=0, atol=0)
    other = make(5)
    assert any(not torch.equal(other[i][0], first[i]) for i in range(4))


def test_short_video_loops(make_video):
    path = make_video("short.mp4", tiny(5))
    ds = VideoDataset([(path, 0)], ["only"], RandomClipSampler(8, short="loop"), to_tensor)
    clip, label, index = ds[0]
    frames = read_video(path)
    looped = frames[[0, 1, 2, 3, 4, 0, 1, 2]]
    np.testing.assert_array_equal(clip.permute(1, 2, 3, 0).numpy(), looped)
    assert (label, index, ds.num_bad) == (0, 0, 0)


@pytest.fixture
def with_bad(video_tree, make_video) -> tuple[Path, list[Path]]:
    """The video tree plus a text file named .mp4 and a truncated mp4 in class cat."""
    text = video_tree / "cat" / "2_text.mp4"
    text.write_text("this is not a video\n")
    truncated = make_video("videos/cat/3_truncated.mp4", tiny(24, seed=9))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return video_tree, [text, truncated]


def test_bad_videos_are_skipped_replaced_and_counted(with_bad):
    root, bad = with_bad
    ds = folder_dataset(root, sampler=RandomClipSampler(4), transform=to_tensor)
    assert len(ds) == 6
    bad_index = [ds.paths.index(p) for p in bad]
    for i in bad_index:
        with pytest.warns(BadVideoWarning, match=f"{ds.paths[i].name}: cannot be decoded"):
            clip, label, index = ds[i]
        assert index not in bad_index and label == ds.labels[index]
        assert clip.shape == (3, 4, 32, 32)
    assert ds.num_bad == 2 and sorted(ds.bad_videos()) == sorted(bad)
    again = ds[bad_index[0]]  # same item, no new warning: the video is not tried again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repeat = ds[bad_index[0]]
        for i in range(len(ds)):
            ds[i]
    assert repeat[2] == again[2]
    torch.testing.assert_close(repeat[0], again[0], rtol=0, atol=0)
    assert ds.num_bad == 2


def test_bad_videos_counted_across_workers(with_bad):
    root, bad = with_bad
    ds = folder_dataset(root, sampler=RandomClipSampler(4), transform=to_tensor)
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        batches = list(loader)
    clips = torch.cat([b[0] for b in batches])
    indices = torch.cat([b[2] for b in batches]).tolist()
    assert clips.shape == (6, 3, 4, 32, 32)
    assert not {ds.paths[i] for i in indices} & set(bad)
    assert ds.num_bad == 2 and sorted(ds.bad_videos()) == sorted(bad)


def test_every_video_bad(tmp_path):
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for p in paths:
        p.write_text("garbage")
    ds = VideoDataset([(p, 0) for p in paths], ["x"], RandomClipSampler(2), to_tensor)
    with pytest.warns(BadVideoWarning), pytest.raises(VideoDecodeError, match="none of the 2"):
        ds[0]
    assert ds.num_bad == 2


def test_video_dataset_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"a.mp4: label 3 outside \[0, 2\)"):
        VideoDataset([(tmp_path / "a.mp4", 3)], ["x", "y"], RandomClipSampler(2), to_tensor)
    with pytest.raises(ValueError, match="no samples"):
        VideoDataset([], ["x"], RandomClipSampler(2), to_tensor)


def test_list_dataset_drops_missing_files(video_tree):
    lst = video_tree / "list.txt"
    lst.write_text("cat/0.mp4 1\ndog/1.mp4 0\ngone.mp4 1\n")
    with pytest.warns(BadVideoWarning, match=r"1 of 3 listed videos are missing .*gone.mp4"):
        ds = list_dataset(lst, classes=["a", "b"], sampler=RandomClipSampler(2),
                          transform=to_tensor)
    assert len(ds) == 2 and ds.labels == [1, 0] and ds.classes == ["a", "b"]
    assert ds[1][0].shape == (3, 2, 32, 32)


# --------------------------------------------------------------------------- Kinetics csv


def test_kinetics_csv_layouts_and_time_ranges(tmp_path, make_video):
    root = tmp_path / "k400"
    full = make_video("k400/fullvid.mp4", tiny(24), fps=10)  # 2.4 s: the YouTube video
    trimmed = make_video("k400/train/arm wrestling/trimd_000003_000013.mp4", tiny(8, seed=1))
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("label,youtube_id,time_start,time_end,split\n"
                        "zumba,fullvid,1,2,train\n"
                        "arm wrestling,trimd,3,13,train\n"
                        "zumba,valvid,0,10,val\n"
                        "zumba,lost,5,15,train\n")
    samples, classes, ranges = parse_kinetics_csv(csv_file, root, split="train")
    assert classes == ["arm wrestling", "zumba"]
    assert samples[:2] == [(full, 1), (trimmed, 0)]
    assert ranges[:2] == [(1.0, 2.0), None]
    assert samples[2] == (root / "train" / "zumba" / "lost_000005_000015.mp4", 1)

    with pytest.warns(BadVideoWarning, match="1 of 3 listed videos are missing"):
        ds = kinetics_csv(csv_file, root, split="train", sampler=RandomClipSampler(10),
                          transform=to_tensor)
    clip, label, index = ds[0]  # 10 frames in [1 s, 2 s): the only clip of 10 frames
    np.testing.assert_array_equal(clip.permute(1, 2, 3, 0).numpy(), read_video(full)[10:20])
    assert (label, index) == (1, 0)
    clip, label, _ = ds[1]  # trimmed clip, 8 frames, looped to 10
    assert clip.shape == (3, 10, 32, 32) and label == 0


def test_time_range_past_the_end_is_a_bad_video(make_video):
    path = make_video("clip.mp4", tiny(12), fps=10)
    ds = VideoDataset([(path, 0), (path, 0)], ["x"], RandomClipSampler(2), to_tensor,
                      time_ranges=[(5.0, 6.0), None])
    with pytest.warns(BadVideoWarning, match=r"clip\.mp4: cannot be decoded, skipped and replaced "
                                             r"\(VideoTooShortError: no frame in \[5.0, 6.0\) s "
                                             r"\(the video has 12 frames, 1.20 s\)\)"):
        _, _, index = ds[0]
    assert index == 1 and ds.bad_videos() == [path]
    assert issubclass(VideoTooShortError, VideoDecodeError)


def test_bugs_in_transform_or_sampler_propagate(video_tree):
    """Only the reader's errors mean "bad video": a bug is a crash, not every video skipped."""

    def broken_transform(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(frames).permute(3, 0, 1, 2) / None

    def broken_sampler(num_frames: int, rng: np.random.Generator) -> np.ndarray:
        return np.array([[num_frames]])  # one past the last frame

    bad_transform = folder_dataset(video_tree, sampler=RandomClipSampler(4), transform=broken_transform)
    bad_sampler = folder_dataset(video_tree, sampler=broken_sampler, transform=to_tensor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadVideoWarning)
        with pytest.raises(TypeError, match="unsupported operand"):
            bad_transform[0]
        with pytest.raises(IndexError, match=r"0\.mp4: frame index 12 out of range"):
            bad_sampler[0]
    assert bad_transform.num_bad == bad_sampler.num_bad == 0


def test_kinetics_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,youtube_id,time_start\nx,y,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:1: header lacks time_end, split"):
        parse_kinetics_csv(bad, tmp_path)
    bad.write_text("label,youtube_id,time_start,time_end,split\nx,y,1,2,train\nx,z,4,oops,train\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: expected"):
        parse_kinetics_csv(bad, tmp_path)
    bad.write_text("label,youtube_id,time_start,time_end,split\nx,y,1,2,train\n")
    with pytest.raises(ValueError, match="bad.csv: no rows of split 'test'"):
        parse_kinetics_csv(bad, tmp_path, split="test")


def test_set_epoch_reaches_persistent_workers():
    """The engine keeps its DataLoader workers across epochs: the epoch set in the main process
    must change what they draw (each dataset keyed on the epoch shares one number)."""
    import numpy as np
    from torch.utils.data import DataLoader

    from deepvideo.data.flipswap import FlipSwap
    from deepvideo.engine.task import GeneratedSet
    from deepvideo.segment.train import SegmentClips

    frames = np.random.default_rng(0).integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    datasets = [GeneratedSet(lambda rng: torch.from_numpy(rng.random(3)), 4, seed=2),
                SegmentClips([(frames, np.zeros((12, 8, 8), np.uint8), None)], clip_len=2, clips_per_sequence=4),
                FlipSwap(GeneratedSet(lambda rng: (torch.from_numpy(rng.random((3, 1, 2, 2))), 0, 0), 4), [1, 0],
                         seed=3)]
    for dataset in datasets:
        loader = DataLoader(dataset, batch_size=4, num_workers=1, persistent_workers=True)
        seen = []
        for epoch in range(3):
            dataset.set_epoch(epoch)
            batch = next(iter(loader))
            seen.append(batch[0] if isinstance(batch, list) else batch)
            expected = torch.stack([(dataset[i][0] if isinstance(dataset[i], tuple) else dataset[i])
                                    for i in range(4)])
            torch.testing.assert_close(seen[-1], expected, rtol=0, atol=0)  # the workers drew this epoch's items
        assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        datasets[0].set_epoch(-1)
