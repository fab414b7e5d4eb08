"""SR networks: shapes, the frame recurrence, streaming = the training unroll, the first
frame's black estimate and zero initial flow, and the registry's errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepvideo.sr import FRVSR, SR_MODELS, Bicubic, FrameSR, build_sr_model
from deepvideo.sr.models import space_to_depth

SMALL = {"channels": 8, "blocks": 1}


@pytest.mark.parametrize("name", ["bicubic", "srnet", "frvsr"])
@pytest.mark.parametrize("scale", [2, 4])
def test_every_model_maps_a_clip_to_its_scale(name, scale):
    model = build_sr_model(name, scale, **({} if name == "bicubic" else SMALL))
    lr = torch.rand(2, 3, 3, 16, 24)
    sr, flow_loss = model(lr, with_flow_loss=True)
    assert sr.shape == (2, 3, 3, 16 * scale, 24 * scale)
    assert flow_loss.dim() == 0 and (flow_loss > 0) == (name == "frvsr")
    assert torch.equal(model(lr), sr)


def test_bicubic_is_torch_bicubic_of_each_frame():
    lr = torch.rand(1, 2, 3, 8, 8)
    expected = F.interpolate(lr[0], scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(Bicubic(4)(lr)[0], expected)


def test_srnet_adds_the_bicubic_upsampled_input_back():
    model = FrameSR(4, **SMALL)
    torch.nn.init.zeros_(model.srnet.tail.weight)
    torch.nn.init.zeros_(model.srnet.tail.bias)
    lr = torch.rand(1, 2, 3, 8, 8)
    torch.testing.assert_close(model(lr), Bicubic(4)(lr))


def test_frvsr_output_depends_on_the_previous_frame_and_srnet_does_not():
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 3, 16, 16)
    changed = lr.clone()
    changed[:, 0] = torch.rand(3, 16, 16)
    for model, recurrent in ((FRVSR(4, **SMALL), True), (FrameSR(4, **SMALL), False)):
        with torch.no_grad():
            a, b = model(lr), model(changed)
        assert not torch.equal(a[:, 0], b[:, 0])
        assert torch.equal(a[:, 1:], b[:, 1:]) != recurrent


def test_fnet_starts_with_zero_flow_so_the_previous_estimate_arrives_unwarped():
    model = FRVSR(4, **SMALL)
    lr, previous = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert torch.equal(model.fnet(lr, previous), torch.zeros(2, 2, 16, 16))
    previous_sr = torch.rand(2, 3, 64, 64)
    sr, flow = model.recur(lr, (previous, previous_sr))
    expected = model.srnet(torch.cat([lr, space_to_depth(previous_sr, 4)], dim=1))
    torch.testing.assert_close(sr, expected)
    # the first frame: itself as the previous frame and a black estimate
    first, _ = model.recur(lr, None)
    torch.testing.assert_close(first, model.srnet(torch.cat([lr, torch.zeros(2, 48, 16, 16)], dim=1)))


def test_space_to_depth_inverts_pixel_shuffle():
    x = torch.rand(2, 48, 5, 7)
    assert torch.equal(space_to_depth(F.pixel_shuffle(x, 4), 4), x)


def test_the_flow_loss_warps_the_previous_lr_frame_with_the_estimated_flow():
    model = FRVSR(2, **SMALL)
    torch.nn.init.normal_(model.fnet.head[-1].weight, std=0.1)  # a non-zero flow
    lr = torch.rand(1, 3, 3, 16, 16)
    _, loss = model(lr, with_flow_loss=True)
    expected = 0
    for t in (1, 2):
        flow = model.fnet(lr[:, t], lr[:, t - 1])
        warped = F.grid_sample(lr[:, t - 1], _grid(flow), align_corners=True)
        expected += F.mse_loss(warped, lr[:, t]) / 2
    torch.testing.assert_close(loss, expected)


def _grid(flow: torch.Tensor) -> torch.Tensor:
    """The sampling grid of p + flow(p) in grid_sample's normalised coordinates (align_corners)."""
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype),
                            indexing="ij")
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    return torch.stack([2 * x / (width - 1) - 1, 2 * y / (height - 1) - 1], dim=-1)


@pytest.mark.parametrize("name", ["srnet", "frvsr"])
def test_streaming_frame_by_frame_equals_the_clip_unroll_at_any_size(name):
    model = build_sr_model(name, 2, **SMALL).eval()
    lr = torch.rand(1, 4, 3, 13, 19)  # not a multiple of FNet's 8: stream pads and crops
    assert model.multiple == (8 if name == "frvsr" else 1)
    padded = F.pad(lr[0], (0, -19 % model.multiple, 0, -13 % model.multiple), mode="replicate")[None]
    with torch.no_grad():
        expected = model(padded)[0, :, :, :26, :38].clamp(0, 1)
    streamed = torch.stack(list(model.stream(iter(lr[0]))))
    torch.testing.assert_close(streamed, expected)


def test_paper_sizes_are_options():
    model = FRVSR(4, channels=64, blocks=10, upsample="transposed", fnet_width=32)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules()) == 2
    assert [block[0].out_channels for block in model.fnet.encoder] == [32, 64, 128]
    assert [block[0].out_channels for block in model.fnet.decoder] == [256, 128, 64]
    assert len(model.srnet.body) == 10
    assert model(torch.rand(1, 2, 3, 8, 8)).shape == (1, 2, 3, 32, 32)


def test_registry_names_and_errors():
    assert SR_MODELS.names() == ("bicubic", "srnet", "frvsr")
    assert not SR_MODELS.info("bicubic")["trainable"] and SR_MODELS.info("frvsr")["trainable"]
    with pytest.raises(ValueError, match="did you mean frvsr"):
        build_sr_model("frvrs", 4)
    with pytest.raises(ValueError, match="has no option 'width'"):
        build_sr_model("srnet", 4, width=3)
    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        build_sr_model("srnet", 3)
    with pytest.raises(ValueError, match="divisible by 8"):
        FRVSR(4, **SMALL)(torch.rand(1, 2, 3, 12, 12))
    with pytest.raises(ValueError, match=r"lr must be \(B, T, 3, h, w\)"):
        FRVSR(4, **SMALL)(torch.rand(2, 3, 12, 12))
