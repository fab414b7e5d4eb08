"""Text drawn on frames for annotated output videos (stream labels, detected actions)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["draw_label"]


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` ``(H, W, 3)`` uint8 RGB with ``text`` on a white band at the top left."""
    out = np.ascontiguousarray(image).copy()
    if text:
        scale = max(0.4, image.shape[0] / 600)
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (0, 0), (width + 8, height + base + 8), (255, 255, 255), -1)
        cv2.putText(out, text, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out
