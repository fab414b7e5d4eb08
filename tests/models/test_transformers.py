"""TimeSformer (divided / joint / space attention), ViViT factorised encoder, torchvision MViTv2-S."""

from __future__ import annotations

import pytest
import torch
import torchvision

from deepvideo.models import create_model
from deepvideo.models.transformers import TimeSformerBlock

DIM, HEADS = 32, 4
SMALL = dict(num_frames=4, img_size=16, patch_size=8, dim=DIM, heads=HEADS)
TINY = {
    "timesformer-divided": ("timesformer", dict(SMALL, depth=2, attention="divided")),
    "timesformer-joint": ("timesformer", dict(SMALL, depth=2, attention="joint")),
    "timesformer-space": ("timesformer", dict(SMALL, depth=2, attention="space")),
    "vivit": ("vivit", dict(SMALL, tubelet_size=2, spatial_depth=1, temporal_depth=1)),
}
CLIP = (2, 3, 4, 16, 16)  # (B, C, T, H, W): 4 frames of 2x2 patches


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _block_params(d: int, mlp_ratio: int = 4) -> int:
    """Pre-norm ViT block: two LayerNorms, qkv + proj, the two-layer MLP."""
    return 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * mlp_ratio * d + mlp_ratio * d) \
        + (mlp_ratio * d * d + d)


@pytest.mark.parametrize("key", sorted(TINY))
def test_forward_backward(key):
    torch.manual_seed(0)
    name, options = TINY[key]
    model = create_model(name, num_classes=5, **options)
    logits = model(torch.randn(CLIP))
    assert logits.shape == (2, 5)
    logits.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("attention", ["divided", "joint", "space"])
def test_timesformer_parameter_count(attention):
    d, t, n, p, k, depth = DIM, 4, 4, 8, 5, 2
    model = create_model("timesformer", num_classes=k, depth=depth, attention=attention, **SMALL)
    block = _block_params(d) + (2 * d + 4 * d * d + 4 * d if attention == "divided" else 0)
    time_embed = 0 if attention == "space" else t * d
    embed = (3 * p * p * d + d) + d + (1 + n) * d + time_embed  # patches, cls, space pos, time pos
    assert _params(model) == embed + depth * block + 2 * d + d * k + k


def test_vivit_parameter_count_and_shapes():
    d, k = DIM, 5
    model = create_model("vivit", num_classes=k, **TINY["vivit"][1])
    tubelet = 3 * 2 * 8 * 8 * d + d
    spatial = d + (1 + 4) * d + _block_params(d) + 2 * d  # cls, pos, 1 block, final norm
    temporal = d + (1 + 2) * d + _block_params(d) + 2 * d  # over T/2 = 2 frame tokens
    assert _params(model) == tubelet + spatial + temporal + d * k + k
    video = torch.randn(CLIP)
    assert model.tubelet_embed(video).shape == (2, 2, 4, d)  # (B, T/2, N, D)
    assert model.frame_tokens(video).shape == (2, 2, d)
    assert model(video).shape == (2, k)


def _changed_tokens(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return (before - after).abs().amax(dim=-1)[0] > 1e-6


def test_divided_attention_mixes_time_at_one_position_and_space_within_one_frame():
    torch.manual_seed(0)
    t, n = 3, 4
    block = TimeSformerBlock(16, 2, attention="divided").eval()
    x = torch.randn(1, 1 + t * n, 16)
    y = x.clone()
    y[0, 1 + 1 * n + 2] += torch.randn(16)  # frame 1, patch 2
    frame = torch.arange(t * n) // n
    patch = torch.arange(t * n) % n

    with torch.no_grad():
        temporal = _changed_tokens(block.temporal_attention(x, t), block.temporal_attention(y, t))
        assert not temporal[0]  # class token takes no part in temporal attention
        assert torch.equal(temporal[1:], patch == 2)  # same position, every frame

        spatial = _changed_tokens(block.spatial_attention(x, t), block.spatial_attention(y, t))
        assert spatial[0]  # the class token attends in every frame
        assert torch.equal(spatial[1:], frame == 1)  # one frame only

        joint = TimeSformerBlock(16, 2, attention="joint").eval()
        assert _changed_tokens(joint(x, t), joint(y, t)).all()


def test_space_only_timesformer_ignores_frame_order():
    torch.manual_seed(0)
    video = torch.randn(CLIP)
    shuffled = video[:, :, [2, 0, 3, 1]]
    space = create_model("timesformer", num_classes=3, depth=2, attention="space", **SMALL).eval()
    torch.testing.assert_close(space(video), space(shuffled))
    divided = create_model("timesformer", num_classes=3, depth=2, **SMALL).eval()
    assert not torch.allclose(divided(video), divided(shuffled), atol=1e-5)


@pytest.mark.parametrize("name", ["timesformer_tiny", "vivit_tiny"])
def test_tiny_variants_run_at_their_default_size(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 112, 112)).shape == (1, 3)


@pytest.mark.parametrize("key", ["timesformer-divided", "vivit"])
def test_overfits_a_few_clips(key, overfit):
    torch.manual_seed(0)
    name, options = TINY[key]
    model = create_model(name, num_classes=3, **options)
    clips, labels = torch.randn(6, 3, 4, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, clips, labels, steps=30, lr=1e-3)
    assert losses[-1] < 0.2 * losses[0]


def test_input_and_option_errors():
    model = create_model("timesformer", num_classes=3, depth=1, **SMALL)
    with pytest.raises(ValueError, match=r"built for input \(B, 3, 4, 16, 16\)"):
        model(torch.randn(1, 3, 8, 16, 16))
    with pytest.raises(ValueError, match="attention must be one of"):
        create_model("timesformer", num_classes=3, attention="axial")
    with pytest.raises(ValueError, match="multiples of the tubelet 2x8x8"):
        create_model("vivit", num_classes=3, **dict(TINY["vivit"][1], num_frames=5))
    with pytest.raises(ValueError, match="divisible by heads"):
        create_model("vivit", num_classes=3, **dict(TINY["vivit"][1], heads=5))
    with pytest.raises(ValueError, match="no option 'depth'"):
        create_model("vivit", num_classes=3, depth=2)


# --- MViTv2-S (torchvision) -------------------------------------------------------------


@pytest.fixture(scope="module")
def mvit_checkpoint(tmp_path_factory):
    """A state_dict of our builder's randomly initialised Kinetics-400 MViTv2-S, saved to a file."""
    torch.manual_seed(0)
    reference = create_model("mvit_v2_s", num_classes=400)
    assert isinstance(reference, torchvision.models.video.MViT)
    path = tmp_path_factory.mktemp("mvit") / "mvit_v2_s.pth"
    torch.save(reference.state_dict(), path)
    return path, reference


def test_mvit_head_replacement_and_local_weights(mvit_checkpoint):
    path, reference = mvit_checkpoint
    with pytest.warns(UserWarning, match="loaded all but 'head.1'"):
        model = create_model("mvit_v2_s", num_classes=7, weights=str(path)).eval()
    torch.testing.assert_close(model.conv_proj.weight, reference.conv_proj.weight)
    torch.testing.assert_close(model.blocks[5].attn.qkv.weight, reference.blocks[5].attn.qkv.weight)
    assert model.head[-1].out_features == 7
    # torchvision's published count for MViT_V2_S (34,537,744), less the 400-class head,
    # plus the 7-class one.
    assert _params(reference) == 34_537_744
    assert _params(model) == 34_537_744 - 400 * 769 + 7 * 769
    with torch.no_grad():  # the one size MViTv2-S accepts: 3x16x224x224
        assert model(torch.randn(1, 3, 16, 224, 224)).shape == (1, 7)


def test_mvit_mismatched_weight_file_names_the_key(mvit_checkpoint, tmp_path):
    _, reference = mvit_checkpoint
    state = reference.state_dict()
    del state["blocks.3.attn.qkv.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"partial\.pth: key 'blocks\.3\.attn\.qkv\.weight' is missing"):
        create_model("mvit_v2_s", num_classes=400, weights=str(tmp_path / "partial.pth"))


def test_summary_counts_attention_and_matches_the_paper():
    """TimeSformer-base 8x224: the paper's 0.59 TFLOPs for 3 views is 196 GMACs per view
    (fvcore counts MACs); ours lacks only the reference code's `temporal_fc`
    (12 blocks x 1568 tokens x 768^2 MACs), which the module docstring explains."""
    from deepvideo.models.summary import summarize
    from deepvideo.models.transformers import Attention

    attention = Attention(8, 2)
    assert summarize(attention, (5, 8)).total_macs == 5 * 8 * 24 + 5 * 8 * 8 + 2 * 5 * 5 * 8
    with torch.device("meta"):
        model = create_model("timesformer", num_classes=400)
    macs = summarize(model, (3, 8, 224, 224)).total_macs + 12 * 1568 * 768 ** 2
    assert macs / 1e9 == pytest.approx(196, rel=0.01)
