"""ST-Adapter (Pan et al. 2022): identity at step 0, temporal once trained, only adapters and
head trainable, torchvision ViT weights loaded by key, one-line errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models.vision_transformer import VisionTransformer

from deepvideo.deploy import export_program, load_exported, recipe_for_model
from deepvideo.engine import DataSpec, Recipe, TrainConfig, train
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.models import create_model
from deepvideo.models.st_adapter import FrameViT, STAdapter


def _randomize_adapters(model: FrameViT) -> FrameViT:
    """Trained-looking adapters: random convolutions and biases (fresh ones are the identity)."""
    generator = torch.Generator().manual_seed(3)
    for name, param in model.adapters.named_parameters():
        if "conv" in name or name.endswith("bias"):
            param.data = 0.2 * torch.randn(param.shape, generator=generator)
    return model


def test_at_step_0_the_adapted_model_is_the_frame_averaged_image_model():
    torch.manual_seed(0)
    model = create_model("st_adapter_vit_tiny", num_classes=5, positions=["attn", "mlp"]).eval()
    video = torch.randn(2, 3, 4, 32, 32)
    # torchvision's own ViT forward on every frame, its classifier our head, logits averaged over time
    image_model = model.vit
    frames = video.transpose(1, 2).reshape(8, 3, 32, 32)
    with torch.no_grad():
        expected = model.head(image_model(frames)).view(2, 4, 5).mean(1)
        got = model(video)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert len(model.adapters) == 8  # 4 blocks x (attn, mlp)


def test_adapters_see_time_and_the_image_model_does_not():
    torch.manual_seed(0)
    video = torch.randn(1, 3, 6, 32, 32)
    baseline = create_model("vit_tiny_frames", num_classes=4).eval()
    adapted = _randomize_adapters(create_model("st_adapter_vit_tiny", num_classes=4)).eval()
    with torch.no_grad():
        torch.testing.assert_close(baseline(video), baseline(video.flip(2)))  # frame order is invisible
        assert (adapted(video) - adapted(video.flip(2))).abs().max() > 1e-3


def test_the_adapter_leaves_the_class_token_and_starts_at_zero():
    adapter = STAdapter(dim=16, channels=8)
    tokens = torch.randn(2 * 3, 1 + 4 * 4, 16)  # 2 clips of 3 frames, a 4x4 patch grid
    assert torch.equal(adapter(tokens, 3), tokens)
    adapter.conv.weight.data = torch.randn(adapter.conv.weight.shape, generator=torch.Generator().manual_seed(0))
    out = adapter(tokens, 3)
    assert torch.equal(out[:, 0], tokens[:, 0]) and not torch.allclose(out[:, 1:], tokens[:, 1:])
    # kernel 3x1x1: a patch token depends on the same position in the neighbouring frames only
    changed = tokens.clone()
    changed[0, 1 + 5] += 1.0  # clip 0, frame 0, patch 5
    diff = (adapter(changed, 3) - out).abs().sum(-1)
    assert diff[0, 1 + 5] > 0 and diff[1, 1 + 5] > 0 and diff[2, 1 + 5] == 0  # frames 0 and 1 of clip 0
    assert diff[:, 1 + 4].sum() == 0 and diff[3:].sum() == 0  # other patches, other clips


def test_only_adapters_and_head_train_and_the_adapter_gets_gradient():
    torch.manual_seed(0)
    model = create_model("st_adapter_vit_tiny", num_classes=3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("adapters.", "head.")) for n in trainable)
    total = sum(p.numel() for p in model.parameters())
    share = sum(p.numel() for p in model.parameters() if p.requires_grad) / total
    assert 0.05 < share <= 0.10
    model(torch.randn(2, 3, 4, 32, 32)).logsumexp(1).sum().backward()
    convs = [a.conv.weight.grad for a in model.adapters.values()]
    assert all(g is not None and g.abs().sum() > 0 for g in convs)  # not stuck at the zero start
    assert all(p.grad is None for p in model.vit.parameters())
    full = create_model("st_adapter_vit_tiny", num_classes=3, train_backbone=True)
    assert all(p.requires_grad for p in full.parameters())
    assert all(p.requires_grad for p in create_model("vit_tiny_frames", num_classes=3).parameters())


def test_vit_b16_is_the_papers_configuration():
    with torch.device("meta"):
        model = create_model("st_adapter_vit_b16", num_classes=400)
    total = sum(p.numel() for p in model.parameters())
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    # the paper's ViT-B/16 ST-Adapter: 7.1 M adapter parameters; with a Kinetics-400 head 93 M in all
    assert round(sum(v for n, v in trainable.items() if n.startswith("adapters.")) / 1e6, 1) == 7.1
    assert sum(v for n, v in trainable.items() if n.startswith("head.")) == 768 * 400 + 400
    assert round(total / 1e6) == 93
    assert len(model.adapters) == 12 and model.vit.patch_size == 16


def test_torchvision_vit_weights_load_and_a_foreign_file_is_named(tmp_path):
    torch.manual_seed(0)
    image_model = VisionTransformer(image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=128,
                                    mlp_dim=512, num_classes=10)  # its ImageNet-style head is ignored
    path = tmp_path / "vit_tiny.safetensors"
    save_file(image_model.state_dict(), str(path))
    model = create_model("st_adapter_vit_tiny", num_classes=3, weights=str(path))
    for key, value in image_model.state_dict().items():
        if not key.startswith("heads."):
            assert torch.equal(model.vit.state_dict()[key], value), key
    wide = VisionTransformer(image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128)
    save_file(wide.state_dict(), str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match=r"other.safetensors: key 'class_token' has shape \(1, 1, 64\) in the "
                                         r"checkpoint but \(1, 1, 128\)"):
        create_model("vit_tiny_frames", num_classes=3, weights=str(tmp_path / "other.safetensors"))


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match=r"adapter_blocks: the ViT has blocks 1..4, got \[7\]"):
        create_model("st_adapter_vit_tiny", num_classes=3, adapter_blocks=[1, 7])
    with pytest.raises(ValueError, match="adapter positions: one or more of attn, mlp, got \\['ffn'\\]"):
        create_model("st_adapter_vit_tiny", num_classes=3, positions=["ffn"])
    with pytest.raises(ValueError, match=r"adapter kernel must be three odd sizes"):
        create_model("st_adapter_vit_tiny", num_classes=3, kernel=[2, 1, 1])
    with pytest.raises(ValueError, match=r"takes 32x32 frames \(option image_size\), got 48x48"):
        create_model("st_adapter_vit_tiny", num_classes=3)(torch.randn(1, 3, 2, 48, 48))
    with pytest.raises(ValueError, match=r"ST-Adapter needs a torchvision VisionTransformer.*got Linear"):
        FrameViT(torch.nn.Linear(3, 3), num_classes=3, adapter_blocks=[1])
    with pytest.raises(ValueError, match=r"'r3d_18' has no option 'adapter_blocks'; options: weights, nonlocal"):
        create_model("r3d_18", num_classes=3, adapter_blocks=[0])


def test_trained_adapters_export_with_parity(tmp_path):
    torch.manual_seed(0)
    recipe = recipe_for_model("st_adapter_vit_tiny", (3, 4, 32, 32), num_classes=3)
    model = _randomize_adapters(recipe.build_model()).eval()
    exported = export_program(recipe, model)
    network = load_exported(exported.save(tmp_path / "model.onnx", "onnx"))
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(video)
    assert (network(video) - expected).abs().max() <= 1e-4


def test_training_through_the_engine_moves_only_adapters_and_head(tiny_motion_root, tmp_path):
    torch.manual_seed(0)
    image_model = VisionTransformer(image_size=32, patch_size=8, num_layers=4, num_heads=4, hidden_dim=128,
                                    mlp_dim=512)
    weights = tmp_path / "vit.safetensors"
    save_file(image_model.state_dict(), str(weights))
    recipe = Recipe(model="st_adapter_vit_tiny", classes=[], clip_len=4, size=32, resize=32, flip=False,
                    model_kwargs={"weights": str(weights), "patch_size": 8}, test_clips=1)
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-2, progress=False)
    train(recipe, DataSpec(format="folder", root=str(tiny_motion_root)), config, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "best.pt")["model"]
    for key, value in image_model.state_dict().items():
        if not key.startswith("heads."):
            assert torch.equal(state[f"vit.{key}"], value), key  # the image model stayed frozen
    assert any(state[f"adapters.{key}"].abs().sum() > 0 for key in ("1_attn.conv.weight", "4_attn.conv.weight"))
