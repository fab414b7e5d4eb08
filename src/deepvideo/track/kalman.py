"""Constant-velocity Kalman filters for bounding boxes, as used by SORT and DeepSORT.

Both trackers model a box by four measured quantities plus the velocities of some of them,
moving with constant velocity between frames (one time step per frame):

* SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016) measures
  ``z = (cx, cy, s, r)`` -- centre, area ``s = w h`` and aspect ``r = w / h`` -- and keeps
  the velocities of ``cx, cy, s`` (the aspect is taken as constant): a 7-dim state.
  Noise matrices are the fixed ones of the reference ``sort.py``: ``R = diag(1, 1, 10, 10)``,
  ``Q = diag(1, 1, 1, 1, .01, .01, 1e-4)``, initial ``P = diag(10, 10, 10, 10, 1e4, 1e4, 1e4)``.
* DeepSORT (Wojke et al., "Simple Online and Realtime Tracking with a Deep Association
  Metric", ICIP 2017) measures ``z = (cx, cy, a, h)`` with ``a = w / h`` and keeps all four
  velocities: an 8-dim state whose noise scales with the box height (1/20 of ``h`` for
  positions, 1/160 for velocities, as in the reference ``deep_sort``).  Candidate
  detections are gated by the squared Mahalanobis distance of the measurement against
  the 0.95 quantile of the chi-square distribution (:data:`CHI2INV95`).

The filters are stateless: every method takes and returns means ``(..., D)`` and
covariances ``(..., D, D)``, so a whole set of tracks is predicted or updated in one call
(leading dimensions broadcast).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHI2INV95", "DeepSortKalman", "SortKalman", "xywh_to_xyah", "xywh_to_xysr",
           "xyah_to_xywh", "xysr_to_xywh"]

# 0.95 quantile of the chi-square distribution with N degrees of freedom (N = 1..9).
CHI2INV95 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877, 5: 11.070, 6: 12.592, 7: 14.067,
             8: 15.507, 9: 16.919}


def xywh_to_xysr(boxes: np.ndarray) -> np.ndarray:
    """``(..., 4)`` boxes ``(x, y, w, h)`` (top-left corner) -> SORT's ``(cx, cy, area, w/h)``."""
    x, y, w, h = np.moveaxis(np.asarray(boxes, np.float64), -1, 0)
    return np.stack([x + w / 2, y + h / 2, w * h, w / h], axis=-1)


def xysr_to_xywh(z: np.ndarray) -> np.ndarray:
    """SORT's ``(..., >=4)`` ``(cx, cy, area, w/h, ...)`` -> boxes ``(x, y, w, h)``; a negative
    area gives NaN (the reference tracker drops such tracks)."""
    cx, cy, s, r = np.moveaxis(np.asarray(z, np.float64)[..., :4], -1, 0)
    with np.errstate(invalid="ignore"):
        w = np.sqrt(s * r)
        h = s / w
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=-1)


def xywh_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """``(..., 4)`` boxes ``(x, y, w, h)`` -> DeepSORT's ``(cx, cy, w/h, h)``."""
    x, y, w, h = np.moveaxis(np.asarray(boxes, np.float64), -1, 0)
    return np.stack([x + w / 2, y + h / 2, w / h, h], axis=-1)


def xyah_to_xywh(z: np.ndarray) -> np.ndarray:
    """DeepSORT's ``(..., >=4)`` ``(cx, cy, w/h, h, ...)`` -> boxes ``(x, y, w, h)``."""
    cx, cy, a, h = np.moveaxis(np.asarray(z, np.float64)[..., :4], -1, 0)
    w = a * h
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=-1)


class _ConstantVelocityKalman:
    """Linear Kalman filter ``x' = F x``, ``z = H x`` where the state is the 4 measured
    quantities followed by the velocities of ``moving`` of them.  Subclasses give the
    noise: ``process_noise(mean) -> Q`` and ``measurement_noise(mean) -> R``, both
    ``(..., D, D)`` / ``(..., 4, 4)``, and the initial state ``initiate(z)``."""

    def __init__(self, moving: tuple[int, ...]) -> None:
        dim = 4 + len(moving)
        self.F = np.eye(dim)
        for k, i in enumerate(moving):
            self.F[i, 4 + k] = 1.0
        self.H = np.eye(4, dim)

    def process_noise(self, mean: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step: ``x = F x``, ``P = F P F^T + Q``."""
        q = self.process_noise(mean)
        return mean @ self.F.T, self.F @ cov @ self.F.T + q

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted measurement ``H x`` ``(..., 4)`` and its covariance
        ``S = H P H^T + R`` ``(..., 4, 4)``."""
        return mean @ self.H.T, self.H @ cov @ self.H.T + self.measurement_noise(mean)

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Correct with measurements ``z`` ``(..., 4)``: ``K = P H^T S^-1``,
        ``x = x + K (z - H x)``, ``P = P - K S K^T``."""
        z_mean, s = self.project(mean, cov)
        gain = np.swapaxes(np.linalg.solve(s, self.H @ np.swapaxes(cov, -1, -2)), -1, -2)
        innovation = np.asarray(z, np.float64) - z_mean
        mean = mean + (gain @ innovation[..., None])[..., 0]
        return mean, cov - gain @ s @ np.swapaxes(gain, -1, -2)

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray,
                        only_position: bool = False) -> np.ndarray:
        """Squared Mahalanobis distances ``(..., M)`` between tracks (``mean (..., D)``,
        ``cov (..., D, D)``) and measurements ``z`` ``(M, 4)``; with ``only_position`` only
        the centre counts (compare with ``CHI2INV95[2]`` instead of ``CHI2INV95[4]``)."""
        z_mean, s = self.project(mean, cov)
        d = np.asarray(z, np.float64) - z_mean[..., None, :]  # (..., M, 4)
        if only_position:
            d, s = d[..., :2], s[..., :2, :2]
        lower = np.linalg.cholesky(s)[..., None, :, :]
        solved = np.linalg.solve(lower, d[..., None])[..., 0]
        return np.sum(solved * solved, axis=-1)


class SortKalman(_ConstantVelocityKalman):
    """SORT's filter on ``(cx, cy, s, r)`` with velocities of ``cx, cy, s`` (7-dim state)."""

    def __init__(self) -> None:
        super().__init__(moving=(0, 1, 2))
        self._q = np.diag([1.0, 1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-4])
        self._r = np.diag([1.0, 1.0, 10.0, 10.0])
        self._p0 = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])

    def process_noise(self, mean: np.ndarray) -> np.ndarray:
        return self._q

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        return self._r

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State of new tracks from measurements ``z`` ``(..., 4)``: zero velocity."""
        z = np.asarray(z, np.float64)
        mean = np.concatenate([z, np.zeros(z.shape[:-1] + (3,))], axis=-1)
        return mean, np.broadcast_to(self._p0, z.shape[:-1] + (7, 7)).copy()

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As the reference: an area velocity that would make the area non-positive is
        zeroed first, then the constant-velocity step."""
        mean = mean.copy()
        mean[..., 6] = np.where(mean[..., 6] + mean[..., 2] <= 0, 0.0, mean[..., 6])
        return super().predict(mean, cov)


class DeepSortKalman(_ConstantVelocityKalman):
    """DeepSORT's filter on ``(cx, cy, a, h)`` with all four velocities (8-dim state);
    noise standard deviations proportional to the box height."""

    std_position = 1.0 / 20
    std_velocity = 1.0 / 160

    def __init__(self) -> None:
        super().__init__(moving=(0, 1, 2, 3))

    def _diag(self, h: np.ndarray, weights: list[tuple[float, float]]) -> np.ndarray:
        """``diag((wi h + ci)^2)`` ``(..., n, n)`` from per-entry (height weight, constant)."""
        std = np.stack([w * h + c for w, c in weights], axis=-1)
        return std[..., None] * np.eye(len(weights)) * std[..., None, :]

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State of new tracks from measurements ``z`` ``(..., 4)``: zero velocity."""
        z = np.asarray(z, np.float64)
        p, v = 2 * self.std_position, 10 * self.std_velocity
        cov = self._diag(z[..., 3], [(p, 0), (p, 0), (0, 1e-2), (p, 0),
                                     (v, 0), (v, 0), (0, 1e-5), (v, 0)])
        return np.concatenate([z, np.zeros_like(z)], axis=-1), cov

    def process_noise(self, mean: np.ndarray) -> np.ndarray:
        p, v = self.std_position, self.std_velocity
        return self._diag(mean[..., 3], [(p, 0), (p, 0), (0, 1e-2), (p, 0),
                                         (v, 0), (v, 0), (0, 1e-5), (v, 0)])

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        p = self.std_position
        return self._diag(mean[..., 3], [(p, 0), (p, 0), (0, 1e-1), (p, 0)])
