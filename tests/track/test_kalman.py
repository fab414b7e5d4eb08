"""Kalman filters of SORT and DeepSORT against hand computations."""

from __future__ import annotations

import numpy as np

from deepvideo.track.kalman import (
    CHI2INV95,
    DeepSortKalman,
    SortKalman,
    xyah_to_xywh,
    xysr_to_xywh,
    xywh_to_xyah,
    xywh_to_xysr,
)


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 4.0, 8.0], [0.5, 1.5, 30.0, 10.0]])
    np.testing.assert_allclose(xywh_to_xysr(boxes)[0], [12, 24, 32, 0.5])
    np.testing.assert_allclose(xywh_to_xyah(boxes)[0], [12, 24, 0.5, 8])
    np.testing.assert_allclose(xysr_to_xywh(xywh_to_xysr(boxes)), boxes)
    np.testing.assert_allclose(xyah_to_xywh(xywh_to_xyah(boxes)), boxes)
    assert np.isnan(xysr_to_xywh(np.array([0.0, 0.0, -4.0, 1.0]))).all()  # negative area


def test_sort_filter_predict_update_by_hand():
    kf = SortKalman()
    mean, cov = kf.initiate(xywh_to_xysr(np.array([10.0, 20.0, 4.0, 8.0])))  # cx 12, cy 24, s 32, r .5
    mean, cov = kf.predict(mean, cov)
    # P' = F P F^T + Q: position variance 10 + 1e4 (velocity) + 1 (Q); velocity 1e4 + .01
    assert np.allclose(mean, [12, 24, 32, 0.5, 0, 0, 0])
    assert np.isclose(cov[0, 0], 10011) and np.isclose(cov[0, 4], 1e4) and np.isclose(cov[4, 4], 10000.01)
    assert np.isclose(cov[3, 3], 11) and np.isclose(cov[6, 6], 10000.0001) and np.isclose(cov[3, 6], 0)
    mean, cov = kf.update(mean, cov, np.array([14.0, 24.0, 32.0, 0.5]))
    # the cx block is decoupled: S = 10011 + 1 (R), K = (10011, 1e4) / S, innovation 2
    s = 10012.0
    assert np.isclose(mean[0], 12 + 2 * 10011 / s) and np.isclose(mean[4], 2 * 1e4 / s)
    assert np.allclose(mean[[1, 2, 3, 5, 6]], [24, 32, 0.5, 0, 0])
    assert np.isclose(cov[0, 0], 10011 - 10011 ** 2 / s)
    assert np.isclose(cov[4, 4], 10000.01 - 1e4 ** 2 / s)
    assert np.isclose(cov[0, 4], 1e4 - 10011 * 1e4 / s)
    # area block: R = 10, S = 10021
    assert np.isclose(cov[2, 2], 10011 - 10011 ** 2 / 10021)


def test_sort_filter_zeroes_area_velocity_that_would_make_area_negative():
    kf = SortKalman()
    mean, cov = kf.initiate(np.array([5.0, 5.0, 10.0, 1.0]))
    mean[6] = -20.0
    predicted, _ = kf.predict(mean, cov)
    assert predicted[2] == 10.0 and predicted[6] == 0.0


def test_deepsort_filter_noise_and_gating_by_hand():
    kf = DeepSortKalman()
    mean, cov = kf.initiate(np.array([50.0, 60.0, 0.5, 100.0]))
    # initial std: 2/20 h = 10 for positions, 10/160 h = 6.25 for velocities, 1e-2 / 1e-5 aspect
    np.testing.assert_allclose(np.diag(cov), [100, 100, 1e-4, 100, 39.0625, 39.0625, 1e-10, 39.0625])
    mean, cov = kf.predict(mean, cov)
    # + Q: (h/20)^2 = 25 on positions, (h/160)^2 on velocities; cov(x, vx) = 39.0625
    assert np.isclose(cov[0, 0], 100 + 39.0625 + 25) and np.isclose(cov[0, 4], 39.0625)
    z = np.array([[50.0, 60.0, 0.5, 100.0], [70.0, 60.0, 0.5, 100.0], [50.0, 100.0, 0.6, 90.0]])
    projected, s = kf.project(mean, cov)
    assert np.isclose(s[0, 0], 164.0625 + 25)  # + R = (h/20)^2
    expected = [(d @ np.linalg.inv(s) @ d) for d in z - projected]
    d2 = kf.gating_distance(mean, cov, z)
    np.testing.assert_allclose(d2, expected, rtol=1e-9)
    assert d2[0] == 0 and np.isclose(d2[1], 400 / 189.0625)
    assert np.allclose(kf.gating_distance(mean, cov, z, only_position=True)[:2], d2[:2])
    assert d2[2] > CHI2INV95[4]


def test_filters_are_batched():
    for kf in (SortKalman(), DeepSortKalman()):
        z = np.array([[10.0, 20.0, 0.5, 40.0], [100.0, 50.0, 0.4, 60.0]])
        if isinstance(kf, SortKalman):
            z[:, 2:] = [[800, 0.5], [1500, 0.4]]
        mean, cov = kf.initiate(z)
        mean, cov = kf.predict(mean, cov)
        moved = z + 3.0
        both = kf.update(mean, cov, moved)
        for k in range(2):
            one = kf.update(*kf.predict(*kf.initiate(z[k])), moved[k])
            np.testing.assert_allclose(both[0][k], one[0])
            np.testing.assert_allclose(both[1][k], one[1])
        assert kf.gating_distance(mean, cov, moved).shape == (2, 2)
