"""The detectors: step labels, 1D NMS and Soft-NMS by hand, pyramid targets, and both models
learning a toy sequence until they find its segments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepvideo.detect.models import DETECTORS, AnchorFreeDetector, build_detector, nms_1d, segments_iou, step_labels


def test_segments_iou_by_hand():
    iou = segments_iou(torch.tensor([[0.0, 10.0]]), torch.tensor([[2.0, 12.0], [10.0, 20.0], [0.0, 5.0]]))
    torch.testing.assert_close(iou, torch.tensor([[8 / 12, 0.0, 0.5]]))


def test_greedy_and_soft_nms_by_hand():
    segments = torch.tensor([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0], [0.0, 10.0]])
    scores, labels = torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([0, 0, 0, 1])
    kept = nms_1d(segments, scores, labels, iou_threshold=0.5)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 10, 0, 0.9], [20, 30, 0, 0.7], [0, 10, 1, 0.6]]))
    soft = nms_1d(segments, scores, labels, soft=True, sigma=0.5)
    decayed = 0.8 * math.exp(-((9 / 11) ** 2) / 0.5)  # IoU of [1, 11] with [0, 10] is 9/11
    torch.testing.assert_close(soft[:, 3], torch.tensor([0.9, 0.7, 0.6, decayed]))
    assert nms_1d(segments[:0], scores[:0], labels[:0]).shape == (0, 4)


def test_step_labels_take_the_segment_at_each_step_centre():
    truth = torch.tensor([[[2.0, 5.0, 1.0], [4.5, 8.0, 0.0], [0.0, 0.0, -1.0]]])
    # centres 0.5 .. 9.5: steps 2-3 in class 1, step 4 in both (the shorter, class 1, wins), 5-7 in class 0
    assert step_labels(truth, 10).tolist() == [[0, 0, 2, 2, 2, 1, 1, 1, 0, 0]]


def test_pyramid_targets_put_each_segment_on_the_level_of_its_extent():
    model = AnchorFreeDetector(4, 2, width=16, levels=3, centre_radius=1.5)
    truth = torch.tensor([[[10.0, 13.0, 0.0], [20.0, 44.0, 1.0]]])  # extents 1.5 (level 0) and 12 (level 2)
    label0, segment0 = model.targets(truth, 0, 64)
    assert (label0[0] >= 0).nonzero()[:, 0].tolist() == [10, 11, 12] and (label0[0][[10, 11, 12]] == 0).all()
    torch.testing.assert_close(segment0[0, 11], torch.tensor([10.0, 13.0]))
    label2, _ = model.targets(truth, 2, 16)  # extents in [8, inf)
    # level 2: centres 2, 6, 10, ...; those within 1.5 strides (6) of the centre 32: 26, 30, 34, 38
    assert (label2[0] >= 0).nonzero()[:, 0].tolist() == [6, 7, 8, 9] and (label2[0, 6:10] == 1).all()
    label1, _ = model.targets(truth, 1, 32)
    assert (label1 == -1).all()  # neither extent is in [4, 8)


@pytest.mark.parametrize("name, options", [("rnn", {"hidden": 32, "dropout": 0.0}),
                                           ("anchor_free", {"width": 32, "levels": 3})])
def test_a_detector_learns_a_toy_sequence(name, options):
    torch.manual_seed(0)
    truth = torch.tensor([[[5.0, 15.0, 0.0], [30.0, 38.0, 1.0], [50.0, 60.0, 2.0]]])
    features = torch.randn(1, 64, 8) * 0.1
    for start, end, cls in truth[0]:
        features[0, int(start):int(end), int(cls)] += 2.0
    mask = torch.ones(1, 64, dtype=torch.bool)
    model = build_detector(name, 8, 3, **options)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(300):
        loss = model.loss(model(features, mask), truth, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        found = model.detect(model(features, mask), mask)[0]
    best = found[np.argsort(-found[:, 3])][:3]
    assert sorted(best[:, 2].tolist()) == [0, 1, 2] and (best[:, 3] > 0.5).all()
    for start, end, cls in truth[0].tolist():
        row = best[best[:, 2] == cls][0]
        assert abs(row[0] - start) < 0.5 and abs(row[1] - end) < 0.5


def test_registry_and_options():
    assert set(DETECTORS) >= {"rnn", "anchor_free"}
    with pytest.raises(ValueError, match="cell must be lstm or gru"):
        build_detector("rnn", 8, 2, cell="transformer")
    with pytest.raises(ValueError, match="did you mean anchor_free"):
        build_detector("anchor_fre", 8, 2)


def test_rnn_background_weight_weighs_the_cross_entropy():
    torch.manual_seed(0)
    model = build_detector("rnn", 8, 2, background_weight=0.3)
    features, mask = torch.randn(1, 6, 8), torch.ones(1, 6, dtype=torch.bool)
    truth = torch.tensor([[[2.0, 4.0, 1.0]]])
    logits = model(features, mask)
    target = torch.tensor([0, 0, 2, 2, 0, 0])
    expected = torch.nn.functional.cross_entropy(logits[0], target, weight=torch.tensor([0.3, 1.0, 1.0]))
    torch.testing.assert_close(model.loss(logits, truth, mask), expected)
