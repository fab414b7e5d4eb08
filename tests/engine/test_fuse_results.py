"""Late fusion of evaluations (two-stream): weighted average over the videos all models read."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.engine.evaluate import fuse_results


def result(indices, labels, probs) -> dict:
    return {"video_indices": list(indices), "video_labels": list(labels), "video_probs": np.array(probs, float)}


def test_weighted_average_over_shared_videos():
    spatial = result([0, 1, 2], [0, 1, 1], [[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    temporal = result([0, 2], [0, 1], [[0.1, 0.9], [0.4, 0.6]])   # video 1 was unreadable for it
    equal = fuse_results([spatial, temporal])
    assert equal["video_indices"] == [0, 2] and equal["video_labels"] == [0, 1]
    np.testing.assert_allclose(equal["video_probs"], [[0.35, 0.65], [0.3, 0.7]])
    assert equal["video_acc1"] == 0.5 and equal["num_videos"] == 2 and "clip_acc" not in equal
    weighted = fuse_results([spatial, temporal], weights=[1.0, 3.0])
    np.testing.assert_allclose(weighted["video_probs"], [[0.225, 0.775], [0.35, 0.65]])
    with pytest.raises(ValueError, match="one positive fusion weight per model"):
        fuse_results([spatial, temporal], weights=[1.0])
    with pytest.raises(ValueError, match="label the same videos differently"):
        fuse_results([spatial, result([0], [1], [[0.5, 0.5]])])
    with pytest.raises(ValueError, match="share no video"):
        fuse_results([spatial, result([5], [0], [[0.5, 0.5]])])
