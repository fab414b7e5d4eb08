"""Transfer: every backbone the pretext tasks train starts a classifier of its model (the
classifier fresh, every other weight copied), from a pretext run or from a classifier."""

from __future__ import annotations

import pytest
import torch

from deepvideo.engine.checkpoint import CheckpointError, save_checkpoint
from deepvideo.engine.transfer import Transfer, load_backbone
from deepvideo.models import create_model
from deepvideo.models.registry import classifier_attribute
from deepvideo.ssl.pretext import PRETEXT_TASKS
from deepvideo.ssl.train import build_pretext_net

# (model, options, pretext task, clip length): the models the issue names, each with a task it fits
CASES = [
    ("small3d", {"widths": [4, 8]}, "order", 4),
    ("r3d_18", {}, "arrow", 4),
    ("r2plus1d_18", {}, "speed", 4),
    ("c3d", {"input_size": [16, 32, 32], "fc_width": 16}, "arrow", 16),
    ("single_frame", {"widths": [4, 8]}, "shuffle", 1),
]


@pytest.mark.parametrize("model, options, task, frames", CASES)
def test_a_pretext_backbone_starts_a_classifier_of_its_model(model, options, task, frames, tmp_path):
    torch.manual_seed(0)
    pretext = PRETEXT_TASKS.build(task, **({"clip_len": frames} if task != "shuffle" else {}))
    net = build_pretext_net(pretext, model, options, 32)
    path = save_checkpoint(tmp_path / "best.pt", {"model": net.state_dict(), "backbone_prefix": "backbone.",
                                                  "pretext": {"task": task, "model": model}})
    classifier = create_model(model, num_classes=5, **options)
    head = classifier_attribute(classifier)
    fresh_head = {k: v.clone() for k, v in classifier.state_dict().items() if k.startswith(f"{head}.")}
    copied = load_backbone(classifier, path, model)
    state = classifier.state_dict()
    assert len(copied) == len(state) - len(fresh_head) > 0
    for key in copied:
        assert torch.equal(state[key], net.state_dict()[f"backbone.{key}"]), key
    for key, value in fresh_head.items():  # the classifier is untouched
        assert torch.equal(state[key], value)
    if model != "single_frame":  # the pretrained network's features are the classifier's
        clip = torch.randn(1, 3, frames, 32, 32)
        classifier.eval(), net.eval()
        setattr(classifier, head, torch.nn.Identity())
        torch.testing.assert_close(classifier(clip), net.backbone(clip))


def test_a_classifier_checkpoint_is_a_valid_init(tmp_path):
    source = create_model("small3d", num_classes=8, widths=[4, 8])
    path = save_checkpoint(tmp_path / "best.pt", {"model": source.state_dict(),
                                                  "recipe": {"model": "small3d"}})
    target = create_model("small3d", num_classes=3, widths=[4, 8])
    Transfer(str(path), freeze_backbone=True).apply(target, "small3d")
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert [name for name, p in target.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    with pytest.raises(CheckpointError, match=r"its backbone \(a small3d classifier\) does not fit model "
                                              r"r3d_18: stem.0.weight .* has no such weight there"):
        load_backbone(create_model("r3d_18", num_classes=3), path, "r3d_18")
