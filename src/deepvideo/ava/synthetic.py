"""The built-in spatio-temporal action detection benchmark, in AVA's formats.

Each video is a scene of :func:`deepvideo.data.synthetic.render_scene`: two or three objects
over a textured background that the camera pans, each doing its own actions -- moving right,
left, down or up, or standing, and possibly also rotating, growing or pulsing -- so that a
box is multi-label, as in AVA.  One keyframe per second (the whole seconds ``1 .. duration -
1``, so that a clip centred on each fits in the video) is annotated with every visible
object's box (normalised ``x1, y1, x2, y2``), one row per action, the object's index as its
``person_id``.  No single frame tells moving from standing, the direction, or growing from
being big: a model has to see the clip.

On disk (:func:`make_ava_dataset`)::

    root/meta.json                          config, counts, classes, complete flag
    root/videos/<split>_<n>.mp4             split in train / val
    root/annotations/<split>.csv            AVA ground truth (video_id,timestamp,x1,y1,x2,y2,action_id,person_id)
    root/annotations/label_map.pbtxt        the actions, AVA's ``item { name id }`` style

Every video has its own generator keyed by (seed, split, index): a file does not depend on
which were written before it, and an interrupted run writes only what is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepvideo.ava.annotations import AvaBox, write_groundtruth, write_label_map
from deepvideo.data.synthetic import SCENE_ACTIONS, SceneConfig, render_scene
from deepvideo.io import write_video
from deepvideo.io.atomic import atomic_path, atomic_write_text

__all__ = ["AVA_SPLITS", "AvaSynthConfig", "make_ava_dataset", "scene_boxes"]

AVA_SPLITS = ("train", "val")
MIN_SIDE = 3  # pixels: a box smaller than this at a keyframe (an object leaving the view) is not annotated


@dataclass(frozen=True)
class AvaSynthConfig:
    """What :func:`make_ava_dataset` writes: ``train`` and ``val`` videos of ``seconds``
    seconds at ``fps`` frames per second, ``size`` pixels square, ``objects`` (least, most)
    per video; ``camera`` the largest pan speed (fraction of the side per frame, 0 for a
    still camera); ``seed`` the master seed; ``crf`` libx264's quality."""

    train: int = 160
    val: int = 40
    seconds: int = 4
    fps: float = 8.0
    size: int = 64
    objects: tuple[int, int] = (2, 3)
    camera: float = 0.006
    seed: int = 0
    crf: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if self.seconds < 2:
            raise ValueError(f"seconds: need at least 2 (a keyframe at 1 s with a clip around it), got {self.seconds}")
        if self.fps < 2 or self.fps != int(self.fps):
            raise ValueError(f"fps: need a whole number >= 2 (keyframes fall on frames), got {self.fps}")
        if self.train < 0 or self.val < 0 or self.train + self.val < 1:
            raise ValueError(f"train, val: videos per split must be >= 0 and not both 0, got {self.train}, {self.val}")
        self.scene()  # checks size and objects

    def scene(self) -> SceneConfig:
        return SceneConfig(size=self.size, num_frames=int(self.seconds * self.fps), objects=self.objects,
                           camera=self.camera)


def scene_boxes(video_id: str, boxes: np.ndarray, actions: tuple[tuple[str, ...], ...], fps: float,
                size: int) -> list[AvaBox]:
    """The AVA ground truth of one scene: at each keyframe second ``1 .. duration - 1`` (frame
    ``second * fps``), every object whose box ``(T, K, 4)`` (pixels) is at least ``MIN_SIDE``
    pixels wide and high, one row per action (ids: ``SCENE_ACTIONS`` index + 1)."""
    rows = []
    for second in range(1, int(len(boxes) / fps)):
        for person, (box, names) in enumerate(zip(boxes[int(second * fps)], actions)):
            if np.isnan(box).any() or min(box[2] - box[0], box[3] - box[1]) < MIN_SIDE:
                continue
            x1, y1, x2, y2 = (np.clip(box, 0, size) / size).tolist()
            rows += [AvaBox(video_id, second, x1, y1, x2, y2, SCENE_ACTIONS.index(name) + 1, person)
                     for name in names]
    return rows


def _rng(config: AvaSynthConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(AVA_SPLITS.index(split), index)))


def make_ava_dataset(root: str | os.PathLike, config: AvaSynthConfig | None = None, progress: bool = True) -> Path:
    """Write the benchmark under ``root`` (layout in the module docstring) and return it.

    A ``root`` holding another config is a ``ValueError``; videos already there are kept
    (each is encoded beside its name and renamed into place), so an interrupted run resumes."""
    config = config or AvaSynthConfig()
    root = Path(root).expanduser()
    meta_path = root / "meta.json"
    meta = {"format": "deepvideo-ava", "config": asdict(config), "classes": list(SCENE_ACTIONS),
            "videos": {"train": config.train, "val": config.val}}
    if meta_path.is_file():
        stored = json.loads(meta_path.read_text())
        if stored.get("config") != json.loads(json.dumps(meta["config"])):
            raise ValueError(f"{root}: holds an AVA benchmark of another config; choose another folder")
    elif root.is_dir() and any(root.iterdir()):
        raise ValueError(f"{root}: not empty and not an AVA benchmark folder; choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(meta_path, json.dumps({**meta, "complete": False}, indent=2))
    videos = [(split, index) for split in AVA_SPLITS for index in range(getattr(config, split))]
    rows: dict[str, list[AvaBox]] = {split: [] for split in AVA_SPLITS}
    for split, index in tqdm(videos, desc=f"AVA benchmark {root.name}", unit="video", disable=not progress):
        name = f"{split}_{index:03d}"
        scene = render_scene(_rng(config, split, index), config.scene())
        path = root / "videos" / f"{name}.mp4"
        if not path.is_file():
            with atomic_path(path, keep_suffix=True) as tmp:
                write_video(tmp, scene.frames, config.fps, keyframe_interval=int(config.fps), crf=config.crf,
                            threads=1)
        rows[split] += scene_boxes(name, scene.boxes, scene.actions, config.fps, config.size)
    for split in AVA_SPLITS:
        write_groundtruth(root / "annotations" / f"{split}.csv", rows[split])
    write_label_map(root / "annotations" / "label_map.pbtxt",
                    {i + 1: name for i, name in enumerate(SCENE_ACTIONS)})
    atomic_write_text(meta_path, json.dumps({**meta, "complete": True}, indent=2))
    return root
