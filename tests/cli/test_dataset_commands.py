"""pack, extract-features and flow-extract over a dataset: which sources they find, how
they report skipped videos, and exit code 2 when no video could be used."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from deepvideo.cli import _video_files, main
from deepvideo.data.features import load_features
from deepvideo.io import open_video

from conftest import one_line_error


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mixed_sources(tiny_motion_root, tmp_path):
    """``data/{a/clip.mp4, a/packed.tar, b/frames/img_*.jpg + meta.json}`` of one 8-frame video."""
    from deepvideo.data.pack import pack_video

    video = sorted((tiny_motion_root / "val" / "left").glob("*.mp4"))[0]
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    shutil.copy(video, data / "a" / "clip.mp4")
    pack_video(video, data / "a" / "packed.tar", "jpeg")
    pack_video(video, data / "b" / "frames", "folder")
    (data / "a" / ".hidden.mp4").write_text("macOS resource fork")
    return data


def test_video_files_are_every_source_open_video_reads(mixed_sources):
    root, videos = _video_files(str(mixed_sources))
    assert root == mixed_sources
    assert videos == [mixed_sources / "a" / "clip.mp4", mixed_sources / "a" / "packed.tar",
                      mixed_sources / "b" / "frames"]          # the frame folder's JPEGs are not videos
    for video in videos:
        with open_video(video) as reader:
            assert reader.num_frames == 8


def test_extract_features_and_pack_take_packed_and_frame_folder_datasets(capsys, tiny_motion_root, tmp_path):
    packed, frames = tmp_path / "packed", tmp_path / "frames"
    code, _, err = run(capsys, "pack", "--data", str(tiny_motion_root / "val"), "--out", str(packed))
    assert code == 0, err
    code, _, err = run(capsys, "pack", "--data", str(tiny_motion_root / "val"), "--out", str(frames),
                       "--format", "folder")
    assert code == 0, err
    code, out, err = run(capsys, "pack", "--data", str(frames), "--out", str(tmp_path / "repacked"))
    assert code == 0, err                                      # a frame-folder dataset packs
    assert out.startswith(f"{tmp_path / 'repacked'}: 4 packed, 0 already done, 0 skipped")
    assert sorted(p.relative_to(tmp_path / "repacked") for p in (tmp_path / "repacked").rglob("*.tar")) == \
        sorted(p.relative_to(packed) for p in packed.rglob("*.tar"))
    feats = tmp_path / "features"
    code, out, err = run(capsys, "extract-features", "--data", str(packed), "--out", str(feats),
                         "--backbone", "small3d", "--clip-len", "4", "--size", "16")
    assert code == 0, err                                      # a packed dataset too
    assert "4 written, 0 already done, 0 skipped; 256 features per clip" in out
    features, times = load_features(feats / "left" / "left_0.npz")
    assert features.shape == (2, 256)
    np.testing.assert_allclose(times, [0.0, 0.5])


def test_pack_of_only_corrupt_videos_exits_2_naming_each_once(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.mp4").write_text("not a video")
    (data / "b.avi").write_bytes(b"")
    code, out, err = run(capsys, "pack", "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 2
    assert out.splitlines() == [f"{tmp_path / 'out'}: 0 packed, 0 already done, 2 skipped",
                                f"  skipped {data / 'a.mp4'}: not a readable video (Invalid data found when "
                                f"processing input: moov atom not found)",
                                f"  skipped {data / 'b.avi'}: empty file"]
    one_line_error(err, f"--data {data}: none of the 2 videos could be used",
                   f"first: {data / 'a.mp4'}: not a readable video", lines_above=True)
    assert out.count(str(data / "a.mp4")) == 1
    code, _, err = run(capsys, "flow-extract", "--data", str(data), "--out", str(tmp_path / "flow"))
    assert code == 2
    one_line_error(err, "none of the 2 videos could be used", lines_above=True)


def test_one_good_video_is_success(capsys, tiny_motion_root, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sorted(tiny_motion_root.rglob("*.mp4"))[0], data / "good.mp4")
    (data / "bad.mp4").write_text("not a video")
    code, out, err = run(capsys, "pack", "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "1 packed, 0 already done, 1 skipped" in out
    code, out, err = run(capsys, "pack", "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 0, err                                      # found done counts as success
    assert "0 packed, 1 already done, 1 skipped" in out


def test_extract_features_on_too_short_videos_says_so_and_exits_2(capsys, tiny_motion_root, tmp_path):
    out_dir = tmp_path / "features"
    code, out, err = run(capsys, "extract-features", "--data", str(tiny_motion_root / "val"), "--out",
                         str(out_dir), "--backbone", "small3d", "--clip-len", "16", "--size", "16")
    assert code == 2
    lines = out.splitlines()
    assert lines[0] == f"{out_dir}: 0 written, 0 already done, 4 skipped"
    video = tiny_motion_root / "val" / "left" / "left_0.mp4"
    assert lines[1] == f"  skipped {video}: too short (8 frames, a clip needs 16)"
    assert len(lines) == 5 and "unreadable" not in out
    one_line_error(err, "none of the 4 videos could be used", "too short (8 frames, a clip needs 16)",
                   lines_above=True)
    assert not list(out_dir.rglob("*.npz"))
