"""extract-features: frozen backbones over real videos, cached rows, temporal heads on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from deepvideo.cli import main
from deepvideo.data.features import FeatureReader, feature_backbone, feature_target, features_to_clip, load_features
from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.features import build_backbone, extract_features, video_features
from deepvideo.engine.recipe import Recipe
from deepvideo.io import VideoDecodeError, read_video
from deepvideo.models import create_model
from deepvideo.models.heads import as_sequence


def test_2d_features_equal_the_backbone_on_decoded_frames(tiny_motion_root, tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    torch.save(reference.state_dict(), weights)               # a user's local torchvision checkpoint
    backbone = build_backbone("resnet18", weights, size=32)
    videos = sorted((tiny_motion_root / "val").rglob("*.mp4"))
    broken = tmp_path / "videos" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_text("not a video")
    out = tmp_path / "features"
    summary = extract_features([*videos, broken], out, backbone, batch_size=3, every=2, progress=False)
    assert (summary.written, summary.skipped, summary.dim) == (4, 0, 512)
    assert [p for p, _ in summary.failed] == [broken]
    features, times = load_features(feature_target(videos[0], out))
    assert features.shape == (4, 512) and features.dtype == np.float16      # frames 0, 2, 4, 6
    np.testing.assert_allclose(times, np.arange(0, 8, 2) / 8)
    frames = read_video(videos[0])[::2]
    clip = backbone.transform(frames).transpose(0, 1)            # (T, 3, 32, 32) images
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        expected = reference(clip).numpy()
    np.testing.assert_allclose(features.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    again = extract_features(videos, out, backbone, every=2, progress=False)
    assert (again.written, again.skipped) == (0, 4)
    reader = FeatureReader(feature_target(videos[0], out))
    assert reader.num_frames == 4 and reader.read([3, 0]).shape == (2, 512)
    with pytest.raises(IndexError, match="feature row 4"):
        reader.read([4])
    with pytest.raises(VideoDecodeError, match="no such feature file"):
        FeatureReader(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="unknown backbone 'resnet_18'"):
        build_backbone("resnet_18")


def test_heads_take_sequences_and_feature_clips():
    clip = features_to_clip(np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32))
    assert clip.shape == (10, 6, 1, 1)
    batch = torch.stack([clip, clip])
    assert torch.equal(as_sequence(batch), batch.flatten(2).transpose(1, 2))
    for name in ("lstm_head", "tcn_head", "transformer_head"):
        head = create_model(name, num_classes=3, feature_dim=10).eval()
        torch.testing.assert_close(head(batch), head(as_sequence(batch)))
        assert head(batch).shape == (2, 3)
    with pytest.raises(ValueError, match="max_len=4"):
        create_model("transformer_head", num_classes=3, feature_dim=10, max_len=4)(batch)
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        as_sequence(torch.zeros(2, 10, 6, 2, 2))


@pytest.mark.parametrize("name", ["tcn_head", "transformer_head"])
def test_heads_learn_the_order_of_a_sequence(name, overfit):
    """Two classes with the same features in opposite temporal order: only time tells them apart."""
    torch.manual_seed(0)
    ramp = torch.linspace(-1, 1, 8)[:, None] * torch.randn(1, 6)
    inputs = torch.stack([ramp, ramp.flip(0)] * 4) + 0.05 * torch.randn(8, 8, 6)
    labels = torch.tensor([0, 1] * 4)
    head = create_model(name, num_classes=2, feature_dim=6, dropout=0.0)
    overfit(head, inputs, labels, steps=60, lr=3e-3)
    head.eval()
    assert (head(inputs).argmax(1) == labels).all()


def test_cli_extract_features_then_train_a_head(capsys, tiny_motion_root, tmp_path):
    out = tmp_path / "features"
    assert main(["extract-features", "--data", str(tiny_motion_root), "--out", str(out), "--backbone",
                 "resnet18", "--size", "32"]) == 0
    assert "22 written, 0 already done, 0 skipped; 512 features per frame" in capsys.readouterr().out
    assert main(["train", "--model", "tcn_head", "--model-opt", "widths=[16]", "--modality", "features",
                 "--feature-dir", str(out), "--data", str(tiny_motion_root), "--clip-len", "6", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--test-clips", "2"]) == 0
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert state["recipe"]["modality"] == "features" and state["recipe"]["model_kwargs"]["feature_dim"] == 512
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["train", "--model", "tcn_head", "--modality", "features", "--feature-dir", str(tmp_path / "empty"),
                 "--data", str(tiny_motion_root), "--out", str(tmp_path / "x")]) == 2
    assert "no feature files" in capsys.readouterr().err


def save_trained(path, recipe: Recipe) -> torch.nn.Module:
    """A checkpoint as ``deepvideo train`` writes it (recipe and weights), of a seeded untrained model."""
    torch.manual_seed(0)
    model = recipe.build_model().eval()
    save_checkpoint(path, {"model": model.state_dict(), "recipe": recipe.to_dict()})
    return model


@pytest.mark.parametrize("backbone", ["small_cnn2d", "resnet18"])
def test_two_stream_checkpoint_gives_its_spatial_stream_per_frame(capsys, tiny_motion_root, tmp_path, backbone):
    recipe = Recipe(model="two_stream", classes=["left", "right"], modality="rgb+flow", clip_len=3, size=24,
                    resize=32, model_kwargs={"flow_frames": 3, "backbone": backbone, "widths": [4, 8]})
    checkpoint = tmp_path / "two_stream.pt"
    model = save_trained(checkpoint, recipe)
    extractor = build_backbone(str(checkpoint))
    assert extractor.clip_len is None                            # a 2D CNN: one row per frame
    video = sorted((tiny_motion_root / "val").rglob("*.mp4"))[0]
    features, times = video_features(video, extractor, batch_size=3, every=2)
    dim = 8 if backbone == "small_cnn2d" else 512
    assert features.shape == (4, dim)                            # frames 0, 2, 4, 6 of 8
    np.testing.assert_allclose(times, np.arange(0, 8, 2) / 8)
    frames = read_video(video)[::2]                              # the RGB half of the training pipeline
    rgb, _ = recipe.transform(False)((frames, np.zeros((*frames.shape[:3], 2), np.float32)))
    images = rgb.transpose(0, 1)                                 # (T, 3, 24, 24)
    head = model.spatial.net[1] if backbone == "small_cnn2d" else model.spatial.net.fc
    with torch.no_grad():                                        # the rows are what the head classifies
        torch.testing.assert_close(head(torch.from_numpy(features)), model.spatial(images), rtol=1e-4, atol=1e-4)
    out = tmp_path / "features"
    assert main(["extract-features", "--data", str(tiny_motion_root), "--out", str(out), "--backbone",
                 str(checkpoint), "--every", "2"]) == 0
    assert f"22 written, 0 already done, 0 skipped; {dim} features per frame" in capsys.readouterr().out
    stored, _ = load_features(feature_target(video, out, tiny_motion_root))
    np.testing.assert_allclose(stored.astype(np.float32), features, rtol=2e-3, atol=2e-3)


def test_two_stream_i3d_gives_its_rgb_i3d_per_clip(tiny_motion_root):
    extractor = build_backbone("two_stream_i3d", size=32, clip_len=4)
    assert extractor.clip_len == 4
    video = sorted((tiny_motion_root / "val").rglob("*.mp4"))[0]
    features, times = video_features(video, extractor)           # RGB clips (3, 4, 32, 32) of 8 frames
    assert features.shape == (2, 512) and np.isfinite(features).all()
    np.testing.assert_allclose(times, [0.0, 0.5])


def test_video_model_clips_at_a_fixed_stride(tiny_motion_root, tmp_path):
    """--every N for a video model: clips of clip_len frames starting every N frames (overlapping),
    each row the features of exactly that clip, and a backbone name that records the stride."""
    extractor = build_backbone("small3d", size=16, clip_len=4)
    video = sorted((tiny_motion_root / "val").rglob("*.mp4"))[0]  # 8 frames at 8 fps
    features, times = video_features(video, extractor, every=2)
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5])  # clips [0, 4), [2, 6), [4, 8)
    frames = read_video(video)
    with torch.no_grad():
        middle = extractor.net(extractor.transform(frames[2:6])[None]).flatten(1)
    np.testing.assert_allclose(features[1], middle[0].numpy(), rtol=1e-5, atol=1e-5)
    extract_features([video], tmp_path / "f", extractor, every=2, progress=False)
    assert feature_backbone(feature_target(video, tmp_path / "f")).endswith(", a clip every 2 frames")


@pytest.mark.parametrize("modality", ["flow", "features"])
def test_a_checkpoint_not_trained_on_rgb_is_one_line_error(capsys, tiny_motion_root, tmp_path, modality):
    if modality == "flow":                                       # a temporal stream: its input is a flow stack
        recipe = Recipe(model="temporal_stream", classes=["left", "right"], modality="flow", clip_len=3,
                        size=24, resize=32, model_kwargs={"flow_frames": 3, "widths": [4, 8]})
    else:
        recipe = Recipe(model="tcn_head", classes=["left", "right"], modality="features", clip_len=3,
                        model_kwargs={"feature_dim": 6, "widths": [4]})
    checkpoint = tmp_path / f"{modality}.pt"
    save_trained(checkpoint, recipe)
    with pytest.raises(ValueError, match=f"{checkpoint}: trained on {modality} input; extract-features runs on RGB"):
        build_backbone(str(checkpoint))
    out = tmp_path / "features"
    assert main(["extract-features", "--data", str(tiny_motion_root), "--out", str(out), "--backbone",
                 str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert err == (f"deepvideo extract-features: error: {checkpoint}: trained on {modality} input; "
                   "extract-features runs on RGB frames, use a checkpoint trained on rgb or rgb+flow\n")
    assert not out.exists()
    with pytest.raises(ValueError, match="backbone 'temporal_stream' takes optical flow"):
        build_backbone("temporal_stream")


def test_videos_with_the_same_stem_are_refused(capsys, tiny_motion_root, tmp_path):
    source = sorted((tiny_motion_root / "val").rglob("*.mp4"))[0]
    data = tmp_path / "data"
    data.mkdir()
    for name in ("v.mp4", "v.avi"):
        (data / name).write_bytes(source.read_bytes())
    backbone = build_backbone("small3d", size=16, clip_len=4)
    with pytest.raises(ValueError, match=f"{data / 'v.avi'} and {data / 'v.mp4'} would both write "
                                         f"{tmp_path / 'flat' / 'v.npz'}"):
        extract_features(sorted(data.iterdir()), tmp_path / "flat", backbone, progress=False)
    assert main(["extract-features", "--data", str(data), "--out", str(tmp_path / "out"), "--backbone", "small3d",
                 "--size", "16", "--clip-len", "4"]) == 2
    err = capsys.readouterr().err
    assert err == (f"deepvideo extract-features: error: {data / 'v.avi'} and {data / 'v.mp4'} would both "
                   f"write {tmp_path / 'out' / 'v.npz'}\n")
    assert not (tmp_path / "out").exists()


def test_a_file_of_another_backbone_is_not_done(tiny_motion_root, tmp_path):
    videos = sorted((tiny_motion_root / "val").rglob("*.mp4"))
    out = tmp_path / "features"
    small = build_backbone("small3d", size=16, clip_len=4)
    assert small.name == "small3d (random weights, 16 px, 4-frame clips)"
    first = extract_features(videos[:2], out, small, root=tiny_motion_root, progress=False)
    assert (first.written, first.skipped, first.dim) == (2, 0, 256)
    stored = feature_target(videos[0], out, tiny_motion_root)
    again = extract_features(videos, out, build_backbone("small3d", size=16, clip_len=4), root=tiny_motion_root,
                             progress=False)
    assert (again.written, again.skipped) == (2, 2)       # the same backbone (seeded random weights) resumes
    others = [build_backbone("small3d", size=16, clip_len=2),              # another clip length
              build_backbone("small3d", size=24, clip_len=4)]              # another input size
    weights = tmp_path / "small3d.pth"
    torch.save(create_model("small3d").state_dict(), weights)
    others.append(build_backbone("small3d", weights, size=16, clip_len=4))  # other weights
    assert others[-1].name.startswith("small3d (weights sha256:")
    for other in others:
        with pytest.raises(ValueError) as exc:
            extract_features(videos, out, other, root=tiny_motion_root, progress=False)
        assert str(exc.value) == (f"{stored} holds features of {small.name!r}, not of {other.name!r}: use "
                                  f"another output folder or delete it")
    frames = build_backbone("resnet18", size=16)
    extract_features(videos[:1], tmp_path / "frames", frames, progress=False, every=2)
    with pytest.raises(ValueError, match=r"every 2 frames', not of 'resnet18 \(random weights, 16 px\), every frame'"):
        extract_features(videos[:1], tmp_path / "frames", frames, progress=False)


def test_a_feature_file_without_a_backbone_record(tiny_motion_root, tmp_path):
    """A file written before the backbone was recorded still trains, and is not taken as done."""
    video = sorted((tiny_motion_root / "val").rglob("*.mp4"))[0]
    old = feature_target(video, tmp_path)
    np.savez(old, features=np.ones((3, 4), np.float16), times=np.arange(3) / 8)
    assert FeatureReader(old).read([2]).shape == (1, 4)
    backbone = build_backbone("small3d", size=16, clip_len=4)
    with pytest.raises(ValueError, match=f"{old} holds features of an unrecorded backbone \\(an older file\\), "
                                         f"not of 'small3d"):
        extract_features([video], tmp_path, backbone, progress=False)


def test_frame_folders_keep_their_name(tmp_path):
    folder = tmp_path / "data" / "clip.v1"
    folder.mkdir(parents=True)
    assert feature_target(folder, tmp_path / "out", tmp_path / "data") == tmp_path / "out" / "clip.v1.npz"
    assert feature_target(tmp_path / "data" / "clip.v1.mp4", tmp_path / "out") == tmp_path / "out" / "clip.v1.npz"


def test_a_truncated_feature_file_is_a_one_line_error(tmp_path):
    from deepvideo.data.features import feature_backbone, save_features
    from deepvideo.io import VideoDecodeError

    path = save_features(tmp_path / "v.npz", np.ones((4, 8), np.float32), np.arange(4.0), "resnet18")
    path.write_bytes(path.read_bytes()[:40])                     # a half-written file from elsewhere
    for read in (feature_backbone, load_features):             # was zipfile.BadZipFile, a traceback
        with pytest.raises(VideoDecodeError, match="v.npz: not a feature file"):
            read(path)


def test_a_video_too_short_for_the_clip_has_its_own_error(tmp_path):
    from deepvideo.io import VideoTooShortError, write_video

    video = write_video(tmp_path / "short.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=10)
    with pytest.raises(VideoTooShortError, match=r"short\.mp4: too short \(4 frames, a clip needs 8\)") as err:
        video_features(video, build_backbone("small3d", size=16, clip_len=8))
    assert isinstance(err.value, VideoDecodeError)
