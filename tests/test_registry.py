"""One registry mechanism for every named choice: models, trackers, detectors, flow methods
and data formats give "did you mean" on unknown names and the valid options on unknown ones."""

from __future__ import annotations

import pytest

from deepvideo.engine import recipe
from deepvideo.engine.recipe import DATA_FORMATS, DataSpec
from deepvideo.flow import ALL_METHODS, FLOW_METHODS, estimate_flow, make_estimator
from deepvideo.models import create_model, list_models, register_model
from deepvideo.models.registry import MODELS, model_inputs
from deepvideo.registry import Registry
from deepvideo.track.detect import DETECTORS, FileDetections, make_detector
from deepvideo.track.mot import TRACKERS, make_tracker
from deepvideo.track.sort import ByteTrack, Sort


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("call, name, message", [
    (create_model, "small_3d", "unknown model 'small_3d'; did you mean small3d?"),
    (make_tracker, "bytetrak", "unknown tracker 'bytetrak'; did you mean bytetrack?"),
    (make_detector, "mog", "unknown detector 'mog'; did you mean mog2?"),
    (make_estimator, "farnback", "unknown flow method 'farnback'; did you mean farneback?"),
    (make_estimator, "raf", "unknown flow method 'raf'; did you mean raft?"),
    (lambda name: estimate_flow(None, None, name), "diss", "unknown flow method 'diss'; did you mean dis?"),
    (lambda name: DataSpec(format=name, root="videos"), "kinetic",
     "unknown data format 'kinetic'; did you mean kinetics?"),
])
def test_unknown_name_suggests_the_closest(call, name, message):
    assert _error(call, name) == message


@pytest.mark.parametrize("registry, message", [
    (TRACKERS, "unknown tracker 'kcf'; one of sort, bytetrack, deepsort"),
    (DETECTORS, "unknown detector 'kcf'; one of dets, mog2, torchvision"),
    (FLOW_METHODS, "unknown flow method 'kcf'; one of farneback, dis, tvl1"),
    (ALL_METHODS, "unknown flow method 'kcf'; one of farneback, dis, tvl1, raft, tinyflow"),
    (DATA_FORMATS, "unknown data format 'kcf'; one of folder, list, ucf101, hmdb51, kinetics"),
])
def test_unknown_name_without_a_close_one_lists_them_all(registry, message):
    assert _error(registry.get, "kcf") == message
    assert "kcf" not in registry


def test_unknown_option_lists_the_valid_ones():
    assert _error(make_tracker, "sort", max_agee=2) == (
        "tracker 'sort' has no option 'max_agee' (did you mean max_age?); "
        "options: max_age, min_hits, iou_threshold")
    assert _error(make_tracker, "bytetrack", embedder="net.safetensors").startswith(
        "tracker 'bytetrack' has no option 'embedder'; options: high_threshold, low_threshold, ")
    assert _error(make_detector, "mog2", dets="det.txt") == (
        "detector 'mog2' has no option 'dets'; options: history, var_threshold, min_area, kernel, "
        "detect_shadows")
    assert _error(create_model, "small3d", num_classes=3, widht=(4,)).startswith(
        "model 'small3d' has no option 'widht' (did you mean widths?); options: widths, dropout, norm")


def test_build_passes_options_and_names_a_missing_one():
    tracker = make_tracker("sort", max_age=5, min_hits=1)
    assert type(tracker) is Sort and (tracker.max_age, tracker.min_hits) == (5, 1)
    assert type(make_tracker("bytetrack")) is ByteTrack
    assert _error(make_detector, "torchvision") == "detector 'torchvision' needs weights"
    assert _error(make_detector, "dets") == "detector 'dets' needs a detections file (dets=...)"
    rows = [[1, -1, 2, 3, 4, 5, 0.9], [1, -1, 0, 0, 1, 1, 0.1]]
    detector = make_detector("dets", dets=rows, min_score=0.5)
    assert type(detector) is FileDetections and detector(None, 1).tolist() == [[2, 3, 4, 5, 0.9]]


def test_registering_a_choice_is_one_decorator():
    shapes = Registry("shape")

    @shapes.register("square", corners=4)
    def square(side: float, *, scale: float = 1.0) -> float:
        return (side * scale) ** 2

    @shapes.register("blob")
    class Blob:
        def __init__(self, **anything) -> None:
            self.anything = anything

    assert shapes.names() == ("square", "blob") and list(shapes) == ["square", "blob"] and len(shapes) == 2
    assert "square" in shapes and "circle" not in shapes and shapes.get("square") is square
    assert shapes.build("square", side=3, scale=2) == 36
    assert dict(shapes.info("square")) == {"corners": 4} and dict(shapes.info("blob")) == {}
    assert shapes.build("blob", colour="red").anything == {"colour": "red"}   # **kwargs take anything
    assert _error(shapes.build, "square", side=1, scal=2) == (
        "shape 'square' has no option 'scal' (did you mean scale?); options: side, scale")
    assert _error(shapes.build, "square") == "shape 'square' needs side"
    assert _error(shapes.info, "sqare") == "unknown shape 'sqare'; did you mean square?"
    assert repr(shapes) == "Registry('shape', names=('square', 'blob'))"
    with pytest.raises(TypeError):
        shapes.info("square")["corners"] = 3                                # info is read-only


def test_a_new_data_format_needs_no_other_edit(monkeypatch):
    formats = Registry("data format")
    for name in DATA_FORMATS:
        formats.register(name, **DATA_FORMATS.info(name))(DATA_FORMATS.get(name))

    @formats.register("single_folder", needs=("root",))
    def single_folder(spec, subset, classes, **common):
        return spec.root, subset, classes, sorted(common)

    monkeypatch.setattr(recipe, "DATA_FORMATS", formats)
    spec = DataSpec(format="single_folder", root="videos")
    assert spec.build("val", sampler=None, transform=None, classes=["a"]) == (
        "videos", "val", ["a"], ["sampler", "seed", "transform"])
    assert _error(DataSpec, format="single_folder") == "format single_folder needs root"


def test_one_builder_under_several_names():
    """As the single-object trackers register one builder as both "siamfc" and "goturn"."""
    trackers = Registry("tracker")

    @trackers.register("siamfc", network="SiamFCNet")
    @trackers.register("goturn", network="GOTURNNet")
    def build(weights: str | None = None) -> str:
        return f"tracker from {weights}"

    assert trackers.names() == ("goturn", "siamfc")
    assert trackers.get("siamfc") is trackers.get("goturn") is build
    assert [trackers.info(name)["network"] for name in trackers] == ["GOTURNNet", "SiamFCNet"]
    assert trackers.build("goturn", weights="w.safetensors") == "tracker from w.safetensors"


def test_registering_a_name_twice_is_an_error():
    registry = Registry("tracker")
    registry.register("sort")(Sort)
    with pytest.raises(ValueError, match=r"^tracker 'sort' is registered twice$"):
        registry.register("sort")(ByteTrack)
    assert registry.get("sort") is Sort
    with pytest.raises(ValueError, match=r"^tracker 'sort' is registered twice$"):
        TRACKERS.register("sort")(ByteTrack)
    assert TRACKERS.get("sort") is Sort
    list_models()  # every model module imported

    def small3d(num_classes: int):
        raise AssertionError("never built")

    with pytest.raises(ValueError, match=r"^model 'small3d' is registered twice$"):
        register_model(small3d)
    with pytest.raises(ValueError, match=r"^a model name must be a non-empty string, got ''$"):
        MODELS.register("")


def test_load_runs_on_first_lookup_once_and_again_after_a_failure():
    calls = []

    def load() -> None:
        calls.append("load")
        if len(calls) == 1:
            raise ImportError("broken module")
        registry.register("loaded")(dict)
        assert registry.names() == ("early", "loaded")  # a lookup while loading does not load again

    registry = Registry("widget", load=load)
    registry.register("early")(list)
    assert calls == []
    with pytest.raises(ImportError, match="broken module"):
        registry.names()
    assert registry.names() == ("early", "loaded") and calls == ["load", "load"]
    assert "loaded" in registry and calls == ["load", "load"]


def test_models_keep_their_inputs_and_sorted_list():
    names = list_models()
    assert names == sorted(names) == sorted(MODELS.names()) and len(names) == len(MODELS)
    assert model_inputs("two_stream") == ("rgb", "flow") and model_inputs("small3d") == ("video",)
    assert dict(MODELS.info("two_stream")) == {"inputs": ("rgb", "flow")}


def test_flow_methods_and_their_weights():
    assert FLOW_METHODS.names() == ("farneback", "dis", "tvl1")
    assert ALL_METHODS.names() == ("farneback", "dis", "tvl1", "raft", "tinyflow")
    assert _error(make_estimator, "raft") == "flow method 'raft' needs weights: a local raft_small state_dict file"
