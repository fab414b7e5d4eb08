"""The built-in moving-object segmentation set, written in DAVIS's layout.

Each sequence is one scene of :func:`deepvideo.data.synthetic.render_scene`: textured
background panned by a camera, objects that translate, rotate, grow or pulse, and static
distractors that only move with the camera.  Its masks are binary moving-object masks:
1 where an object that moves in the world covers the pixel, 0 elsewhere (background and
still objects alike), so that *moving*, not *being an object*, decides::

    root/JPEGImages/480p/<train_0000|val_0000|...>/00000.jpg, ...   frames (JPEG, lossy)
    root/Annotations/480p/<sequence>/00000.png, ...                 palette PNG masks (0/1)
    root/ImageSets/2017/train.txt, val.txt                          sequence names
    root/meta.json                                                  scene config, counts, seed

(The folder is named ``480p`` as DAVIS's is, whatever the frame size.)  Sequence ``i`` of
split ``s`` is the first scene drawn from ``numpy.random.default_rng((seed, split index, i,
attempt))``, ``attempt = 0, 1, ...``, with a moving object in its first frame (DAVIS scores
the objects of the first frame), so any one can be rewritten alone.  Writing is resumable and
atomic: a sequence's masks and then its frames are written to temporary folders and renamed
into place, the frames last; a sequence whose frame folder exists is finished and skipped on a
rerun.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepvideo.data.synthetic import SceneConfig, render_scene
from deepvideo.io.atomic import atomic_path, atomic_write_text, exclusive_folder, remove_temps
from deepvideo.segment.davis import write_frames, write_image_set, write_masks

__all__ = ["SEGMENT_SCENES", "SPLITS", "make_segment_dataset", "moving_masks", "segment_scene"]

SPLITS = ("train", "val", "test")
# the built-in set's scenes: 64 px, 24 frames; objects 1.3-2.6 px/frame, the camera up to 1 px/frame
SEGMENT_SCENES = SceneConfig(size=64, num_frames=24, speed=(0.02, 0.04), camera=0.015)
FORMAT = "deepvideo-segment"


def moving_masks(masks: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Binary moving-object masks ``(T, H, W)`` uint8 (1 = moving) from a scene's object ids
    ``masks`` ``(T, H, W)`` (``k + 1`` = object ``k``) and ``moving`` ``(K,)`` bool."""
    lookup = np.concatenate([[0], np.asarray(moving, np.uint8)]).astype(np.uint8)
    return lookup[masks]


def segment_scene(config: SceneConfig, split: str, index: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequence ``index`` of ``split``: frames ``(T, H, W, 3)`` uint8 and moving masks ``(T, H, W)`` uint8."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    for attempt in range(100):
        scene = render_scene(np.random.default_rng((seed, SPLITS.index(split), index, attempt)), config)
        masks = moving_masks(scene.masks, scene.moving)
        if masks[0].any():
            return scene.frames, masks
    raise ValueError(f"{split} {index}: no scene with a moving object in 100 draws (SceneConfig.still "
                     f"{config.still})")


def _check_meta(root: Path, meta: dict) -> None:
    path = root / "meta.json"
    if not path.is_file():
        if (root / "JPEGImages").exists():
            raise ValueError(f"{root}: holds a DAVIS folder without meta.json; choose an empty or new folder")
        return
    try:
        stored = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: unreadable ({exc}); delete the folder to write the set again") from None
    if stored != meta:
        changed = [key for key in meta if stored.get(key) != meta[key]]
        raise ValueError(f"{path}: the folder holds a set made with other settings ({', '.join(changed) or 'format'});"
                         f" use another folder or delete it")


def _write_sequence(root: Path, name: str, frames: np.ndarray, masks: np.ndarray) -> None:
    annotations = root / "Annotations" / "480p" / name
    images = root / "JPEGImages" / "480p" / name
    remove_temps([annotations, images])
    shutil.rmtree(annotations, ignore_errors=True)  # masks of a sequence whose frames never arrived
    with atomic_path(annotations, folder=True) as tmp:
        write_masks(tmp, masks)
    with atomic_path(images, folder=True) as tmp:
        write_frames(tmp, frames)


def make_segment_dataset(root: str | os.PathLike, config: SceneConfig | None = None, train: int = 40,
                         val: int = 10, test: int = 0, seed: int = 0, progress: bool = True) -> Path:
    """Write ``train``/``val``/``test`` sequences of ``config`` scenes (default
    :data:`SEGMENT_SCENES`) under ``root``
    in DAVIS's layout (see the module docstring) and return ``root``.

    A rerun with the same settings writes only the sequences not finished yet; a folder made
    with other settings is a ``ValueError`` naming its ``meta.json``; the folder is locked while
    sequences are written, and a second writer meanwhile is a ``ValueError`` at once."""
    config = config or SEGMENT_SCENES
    counts = {"train": train, "val": val, "test": test}
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"{split}: a number of sequences >= 0, got {count}")
    root = Path(root)
    meta = {"format": FORMAT, "version": 1, "scene": json.loads(json.dumps(asdict(config))), "counts": counts,
            "seed": seed}
    with exclusive_folder(root):
        _check_meta(root, meta)  # under the lock: no other writer changes meta.json meanwhile
        atomic_write_text(root / "meta.json", json.dumps(meta, indent=2))
        names = {split: [f"{split}_{i:04d}" for i in range(count)] for split, count in counts.items()}
        todo = [(split, i, name) for split in SPLITS for i, name in enumerate(names[split])
                if not (root / "JPEGImages" / "480p" / name).is_dir()]
        for split, i, name in tqdm(todo, desc=f"segmentation set {root.name}", unit="seq", disable=not progress):
            _write_sequence(root, name, *segment_scene(config, split, i, seed))
        for split in SPLITS:
            if counts[split]:
                write_image_set(root, split, names[split])
    return root
