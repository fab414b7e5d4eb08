"""GOTURN: Generic Object Tracking Using Regression Networks.

Held, Thrun, Savarese, "Learning to Track at 100 FPS with Deep Regression Networks",
ECCV 2016 (arXiv:1604.01802).

No search over positions and no online update: a network looks at two crops of the same
region, taken around the previous box with twice its width and height (``k = 2``) --
the target in the previous frame and the search region in the current frame -- and
regresses where the target now is, as the box corners ``(x1, y1, x2, y2)`` relative to
the search crop (0..1, times 10 as in the authors' code).  Each crop goes through a
CaffeNet convolution tower (the two towers share weights); the pool5 features are
concatenated and pass three fully connected layers of 4096 units and a 4-unit output.
Training minimises the L1 loss on pairs of consecutive frames (and of a still frame with
itself), with the search region drawn from the paper's motion model: the box centre moves
by ``w * dx``, ``h * dy`` with ``dx, dy ~ Laplace(0, 1/5)`` and its size scales by
``gamma ~ Laplace(1, 1/15)`` clipped to ``[0.6, 1.4]``, keeping at least half the target
inside the crop.

The paper starts from ImageNet-pretrained frozen convolutions with local response
normalisation; trained from scratch here, the towers use BatchNorm instead.  Frames are
``(H, W, 3)`` uint8 RGB; boxes ``(x, y, w, h)`` pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from deepvideo.track.ope import check_box
from deepvideo.track.siamfc import crop_and_resize, to_tensor

__all__ = ["CONTEXT", "OUTPUT_SCALE", "CaffeNetTower", "GOTURNConfig", "GOTURNNet", "GOTURNTracker",
           "goturn_example", "motion_model"]

CONTEXT = 2.0        # crops are k = 2 times the box's width and height
OUTPUT_SCALE = 10.0  # regressed corners are (0..1 in the search crop) * 10
SHIFT_B, SCALE_B, SCALE_LIMITS = 1 / 5, 1 / 15, (0.6, 1.4)  # the motion model's Laplacians


@dataclass(frozen=True)
class GOTURNConfig:
    """Architecture (defaults: the paper's).

    Args:
        input_size: side of both crops (227, CaffeNet's).
        width: channel multiplier of the convolution tower (1.0: 96-256-384-384-256).
        fc_dim: units of each of the three fully connected layers (4096).
        dropout: dropout after each of them.
    """

    input_size: int = 227
    width: float = 1.0
    fc_dim: int = 4096
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.input_size < 67 or self.width <= 0 or self.fc_dim < 1:
            raise ValueError(f"input_size must be >= 67 (a 1x1 pool5 map), width > 0 "
                             f"and fc_dim >= 1; got {self.input_size}, {self.width}, {self.fc_dim}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class CaffeNetTower(nn.Sequential):
    """CaffeNet's conv1-pool5 (11/4, pool, 5 (2 groups), pool, 3, 3 (2 groups), 3 (2 groups),
    pool) with BatchNorm and ReLU: ``(B, 3, 227, 227) -> (B, 256w, 6, 6)``."""

    def __init__(self, width: float = 1.0) -> None:
        c1, c2, c3, c4, c5 = (max(2, 2 * round(c * width / 2)) for c in (96, 256, 384, 384, 256))

        def conv(cin: int, cout: int, kernel: int, **kw) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, **kw), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        super().__init__(*conv(3, c1, 11, stride=4), nn.MaxPool2d(3, stride=2),
                         *conv(c1, c2, 5, padding=2, groups=2), nn.MaxPool2d(3, stride=2),
                         *conv(c2, c3, 3, padding=1), *conv(c3, c4, 3, padding=1, groups=2),
                         *conv(c4, c5, 3, padding=1, groups=2), nn.MaxPool2d(3, stride=2))


class GOTURNNet(nn.Module):
    """Two-tower regression network: ``(previous crops, current crops)`` ``(B, 3, S, S)``
    each (0..255) -> ``(B, 4)`` corners ``(x1, y1, x2, y2)`` in the current crop, scaled
    so that the crop spans 0..``OUTPUT_SCALE``."""

    def __init__(self, config: GOTURNConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or GOTURNConfig()
        self.tower = CaffeNetTower(cfg.width)
        with torch.no_grad():
            features = self.tower.eval()(torch.zeros(1, 3, cfg.input_size, cfg.input_size)).numel()
        self.tower.train()
        layers: list[nn.Module] = []
        for cin in (2 * features, cfg.fc_dim, cfg.fc_dim):
            layers += [nn.Linear(cin, cfg.fc_dim), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)]
        self.regressor = nn.Sequential(*layers, nn.Linear(cfg.fc_dim, 4))

    def forward(self, previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        both = self.tower(torch.cat([previous, current]))  # one pass for the shared tower
        target, search = both.flatten(1).chunk(2)
        return self.regressor(torch.cat([target, search], dim=1))


def _crop_region(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and ``(w, h)`` of the ``k = 2`` context region around ``box``."""
    return box[:2] + box[2:] / 2, np.maximum(box[2:] * CONTEXT, 1.0)


def motion_model(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's random motion of ``box`` ``(x, y, w, h)``: Laplacian shift (``b = 1/5``
    of the size) and scale (``b = 1/15``, clipped to ``[0.6, 1.4]``); the shift is capped
    so that at least half of ``box`` stays inside the new box's ``k = 2`` crop."""
    w, h = box[2:]
    scale = np.clip(rng.laplace(1.0, SCALE_B, 2), *SCALE_LIMITS)
    shift = np.clip(rng.laplace(0.0, SHIFT_B, 2), -scale, scale)
    centre = box[:2] + box[2:] / 2 + shift * (w, h)
    size = box[2:] * scale
    return np.concatenate([centre - size / 2, size])


def goturn_example(previous: np.ndarray, previous_box: np.ndarray, current: np.ndarray,
                   current_box: np.ndarray, input_size: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training example: the target crop ``(S, S, 3)`` of ``previous`` around
    ``previous_box``, the search crop ``(S, S, 3)`` of ``current`` around the
    motion-model box, and the target ``(4,)`` float32: ``current_box``'s corners in the
    search crop times ``OUTPUT_SCALE``."""
    centre, size = _crop_region(previous_box)
    target = crop_and_resize(previous, centre, size, input_size)
    centre, size = _crop_region(motion_model(current_box, rng))
    search = crop_and_resize(current, centre, size, input_size)
    corners = np.concatenate([current_box[:2], current_box[:2] + current_box[2:]])
    label = (corners - np.tile(centre - size / 2, 2)) / np.tile(size, 2) * OUTPUT_SCALE
    return target, search, label.astype(np.float32)


class GOTURNTracker:
    """Track one object with a ``GOTURNNet``: ``init(frame, box)`` then ``update(frame) ->
    box`` (``(x, y, w, h)`` float64) for every following frame."""

    def __init__(self, net: GOTURNNet, device: str | torch.device = "cpu") -> None:
        self.net = net.to(device).eval()
        self.device = torch.device(device)

    def init(self, frame: np.ndarray, box: np.ndarray | tuple[float, float, float, float]) -> None:
        """Start on ``frame`` ``(H, W, 3)`` uint8 with the target at ``box``; a box with
        ``w <= 0``/``h <= 0`` or outside the frame raises ``ValueError``."""
        self.box = check_box(box, frame.shape[1], frame.shape[0])
        self.frame = frame

    @torch.no_grad()
    def update(self, frame: np.ndarray) -> np.ndarray:
        """Regress the target's box in ``frame`` from the previous frame and box (width and
        height kept >= 1 px, centre inside the frame)."""
        centre, size = _crop_region(self.box)
        size_px = self.net.config.input_size
        crops = np.stack([crop_and_resize(self.frame, centre, size, size_px),
                          crop_and_resize(frame, centre, size, size_px)])
        x = to_tensor(crops).to(self.device)
        corners = self.net(x[:1], x[1:])[0].cpu().numpy().astype(np.float64) / OUTPUT_SCALE
        corners = corners * np.tile(size, 2) + np.tile(centre - size / 2, 2)
        wh = np.maximum(corners[2:] - corners[:2], 1.0)
        mid = np.clip((corners[:2] + corners[2:]) / 2, 0, (frame.shape[1], frame.shape[0]))
        self.box, self.frame = np.concatenate([mid - wh / 2, wh]), frame
        return self.box
