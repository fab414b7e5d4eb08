"""TinyFlow: synthetic pairs with known flow, the compact PWC-Net, training, weights files, the estimator."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.engine import TrainConfig
from deepvideo.engine.flowtrain import TINYFLOW_TRAINING, TinyFlowTask, train_tinyflow
from deepvideo.flow import backward_warp, endpoint_error, make_estimator, photometric_error, read_flo
from deepvideo.flow.synthetic import PairConfig, pair_generator, synthetic_pairs, to_frames
from deepvideo.flow.tinyflow import TinyFlow, TinyPWC, load_tinyflow, multiscale_epe, save_tinyflow

TRAIN = PairConfig(size=(32, 32), max_flow=4.0, objects=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Weights of a short training run (a few seconds on the CPU)."""
    out = tmp_path_factory.mktemp("tinyflow")
    torch.set_num_threads(2)
    train = TrainConfig(**{**TINYFLOW_TRAINING.__dict__, "epochs": 2, "batch_size": 4, "progress": False})
    train_tinyflow(out, pairs=TRAIN, pairs_per_epoch=400, val_pairs=16, train=train)   # 200 steps
    return out / "weights.safetensors"


def test_pairs_obey_the_warp_relation():
    config = PairConfig(size=(40, 48), max_flow=6.0, objects=2, noise=0.0)
    img1, img2, flow = synthetic_pairs(6, config, pair_generator(3, 0))
    assert img1.shape == img2.shape == (6, 3, 40, 48) and flow.shape == (6, 2, 40, 48)
    assert 0 <= img1.min() and img1.max() <= 1
    lengths = flow.norm(dim=1)
    assert lengths.max() <= 6.0 + 1e-4 and lengths.mean() > 0.1
    warped, valid = backward_warp(img2, flow)
    for i in range(6):                    # per pair: warping by the true flow beats not warping
        assert photometric_error(warped[i], img1[i], valid[i]) < 0.5 * photometric_error(img2[i], img1[i])
    # without objects nothing is occluded: the relation is exact wherever the sample is inside
    img1, img2, flow = synthetic_pairs(4, PairConfig(size=(33, 35), objects=0, noise=0.0), pair_generator(3, 1))
    warped, valid = backward_warp(img2, flow)
    assert valid.float().mean() > 0.5
    assert ((warped - img1).abs() * valid).max() < 1e-4
    # a stream is reproducible step by step, and steps differ
    again = synthetic_pairs(4, PairConfig(size=(33, 35), objects=0, noise=0.0), pair_generator(3, 1))
    assert torch.equal(again[0], img1) and torch.equal(again[2], flow)
    assert not torch.equal(synthetic_pairs(4, PairConfig(size=(33, 35)), pair_generator(3, 2))[2], flow)
    with pytest.raises(ValueError, match="max_flow"):
        PairConfig(max_flow=0)


def test_network_shapes_and_gradients_for_odd_sizes():
    torch.manual_seed(0)
    model = TinyPWC(channels=(8, 8, 12), widths=(16, 8), max_displacement=2)
    assert model.stride == 8
    img1, img2, flow = synthetic_pairs(2, PairConfig(size=(24, 40), max_flow=3.0), pair_generator(0))
    levels = model(img1, img2)
    assert [tuple(f.shape) for f in levels] == [(2, 2, 12, 20), (2, 2, 6, 10), (2, 2, 3, 5)]
    assert all(f.abs().max() == 0 for f in levels)          # the flow heads start at zero: zero flow
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):                                        # after one step every parameter learns
        optimizer.zero_grad()
        multiscale_epe(model(img1, img2), flow).backward()
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    odd = torch.rand(2, 3, 37, 45)
    assert model.estimate(odd, odd.flip(-1)).shape == (2, 2, 37, 45)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(odd, odd)


def test_short_training_beats_zero_flow_on_held_out_pairs(trained):
    estimate = load_tinyflow(trained, device="cpu")
    img1, img2, flow = synthetic_pairs(16, TRAIN, pair_generator(seed=999))    # another seed: unseen
    predicted = estimate(to_frames(img1), to_frames(img2))
    assert predicted.shape == (16, 2, 32, 32) and predicted.dtype == np.float32
    zero = endpoint_error(np.zeros_like(predicted), flow)
    assert endpoint_error(predicted, flow) < 0.8 * zero


def test_weights_round_trip_and_errors(tmp_path):
    torch.manual_seed(1)
    model = TinyPWC(channels=(8, 8), widths=(8,), max_displacement=1)
    path = save_tinyflow(tmp_path / "w.safetensors", model)
    loaded = load_tinyflow(path, device="cpu")
    assert loaded.model.config == model.config
    saved = model.state_dict()
    assert all(torch.equal(value, saved[key]) for key, value in loaded.model.state_dict().items())
    frames = np.random.default_rng(0).integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)
    assert np.array_equal(loaded(frames[0], frames[1]), TinyFlow(model, device="cpu")(frames[0], frames[1]))

    with pytest.raises(ValueError, match="missing.safetensors does not exist"):
        load_tinyflow(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.safetensors cannot be read"):
        load_tinyflow(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="other.safetensors is not a TinyFlow checkpoint"):
        load_tinyflow(tmp_path / "other.safetensors")
    state = model.state_dict()
    first = next(iter(state))
    save_file({k: v for k, v in state.items() if k != first}, tmp_path / "partial.safetensors",
              metadata={"format": "deepvideo.tinyflow/1", "model": '{"channels": [8, 8], "widths": [8], '
                        '"max_displacement": 1}', "recipe": "{}", "step": "0"})
    with pytest.raises(ValueError, match=f"partial.safetensors does not fit its architecture: key '{first}'"):
        load_tinyflow(tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match="uint8"):
        loaded(frames[0].astype(np.float32), frames[1])


def test_training_checks_the_pair_size():
    with pytest.raises(ValueError, match=r"pairs.size \(20, 32\) must be a multiple of 8"):
        TinyFlowTask(PairConfig(size=(20, 32)))


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_estimator_on_real_flyingchairs(shared_data, trained):
    folder = shared_data / "flow"
    estimate = make_estimator("tinyflow", weights=trained, device="cpu")
    for img1, img2, flo in (("00001_img1.ppm", "00001_img2.ppm", "00001_flow.flo"),
                            ("0000000-img_0.png", "0000000-img_1.png", "0000000-flow_01.flo")):
        flow = estimate(_rgb(folder / img1), _rgb(folder / img2))
        assert flow.shape == (2, 50, 50) and flow.dtype == np.float32 and np.isfinite(flow).all()
        assert endpoint_error(flow, read_flo(folder / flo)) < 20     # a flow in pixels, not garbage
    with pytest.raises(ValueError, match="'tinyflow' needs weights"):
        make_estimator("tinyflow")


def test_multiscale_loss_checks_its_levels():
    """A fourth level used to be dropped from the loss without a word (zip with three
    weights), and a target of another size was silently rescaled by the wrong factor."""
    target = torch.ones(1, 2, 32, 32)
    flows = [torch.zeros(1, 2, 32 // 2 ** level, 32 // 2 ** level) for level in (1, 2, 3)]
    # zero flow against a constant 1 px (dx, dy) flow: EPE sqrt(2) full-resolution px per level
    torch.testing.assert_close(multiscale_epe(flows, target), torch.tensor(1.75 * 2 ** 0.5))
    with pytest.raises(ValueError, match="weights: 3 loss weights for 4 flow levels"):
        multiscale_epe([*flows, torch.zeros(1, 2, 2, 2)], target)
    with pytest.raises(ValueError, match=r"target \(1, 2, 48, 48\) does not fit flow level 1"):
        multiscale_epe(flows, torch.ones(1, 2, 48, 48))
    with pytest.raises(ValueError, match=r"target must be a \(B, 2, H, W\) flow"):
        multiscale_epe(flows, torch.ones(2, 32, 32))
    with pytest.raises(ValueError, match="at least one level"):
        TinyPWC(channels=())
