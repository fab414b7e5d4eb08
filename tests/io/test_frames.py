"""FrameFolderReader: frames read back exactly, natural order, fps, bad folders and images."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from deepvideo.io import FrameFolderReader, VideoDecodeError, is_frame_folder, open_video
from deepvideo.io.frames import DEFAULT_FPS, MAX_FRAME_PIXELS, decode_image

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
    cases = {"{not json": "not valid JSON", "[" * 100_000: "not valid JSON \\(maximum recursion",
             b"\xff{}": "not valid JSON", '{"rate": 5}': "expected a JSON object with field 'fps'",
             "[25]": "expected a JSON object with field 'fps'"}
    cases.update({f'{{"fps": {value}}}': f"field 'fps' must be a finite number > 0, not {shown}"
                  for value, shown in [("0", "0"), ("-25", "-25"), ("NaN", "nan"), ("Infinity", "inf"),
                                       ("true", "True"), ('"25"', "'25'"), ("null", "None")]})
    for text, message in cases.items():
        (folder / "meta.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(VideoDecodeError, match=rf"meta\.json: {message}"):
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


def png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR chunk is rewritten to claim ``width`` x ``height`` (CRC fixed)."""
    _, data = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    data = bytearray(data.tobytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR: length 8..12, type 12..16, then W, H
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_oversized_frames_are_refused_from_their_header(tmp_path, frames):
    """A frame whose header claims more than MAX_FRAME_PIXELS (a decompression bomb for Pillow
    at 20000x20000) or another size than the first is refused before it is decoded."""
    assert MAX_FRAME_PIXELS == 8192 * 8192
    folder = write_folder(tmp_path / "v", frames[:3])
    (folder / "img_00002.png").write_bytes(png_claiming(20000, 20000))
    (folder / "img_00003.png").write_bytes(png_claiming(9000, 9000))  # under Pillow's own limit
    with FrameFolderReader(folder) as reader:
        with pytest.raises(VideoDecodeError, match=r"img_00002\.png: image size over the frame limit "
                                                   r"of 67108864 pixels \(MAX_FRAME_PIXELS\)"):
            reader.read([1])
        with pytest.raises(VideoDecodeError, match=r"img_00003\.png: image size 9000x9000 over the frame"):
            reader.read([2])
    (folder / "img_00001.png").write_bytes(png_claiming(48, 48))  # readable header, no pixel data
    with FrameFolderReader(folder) as reader, pytest.raises(VideoDecodeError,
                                                           match=r"img_00001\.png: not a readable image"):
        reader.read([0])
    for name in ("img_00001.png", "img_00003.png"):
        (folder / name).unlink()  # the bomb is the first frame now
    with pytest.raises(VideoDecodeError, match=r"img_00002\.png: image size over the frame limit"):
        FrameFolderReader(folder)


def test_decoder_failures_name_the_image():
    with pytest.raises(VideoDecodeError, match=r"^frame 3: not a readable image \(.*buf\.empty"):
        decode_image(b"", "frame 3")  # OpenCV raises for empty input instead of returning None
