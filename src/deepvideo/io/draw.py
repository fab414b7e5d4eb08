"""Text drawn on frames for annotated output videos (stream labels, detected actions)."""

from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np

__all__ = ["box_colour", "draw_boxes", "draw_label"]


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` ``(H, W, 3)`` uint8 RGB with ``text`` on a white band at the top left."""
    out = np.ascontiguousarray(image).copy()
    if text:
        scale = max(0.4, image.shape[0] / 600)
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (0, 0), (width + 8, height + base + 8), (255, 255, 255), -1)
        cv2.putText(out, text, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def box_colour(key: int) -> tuple[int, int, int]:
    """A bright RGB colour fixed by ``key`` (hues spread by the golden ratio)."""
    r, g, b = colorsys.hsv_to_rgb((key * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str], keys: Sequence[int]) -> np.ndarray:
    """A copy of ``image`` ``(H, W, 3)`` uint8 RGB with ``boxes`` ``(K, 4)`` ``x, y, w, h``
    (pixels) drawn, each in the colour of its key with its label on a band above it."""
    out = np.ascontiguousarray(image).copy()
    for (x, y, w, h), label, key in zip(np.asarray(boxes, np.float64), labels, keys):
        colour = box_colour(int(key))
        p0, p1 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        cv2.rectangle(out, p0, p1, colour, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(p0[1], th + 4)
        cv2.rectangle(out, (p0[0], top - th - 4), (p0[0] + tw + 4, top), colour, -1)
        cv2.putText(out, label, (p0[0] + 2, top - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out
