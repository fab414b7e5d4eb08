"""Every registered model exports to ONNX and to a torch.export program, and both agree with
eager PyTorch: two different random batches (a value frozen by tracing would show), a
second batch size and, where the frames are dynamic, a second clip length."""

from __future__ import annotations

import os

import pytest
import torch
import torchvision

from deepvideo.deploy import FIXED_FRAMES, export_program, load_exported, recipe_for_model
from deepvideo.models import list_models

from conftest import randomize_batchnorm

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4
W = (4, 8)
# model -> (options, one clip (C, T, H, W)): CPU-sized; the recurrent and transformer models get
# their size options; 8 frames for the ResNets and T3Ds (dynamic from 5 to 8 frames: at 4 their
# temporal size reaches 1 a stage earlier, a different traced graph)
TINY: dict[str, tuple[dict, tuple[int, int, int, int]]] = {
    "c3d": (dict(fc_width=16), (3, 16, 32, 32)),
    "convlstm": (dict(stem_widths=W, hidden_channels=(8,)), (3, 4, 16, 16)),
    "early_fusion": (dict(widths=W, hidden=(8,)), (3, 4, 16, 16)),
    "gru_rcn": (dict(widths=W, hidden_channels=W), (3, 4, 16, 16)),
    "i3d_resnet18": ({}, (3, 8, 16, 16)),
    "i3d_resnet50": ({}, (3, 8, 16, 16)),
    "late_fusion": (dict(widths=W, hidden=(8,)), (3, 2, 16, 16)),
    "late_fusion_pool": (dict(widths=W, hidden=(8,)), (3, 4, 16, 16)),
    "lrcn": (dict(widths=W, hidden_size=8, skip=True), (3, 4, 16, 16)),
    "lstm_head": (dict(hidden_size=8), (8, 4, 1, 1)),
    "mc3_18": ({}, (3, 8, 16, 16)),
    "mvit_v2_s": ({}, (3, 16, 224, 224)),
    "r2plus1d_18": ({}, (3, 8, 16, 16)),
    "r2plus1d_34": ({}, (3, 8, 16, 16)),
    "r3d_18": ({}, (3, 8, 16, 16)),
    "r3d_50": ({}, (3, 8, 16, 16)),
    "single_frame": (dict(widths=W), (3, 4, 16, 16)),
    "slow_fusion": (dict(widths=(4, 4, 8, 8), hidden=(8,)), (3, 12, 16, 16)),
    "small3d": (dict(widths=W), (3, 4, 16, 16)),
    "spatial_stream": (dict(widths=W), (3, 4, 16, 16)),
    "st_adapter_vit_b16": ({}, (3, 2, 224, 224)),
    "st_adapter_vit_b32": ({}, (3, 2, 224, 224)),
    "st_adapter_vit_tiny": ({}, (3, 4, 32, 32)),
    "t3d_121": ({}, (3, 8, 16, 16)),
    "t3d_169": ({}, (3, 8, 16, 16)),
    "t3d_tiny": ({}, (3, 8, 16, 16)),
    "tcn_head": (dict(widths=(8, 8)), (8, 4, 1, 1)),
    "temporal_stream": (dict(widths=W), (2, 2, 16, 16)),
    "timesformer": (dict(dim=16, depth=1, heads=2), (3, 2, 32, 32)),
    "timesformer_tiny": ({}, (3, 2, 32, 32)),
    "transformer_head": (dict(dim=8, depth=1, heads=2, max_len=8), (8, 4, 1, 1)),
    "two_stream": (dict(widths=W), (3, 2, 16, 16)),
    "two_stream_i3d": ({}, (3, 8, 16, 16)),
    "vit_b16_frames": ({}, (3, 2, 224, 224)),
    "vit_b32_frames": ({}, (3, 2, 224, 224)),
    "vit_tiny_frames": ({}, (3, 4, 32, 32)),
    "vivit": (dict(dim=16, spatial_depth=1, temporal_depth=1, heads=2), (3, 4, 32, 32)),
    "vivit_tiny": ({}, (3, 2, 32, 32)),
}
# the full-size MViTv2-S (16 x 224 x 224, 36 M parameters) and the ViT-B models (86 M) take minutes: run
# with DEEPVIDEO_SLOW_TESTS=1; test_tiny_mvit_parity covers torchvision's MViT code on a small instance and
# the *_vit_tiny models the ViT-B ones' code by default
SLOW = {"mvit_v2_s", "st_adapter_vit_b16", "st_adapter_vit_b32", "vit_b16_frames", "vit_b32_frames"}


def test_every_registered_model_has_a_case():
    assert sorted(TINY) == list_models()
    assert set(FIXED_FRAMES) <= set(TINY)


def _outputs(out) -> tuple[torch.Tensor, ...]:
    """A model's output as a flat tuple (a two-stream network returns three tensors)."""
    return tuple(out) if isinstance(out, tuple) else (out,)


def _check_parity(recipe, model, tmp_path, dynamic: bool) -> None:
    exported = export_program(recipe, model)
    meta = exported.metadata
    assert meta.dynamic_frames == dynamic, meta.fixed_frames_reason
    networks = [load_exported(exported.save(tmp_path / "model.onnx", "onnx")),
                load_exported(exported.save(tmp_path / "model.pt2", "exported-program"))]
    assert [n.metadata.dumps() for n in networks] == [meta.dumps()] * 2
    frames = second = recipe.clip_len
    if dynamic:  # a longer clip where the program takes one, else a shorter
        second = frames + 4 if meta.accepts(frames + 4) else meta.min_frames
        assert second != frames
    generator = torch.Generator().manual_seed(1)
    # two random batches, then another batch size (and clip length)
    for batch, length in ((2, frames), (2, frames), (1, second)):
        inputs = tuple(torch.randn(batch, x.shape[1], length, *x.shape[3:], generator=generator)
                       for x in exported.example)
        with torch.no_grad():
            expected = _outputs(model(*inputs))
        for network in networks:
            got = _outputs(network(*inputs))
            assert len(got) == len(expected)
            for g, e in zip(got, expected):
                assert g.shape == e.shape
                assert (g - e).abs().max().item() <= TOL, (type(network).__name__, batch, length)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.skipif(name in SLOW and not os.environ.get("DEEPVIDEO_SLOW_TESTS"),
                                                reason="minutes on a CPU; DEEPVIDEO_SLOW_TESTS=1 runs it"))
    for name in sorted(TINY)])
def test_export_parity(name, tmp_path):
    torch.manual_seed(0)
    options, shape = TINY[name]
    recipe = recipe_for_model(name, shape, num_classes=3, model_kwargs=options)
    model = randomize_batchnorm(recipe.build_model()).eval()
    _check_parity(recipe, model, tmp_path, dynamic=name not in FIXED_FRAMES)


def test_tiny_mvit_parity(tmp_path):
    """torchvision's MViT (the code behind mvit_v2_s) at 8 x 32 x 32 with two small blocks:
    relative position embeddings, pooled attention and the residual pooling of MViTv2."""
    from torchvision.models.video.mvit import MSBlockConfig

    torch.manual_seed(0)
    blocks = [MSBlockConfig(num_heads=1, input_channels=8, output_channels=8, kernel_q=[3, 3, 3],
                            kernel_kv=[3, 3, 3], stride_q=[1, 1, 1], stride_kv=[1, 2, 2]),
              MSBlockConfig(num_heads=2, input_channels=8, output_channels=16, kernel_q=[3, 3, 3],
                            kernel_kv=[3, 3, 3], stride_q=[1, 2, 2], stride_kv=[1, 1, 1])]
    model = torchvision.models.video.MViT(spatial_size=(32, 32), temporal_size=8, block_setting=blocks,
                                          residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
                                          proj_after_attn=True, num_classes=3).eval()
    recipe = recipe_for_model("mvit_v2_s", (3, 8, 32, 32), num_classes=3)
    _check_parity(recipe, model, tmp_path, dynamic=False)
