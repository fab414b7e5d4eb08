"""DeepSORT: appearance gallery, embedding training, and identities kept through a crossing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepvideo.engine import TrainConfig
from deepvideo.io import VideoReader
from deepvideo.track.deepsort import (
    AppearanceEncoder,
    DeepSort,
    EmbeddingNet,
    NearestNeighborGallery,
    crop_boxes,
    identity_crops,
    load_embedding,
    save_embedding,
    train_embedding,
)
from deepvideo.track.mot_metrics import evaluate_mot
from deepvideo.track.motio import frames_of, read_mot
from deepvideo.track.scenes import crossing_scene, make_scene, noisy_detections
from deepvideo.track.sort import Sort

CROP = (32, 16)


@pytest.fixture(scope="module")
def embedding(tmp_path_factory) -> EmbeddingNet:
    """A tiny embedding trained for a few seconds on crops of 4 objects of a random scene."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than 2 on a busy 2-core machine
    try:
        scene = make_scene(num_objects=4, num_frames=20, size=(120, 160), seed=3)
        crops, ids = identity_crops(scene.frames, scene.gt[scene.gt[:, 8] > 0.6], size=CROP)
        train = TrainConfig(epochs=2, batch_size=32, lr=2e-3, optimizer="adam", weight_decay=0, warmup_epochs=0,
                            schedule="constant", clip_grad=None, progress=False)
        model, _ = train_embedding(crops, ids, tmp_path_factory.mktemp("embedder"), width=8, dim=32,
                                   crops_per_epoch=640, train=train)
        return model
    finally:
        torch.set_num_threads(threads)


def test_crops_are_clipped_and_resized():
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[:10, :15] = 200
    crops = crop_boxes(frame, np.array([[-5.0, -5.0, 20.0, 15.0], [40.0, 0.0, 5.0, 5.0]]), size=(8, 4))
    assert crops.shape == (2, 3, 8, 4) and crops.dtype == np.uint8
    assert (crops[0] == 200).all() and (crops[1] == 0).all()  # clipped to the bright corner; outside: black


def test_gallery_nearest_neighbour_cosine_distance_and_budget():
    gallery = NearestNeighborGallery(budget=2)
    e = np.eye(3, dtype=np.float32)
    gallery.partial_fit([e[0], e[1], e[2]], [7, 7, 7], active=[7])  # keeps the last 2: e1, e2
    gallery.partial_fit([e[0]], [9], active=[7, 9])
    query = np.stack([e[0], e[1], (e[0] + e[2]) / np.sqrt(2)])
    d = gallery.distance(query, [7, 9, 5])
    np.testing.assert_allclose(d[0], [1, 0, 1 - 1 / np.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(d[1], [0, 1, 1 - 1 / np.sqrt(2)], atol=1e-6)
    assert (d[2] == 1).all()  # unknown track
    gallery.partial_fit([], [], active=[9])
    assert list(gallery.samples) == [9]


def test_trained_embedding_separates_unseen_identities(embedding):
    scene = crossing_scene()  # identities the network never saw
    crops, ids = identity_crops(scene.frames, scene.gt[scene.gt[:, 8] > 0.6], size=CROP)
    with torch.no_grad():
        features = embedding(torch.from_numpy(crops).float() / 255).numpy()
    distance = 1 - features @ features.T
    np.fill_diagonal(distance, np.inf)
    same = ids[:, None] == ids[None]
    nearest_same = ids[distance.argmin(axis=1)] == ids
    assert nearest_same.mean() > 0.9  # chance: 0.5
    assert distance[same & np.isfinite(distance)].mean() < distance[~same].mean() / 4


@pytest.fixture
def one_thread():
    """Small per-frame batches run faster on one torch thread than on two busy cores."""
    torch.set_num_threads(1)


def run(tracker, scene, dets) -> np.ndarray:
    by_frame = frames_of(dets)
    rows = []
    for number, frame in enumerate(scene.frames, start=1):
        tracks = tracker.update(by_frame.get(number, np.empty((0, 10)))[:, 2:7], frame)
        rows += [[number, i, x, y, w, h, 1, -1, -1, -1] for x, y, w, h, i in tracks]
    return np.array(rows)


def test_deepsort_keeps_identities_through_a_crossing(embedding, one_thread):
    """Object 2 walks behind object 1 and is not detected for 4 frames: SORT (max_age 1)
    loses it and gives it a new id; DeepSORT matches it back to its track."""
    scene = crossing_scene()
    dets = noisy_detections(scene.gt, seed=0, miss_rate=0.0, jitter=0.02)
    hidden = sorted(set(scene.gt[(scene.gt[:, 1] == 2) & (scene.gt[:, 8] < 0.5), 0]))
    assert len(hidden) == 4
    sort = evaluate_mot(scene.gt, run(Sort(), scene, dets))
    deep = evaluate_mot(scene.gt, run(DeepSort(AppearanceEncoder(embedding)), scene, dets))
    assert sort["IDSW"] >= 1 and deep["IDSW"] == 0
    assert deep["IDF1"] > sort["IDF1"] + 0.1


def test_embedding_file_round_trip_and_errors(embedding, tmp_path):
    path = save_embedding(tmp_path / "emb.safetensors", embedding)
    loaded = load_embedding(path)
    assert loaded.crop_size == CROP and loaded.dim == 32
    x = torch.rand(3, 3, *CROP)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), embedding(x))
    with pytest.raises(ValueError, match="does not exist"):
        load_embedding(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_embedding(tmp_path / "junk.safetensors")


def test_identity_crops_stream_from_a_video_file_and_its_gt(tmp_path):
    scene = make_scene(num_objects=3, num_frames=12, size=(64, 96), seed=4)
    video, gt = scene.write(tmp_path)
    with VideoReader(video) as reader:
        crops, ids = identity_crops(reader, read_mot(gt), size=CROP, max_per_identity=5)
    expected, expected_ids = identity_crops(scene.frames, scene.gt, size=CROP, max_per_identity=5)
    assert crops.shape == expected.shape == (15, 3, *CROP)
    assert (ids == expected_ids).all() and sorted(set(ids)) == [1, 2, 3]
    # h264 (yuv420p) blurs the small striped objects' colours, yet every crop from the video
    # is nearest to the same crop taken from the rendered frames
    distance = np.abs(crops[:, None].astype(int) - expected[None]).mean(axis=(2, 3, 4))
    assert (distance.argmin(axis=1) == np.arange(len(crops))).all()


def test_train_embedding_needs_two_identities(tmp_path):
    with pytest.raises(ValueError, match="single identity"):
        train_embedding(np.zeros((4, 3, *CROP), np.uint8), np.ones(4), tmp_path)


def test_crops_reject_bad_frames_and_boxes():
    frame = np.zeros((20, 30, 3), np.uint8)
    assert crop_boxes(frame, np.empty((0, 4))).shape == (0, 3, 64, 32)
    with pytest.raises(ValueError, match=r"^frame must be an \(H, W, 3\) uint8"):
        crop_boxes(frame.astype(np.float32), np.array([[0.0, 0.0, 5.0, 5.0]]))
    with pytest.raises(ValueError, match=r"^frame must be an \(H, W, 3\) uint8"):
        crop_boxes(frame[..., 0], np.array([[0.0, 0.0, 5.0, 5.0]]))
    # (N, 5) rows used to be reshaped into (N * 5 / 4, 4) boxes without a word
    with pytest.raises(ValueError, match=r"^boxes must be a finite \(N, 4\) array"):
        crop_boxes(frame, np.zeros((4, 5)))


class FixedDescriptor:
    """An encoder giving every box the vector ``vec * scale``."""

    def __init__(self, scale: float) -> None:
        self.scale, self.vec = scale, None

    def __call__(self, frame, boxes):
        return np.repeat(self.vec[None] * self.scale, len(boxes), axis=0).astype(np.float32)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_appearance_gate_does_not_depend_on_descriptor_length(scale):
    """A confirmed track missed for a frame (so only the appearance cascade can match it)
    meets a detection at its place whose look differs (cosine distance 0.5 > 0.2): a new
    track, whatever the length of the descriptors.  Unnormalised, 3x longer descriptors gave
    a distance 1 - 9 * 0.5 < 0 that passed the gate and took over the old identity."""
    encoder, frame = FixedDescriptor(scale), np.zeros((100, 100, 3), np.uint8)
    tracker = DeepSort(encoder)
    box = np.array([[30.0, 20.0, 20.0, 40.0, 0.9]])
    encoder.vec = np.array([1.0, 0.0])
    for _ in range(4):
        assert tracker.update(box, frame)[:, 4].tolist() in ([], [1])
    assert tracker.tracks[0].confirmed
    tracker.update(np.empty((0, 5)), frame)  # missed: time_since_update 2 at the next frame
    encoder.vec = np.array([0.5, np.sqrt(0.75)])
    tracker.update(box, frame)
    assert sorted(t.id for t in tracker.tracks) == [1, 2]
    np.testing.assert_allclose(np.linalg.norm(tracker.gallery.samples[1], axis=1), 1, rtol=1e-6)


def test_encoder_giving_the_wrong_number_of_descriptors_is_an_error():
    tracker = DeepSort(lambda frame, boxes: np.zeros((len(boxes) + 1, 8), np.float32))
    with pytest.raises(ValueError, match=r"^encoder: gave descriptors of shape \(3, 8\) for 2 detections"):
        tracker.update(np.array([[0, 0, 5, 5, 0.9], [9, 9, 5, 5, 0.9]]), np.zeros((20, 20, 3), np.uint8))
