"""Flow to colour: the Middlebury colour wheel (Baker et al. 2007; Daniel Scharstein's
``colorcode.cpp`` / ``computeColor``).

Hue is the direction of motion, saturation its length: zero flow is white, flow at the
normalising radius is the fully saturated wheel colour, and flow beyond it (only possible
with a given ``max_flow``) is the wheel colour darkened to 75%.  With image ``y`` pointing
down, motion to the right is red, down is yellow-orange, left is cyan, up is blue-violet.
Unknown flow (NaN, or a component above 1e9 as in ``.flo`` files) is black.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLOR_WHEEL", "flow_to_color"]

_UNKNOWN_FLOW = 1e9


def _make_color_wheel() -> np.ndarray:
    """The 55 wheel colours ``(55, 3)`` int RGB, in the order and integer steps of ``makecolorwheel``.

    Segment lengths follow perceptual distinctness: red-yellow 15, yellow-green 6,
    green-cyan 4, cyan-blue 11, blue-magenta 13, magenta-red 6.
    """
    def segment(n: int, rgb: str) -> np.ndarray:
        # rgb per channel: "1" full, "0" off, "+" rising 255*i//n, "-" falling 255 - 255*i//n
        rise = 255 * np.arange(n) // n  # C integer division
        values = {"1": np.full(n, 255), "0": np.zeros(n, int), "+": rise, "-": 255 - rise}
        return np.stack([values[c] for c in rgb], axis=1)

    return np.concatenate([segment(15, "1+0"), segment(6, "-10"), segment(4, "01+"),
                           segment(11, "0-1"), segment(13, "+01"), segment(6, "10-")])


COLOR_WHEEL = _make_color_wheel()


def _colorize(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``computeColor`` on normalised flow ``(H, W)`` each: ``(H, W, 3)`` uint8 RGB."""
    ncols = len(COLOR_WHEEL)
    rad = np.sqrt(u ** 2 + v ** 2)
    angle = np.arctan2(-v, -u) / np.pi                      # in [-1, 1]
    fk = (angle + 1) / 2 * (ncols - 1)                      # position on the wheel
    k0 = fk.astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = (1 - f) * COLOR_WHEEL[k0] / 255 + f * COLOR_WHEEL[k1] / 255
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    return (255 * col).astype(np.uint8)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None) -> np.ndarray:
    """Colour-code flow ``(2, H, W)`` -> ``(H, W, 3)`` uint8 RGB, or ``(T, 2, H, W)`` -> ``(T, H, W, 3)``.

    ``max_flow`` (pixels) is the radius drawn fully saturated; ``None`` uses each field's
    largest known flow length, as Middlebury's ``flowToColor`` does (a video then changes
    scale from frame to frame; give ``max_flow`` for a steady one).
    """
    flow = np.asarray(flow.detach().cpu() if hasattr(flow, "detach") else flow, np.float64)
    if flow.ndim == 4:
        return np.stack([flow_to_color(f, max_flow) for f in flow])
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W) or (T, 2, H, W), got shape {flow.shape}")
    if max_flow is not None and not max_flow > 0:
        raise ValueError(f"max_flow must be a positive number of pixels, got {max_flow}")
    u, v = flow
    unknown = ~(np.isfinite(u) & np.isfinite(v)) | (np.abs(u) > _UNKNOWN_FLOW) | (np.abs(v) > _UNKNOWN_FLOW)
    u, v = np.where(unknown, 0.0, u), np.where(unknown, 0.0, v)
    if max_flow is None:
        max_flow = float(np.sqrt(u ** 2 + v ** 2).max(initial=0.0)) or 1.0
    image = _colorize(u / max_flow, v / max_flow)
    image[unknown] = 0
    return image
