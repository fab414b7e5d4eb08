"""Clip transforms: shapes, values, seeds, one crop/flip per clip, references, real video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from deepvideo.data.sampling import RandomClipSampler, UniformClipSampler
from deepvideo.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    CenterCrop,
    Compose,
    HorizontalFlip,
    Normalize,
    RandomCrop,
    RandomResizedCrop,
    ResizeShort,
    ThreeCrop,
    ToTensor,
    build_transform,
    resize_frames,
)
from deepvideo.io import VideoReader

from conftest import locate_crop


def noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def coded(t=3, h=20, w=30) -> np.ndarray:
    """Frames whose pixel (y, x) of frame i holds (y, x, i): crops reveal their position."""
    y, x = np.mgrid[:h, :w]
    frames = np.stack([np.stack([y, x, np.full_like(y, i)], -1) for i in range(t)])
    return frames.astype(np.uint8)


def same_frames(t=4, h=24, w=32) -> np.ndarray:
    return np.repeat(noise((1, h, w, 3)), t, axis=0)


def as_tv(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) -> (T, 3, H, W) uint8 tensor for torchvision's functional API."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


# ---- resizing ---------------------------------------------------------------------------

def test_area_resize_matches_cv2_per_frame():
    frames = noise((3, 30, 40, 3))
    down = ResizeShort(12, interpolation="area")(frames)
    assert down.shape == (3, 12, 16, 3) and down.dtype == np.uint8
    np.testing.assert_array_equal(
        down, np.stack([cv2.resize(f, (16, 12), interpolation=cv2.INTER_AREA) for f in frames]))
    up = ResizeShort(45, interpolation="area")(frames)
    np.testing.assert_array_equal(
        up, np.stack([cv2.resize(f, (60, 45), interpolation=cv2.INTER_LINEAR) for f in frames]))


def test_bilinear_resize_matches_torchvision_uint8():
    frames = noise((3, 30, 40, 3))
    out = ResizeShort(13)(frames)
    assert out.shape == (3, 13, 17, 3) and out.dtype == np.uint8  # int(13 * 40 / 30) = 17
    expected = TF.resize(as_tv(frames), [13], antialias=True).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(out, expected)


def test_resize_short_side_of_portrait_and_no_op():
    frames = noise((2, 40, 30, 3))
    assert ResizeShort(12)(frames).shape == (2, 16, 12, 3)
    assert ResizeShort(30)(frames) is frames


def test_resize_handles_views_and_view_axes():
    frames = noise((2, 3, 20, 24, 3))
    flipped = frames[..., ::-1, :]
    np.testing.assert_array_equal(resize_frames(flipped, 10, 12),
                                  resize_frames(np.ascontiguousarray(flipped), 10, 12))
    cropped = frames[:, :, 2:18, 4:20]
    for interpolation in ("bilinear", "area"):
        np.testing.assert_array_equal(
            resize_frames(cropped, 8, 8, interpolation),
            resize_frames(np.ascontiguousarray(cropped), 8, 8, interpolation))


# ---- crops and flips ----------------------------------------------------------------------

@pytest.mark.parametrize("hw, size", [((20, 30), 8), ((21, 30), (7, 10)), ((30, 21), 12)])
def test_center_crop_matches_torchvision(hw, size):
    frames = noise((2, *hw, 3))
    expected = TF.center_crop(as_tv(frames), list(np.broadcast_to(size, 2)))
    np.testing.assert_array_equal(CenterCrop(size)(frames), expected.permute(0, 2, 3, 1).numpy())


def test_random_crop_seeded_and_same_for_every_frame():
    frames, crop = coded(), RandomCrop((6, 8))
    out = crop(frames, np.random.default_rng(0))
    assert out.shape == (3, 6, 8, 3)
    top, left = int(out[0, 0, 0, 0]), int(out[0, 0, 0, 1])
    np.testing.assert_array_equal(out, frames[:, top:top + 6, left:left + 8])
    np.testing.assert_array_equal(out, crop(frames, np.random.default_rng(0)))
    corners = {tuple(crop(frames, np.random.default_rng(s))[0, 0, 0, :2]) for s in range(10)}
    assert len(corners) > 1
    out = crop(same_frames(), np.random.default_rng(1))
    assert all(np.array_equal(out[0], f) for f in out[1:])


def test_three_crop_positions():
    landscape = coded(t=2, h=10, w=20)
    out = ThreeCrop(6)(landscape)
    assert out.shape == (3, 2, 6, 6, 3)
    for view, left in zip(out, (0, 7, 14)):
        np.testing.assert_array_equal(view, landscape[:, 2:8, left:left + 6])
    portrait = coded(t=2, h=20, w=10)
    out = ThreeCrop(6)(portrait)
    for view, top in zip(out, (0, 7, 14)):
        np.testing.assert_array_equal(view, portrait[:, top:top + 6, 2:8])


def test_crop_larger_than_frame_resizes_up():
    frames = noise((2, 6, 9, 3))
    out = CenterCrop(8)(frames)  # frames resized up to 8 x 12 first
    assert out.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(out, resize_frames(frames, 8, 12)[:, :, 2:10])
    assert RandomCrop((7, 12))(frames, np.random.default_rng(0)).shape == (2, 7, 12, 3)
    assert ThreeCrop(10)(frames).shape == (3, 2, 10, 10, 3)


def test_random_resized_crop_box_follows_torchvision_rules():
    crop = RandomResizedCrop(16, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    for seed in range(50):
        top, left, h, w = crop.box(60, 80, np.random.default_rng(seed))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.18 <= h * w / (60 * 80) <= 0.62
        assert 0.45 <= w / h <= 2.2
    # No box of the whole area with ratio 1 fits a 20 x 40 frame: the fallback is the
    # largest centred box with ratio in range.
    assert RandomResizedCrop(8, scale=(1, 1), ratio=(1, 1)).box(20, 40, np.random.default_rng(0)) \
        == (0, 10, 20, 20)


def test_random_resized_crop_output_seeded_and_same_for_every_frame():
    frames, crop = noise((3, 40, 50, 3)), RandomResizedCrop((10, 12))
    out = crop(frames, np.random.default_rng(4))
    top, left, h, w = crop.box(40, 50, np.random.default_rng(4))
    np.testing.assert_array_equal(out, resize_frames(frames[:, top:top + h, left:left + w], 10, 12))
    np.testing.assert_array_equal(out, crop(frames, np.random.default_rng(4)))
    boxes = {crop.box(40, 50, np.random.default_rng(s)) for s in range(10)}
    assert len(boxes) > 1
    out = crop(same_frames(), np.random.default_rng(2))
    assert out.shape == (4, 10, 12, 3) and all(np.array_equal(out[0], f) for f in out[1:])


def test_horizontal_flip_mirrors_the_whole_clip():
    frames = coded()
    np.testing.assert_array_equal(HorizontalFlip(p=1)(frames), frames[:, :, ::-1])
    assert HorizontalFlip(p=0)(frames) is frames
    flip = HorizontalFlip()
    outcomes = set()
    for seed in range(20):
        out = flip(frames, np.random.default_rng(seed))
        mirrored = out[:, 0, 0, 1] == 29  # x coordinate of the left column, per frame
        assert mirrored.all() or not mirrored.any()
        outcomes.add(bool(mirrored[0]))
        np.testing.assert_array_equal(out, flip(frames, np.random.default_rng(seed)))
    assert outcomes == {True, False}


# ---- tensors ----------------------------------------------------------------------------

def test_to_tensor_layout_and_ranges():
    frames = noise((4, 5, 6, 3))
    frames[0, 0, 0] = (0, 255, 7)
    clip = ToTensor()(frames)
    assert clip.shape == (3, 4, 5, 6) and clip.dtype == torch.float32 and clip.is_contiguous()
    np.testing.assert_array_equal(clip.numpy(), frames.transpose(3, 0, 1, 2) / np.float32(255))
    assert clip.min() >= 0 and clip.max() <= 1 and clip[1, 0, 0, 0] == 1
    pm1 = ToTensor("pm1")(frames)
    assert pm1[0, 0, 0, 0] == -1 and pm1[1, 0, 0, 0] == 1
    torch.testing.assert_close(pm1, clip * 2 - 1)
    views = ToTensor()(np.stack([frames, frames[:, :, ::-1]]))
    assert views.shape == (2, 3, 4, 5, 6)
    torch.testing.assert_close(views[1], ToTensor()(frames[:, :, ::-1]))
    with pytest.raises(ValueError, match="uint8"):
        ToTensor()(frames.astype(np.float32))


def test_normalize_against_hand_computation():
    clip = torch.rand(3, 2, 4, 5, generator=torch.Generator().manual_seed(0))
    original = clip.clone()
    out = Normalize(KINETICS_MEAN, KINETICS_STD)(clip)
    for c in range(3):
        expected = (original[c].numpy() - KINETICS_MEAN[c]) / KINETICS_STD[c]
        np.testing.assert_allclose(out[c].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(clip, original)  # input untouched
    views = Normalize(KINETICS_MEAN, KINETICS_STD)(torch.stack([clip, clip]))
    torch.testing.assert_close(views[1], out)
    with pytest.raises(ValueError, match="C=3"):
        Normalize(KINETICS_MEAN, KINETICS_STD)(torch.rand(2, 2, 4, 5))


# ---- pipelines ----------------------------------------------------------------------------

def test_build_transform_shapes_and_determinism():
    frames = noise((4, 24, 32, 3))
    for kw in ({}, {"random_resized": True}):
        train = build_transform(True, size=8, resize=12, **kw)
        a, b = train(frames, np.random.default_rng(0)), train(frames, np.random.default_rng(0))
        assert a.shape == (3, 4, 8, 8) and a.dtype == torch.float32 and torch.equal(a, b)
        assert any(not torch.equal(a, train(frames, np.random.default_rng(s))) for s in (1, 2, 3))
    centre = build_transform(False, size=8, resize=12, mean=None, std=None)
    assert [type(t) for t in centre.transforms] == [ResizeShort, CenterCrop, ToTensor]
    clip = centre(frames)
    assert clip.shape == (3, 4, 8, 8) and 0 <= clip.min() and clip.max() <= 1
    views = build_transform(False, size=8, resize=12, three_crop=True)(frames)
    assert views.shape == (3, 3, 4, 8, 8)
    pm1 = build_transform(False, size=8, resize=None, scale="pm1", mean=None, std=None)(frames)
    assert pm1.shape == (3, 4, 8, 8) and -1 <= pm1.min() and pm1.max() <= 1


@pytest.mark.parametrize("kwargs, name", [
    ({"size": 0}, "size"), ({"size": 112.0}, "size"), ({"resize": 100}, "resize"),
    ({"scale": "0255"}, "scale"), ({"mean": None}, "mean"), ({"std": (0.2, 0.0, 0.2)}, "std"),
    ({"interpolation": "cubic"}, "interpolation"), ({"mean": (0.5, 0.5)}, "mean"),
])
def test_build_transform_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        build_transform(True, **kwargs)


def test_real_decoded_clip_matches_torchvision_uint8_pipeline(shared_data):
    path = shared_data / "videos" / "mmaction2__test.avi"  # mpeg4 320 x 240
    with VideoReader(path, threads=1) as reader:
        indices = RandomClipSampler(8, stride=2)(reader.num_frames, np.random.default_rng(0))[0]
        frames = reader.read(indices)
    clip = build_transform(False, size=112, resize=128, mean=None, std=None)(frames)
    assert clip.shape == (3, 8, 112, 112)
    expected = TF.center_crop(TF.resize(as_tv(frames), [128], antialias=True), [112])
    torch.testing.assert_close(clip, expected.permute(1, 0, 2, 3).float() / 255)
    # Geometry on uint8 rounds once; on float it does not: the two agree to a level.
    float_first = TF.center_crop(TF.resize(as_tv(frames).float() / 255, [128], antialias=True),
                                 [112]).permute(1, 0, 2, 3)
    assert (clip - float_first).abs().max() <= 1.5 / 255


def test_real_video_train_pipeline_flips_motion(make_video):
    # The generated clip's square moves right by 2 px a frame; mirrored, it moves left.
    path = make_video("square.mp4")
    with VideoReader(path) as reader:
        frames = reader.read(UniformClipSampler(6, 1, stride=2)(reader.num_frames)[0])
    pipeline = Compose([ResizeShort(48), RandomCrop(40), HorizontalFlip(p=1.0), ToTensor()])
    clip = pipeline(frames, np.random.default_rng(0))
    assert clip.shape == (3, 6, 40, 40)
    red = (clip[0] > 0.8) & (clip[2] < 0.35)  # the square's pixels, (T, H, W)
    centres = [float(torch.nonzero(mask)[:, 1].float().mean()) for mask in red]
    assert all(b < a for a, b in zip(centres, centres[1:]))


# ------------------------------------------------------------------------ optical flow


def constant_flow(length=3, h=48, w=64, dx=3.0, dy=-2.0) -> np.ndarray:
    flow = np.empty((length, h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def test_flow_resize_scales_vectors_with_the_image():
    from deepvideo.data.transforms import FlowResizeShort

    out = FlowResizeShort(24)(constant_flow())          # 48x64 -> 24x32: both sides halve
    assert out.shape == (3, 24, 32, 2)
    np.testing.assert_allclose(out[..., 0], 1.5, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -1.0, atol=1e-5)
    wide = FlowResizeShort(24)(constant_flow(h=48, w=48))[..., 0]  # square: 0.5 both ways
    np.testing.assert_allclose(wide, 1.5, atol=1e-5)
    same = constant_flow(h=24, w=32)
    assert FlowResizeShort(24)(same) is same


def test_flow_flip_mirrors_and_negates_dx():
    from deepvideo.data.transforms import FlowHorizontalFlip

    flow = np.random.default_rng(0).normal(size=(2, 5, 7, 2)).astype(np.float32)
    flipped = FlowHorizontalFlip(p=1.0)(flow)
    np.testing.assert_array_equal(flipped[..., 0], -flow[:, :, ::-1, 0])
    np.testing.assert_array_equal(flipped[..., 1], flow[:, :, ::-1, 1])
    assert FlowHorizontalFlip(p=0.0)(flow) is flow


def test_flow_pipeline_layout_mean_subtraction_and_scale():
    from deepvideo.data.transforms import FlowToTensor, build_flow_transform

    flow = constant_flow(length=4)
    flow[:, 10:20, 10:20, 0] += 10.0                     # an object moving right on a panning camera
    clip = build_flow_transform(True, size=32, resize=48, flip=False)(flow, np.random.default_rng(0))
    assert clip.shape == (2, 4, 32, 32) and clip.dtype == torch.float32
    np.testing.assert_allclose(clip.mean(dim=(-2, -1)).numpy(), 0.0, atol=1e-5)  # camera motion removed
    raw = FlowToTensor(scale=2.0, subtract_mean=False)(flow)
    assert raw.shape == (2, 4, 48, 64)
    assert raw[0, 0, 0, 0] == pytest.approx(1.5) and raw[1, 0, 0, 0] == pytest.approx(-1.0)
    views = build_flow_transform(False, size=32, resize=40, three_crop=True)(flow)
    assert views.shape == (3, 2, 4, 32, 32)
    with pytest.raises(ValueError, match="resize"):
        build_flow_transform(True, size=32, resize=16)
    with pytest.raises(ValueError, match=r"\(\.\.\., L, H, W, 2\)"):
        FlowToTensor()(np.zeros((4, 8, 8, 3), np.float32))


@pytest.mark.parametrize("height, width", [(32, 40), (48, 60)])   # resize 32: a no-op, or 1.5x down
def test_pair_transform_shares_one_crop_and_flip_and_negates_dx(height, width):
    from deepvideo.data.transforms import build_pair_transform, resize_frames

    rgb = noise((3, height, width, 3))
    flow = np.random.default_rng(1).normal(size=(3, height, width, 2)).astype(np.float32)
    transform = build_pair_transform(True, size=24, resize=32, mean=None, std=None, flow_scale=1.0,
                                     subtract_mean=False)
    # both resized alike (short side 32), the flow vectors scaled by the resize factor
    small_rgb = resize_frames(rgb, 32, 40)
    small_flow = resize_frames(flow, 32, 40) * np.float32(32 / height)
    seen = set()
    for seed in range(16):
        out_rgb, out_flow = transform((rgb, flow), np.random.default_rng(seed))
        assert out_rgb.shape == (3, 3, 24, 24) and out_flow.shape == (2, 3, 24, 24)
        view = (out_rgb * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()   # (T, h, w, 3)
        frame, top, left, mirrored = locate_crop(view[1], small_rgb)
        assert frame == 1
        expected = small_flow[:, top:top + 24, left:left + 24]
        if mirrored:
            expected = expected[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)  # mirrored, dx negated
        np.testing.assert_allclose(out_flow.permute(1, 2, 3, 0).numpy(), expected, rtol=1e-6, atol=1e-6)
        seen.add((top, left, mirrored))
    assert {m for *_, m in seen} == {False, True} and len(seen) > 4   # random crops, both flips
    # evaluation: the centre crop, or three crops as a view axis in front of each part
    views_rgb, views_flow = build_pair_transform(False, size=24, resize=32, three_crop=True)((rgb, flow))
    assert views_rgb.shape == (3, 3, 3, 24, 24) and views_flow.shape == (3, 2, 3, 24, 24)
    with pytest.raises(ValueError, match="differ in size"):
        transform((rgb, flow[:, :16]))
