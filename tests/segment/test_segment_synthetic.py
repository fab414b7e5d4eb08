"""The built-in moving-object set in DAVIS's layout: binary moving masks that follow the scene,
resumable atomic writing, and a folder of other settings refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.data.synthetic import SceneConfig, render_scene
from deepvideo.io.atomic import exclusive_folder
from deepvideo.segment import make_segment_dataset, moving_masks, read_image_set, read_sequence, segment_scene

CONFIG = SceneConfig(size=32, num_frames=6, speed=(0.02, 0.04), camera=0.015)


def test_moving_masks_keep_only_moving_objects():
    scene = render_scene(np.random.default_rng(3), CONFIG)
    masks = moving_masks(scene.masks, scene.moving)
    assert masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 1}
    for k, moving in enumerate(scene.moving):
        assert (masks[scene.masks == k + 1] == int(moving)).all()
    assert not masks[scene.masks == 0].any()


def test_every_sequence_has_a_moving_object_and_is_reproducible():
    for i in range(6):
        frames, masks = segment_scene(CONFIG, "val", i, seed=1)
        assert frames.shape == (6, 32, 32, 3) and masks.shape == (6, 32, 32) and masks[0].any()
    assert np.array_equal(segment_scene(CONFIG, "val", 2, seed=1)[0], segment_scene(CONFIG, "val", 2, seed=1)[0])
    assert not np.array_equal(segment_scene(CONFIG, "val", 2)[0], segment_scene(CONFIG, "train", 2)[0])
    with pytest.raises(ValueError, match="split 'dev'"):
        segment_scene(CONFIG, "dev", 0)


def test_write_read_resume(tmp_path):
    root = make_segment_dataset(tmp_path / "set", CONFIG, train=3, val=2, seed=5, progress=False)
    assert read_image_set(root, "train") == ["train_0000", "train_0001", "train_0002"]
    assert read_image_set(root, "val") == ["val_0000", "val_0001"]
    assert not (root / "ImageSets" / "2017" / "test.txt").exists()
    sequence = read_sequence(root, "val_0001", max_id=1)
    frames, masks = segment_scene(CONFIG, "val", 1, seed=5)
    assert np.array_equal(sequence.masks, masks) and sequence.annotated.all()
    assert np.abs(sequence.frames.astype(int) - frames).mean() < 16  # JPEG is lossy (chroma of a noisy texture)
    # a rerun writes nothing; a sequence whose frames never arrived (killed run) is written again
    stamp = (root / "JPEGImages" / "480p" / "train_0000" / "00000.jpg").stat().st_mtime_ns
    images = root / "JPEGImages" / "480p" / "train_0002"
    for path in images.iterdir():
        path.unlink()
    images.rmdir()
    (root / "Annotations" / "480p" / ".train_0002.abcd1234.tmp").mkdir()  # an interrupted folder write
    make_segment_dataset(root, CONFIG, train=3, val=2, seed=5, progress=False)
    assert (root / "JPEGImages" / "480p" / "train_0000" / "00000.jpg").stat().st_mtime_ns == stamp
    assert len(list(images.glob("*.jpg"))) == 6
    assert sorted(p.name for p in (root / "Annotations" / "480p").iterdir()) == \
        ["train_0000", "train_0001", "train_0002", "val_0000", "val_0001"]
    with pytest.raises(ValueError) as err:
        make_segment_dataset(root, CONFIG, train=3, val=2, seed=6, progress=False)
    assert "meta.json" in str(err.value) and "seed" in str(err.value) and "\n" not in str(err.value)


def test_a_second_writer_of_the_folder_is_refused_at_once(tmp_path):
    root = tmp_path / "set"
    with exclusive_folder(root):  # another process writing the set now
        with pytest.raises(ValueError, match=f"^{root}: another job is writing here now"):
            make_segment_dataset(root, CONFIG, train=2, val=1, progress=False)
    assert not list(root.iterdir())  # nothing written, nothing of the other writer's removed
    make_segment_dataset(root, CONFIG, train=2, val=1, progress=False)
    assert read_image_set(root, "train") == ["train_0000", "train_0001"]
