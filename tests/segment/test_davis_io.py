"""DAVIS folders: the palette, mask and frame round trips, sequence lists, and the one-line
errors for unexpected colours, ids and sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from deepvideo.segment import (
    DAVIS_PALETTE,
    list_sequences,
    read_frames,
    read_image_set,
    read_mask,
    read_masks,
    read_sequence,
    write_frames,
    write_image_set,
    write_mask,
    write_masks,
)


def official_color_map(n=256):
    """``color_map`` of davis2017-evaluation's ``davis2017/utils.py`` (the PASCAL VOC colour map),
    copied for this test."""
    def bitget(byteval, idx):
        return (byteval & (1 << idx)) != 0

    cmap = np.zeros((n, 3), dtype="uint8")
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r = r | (bitget(c, 0) << 7 - j)
            g = g | (bitget(c, 1) << 7 - j)
            b = b | (bitget(c, 2) << 7 - j)
            c = c >> 3
        cmap[i] = np.array([r, g, b])
    return cmap


def masks_of(t=3, h=12, w=16) -> np.ndarray:
    masks = np.zeros((t, h, w), dtype=np.uint8)
    for i in range(t):
        masks[i, 2:6, 3 + i:8 + i] = 1
        masks[i, 7:10, 10:14] = 2
    return masks


def test_palette():
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    assert DAVIS_PALETTE[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert np.array_equal(DAVIS_PALETTE, official_color_map())
    assert len({tuple(c) for c in DAVIS_PALETTE.tolist()}) == 256


def test_mask_round_trip(tmp_path):
    masks = masks_of()
    paths = write_masks(tmp_path / "seq", masks)
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    with Image.open(paths[0]) as image:
        assert image.mode == "P"
        assert image.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
        assert np.array_equal(np.array(image), masks[0])  # what DAVIS's own reader (np.array(Image.open)) sees
    read = read_masks(tmp_path / "seq", max_id=2)
    assert read.dtype == np.uint8 and np.array_equal(read, masks)
    # bool masks are object 1; other names
    write_masks(tmp_path / "b", masks > 0, names=["a", "b", "c"])
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["a.png", "b.png", "c.png"]
    assert np.array_equal(read_masks(tmp_path / "b"), (masks > 0).astype(np.uint8))
    with pytest.raises(ValueError, match=r"object ids must be 0..255, got 0..300"):
        write_mask(tmp_path / "x.png", np.array([[0, 300]]))


def test_rgb_masks_map_through_the_palette(tmp_path):
    masks = masks_of(t=1)[0]
    Image.fromarray(DAVIS_PALETTE[masks]).save(tmp_path / "rgb.png")
    assert np.array_equal(read_mask(tmp_path / "rgb.png"), masks)
    rgba = np.concatenate([DAVIS_PALETTE[masks], np.full(masks.shape + (1,), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert np.array_equal(read_mask(tmp_path / "rgba.png"), masks)


def test_unexpected_colour(tmp_path):
    rgb = DAVIS_PALETTE[masks_of(t=1)[0]].copy()
    rgb[0, 0] = (255, 255, 255)
    rgb[1, 1] = (127, 0, 0)
    path = tmp_path / "00000.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(ValueError) as err:
        read_mask(path)
    assert str(err.value).startswith(f"{path}: colour (127, 0, 0) is not in the DAVIS palette")


def test_unexpected_palette_index(tmp_path):
    masks = masks_of()
    masks[2, 0, 0] = 7
    write_masks(tmp_path / "seq", masks)
    assert read_masks(tmp_path / "seq").max() == 7  # without max_id any index is an id
    with pytest.raises(ValueError) as err:
        read_masks(tmp_path / "seq", max_id=2)
    assert str(err.value) == f"{tmp_path / 'seq' / '00002.png'}: object id(s) 7 not expected (ids 0..2 and void 255)"
    masks[2, 0, 0] = 255  # void is always allowed
    write_masks(tmp_path / "void", masks)
    assert read_masks(tmp_path / "void", max_id=2)[2, 0, 0] == 255


def test_greyscale_masks_are_binary(tmp_path):
    grey = np.zeros((6, 8), np.uint8)
    grey[1:4, 2:5] = 255
    Image.fromarray(grey, mode="L").save(tmp_path / "davis2016.png")
    assert np.array_equal(read_mask(tmp_path / "davis2016.png"), (grey > 0).astype(np.uint8))
    Image.fromarray(grey > 0).save(tmp_path / "bits.png")
    assert np.array_equal(read_mask(tmp_path / "bits.png"), (grey > 0).astype(np.uint8))
    grey[0, 0] = 128
    Image.fromarray(grey, mode="L").save(tmp_path / "soft.png")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'soft.png'}: greyscale mask with grey level 128")):
        read_mask(tmp_path / "soft.png")


def test_masks_of_different_sizes(tmp_path):
    write_masks(tmp_path / "seq", masks_of(t=2))
    write_mask(tmp_path / "seq" / "00002.png", np.zeros((10, 16), np.uint8))
    with pytest.raises(ValueError) as err:
        read_masks(tmp_path / "seq")
    assert str(err.value) == f"{tmp_path / 'seq' / '00002.png'}: mask is 16x10, 00000.png is 16x12"


def test_frames_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat(rng.integers(0, 256, (2, 3, 4, 3), dtype=np.uint8), 4, axis=1), 4, axis=2)
    paths = write_frames(tmp_path / "seq", frames)
    assert [p.name for p in paths] == ["00000.jpg", "00001.jpg"]
    read = read_frames(tmp_path / "seq")
    assert read.shape == frames.shape and read.dtype == np.uint8
    assert np.abs(read.astype(int) - frames).mean() < 12  # JPEG is lossy
    with pytest.raises(ValueError, match=r"frames are \(T, H, W, 3\) uint8"):
        write_frames(tmp_path / "x", frames[0])


def davis_root(tmp_path, sequences=("bear", "camel"), t=3):
    for name in sequences:
        write_frames(tmp_path / "JPEGImages" / "480p" / name, np.zeros((t, 12, 16, 3), np.uint8))
        write_masks(tmp_path / "Annotations" / "480p" / name, masks_of(t=t))
    return tmp_path


def test_sequences_and_image_sets(tmp_path):
    root = davis_root(tmp_path)
    assert list_sequences(root) == ["bear", "camel"]
    with pytest.raises(FileNotFoundError, match="no such folder, not a DAVIS root with 1080p frames"):
        list_sequences(root, "1080p")
    write_image_set(root, "val", ["camel", "bear"])
    assert (root / "ImageSets" / "2017" / "val.txt").read_text() == "camel\nbear\n"
    assert read_image_set(root, "val") == ["camel", "bear"]
    with pytest.raises(FileNotFoundError, match="no such DAVIS image set"):
        read_image_set(root, "train")


def test_read_sequence(tmp_path):
    root = davis_root(tmp_path)
    sequence = read_sequence(root, "bear", max_id=2)
    assert sequence.frame_names == ["00000", "00001", "00002"]
    assert sequence.frames.shape == (3, 12, 16, 3) and sequence.masks.shape == (3, 12, 16)
    assert np.array_equal(sequence.masks, masks_of()) and sequence.annotated.all()
    assert sequence.missing_frames == []


def test_read_sequence_with_first_mask_only_and_missing_frames(tmp_path):
    root = davis_root(tmp_path, sequences=("bear",))
    masks = root / "Annotations" / "480p" / "bear"
    (masks / "00001.png").unlink()
    write_mask(masks / "00007.png", masks_of(t=1)[0])
    write_mask(masks / "00009.png", masks_of(t=1)[0])
    with pytest.warns(UserWarning, match=r"skipped 2 masks without a frame \(first: 00007.png\)"):
        sequence = read_sequence(root, "bear")
    assert sequence.annotated.tolist() == [True, False, True]
    assert not sequence.masks[1].any()
    assert sequence.missing_frames == ["00007", "00009"]


def test_mask_of_another_size_than_its_frame(tmp_path):
    root = davis_root(tmp_path, sequences=("bear",))
    path = root / "Annotations" / "480p" / "bear" / "00001.png"
    write_mask(path, np.zeros((12, 15), np.uint8))
    with pytest.raises(ValueError) as err:
        read_sequence(root, "bear")
    frame = root / "JPEGImages" / "480p" / "bear" / "00001.jpg"
    assert str(err.value) == f"{path}: mask is 15x12, its frame {frame} is 16x12"
