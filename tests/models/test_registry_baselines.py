"""The registry and the two baseline models of the foundation (single-frame, small 3D CNN)."""

from __future__ import annotations

import pytest
import torch

from deepvideo.models import create_model, list_models, register_model
from deepvideo.models.frame import SingleFrame


def test_registry_lists_and_errors():
    names = list_models()
    assert names == sorted(names) and {"single_frame", "small3d"} <= set(names)
    with pytest.raises(ValueError, match=r"did you mean small3d\?"):
        create_model("small_3d", num_classes=3)
    with pytest.raises(ValueError, match=r"no option 'widht'.*did you mean widths\?"):
        create_model("small3d", num_classes=3, widht=(4,))
    with pytest.raises(ValueError, match="num_classes"):
        create_model("small3d", num_classes=0)


@pytest.mark.parametrize("name, params", [
    # conv3x3 (no bias) + BN(gamma, beta) per stage, then fc: hand-computed
    ("single_frame", (3 * 9 * 4 + 8) + (4 * 9 * 8 + 16) + (8 * 5 + 5)),
    ("small3d", (3 * 27 * 4 + 8) + (4 * 27 * 8 + 16) + (8 * 5 + 5)),
])
def test_forward_backward_and_parameter_count(name, params):
    model = create_model(name, num_classes=5, widths=(4, 8))
    assert sum(p.numel() for p in model.parameters()) == params
    video = torch.randn(2, 3, 6, 16, 16)
    logits = model(video)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_single_frame_averages_per_frame_logits():
    torch.manual_seed(0)
    model = create_model("single_frame", num_classes=4, widths=(4, 8)).eval()
    video = torch.randn(1, 3, 5, 16, 16)
    per_frame = torch.stack([model(video[:, :, t:t + 1]) for t in range(5)], dim=1)
    torch.testing.assert_close(model(video), per_frame.mean(dim=1))
    # a single frame model cannot see order: shuffling frames changes nothing
    torch.testing.assert_close(model(video[:, :, [4, 2, 0, 1, 3]]), model(video))
    assert isinstance(model, SingleFrame)


@pytest.mark.parametrize("name", ["single_frame", "small3d"])
def test_overfits_a_handful_of_clips(name, overfit):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, widths=(8, 16))
    clips, labels = torch.randn(6, 3, 4, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, clips, labels, steps=25, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("inputs", ["rgb", (), ("rgb", 2)])
def test_register_model_checks_its_input_names(inputs):
    with pytest.raises(ValueError, match="inputs must be a tuple of tensor names"):
        register_model(inputs=inputs)
