"""DAVIS video object segmentation data: frames, masks, sequence lists.

The DAVIS layout (https://davischallenge.org)::

    root/JPEGImages/480p/<sequence>/00000.jpg, 00001.jpg, ...      frames
    root/Annotations/480p/<sequence>/00000.png, ...                masks
    root/ImageSets/2017/train.txt, val.txt, ...                    one sequence name a line

A mask is an indexed ("P" mode) PNG holding one object id per pixel: 0 background, 1, 2, ...
the objects (for moving-object segmentation, 1 = moving), with DAVIS's palette, the PASCAL VOC
colour map (:data:`DAVIS_PALETTE`: 0 black, 1 (128, 0, 0) red, 2 (0, 128, 0) green, ...); 255
marks void pixels where a dataset has them.  Masks read here are ``(H, W)`` / ``(T, H, W)``
uint8 object ids:

* an indexed PNG gives its indices, whatever its palette (as DAVIS's own code reads it);
* an RGB(A) PNG is mapped back through :data:`DAVIS_PALETTE`; a colour that is not in it is a
  ``ValueError`` naming the file and the colour;
* a greyscale PNG is a binary mask (DAVIS 2016's 0/255 masks): 0 -> 0, 255 (or 1 in a 1-bit
  PNG) -> 1; another grey level is a ``ValueError`` naming the file and the level.

``max_id``, when given, is the highest object id allowed; any other index (but void, 255) is a
``ValueError`` naming the file and the unexpected ids.  Frames are ``(T, H, W, 3)`` uint8 RGB.
Writers are atomic per file (:func:`deepvideo.io.atomic.atomic_write`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from deepvideo.io.atomic import atomic_write
from deepvideo.io.text import read_text

__all__ = ["DAVIS_PALETTE", "VOID_ID", "DavisSequence", "list_sequences", "object_ids", "read_frames", "read_image_set",
           "read_mask", "read_masks", "read_sequence", "write_frames", "write_image_set", "write_mask",
           "write_masks"]

VOID_ID = 255  # DAVIS's void label (its evaluator reads it as background)


def _pascal_palette() -> np.ndarray:
    """The PASCAL VOC colour map DAVIS uses, ``(256, 3)`` uint8: the bits of an index spread
    over the three channels from the most significant bit down."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, colour = index, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        palette[index] = colour
    return palette


DAVIS_PALETTE = _pascal_palette()
DAVIS_PALETTE.setflags(write=False)
_COLOUR_TO_ID = {tuple(int(c) for c in colour): index for index, colour in enumerate(DAVIS_PALETTE)}


@dataclass
class DavisSequence:
    """One DAVIS sequence read by :func:`read_sequence`: its ``frame_names`` (``"00000"``, ...),
    ``frames`` ``(T, H, W, 3)`` uint8, ``masks`` ``(T, H, W)`` uint8 object ids aligned with the
    frames (zeros where a frame has no mask), ``annotated`` ``(T,)`` bool (the frames that have a
    mask) and ``missing_frames``: the names of masks without a frame, which were skipped."""

    name: str
    frame_names: list[str]
    frames: np.ndarray
    masks: np.ndarray
    annotated: np.ndarray
    missing_frames: list[str] = field(default_factory=list)


def _sorted_files(folder: Path, suffix: str, kind: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such {kind} folder")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() == suffix and path.is_file())
    if not files:
        raise ValueError(f"{folder}: no {suffix} file, not a DAVIS {kind} folder")
    return files


def read_mask(path: str | os.PathLike, max_id: int | None = None) -> np.ndarray:
    """The object ids of one mask PNG, ``(H, W)`` uint8 (see the module docstring for indexed,
    RGB and greyscale PNGs).  ``ValueError`` naming the file for a colour not in
    :data:`DAVIS_PALETTE`, a grey level other than 0 and 255, an id above ``max_id`` (void 255
    excepted) or a file that is no image; ``FileNotFoundError`` for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mask file")
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{path}: not an image ({err})") from None
    if image.mode == "P":
        ids = np.array(image, dtype=np.uint8)
    elif image.mode in ("1", "L", "I", "I;16"):
        values = np.array(image)
        if image.mode == "1":
            values = values.astype(np.uint8)
        else:
            other = np.setdiff1d(np.unique(values), [0, 255])
            if other.size:
                raise ValueError(f"{path}: greyscale mask with grey level {int(other[0])}; a greyscale mask must be "
                                 "binary, 0 and 255 (write object ids as an indexed PNG)")
        ids = (values > 0).astype(np.uint8)
    elif image.mode in ("RGB", "RGBA"):
        rgb = np.array(image.convert("RGB"), dtype=np.uint8)
        codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        colours, inverse = np.unique(codes, return_inverse=True)
        lookup = np.empty(len(colours), dtype=np.uint8)
        for i, code in enumerate(colours.tolist()):
            colour = (code >> 16, (code >> 8) & 255, code & 255)
            if colour not in _COLOUR_TO_ID:
                raise ValueError(f"{path}: colour {colour} is not in the DAVIS palette (an RGB mask may only use "
                                 "the palette's colours; 0 black, 1 (128, 0, 0), 2 (0, 128, 0), ...)")
            lookup[i] = _COLOUR_TO_ID[colour]
        ids = lookup[inverse.reshape(codes.shape)]
    else:
        raise ValueError(f"{path}: {image.mode} image, not a mask (expected an indexed, RGB or greyscale PNG)")
    if max_id is not None:
        unexpected = np.setdiff1d(np.unique(ids), [*range(min(max_id, 254) + 1), VOID_ID])
        if unexpected.size:
            listed = ", ".join(str(int(v)) for v in unexpected[:8])
            raise ValueError(f"{path}: object id(s) {listed} not expected (ids 0..{max_id} and void {VOID_ID})")
    return ids


def read_masks(seq_dir: str | os.PathLike, max_id: int | None = None) -> np.ndarray:
    """The masks of one sequence folder (every ``*.png``, sorted by name), ``(T, H, W)`` uint8
    object ids; :func:`read_mask` for each.  ``ValueError`` naming the file for a mask of
    another size than the first; ``ValueError`` / ``FileNotFoundError`` for a folder without
    PNGs or a missing one."""
    files = _sorted_files(Path(seq_dir), ".png", "mask")
    masks = [read_mask(files[0], max_id)]
    for path in files[1:]:
        mask = read_mask(path, max_id)
        if mask.shape != masks[0].shape:
            raise ValueError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, {files[0].name} is "
                             f"{masks[0].shape[1]}x{masks[0].shape[0]}")
        masks.append(mask)
    return np.stack(masks)


def object_ids(masks: np.ndarray, where: str) -> np.ndarray:
    """``masks`` (any shape) as uint8 object ids (bool masks: object 1); ``ValueError`` naming
    ``where`` for non-integer masks or ids outside 0..255."""
    masks = np.asarray(masks)
    if masks.dtype == np.bool_:
        return masks.astype(np.uint8)
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"{where}: masks must be integer object ids or bool, got {masks.dtype}")
    if masks.size and (masks.min() < 0 or masks.max() > 255):
        raise ValueError(f"{where}: object ids must be 0..255, got {int(masks.min())}..{int(masks.max())}")
    return masks.astype(np.uint8)


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write ``mask`` ``(H, W)`` (object ids 0..255, or bool) as an indexed PNG with
    :data:`DAVIS_PALETTE`, atomically.  ``ValueError`` for another shape or ids out of range."""
    mask = object_ids(mask, str(path))
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask is (H, W), got shape {mask.shape}")
    image = Image.fromarray(mask, mode="P")
    image.putpalette(DAVIS_PALETTE.tobytes())
    return atomic_write(path, lambda fh: image.save(fh, format="PNG"))


def write_masks(seq_dir: str | os.PathLike, masks: np.ndarray, names: Sequence[str] | None = None) -> list[Path]:
    """Write ``masks`` ``(T, H, W)`` as ``seq_dir/<name>.png``, one atomic write per file;
    ``names`` default to ``00000``, ``00001``, ...  Returns the paths."""
    masks = object_ids(masks, str(seq_dir))
    if masks.ndim != 3:
        raise ValueError(f"{seq_dir}: masks are (T, H, W), got shape {masks.shape}")
    names = _names(len(masks), names, seq_dir)
    folder = Path(seq_dir)
    return [write_mask(folder / f"{name}.png", mask) for name, mask in zip(names, masks)]


def _names(count: int, names: Sequence[str] | None, where: str | os.PathLike) -> list[str]:
    if names is None:
        return [f"{i:05d}" for i in range(count)]
    names = [str(name) for name in names]
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"{where}: {len(names)} names ({len(set(names))} distinct) for {count} images")
    return names


def _read_frame(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{path}: not an image ({err})") from None


def read_frames(seq_dir: str | os.PathLike) -> np.ndarray:
    """The frames of one sequence folder (every ``*.jpg``, sorted by name), ``(T, H, W, 3)``
    uint8 RGB.  ``ValueError`` naming the file for a frame of another size than the first or
    one that is no image; ``ValueError`` / ``FileNotFoundError`` for a folder without JPEGs or a
    missing one."""
    files = _sorted_files(Path(seq_dir), ".jpg", "frame")
    frames = [_read_frame(files[0])]
    for path in files[1:]:
        frame = _read_frame(path)
        if frame.shape != frames[0].shape:
            raise ValueError(f"{path}: frame is {frame.shape[1]}x{frame.shape[0]}, {files[0].name} is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}")
        frames.append(frame)
    return np.stack(frames)


def write_frames(seq_dir: str | os.PathLike, frames: np.ndarray, names: Sequence[str] | None = None,
                 quality: int = 95) -> list[Path]:
    """Write ``frames`` ``(T, H, W, 3)`` uint8 RGB as ``seq_dir/<name>.jpg`` (JPEG ``quality``),
    one atomic write per file; ``names`` default to ``00000``, ``00001``, ...  Returns the paths."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{seq_dir}: frames are (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    folder = Path(seq_dir)
    paths = []
    for name, frame in zip(_names(len(frames), names, seq_dir), frames):
        image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
        paths.append(atomic_write(folder / f"{name}.jpg", lambda fh, image=image: image.save(fh, format="JPEG",
                                                                                                quality=quality)))
    return paths


def list_sequences(root: str | os.PathLike, resolution: str = "480p") -> list[str]:
    """The sequence names of a DAVIS folder: the sub-folders of ``root/JPEGImages/<resolution>``,
    sorted.  ``FileNotFoundError`` naming the folder when it is missing."""
    folder = Path(root) / "JPEGImages" / resolution
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder, not a DAVIS root with {resolution} frames")
    return sorted(path.name for path in folder.iterdir() if path.is_dir())


def read_image_set(root: str | os.PathLike, subset: str, year: str = "2017") -> list[str]:
    """The sequence names of ``root/ImageSets/<year>/<subset>.txt`` in file order (blank lines
    skipped).  ``FileNotFoundError`` naming the file when it is missing."""
    path = Path(root) / "ImageSets" / str(year) / f"{subset}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DAVIS image set")
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def write_image_set(root: str | os.PathLike, subset: str, sequences: Sequence[str], year: str = "2017") -> Path:
    """Write ``sequences`` as ``root/ImageSets/<year>/<subset>.txt``, one a line, atomically."""
    text = "".join(f"{name}\n" for name in sequences).encode()
    return atomic_write(Path(root) / "ImageSets" / str(year) / f"{subset}.txt", lambda fh: fh.write(text))


def read_sequence(root: str | os.PathLike, name: str, resolution: str = "480p", max_id: int | None = None,
                  annotations: str = "Annotations") -> DavisSequence:
    """Sequence ``name`` of a DAVIS folder: its frames and the masks of ``root/<annotations>/
    <resolution>/<name>`` aligned with them (``annotations="Annotations_unsupervised"`` for
    DAVIS 2017's unsupervised masks).  A sequence without a mask folder gets no annotated frame.

    A mask whose frame (same name, ``.jpg``) is missing is skipped, counted in
    ``missing_frames`` and warned about once.  ``ValueError("<mask>: mask is WxH, its frame
    <frame> is W'xH'")`` for a mask of another size than its frame; the errors of
    :func:`read_frames` and :func:`read_mask` otherwise."""
    root = Path(root)
    frame_files = _sorted_files(root / "JPEGImages" / resolution / name, ".jpg", "frame")
    frames = read_frames(frame_files[0].parent)
    frame_names = [path.stem for path in frame_files]
    position = {stem: i for i, stem in enumerate(frame_names)}
    masks = np.zeros(frames.shape[:3], dtype=np.uint8)
    annotated = np.zeros(len(frames), dtype=bool)
    missing = []
    mask_folder = root / annotations / resolution / name
    mask_files = sorted(mask_folder.glob("*.png")) if mask_folder.is_dir() else []
    for path in mask_files:
        if path.stem not in position:
            missing.append(path.stem)
            continue
        mask = read_mask(path, max_id)
        i = position[path.stem]
        if mask.shape != frames.shape[1:3]:
            raise ValueError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, its frame {frame_files[i]} is "
                             f"{frames.shape[2]}x{frames.shape[1]}")
        masks[i], annotated[i] = mask, True
    if missing:
        warnings.warn(f"{mask_folder}: skipped {len(missing)} masks without a frame (first: {missing[0]}.png)",
                      stacklevel=2)
    return DavisSequence(name, frame_names, frames, masks, annotated, missing)
