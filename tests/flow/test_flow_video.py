"""Flow over real (generated and encoded) videos: the side-by-side video and dataset extraction."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.flow import (
    clip_flow,
    extract_flow_dataset,
    flow_file_info,
    flow_target,
    flow_video,
    load_flow,
    make_estimator,
)
from deepvideo.io import VideoReader, read_video

from conftest import moving_square_frames


def test_flow_video_side_by_side(make_video, tmp_path):
    source = make_video("square.mp4", fps=10)                  # a square moving 2 px right per frame
    out = flow_video(source, tmp_path / "flow.mp4", method="dis", progress=False)
    with VideoReader(out) as reader:
        assert reader.num_frames == 23 and (reader.width, reader.height) == (128, 64)
        assert reader.fps == pytest.approx(10)
    shown = read_video(out).astype(int)
    frames = read_video(source).astype(int)
    assert np.abs(shown[:, :, :64] - frames[:-1]).mean() < 4   # left half: the frames themselves
    # right half: the static background is white, the moving square red (rightward motion)
    square = shown[3, 22:30, 64 + 8:64 + 16].reshape(-1, 3).mean(0)
    background = shown[3, 50:60, 64 + 40:64 + 60].reshape(-1, 3).mean(0)
    assert background.min() > 200, background
    assert square[0] > 180 and square[1] < 150 and square[2] < 150, square


def test_flow_video_odd_height_and_bad_method(make_video, tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 33, 40, 3), dtype=np.uint8)
    source = make_video("odd.mp4", frames, pix_fmt="yuv444p")  # 4:4:4 allows an odd height
    out = flow_video(source, tmp_path / "odd_flow.mp4", progress=False, max_flow=5.0)
    with VideoReader(out) as reader:
        assert (reader.num_frames, reader.width, reader.height) == (2, 80, 34)
    assert read_video(out)[:, -1].mean() < 25                  # the added bottom row is black (+ codec bleed)
    with pytest.raises(ValueError, match="unknown flow method"):
        flow_video(source, tmp_path / "x.mp4", method="nope", progress=False)
    with pytest.raises(ValueError, match="needs weights"):
        make_estimator("raft")
    assert not (tmp_path / "x.mp4").exists()


def test_extract_flow_dataset_resumes(make_video, tmp_path):
    first = make_video("a/one.mp4")
    second = make_video("b/two.mp4", moving_square_frames(num_frames=6, seed=1))
    out = tmp_path / "flow"
    summary = extract_flow_dataset([first, second], out, method="farneback", progress=False, root=tmp_path)
    assert (summary.written, summary.skipped, summary.failed) == (2, 0, [])
    target = flow_target(first, out, tmp_path)
    assert target == out / "a" / "one.npz" and target.is_file()
    assert flow_file_info(target) == {"frames": 23, "bound": 20.0, "method": "farneback"}
    flows = load_flow(target)
    assert flows.shape == (23, 2, 64, 64) and flows.dtype == np.float32
    # what was stored is the clip's flow, quantised: within half a step inside the bound
    expected = np.clip(clip_flow(read_video(first), "farneback"), -20, 20)
    assert np.abs(flows - expected).max() <= 20 / 255 + 1e-5
    assert np.array_equal(load_flow(target, [5, 2]), flows[[5, 2]])
    with pytest.raises(IndexError, match="flow index 23 out of range"):
        load_flow(target, [23])

    stamp = target.stat().st_mtime_ns
    again = extract_flow_dataset([first, second], out, method="farneback", progress=False, root=tmp_path)
    assert (again.written, again.skipped) == (0, 2) and target.stat().st_mtime_ns == stamp
    (out / "b" / "two.npz").unlink()                            # as if interrupted before it
    resumed = extract_flow_dataset([second, first], out, method="farneback", progress=False, root=tmp_path)
    assert (resumed.written, resumed.skipped) == (1, 1) and target.stat().st_mtime_ns == stamp
    assert load_flow(out / "b" / "two.npz").shape == (5, 2, 64, 64)
    with pytest.raises(ValueError, match="holds farneback flow with bound 20"):
        extract_flow_dataset([first], out, method="dis", progress=False, root=tmp_path)
    assert sorted(p.name for p in out.rglob("*")) == ["a", "b", "one.npz", "two.npz"]  # no temp files
    # without root, files are named after the videos alone, so repeated names are refused
    with pytest.raises(ValueError, match="would both write .*one.npz"):
        extract_flow_dataset([first, make_video("c/one.mp4")], tmp_path / "flat", progress=False)


def test_extract_counts_undecodable_videos(shared_data, make_video, tmp_path):
    real = shared_data / "videos" / "mmaction2__rawvideo_dataset_part_0.mp4"  # 32 frames, 340x256
    broken = tmp_path / "videos" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"not a video at all" * 100)
    single = make_video("videos/single.mp4", moving_square_frames(num_frames=1))
    out = tmp_path / "flow"
    with pytest.warns(UserWarning) as caught:
        summary = extract_flow_dataset([real, broken, single], out, method="dis", bound=10.0, workers=2,
                                       progress=False)
    assert ["broken.mp4" in str(w.message) for w in caught] == [True, False]
    assert summary.written == 1 and summary.skipped == 0
    assert [video.name for video, _ in summary.failed] == ["broken.mp4", "single.mp4"]
    assert "at least 2 frames" in summary.failed[1][1]
    flows = load_flow(out / "mmaction2__rawvideo_dataset_part_0.npz", [0, 30])
    assert flows.shape == (2, 2, 256, 340) and np.abs(flows).max() <= 10.0
    assert not (out / "broken.npz").exists()


def test_extract_flow_from_packed_and_frame_folder_sources(make_video, tmp_path):
    """The same frames packed raw (lossless) give the video's flow exactly; JPEG frames nearly."""
    from deepvideo.data.pack import pack_video

    source = make_video("one.mp4")
    raw = pack_video(source, tmp_path / "packed" / "one.tar", format="raw")
    folder = pack_video(source, tmp_path / "frames" / "one", format="folder", quality=95)
    out = tmp_path / "flow"
    summary = extract_flow_dataset([source, raw, folder], out, method="farneback", progress=False,
                                   root=tmp_path)
    assert (summary.written, summary.failed) == (3, [])
    video_flow = load_flow(flow_target(source, out, tmp_path))
    assert np.array_equal(load_flow(flow_target(raw, out, tmp_path)), video_flow)
    assert np.abs(load_flow(flow_target(folder, out, tmp_path)) - video_flow).mean() < 0.05
