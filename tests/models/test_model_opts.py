"""Model options (``--model-opt``, a recipe's ``model_kwargs``) of the wrong type or range,
and tampered checkpoints: one-line ``ValueError``/``CheckpointError``, nothing allocated."""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
import torch

from deepvideo.cli import main
from deepvideo.engine.checkpoint import CheckpointError
from deepvideo.engine.recipe import Recipe, load_trained
from deepvideo.models import create_model, list_models, registry
from deepvideo.models.registry import check_model_options, describe_type, model_builder, type_matches

from conftest import one_line_error


@pytest.mark.parametrize("name, options, message", [
    ("small3d", {"widths": "abc"}, "small3d: model option widths='abc': expected a list of integers"),
    ("small3d", {"widths": [-4, 8]}, "small3d: model option widths=[-4, 8]: sizes and counts must be positive"),
    ("small3d", {"widths": [True, 8]}, "widths=[True, 8]: expected a list of integers"),
    ("small3d", {"widths": [4.0, 8]}, "expected a list of integers"),
    ("small3d", {"dropout": float("nan")}, "small3d: model option dropout=nan: numbers must be finite"),
    ("small3d", {"dropout": float("inf")}, "dropout=inf: numbers must be finite"),
    ("small3d", {"dropout": 1}, "dropout=1: a probability must be in [0, 1)"),
    ("small3d", {"dropout": True}, "dropout=True: expected a number"),
    ("small3d", {"norm": 3}, "norm=3: expected a string"),
    ("small3d", {"widht": [4]}, "has no option 'widht' (did you mean widths?); options: widths, dropout, norm"),
    ("small3d", {"num_classes": 3}, "small3d: num_classes=3 is not a model option"),
    ("c3d", {"input_size": [16, 112]}, "c3d: model option input_size=[16, 112]: expected a list of 3 integers"),
    ("c3d", {"weights": 5}, "weights=5: expected a string, a path or none"),
    ("r3d_18", {"nonlocal_stages": [0]}, "nonlocal_stages=[0]: sizes and counts must be positive"),
    ("two_stream", {"weights": [1.0, -1.0]}, "weights=[1.0, -1.0]: must be positive"),
    ("t3d_tiny", {"drop_rate": -0.1}, "drop_rate=-0.1: a probability must be in [0, 1)"),
    ("timesformer_tiny", {"num_frames": 0}, "num_frames=0: sizes and counts must be positive"),
])
def test_bad_option_is_one_line_error_naming_model_and_option(name, options, message):
    with pytest.raises(ValueError) as exc:
        check_model_options(name, options)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    if "num_classes" not in options:
        with pytest.raises(ValueError, match=re.escape(message)):
            create_model(name, num_classes=3, **options)


def test_too_large_models_are_refused_before_allocating(monkeypatch):
    # 100000 x 100000 x 27 float32 weights: a 1 TB model, refused from its meta-device count
    with pytest.raises(ValueError, match=r"^small3d: 270,009,200,005 parameters and buffers with "
                                         r"widths=\[100000, 100000\], over the limit of 2,000,000,000$"):
        create_model("small3d", num_classes=3, widths=[100000, 100000])
    with pytest.raises(ValueError, match=r"^small3d: cannot be built with widths=\[1099511627776, "):
        create_model("small3d", num_classes=5, widths=[2 ** 40, 2 ** 40])
    with torch.device("meta"):  # no memory: `deepvideo summary` of any size works
        assert create_model("small3d", num_classes=5, widths=[100000, 100000]).fc.out_features == 5
    # the count is parameters and buffers (BatchNorm statistics, batch counters)
    model = create_model("small3d", num_classes=5, widths=[4, 8])
    count = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    monkeypatch.setattr(registry, "MAX_PARAMETERS", count - 1)
    with pytest.raises(ValueError, match=f"small3d: {count:,} parameters and buffers with widths=\\[4, 8\\], "
                                         f"over the limit of {count - 1:,}"):
        create_model("small3d", num_classes=5, widths=[4, 8])


@pytest.mark.parametrize("name", list_models())
def test_every_model_takes_its_defaults_and_fits_the_limit(name):
    defaults = {key: p.default for key, p in inspect.signature(model_builder(name)).parameters.items()
                if key != "num_classes"}
    check_model_options(name, defaults)  # every default fits its annotation and the rule on numbers
    with torch.device("meta"):
        model = create_model(name, num_classes=400)
    assert sum(t.numel() for t in [*model.parameters(), *model.buffers()]) < registry.MAX_PARAMETERS


@pytest.mark.parametrize("value, hint, fits, words", [
    (3, int, True, "an integer"),
    (True, int, False, "an integer"),
    (3, float, True, "a number"),
    (None, Optional[int], True, "an integer or none"),
    ("avg", Literal["avg", "max"], True, "one of 'avg', 'max'"),
    ("sum", Literal["avg", "max"], False, "one of 'avg', 'max'"),
    ([1, 2], Sequence[int], True, "a list of integers"),
    ("12", Sequence[int], False, "a list of integers"),
    ((1, 2), list[int], True, "a list of integers"),
    ([["a", "b"]], list[tuple[str, str]], True, "a list of lists of 2 strings"),
    ([1, 2.5], tuple[int, float], True, "a list [an integer, a number]"),
    ({"widths": [4]}, dict[str, Any], True, "a dict"),
    ({1: [4]}, dict[str, Any], False, "a dict"),
    ("w.pt", Path | None, True, "a path or none"),
])
def test_type_matches_and_describe_type(value, hint, fits, words):
    assert type_matches(value, hint) is fits
    assert describe_type(hint) == words


def test_recipe_refuses_bad_model_options():
    with pytest.raises(ValueError, match="num_classes=3 is not a model option"):
        Recipe(model="small3d", classes=["a", "b"], model_kwargs={"num_classes": 3})
    with pytest.raises(ValueError, match=r"widths=\[-4, 8\]: sizes and counts must be positive"):
        Recipe(model="small3d", classes=["a", "b"], model_kwargs={"widths": [-4, 8]})


def _tampered(checkpoint: Path, folder: Path, **changes: Any) -> Path:
    """A copy of ``checkpoint`` with recipe fields (or, for ``recipe=`` and ``model=``, whole
    entries) replaced: still loadable with ``weights_only=True``."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key in ("recipe", "model"):
        if key in changes:
            state[key] = changes.pop(key)
    state["recipe"] = {**state["recipe"], **changes} if changes else state["recipe"]
    path = folder / "tampered.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"recipe": None}, "invalid recipe: a recipe is a dict of settings, got None"),
    ({"model_kwargs": {"widths": [100000, 100000]}}, "invalid recipe: small3d: 270,009,"),
    ({"model_kwargs": {"widths": "abc"}}, "invalid recipe: small3d: model option widths='abc'"),
    ({"model_kwargs": {"num_classes": 3}}, "invalid recipe: small3d: num_classes=3 is not a model option"),
    ({"model_kwargs": None}, "invalid recipe: field model_kwargs=None: expected a dict"),
    ({"model_kwargs": {"widths": [4, 8], "dropout": float("nan")}}, "model option dropout=nan"),
    ({"model": None}, "field model: expected a state dict of weights, got None"),
    ({"classes": "abc"}, "invalid recipe: field classes='abc': expected a list of strings"),
    ({"clip_len": "4"}, "invalid recipe: field clip_len='4': expected an integer"),
    ({"mean": [0.5, 0.4]}, "invalid recipe: field mean=[0.5, 0.4]: expected a list of 3 numbers"),
    ({"std": [0.0, 0.25, 0.3]}, "invalid recipe: std and flow_scale must be positive"),
    ({"size": 0}, "invalid recipe: size must be at least 1"),
])
def test_tampered_checkpoint_is_a_one_line_checkpoint_error(small3d_checkpoint, tmp_path, changes, message):
    path = _tampered(small3d_checkpoint, tmp_path, **changes)
    with pytest.raises(CheckpointError) as exc:
        load_trained(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_recipe_field_model_names_a_registered_model(small3d_checkpoint, tmp_path):
    state = torch.load(small3d_checkpoint, map_location="cpu", weights_only=True)
    for model, message in ((None, "field model=None: expected a string"),
                           ("smal3d", "unknown model 'smal3d'; did you mean small3d?")):
        path = tmp_path / "renamed.pt"
        torch.save({**state, "recipe": {**state["recipe"], "model": model}}, path)
        with pytest.raises(CheckpointError, match=re.escape(f"invalid recipe: {message}")):
            load_trained(path)
    del state["recipe"]["classes"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="invalid recipe: field classes is missing"):
        load_trained(path)


def test_cli_bad_model_options_and_tampered_checkpoint_exit_2(capsys, small3d_checkpoint, tmp_path):
    assert main(["summary", "small3d", "--model-opt", "widths=abc"]) == 2
    one_line_error(capsys.readouterr().err, "small3d: model option widths='abc': expected a list of integers",
                   command="summary")
    assert main(["summary", "small3d", "--model-opt", "dropout=NaN"]) == 2
    one_line_error(capsys.readouterr().err, "dropout=nan: numbers must be finite", command="summary")
    for command in (["summary", "small3d"], ["train", "--model", "small3d", "--out", str(tmp_path / "run")],
                    ["pretrain", "--task", "arrow", "--model", "small3d", "--out", str(tmp_path / "run")]):
        assert main([*command, "--model-opt", "num_classes=3", "--data", str(tmp_path / "none")]
                    if command[0] != "summary" else [*command, "--model-opt", "num_classes=3"]) == 2
        one_line_error(capsys.readouterr().err, "small3d: num_classes=3 is not a model option", command=command[0])
    path = _tampered(small3d_checkpoint, tmp_path, model_kwargs={"widths": [100000, 100000]})
    assert main(["export", str(path), "--out", str(tmp_path / "model.onnx")]) == 2
    one_line_error(capsys.readouterr().err, str(path), "over the limit", command="export")


@pytest.mark.parametrize("changes", [{"recipe": None}, {"recipe": {"classes": []}}])
def test_init_from_a_checkpoint_without_a_usable_recipe_names_the_source_or_refuses(small3d_checkpoint, tmp_path,
                                                                                   changes):
    from deepvideo.engine.transfer import backbone_state

    weights, source = backbone_state(_tampered(small3d_checkpoint, tmp_path, **changes))
    assert source == "an unnamed model" and weights
    with pytest.raises(CheckpointError, match="field model: expected a state dict of weights"):
        backbone_state(_tampered(small3d_checkpoint, tmp_path, model=[1, 2]))
