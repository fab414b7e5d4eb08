"""RAFT behind the flow API: construction, padding to RAFT's size rules, weights from a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small

from deepvideo.flow.learned import RAFTFlow, load_raft


def test_raft_small_forward_and_weights_file(tmp_path):
    torch.manual_seed(0)
    model = raft_small()
    path = tmp_path / "raft_small.pth"
    torch.save(model.state_dict(), path)
    raft = load_raft(path, device="cpu", num_flow_updates=2)
    loaded, saved = raft.model.state_dict(), model.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    rng = np.random.default_rng(0)
    frame1 = rng.integers(0, 256, (60, 68, 3), dtype=np.uint8)  # neither side a multiple of 8
    frame2 = np.roll(frame1, 2, axis=1)
    flow = raft(frame1, frame2)
    assert flow.shape == (2, 60, 68) and flow.dtype == np.float32 and np.isfinite(flow).all()
    batched = RAFTFlow(model, device="cpu", num_flow_updates=2)
    batch = batched(np.stack([frame1, frame2]), np.stack([frame2, frame1]))
    assert batch.shape == (2, 2, 60, 68)
    assert np.allclose(batch[0], flow, atol=1e-3)             # same pair, same flow, batched or not


def test_raft_weights_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.pth does not exist"):
        load_raft(tmp_path / "missing.pth")
    state = raft_small().state_dict()
    first = next(iter(state))
    del state[first]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=f"partial.pth does not fit raft_small: key '{first}' missing"):
        load_raft(tmp_path / "partial.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pth cannot be read"):
        load_raft(tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="uint8"):
        RAFTFlow(raft_small(), device="cpu")(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
