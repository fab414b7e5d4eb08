"""R3D / MC3 / R(2+1)D: torchvision equivalence, parameters, weights loading, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision.models.video import resnet as tv

from deepvideo.models import create_model
from deepvideo.models import resnet3d as R
from deepvideo.models.attention import NonLocalBlock
from deepvideo.models.resnet3d import Conv2Plus1D, Conv3DSimple, mid_channels

from conftest import randomize_batchnorm

# our builder -> the same network built by torchvision
TORCHVISION = {
    "r3d_18": tv.r3d_18,
    "mc3_18": tv.mc3_18,
    "r2plus1d_18": tv.r2plus1d_18,
    "r2plus1d_34": lambda: tv.VideoResNet(tv.BasicBlock, [tv.Conv2Plus1D] * 4, [3, 4, 6, 3],
                                          tv.R2Plus1dStem),
    "r3d_50": lambda: tv.VideoResNet(tv.Bottleneck, [tv.Conv3DSimple] * 4, [3, 4, 6, 3], tv.BasicStem),
}


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def mc3_checkpoint(tmp_path_factory):
    """torchvision's MC3-18 (random weights, random BN stats) saved as a .pth state_dict."""
    torch.manual_seed(0)
    reference = randomize_batchnorm(tv.mc3_18()).eval()
    path = tmp_path_factory.mktemp("weights") / "mc3_18.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_matches_torchvision_and_trains(name):
    torch.manual_seed(0)
    reference = randomize_batchnorm(TORCHVISION[name]()).eval()
    model = create_model(name, num_classes=400)
    assert num_params(model) == num_params(reference)
    model.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    model.eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=0)

    model.train()
    logits = model(torch.randn(2, 3, 2, 16, 16))
    assert logits.shape == (2, 400)
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("block, conv, stem", [
    ("Bottleneck", "Conv2Plus1D", "r2plus1d_stem"), ("BasicBlock", "Conv3DNoTemporal", "basic_stem")])
def test_any_configuration_has_torchvisions_keys_and_shapes(block, conv, stem):
    with torch.device("meta"):
        ours = R.VideoResNet(getattr(R, block), [getattr(R, conv)] * 4, [3, 4, 23, 3],
                             getattr(R, stem)(), num_classes=7)
        theirs = tv.VideoResNet(getattr(tv, block), [getattr(tv, conv)] * 4, [3, 4, 23, 3],
                                tv.R2Plus1dStem if stem == "r2plus1d_stem" else tv.BasicStem,
                                num_classes=7)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("name, weights", [("r3d_18", tv.R3D_18_Weights), ("mc3_18", tv.MC3_18_Weights),
                                           ("r2plus1d_18", tv.R2Plus1D_18_Weights)])
def test_parameter_count_is_torchvisions_published_one(name, weights):
    with torch.device("meta"):
        model = create_model(name, num_classes=400)
    assert num_params(model) == weights.KINETICS400_V1.meta["num_params"]


@pytest.mark.parametrize("in_planes, out_planes", [(64, 64), (64, 128), (256, 512)])
def test_mid_channels_match_the_3d_kernel_parameters(in_planes, out_planes):
    """Tran et al. eq. for M: the largest mid width whose (2+1)D conv has no more weights."""
    mid = mid_channels(in_planes, out_planes)
    full = num_params(Conv3DSimple(in_planes, out_planes, mid))
    assert num_params(Conv2Plus1D(in_planes, out_planes, mid)) - 2 * mid <= full  # minus BN
    assert num_params(Conv2Plus1D(in_planes, out_planes, mid + 1)) - 2 * (mid + 1) > full
    assert mid_channels(64, 64) == 144


def test_weights_load_from_pth_and_safetensors(mc3_checkpoint, tmp_path):
    reference, path = mc3_checkpoint
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        expected = reference(clip)
        model = create_model("mc3_18", weights=path).eval()
        torch.testing.assert_close(model(clip), expected, atol=1e-5, rtol=0)
        safetensors_path = tmp_path / "mc3_18.safetensors"
        save_file(reference.state_dict(), str(safetensors_path))
        model = create_model("mc3_18", weights=safetensors_path).eval()
        torch.testing.assert_close(model(clip), expected, atol=1e-5, rtol=0)


def test_other_num_classes_loads_all_but_fc(mc3_checkpoint):
    reference, path = mc3_checkpoint
    with pytest.warns(UserWarning, match="loaded all but 'fc'"):
        model = create_model("mc3_18", num_classes=10, weights=path)
    own, theirs = model.state_dict(), reference.state_dict()
    assert own["fc.weight"].shape == (10, 512)
    assert all(torch.equal(own[k], theirs[k]) for k in theirs if not k.startswith("fc."))


def test_weights_errors_name_the_file_and_key(mc3_checkpoint, tmp_path):
    reference, _ = mc3_checkpoint
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ValueError, match="nowhere.pth does not exist"):
        create_model("mc3_18", weights=missing)

    state = reference.state_dict()
    state["layer9.weight"] = state.pop("layer1.0.conv1.0.weight")
    renamed = tmp_path / "renamed.pth"
    torch.save(state, renamed)
    with pytest.raises(ValueError, match=r"renamed\.pth: key 'layer1\.0\.conv1\.0\.weight' is missing"):
        create_model("mc3_18", weights=renamed)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth cannot be read"):
        create_model("mc3_18", weights=garbage)

    extra = tmp_path / "extra.pth"
    torch.save(reference.state_dict() | {"head.weight": torch.ones(1)}, extra)
    with pytest.raises(ValueError, match=r"extra\.pth: unexpected key 'head\.weight'"):
        create_model("mc3_18", weights=extra)

    with pytest.raises(ValueError, match=r"key 'layer2\.0\.conv1\.0\.weight' has shape \(128, 64, 1, 3, 3\)"):
        create_model("r3d_18", weights=mc3_checkpoint[1])  # MC3 and R3D: same keys, other shapes


def test_nonlocal_stages_keep_pretrained_output(mc3_checkpoint):
    """Non-local blocks are absent from the checkpoint and are the identity at init."""
    reference, path = mc3_checkpoint
    model = create_model("mc3_18", weights=path, nonlocal_stages=(2, 3)).eval()
    blocks = [name for name, m in model.named_modules() if isinstance(m, NonLocalBlock)]
    assert blocks == ["layer2.2", "layer3.2"]
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="nonlocal_stages"):
        create_model("r3d_18", nonlocal_stages=(5,))


def test_overfits_a_handful_of_clips(overfit):
    torch.manual_seed(0)
    model = create_model("mc3_18", num_classes=3, nonlocal_stages=(2,))
    clips, labels = torch.randn(4, 3, 2, 16, 16), torch.tensor([0, 1, 2, 1])
    losses = overfit(model, clips, labels, steps=4, lr=1e-3)
    assert losses[-1] < 0.2 * losses[0], losses
