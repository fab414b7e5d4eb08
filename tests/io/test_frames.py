"""FrameFolderReader: frames read back exactly, natural order, fps, bad folders and images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from deepvideo.io import FrameFolderReader, VideoDecodeError, is_frame_folder, open_video
from deepvideo.io.frames import DEFAULT_FPS, decode_image

from conftest import moving_square_frames


def write_folder(folder: Path, frames: np.ndarray, ext: str = ".png", pad: int = 5,
                 quality: int = 95) -> Path:
    """``folder/img_<i>.<ext>`` (1-based, zero-padded to ``pad`` digits) written with OpenCV."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        ok = cv2.imwrite(str(folder / f"img_{i:0{pad}d}{ext}"), frame[..., ::-1],
                         [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
    return folder


@pytest.fixture
def frames() -> np.ndarray:
    return moving_square_frames(num_frames=12, size=48, seed=3)


def test_png_folder_reads_back_bit_exact(tmp_path, frames):
    folder = write_folder(tmp_path / "v", frames)
    rng = np.random.default_rng(0)
    with FrameFolderReader(folder) as reader:
        assert (reader.num_frames, reader.width, reader.height) == (12, 48, 48)
        assert reader.codec == "png" and reader.fps == DEFAULT_FPS
        np.testing.assert_allclose(reader.frame_times, np.arange(12) / DEFAULT_FPS)
        assert reader.duration == pytest.approx(12 / DEFAULT_FPS)
        for indices in (rng.integers(0, 12, 8), [11, 0, 11, 5, 5], np.arange(12), [3]):
            np.testing.assert_array_equal(reader.read(indices), frames[np.asarray(indices)])
        np.testing.assert_array_equal(np.stack(list(reader)), frames)
        np.testing.assert_array_equal(reader.read_time(0.2, 0.32), frames[5:8])  # 25 fps
        assert reader.index_at(0.21) == 5


def smooth(frames: np.ndarray) -> np.ndarray:
    """The frames blurred: JPEG is lossy on pixel noise, near-exact on natural images."""
    return np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames])


def test_jpeg_folder_is_close_and_threads_agree(tmp_path, frames):
    frames = smooth(frames)
    folder = write_folder(tmp_path / "v", frames, ext=".jpg")
    with FrameFolderReader(folder, threads=1) as one, FrameFolderReader(folder, threads=2) as two:
        assert one.codec == "jpeg"
        indices = [7, 2, 9, 2]
        ours = one.read(indices)
        np.testing.assert_array_equal(ours, two.read(indices))
    # the same pixels as PIL's decoder (both libjpeg-turbo), close to the originals
    pil = np.stack([np.asarray(Image.open(folder / f"img_{i + 1:05d}.jpg").convert("RGB"))
                    for i in indices])
    assert np.abs(ours.astype(int) - pil).max() <= 1
    assert np.abs(ours.astype(int) - frames[indices]).mean() < 3  # measured 2.0 (q95)


def test_natural_order_fps_from_meta_and_hidden_files(tmp_path, frames):
    folder = write_folder(tmp_path / "v", frames, pad=1)  # img_1.png ... img_12.png
    (folder / "._img_1.png").write_bytes(b"macOS resource fork")
    (folder / "notes.txt").write_text("not a frame")
    (folder / "meta.json").write_text(json.dumps({"fps": 8}))
    with open_video(folder) as reader:
        assert isinstance(reader, FrameFolderReader)
        assert reader.files[:3] == ["img_1.png", "img_2.png", "img_3.png"]
        assert reader.fps == 8 and reader.duration == pytest.approx(1.5)
        np.testing.assert_array_equal(reader.read([9, 10, 11]), frames[9:12])
    assert is_frame_folder(folder) and not is_frame_folder(tmp_path / "missing")
    assert not is_frame_folder(folder / "notes.txt")


def test_bad_folders_give_one_line_errors(tmp_path, frames):
    with pytest.raises(VideoDecodeError, match="no such folder"):
        FrameFolderReader(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match=r"empty: no frame images"):
        FrameFolderReader(tmp_path / "empty")
    folder = write_folder(tmp_path / "meta", frames[:2])
    for text in ("{not json", '{"fps": 0}', '{"rate": 5}', "[25]"):
        (folder / "meta.json").write_text(text)
        with pytest.raises(VideoDecodeError, match=r"meta\.json: expected a JSON object"):
            FrameFolderReader(folder)


def test_unreadable_or_odd_images_name_the_file(tmp_path, frames):
    folder = write_folder(tmp_path / "v", frames[:4])
    (folder / "img_00003.png").write_bytes(b"\x89PNG truncated")
    cv2.imwrite(str(folder / "img_00004.png"), frames[0, :40])  # 48x40: another size
    with FrameFolderReader(folder) as reader:
        np.testing.assert_array_equal(reader.read([0, 1]), frames[:2])
        with pytest.raises(VideoDecodeError, match=r"img_00003\.png: not a readable image"):
            reader.read([1, 2])
        with pytest.raises(VideoDecodeError, match=r"img_00004\.png: frame 3 is 48x40"):
            reader.read([3])
        with pytest.raises(IndexError, match=r"frame index 4 out of range \(video has 4"):
            reader.read([0, 4])
    (folder / "img_00001.png").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=r"img_00001\.png: not a readable image"):
        FrameFolderReader(folder)
    with pytest.raises(VideoDecodeError, match="frame 7: not a readable image"):
        decode_image(b"garbage", "frame 7")
