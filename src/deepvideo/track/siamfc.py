"""SiamFC: fully-convolutional Siamese networks for object tracking.

Bertinetto, Valmadre, Henriques, Vedaldi, Torr, "Fully-Convolutional Siamese Networks for
Object Tracking", ECCV 2016 Workshops (arXiv:1606.09549).

One embedding ``phi`` (an AlexNet without padding or fully connected layers, total stride
8) maps an exemplar crop ``z`` (127 px, the target with context) and a larger search crop
``x`` (255 px) to feature maps; their cross-correlation ``f(z, x) = phi(z) * phi(x) + b``
is a 17x17 score map whose peak says where the target moved.  Training is a logistic
loss on that map against a label that is +1 within radius ``R`` of the centre, -1
elsewhere (exemplar and search crops are both centred on the target).  Tracking crops
the search image at three scales around the last position, upsamples each score map
x16 with bicubic interpolation, damps the non-central scales (scale penalty), adds a
cosine (Hann) window against large displacements, moves to the peak and updates the
size with a damped (learning-rate) step.

Crops follow the paper: an exemplar of side ``s_z = sqrt((w + 2p)(h + 2p))`` with
``p = (w + h) / 4`` around the target, resized to ``exemplar_size``; the search region is
``s_z * search_size / exemplar_size``; pixels outside the frame take its mean colour.
Frames are ``(H, W, 3)`` uint8 RGB; boxes ``(x, y, w, h)`` in pixels where pixel ``i``
spans ``[i, i + 1]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.track.ope import check_box

__all__ = ["AlexNetEmbedding", "PixelEmbedding", "SiamFCConfig", "SiamFCNet", "SiamFCTracker",
           "crop_and_resize", "cross_correlate", "logistic_labels", "logistic_loss", "to_tensor"]


@dataclass(frozen=True)
class SiamFCConfig:
    """Architecture and tracking hyper-parameters (defaults: the paper's, as in its code).

    Args:
        exemplar_size, search_size: crop sides fed to the network (127 and 255).
        width: channel multiplier of the AlexNet embedding (1.0: 96-256-384-384-256);
            0 selects ``PixelEmbedding`` (raw pixels: training-free template matching).
        context: context margin ``p = context * (w + h) / 2`` on each side (0.5: p = (w+h)/4).
        num_scales, scale_step: search scales ``scale_step ** {-1, 0, 1}``.
        scale_penalty: factor on the peaks of the non-central scales.
        scale_lr: damping of the size update (``1 - lr`` of the old size is kept).
        window_influence: weight of the Hann window against the normalised score map.
        response_up: upsampling factor of the score map (bicubic).
        radius: label radius ``R`` in search-crop pixels (positives within it).
    """

    exemplar_size: int = 127
    search_size: int = 255
    width: float = 1.0
    context: float = 0.5
    num_scales: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    window_influence: float = 0.176
    response_up: int = 16
    radius: float = 16.0

    def __post_init__(self) -> None:
        if self.exemplar_size < 1 or self.search_size <= self.exemplar_size:
            raise ValueError(f"search_size ({self.search_size}) must exceed exemplar_size "
                             f"({self.exemplar_size}) >= 1")
        if self.width < 0 or self.num_scales < 1 or self.num_scales % 2 == 0:
            raise ValueError(f"width must be >= 0 and num_scales odd >= 1, got {self.width}, "
                             f"{self.num_scales}")
        if self.width > 0 and self.exemplar_size < AlexNetEmbedding.receptive_field:
            raise ValueError(f"exemplar_size {self.exemplar_size} is below the AlexNet embedding's "
                             f"receptive field ({AlexNetEmbedding.receptive_field} px)")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 crops -> ``(N, 3, H, W)`` float32 in 0..255 (the paper feeds
    raw intensities; BatchNorm follows the first convolution)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


class AlexNetEmbedding(nn.Sequential):
    """The paper's embedding: five valid convolutions (11/2, 5, 3, 3, 3) and two 3/2 max
    pools, grouped convolutions (2 groups) in layers 2, 4, 5 as in AlexNet, BatchNorm and
    ReLU after every layer but the last.  ``(B, 3, 127, 127) -> (B, 256w, 6, 6)``,
    ``(B, 3, 255, 255) -> (B, 256w, 22, 22)``."""

    total_stride, receptive_field = 8, 87

    def __init__(self, width: float = 1.0) -> None:
        c1, c2, c3, c4, c5 = (max(2, 2 * round(c * width / 2)) for c in (96, 256, 384, 384, 256))
        super().__init__(
            nn.Conv2d(3, c1, 11, stride=2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c1, c2, 5, groups=2), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c2, c3, 3), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, groups=2), nn.BatchNorm2d(c4), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, groups=2))


class PixelEmbedding(nn.Module):
    """Identity-like embedding: each crop minus its own mean colour, scaled to about unit
    range.  Cross-correlating these is plain template matching (stride 1, no weights)."""

    total_stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(dim=(2, 3), keepdim=True)) / 255.0


def cross_correlate(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate each exemplar embedding with its own search embedding, batched as
    one grouped convolution: ``z (B, C, hz, wz)``, ``x (B, C, hx, wx)`` ->
    ``(B, 1, hx - hz + 1, wx - wz + 1)``."""
    b, c, hx, wx = x.shape
    out = F.conv2d(x.reshape(1, b * c, hx, wx), z, groups=b)
    return out.reshape(b, 1, *out.shape[2:])


class SiamFCNet(nn.Module):
    """``f(z, x) = gain * (phi(z) * phi(x)) + b``: the Siamese network.  The learnable
    gain (initialised at 1e-3) keeps the initial logits small; ``b`` is the paper's bias."""

    def __init__(self, config: SiamFCConfig | None = None) -> None:
        super().__init__()
        self.config = config or SiamFCConfig()
        self.embedding = AlexNetEmbedding(self.config.width) if self.config.width else PixelEmbedding()
        self.adjust = nn.Conv2d(1, 1, 1)
        nn.init.constant_(self.adjust.weight, 1e-3)
        nn.init.zeros_(self.adjust.bias)
        with torch.no_grad():  # score-map side, from a dry run (eval: BatchNorm keeps its stats)
            cfg = self.config
            self.response_size = self.eval()(torch.zeros(1, 3, cfg.exemplar_size, cfg.exemplar_size),
                                             torch.zeros(1, 3, cfg.search_size, cfg.search_size)).shape[-1]
        self.train()

    @property
    def total_stride(self) -> int:
        return self.embedding.total_stride

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Exemplars ``(B, 3, Z, Z)`` and search crops ``(B, 3, X, X)`` (0..255) -> score
        maps ``(B, 1, R, R)`` (logits)."""
        return self.adjust(cross_correlate(self.embedding(z), self.embedding(x)))


def logistic_labels(size: int, radius: float, stride: int) -> torch.Tensor:
    """The paper's label on a ``size x size`` score map: +1 where ``stride * ||u - c|| <=
    radius`` (``c`` the centre), -1 elsewhere: ``(size, size)`` float32."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    distance = torch.sqrt(r[:, None] ** 2 + r[None, :] ** 2) * stride
    return torch.where(distance <= radius, 1.0, -1.0)


def logistic_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of ``log(1 + exp(-y v))`` over the map, positives and negatives weighted to
    count equally (the paper balances the classes): ``scores (B, 1, R, R)``, ``labels (R, R)``."""
    positive = labels > 0
    weights = torch.where(positive, 0.5 / positive.sum(), 0.5 / (~positive).sum())
    return (F.softplus(-labels * scores) * weights).sum(dim=(-2, -1)).mean()


def crop_and_resize(frame: np.ndarray, centre: tuple[float, float], size: tuple[float, float],
                    out_size: int | tuple[int, int], fill: np.ndarray | None = None) -> np.ndarray:
    """Crop the ``size = (w, h)`` region centred at ``centre = (cx, cy)`` of ``frame``
    ``(H, W, 3)`` uint8 and resize it to ``out_size`` (``(w, h)`` or a side), bilinearly;
    pixels outside the frame take ``fill`` (default: the frame's mean colour).  Returns
    ``(out_h, out_w, 3)`` uint8."""
    out_w, out_h = (out_size, out_size) if np.isscalar(out_size) else out_size
    fill = frame.reshape(-1, frame.shape[-1]).mean(axis=0) if fill is None else fill
    kx, ky = out_w / size[0], out_h / size[1]
    # continuous X maps to (X - left) * k; cv2 puts pixel centres at integers (X - 0.5)
    matrix = np.array([[kx, 0, (0.5 - centre[0] + size[0] / 2) * kx - 0.5],
                       [0, ky, (0.5 - centre[1] + size[1] / 2) * ky - 0.5]])
    return cv2.warpAffine(frame, matrix, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in fill))


class SiamFCTracker:
    """Track one object with a ``SiamFCNet``: ``init(frame, box)`` then ``update(frame) ->
    box`` for every following frame (``(x, y, w, h)`` float64)."""

    def __init__(self, net: SiamFCNet, device: str | torch.device = "cpu") -> None:
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        cfg = net.config
        self.upscale = cfg.response_up * net.response_size
        hann = np.hanning(self.upscale)
        window = np.outer(hann, hann)
        self.window = window / window.sum()
        half = (cfg.num_scales - 1) / 2
        self.scales = cfg.scale_step ** np.linspace(-half, half, cfg.num_scales)

    @torch.no_grad()
    def init(self, frame: np.ndarray, box: np.ndarray | tuple[float, float, float, float]) -> None:
        """Start on ``frame`` ``(H, W, 3)`` uint8 with the target at ``box``; a box with
        ``w <= 0``/``h <= 0`` or outside the frame raises ``ValueError``."""
        x, y, w, h = check_box(box, frame.shape[1], frame.shape[0])
        cfg = self.net.config
        self.centre = np.array([x + w / 2, y + h / 2])
        self.target = np.array([w, h])
        pad = cfg.context * (w + h)
        self.z_size = float(np.sqrt((w + pad) * (h + pad)))
        self.x_size = self.z_size * cfg.search_size / cfg.exemplar_size
        self.fill = frame.reshape(-1, 3).mean(axis=0)
        z = crop_and_resize(frame, self.centre, (self.z_size, self.z_size), cfg.exemplar_size, self.fill)
        self.kernel = self.net.embedding(to_tensor(z[None]).to(self.device))

    @torch.no_grad()
    def update(self, frame: np.ndarray) -> np.ndarray:
        """Locate the target in the next ``frame``; its box ``(x, y, w, h)`` (the centre is
        kept inside the frame)."""
        cfg, n = self.net.config, len(self.scales)
        crops = np.stack([crop_and_resize(frame, self.centre, (self.x_size * s,) * 2, cfg.search_size,
                                          self.fill) for s in self.scales])
        features = self.net.embedding(to_tensor(crops).to(self.device))
        responses = self.net.adjust(cross_correlate(self.kernel.expand(n, -1, -1, -1), features))
        responses = F.interpolate(responses, size=(self.upscale, self.upscale), mode="bicubic",
                                  align_corners=False)[:, 0].cpu().numpy().astype(np.float64)
        responses[np.arange(n) != n // 2] *= cfg.scale_penalty
        best = int(np.argmax(responses.reshape(n, -1).max(axis=1)))
        response = responses[best] - responses[best].min()
        response /= response.sum() + 1e-16
        response = (1 - cfg.window_influence) * response + cfg.window_influence * self.window
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        offset = np.array([col, row]) - (self.upscale - 1) / 2  # in upsampled score cells
        self.centre = np.clip(self.centre + (offset * self.net.total_stride / cfg.response_up
                                             * self.x_size * self.scales[best] / cfg.search_size),
                              0, (frame.shape[1], frame.shape[0]))
        scale = 1 - cfg.scale_lr + cfg.scale_lr * self.scales[best]
        self.target, self.z_size, self.x_size = self.target * scale, self.z_size * scale, self.x_size * scale
        return np.concatenate([self.centre - self.target / 2, self.target])
