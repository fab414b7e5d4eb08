"""The dual encoder's loss, retrieval metrics and zero-shot classifier against hand
computations, and real CLIP weights: loaded from a local file into towers that then give
open_clip's own embeddings, or refused naming the first mismatched key."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepvideo.language import (
    ClipSpec,
    Tokenizer,
    build_dual_encoder,
    class_embeddings,
    clip_loss,
    embed_texts,
    load_clip_weights,
    open_clip_spec,
    retrieval_metrics,
)

open_clip = pytest.importorskip("open_clip")

VISION = {"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 16}
TEXT = {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}


def tiny_spec(pooling: str = "mean", text_width: int = 16) -> ClipSpec:
    return ClipSpec(embed_dim=16, video_encoder="frames",
                    video_options={"patch_size": 8, "width": 32, "layers": 1, "heads": 2, "pooling": pooling},
                    text_options={"context_length": 16, "width": text_width, "heads": 2, "layers": 1},
                    clip_len=2, size=16, resize=16)


def test_clip_loss_is_the_mean_of_both_cross_entropies():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = 2 * video @ text.T = [[2, 1.2], [0, 1.6]]
    rows = (-math.log(math.exp(2) / (math.exp(2) + math.exp(1.2)))
            - math.log(math.exp(1.6) / (math.exp(0) + math.exp(1.6)))) / 2
    cols = (-math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
            - math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))) / 2
    assert float(clip_loss(video, text, torch.tensor(2.0))) == pytest.approx((rows + cols) / 2, rel=1e-6)


def test_retrieval_metrics_on_a_hand_made_similarity_matrix():
    similarity = np.tile(-np.arange(12.0), (4, 1))  # candidate n ranks n + 1 for every query
    metrics = retrieval_metrics(similarity, [0, 2, 5, 10])  # ranks 1, 3, 6, 11
    assert metrics == {"r1": 0.25, "r5": 0.5, "r10": 0.75, "median_rank": 4.5, "mean_rank": 5.25,
                       "queries": 4, "candidates": 12}
    # a tie with an irrelevant candidate goes to the query; several relevant: the best one counts
    tied = retrieval_metrics(np.array([[0.5, 0.5, 0.1]]), [1])
    assert tied["r1"] == 1.0
    mask = np.array([[False, False, True], [True, False, True]])
    assert retrieval_metrics(np.array([[0.9, 0.8, 0.7], [0.1, 0.9, 0.8]]), mask)["mean_rank"] == 2.5
    with pytest.raises(ValueError, match="relevant"):
        retrieval_metrics(similarity, [0, 1])


def test_zero_shot_classifier_averages_the_prompts_of_each_label():
    torch.manual_seed(0)
    model = build_dual_encoder(tiny_spec())
    tokenizer = Tokenizer(16)
    templates = ("a video of {}", "{}")
    classes = class_embeddings(model, tokenizer, ["moving left", "moving up"], templates)
    by_hand = embed_texts(model, tokenizer, ["a video of moving left", "moving left"]).mean(0)
    assert torch.allclose(classes[0], by_hand / by_hand.norm(), atol=1e-6)
    assert torch.allclose(classes.norm(dim=1), torch.ones(2), atol=1e-6)
    with pytest.raises(ValueError, match="labels: the list is empty"):
        class_embeddings(model, tokenizer, [], templates)


def test_real_clip_weights_load_and_give_open_clips_embeddings(tmp_path):
    torch.manual_seed(0)
    clip = open_clip.model.CLIP(16, VISION, TEXT).eval()
    path = tmp_path / "clip.pt"
    torch.save(clip.state_dict(), path)
    model = load_clip_weights(build_dual_encoder(tiny_spec()), path).eval()
    tokens = Tokenizer(16)(["a small red triangle moving left", "a star"])
    frame = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.text(tokens), clip.encode_text(tokens), atol=1e-5)
        video = frame[:, :, None].expand(1, 3, 2, 16, 16)  # a clip of one frame twice: mean pooling is the frame
        assert torch.allclose(model.video(video), clip.encode_image(frame), atol=1e-5)
    assert model.logit_scale.item() == pytest.approx(clip.logit_scale.item())


def test_a_weights_file_of_another_architecture_names_the_first_mismatched_key(tmp_path):
    other = open_clip.model.CLIP(16, VISION, {**TEXT, "width": 24})
    path = tmp_path / "other.pt"
    torch.save(other.state_dict(), path)
    with pytest.raises(ValueError, match=r"other.pt: key 'positional_embedding' has shape \(16, 24\) in the file "
                                         r"but \(16, 16\) in the model"):
        load_clip_weights(build_dual_encoder(tiny_spec()), path)
    state = open_clip.model.CLIP(16, VISION, TEXT).state_dict()
    del state["visual.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="key 'visual.conv1.weight' is missing"):
        load_clip_weights(build_dual_encoder(tiny_spec()), path)


def test_temporal_transformer_sees_the_order_of_frames():
    torch.manual_seed(0)
    model = build_dual_encoder(tiny_spec("transformer")).eval()
    clip = torch.randn(1, 3, 2, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model.encode_video(clip), model.encode_video(clip.flip(2)), atol=1e-4)
    mean = build_dual_encoder(tiny_spec("mean")).eval()
    with torch.no_grad():
        assert torch.allclose(mean.encode_video(clip), mean.encode_video(clip.flip(2)), atol=1e-5)


def test_open_clip_spec_reads_the_shipped_config_and_refuses_other_towers():
    spec = open_clip_spec("ViT-B-32", clip_len=4)
    assert (spec.embed_dim, spec.size, spec.video_options["width"], spec.video_options["heads"]) == (512, 224, 768, 12)
    assert spec.text_options["context_length"] == 77
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-B-33'"):
        open_clip_spec("ViT-B-33")
    with pytest.raises(ValueError, match="open_clip model RN50: .*ResNet"):
        open_clip_spec("RN50")
    with pytest.raises(ValueError, match="video encoder 'backbone' has no option 'pooling'"):
        ClipSpec(video_options={"pooling": "mean"})
