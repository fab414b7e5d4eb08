"""Export a trained model to ONNX or to a ``torch.export`` program, with its recipe inside.

The network is traced once with ``torch.export.export`` (the capture PyTorch recommends in
place of TorchScript, https://pytorch.org/docs/stable/export.html) on a random batch of two
clips ``(B, C, T, H, W)`` float32, with a dynamic batch axis and, where the model allows
it, a dynamic clip length ``T``.  That program is then written as

* ``"onnx"``: ``torch.onnx.export(program, dynamo=True)`` at opset 18 (17 at least), weights
  inside the file, the dynamic axes named ``batch`` and ``frames``;
* ``"exported-program"``: ``torch.export.save`` (a ``.pt2`` archive; run it with
  ``torch.export.load(path).module()``),

each with the deepvideo metadata (:mod:`deepvideo.deploy.metadata`) inside, written
atomically (:func:`deepvideo.io.atomic.atomic_path`).

Clip lengths.  A dynamic ``T`` is traced symbolically; ``torch.export`` then guards the
program to the clip lengths for which the traced graph holds (e.g. a ResNet traced at 16
frames, whose temporal size stays above 1 in every stage, is guarded to ``T >= 9``).  The
range is found by calling the program on empty batches (``B = 0``: shapes only, no
arithmetic; one clip where a guard needs a non-empty batch) of every length around
``clip_len`` and stored as ``min_frames``/``max_frames``;
the runners refuse clips outside it.  A two-input model (two-stream) is exported with its
inputs ``rgb`` and ``flow`` and its NamedTuple output as a plain tuple.  Models whose code fixes ``T`` are listed in
:data:`FIXED_FRAMES` with the reason; they are exported with ``T = clip_len``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import torch
import torch.nn as nn
from torch.export import Dim, ExportedProgram

from deepvideo.deploy.metadata import BATCH, FRAMES, METADATA_FILE, METADATA_KEY, ExportMetadata, InputSpec
from deepvideo.deploy.packages import require
from deepvideo.engine.recipe import RGB_FLOW, Recipe, load_trained
from deepvideo.io.atomic import atomic_path, atomic_write
from deepvideo.models.registry import MODELS, model_builder, model_inputs
from deepvideo.registry import Registry

__all__ = ["DEFAULT_OPSET", "EXPORT_FORMATS", "FIXED_FRAMES", "MIN_OPSET", "Exported", "export_model",
           "export_program", "input_shapes", "load_source", "recipe_for_model"]

DEFAULT_OPSET = 18
MIN_OPSET = 17
FramesMode = Literal["auto", "dynamic", "fixed"]
FRAMES_MODES = ("auto", "dynamic", "fixed")

_UNROLLED = "its recurrence is a Python loop over the frames, unrolled to the clip length when traced"
_POSITIONS = "its learned position embeddings are sized for num_frames frames (the input size is checked)"
# models of the registry whose code fixes the clip length T, and why (docs/deploy.md shows this table)
FIXED_FRAMES: dict[str, str] = {
    "c3d": "fc6 is sized for the input_size clip (the flattened pool5 volume)",
    "convlstm": _UNROLLED,
    "early_fusion": "its first convolution takes the num_frames frames stacked as 3 x num_frames channels",
    "gru_rcn": _UNROLLED,
    "late_fusion": "its fully connected layers take the features of num_frames frames, concatenated",
    "lrcn": _UNROLLED,
    "lstm_head": _UNROLLED,
    "mvit_v2_s": "torchvision's MViT fixes its token grid (temporal_size 16) in every block",
    "temporal_stream": "its first convolution takes flow_frames flow fields stacked as 2 x flow_frames channels",
    "timesformer": _POSITIONS,
    "timesformer_tiny": _POSITIONS,
    "two_stream": "its temporal stream takes flow_frames flow fields stacked as 2 x flow_frames channels",
    "vivit": _POSITIONS,
    "vivit_tiny": _POSITIONS,
}

# writer(exported, out, opset); info: suffix (the usual file suffix)
EXPORT_FORMATS: Registry[Callable[..., None]] = Registry("export format")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ----------------------------------------------------------------------------- what to export
def input_shapes(recipe: Recipe) -> list[tuple[int, int, int, int]]:
    """The ``(C, T, H, W)`` of each input of ``recipe``'s model, in ``forward``'s order: an
    RGB clip ``(3, clip_len, size, size)``; a flow stack ``(2, ...)``; feature rows
    ``(feature_dim, clip_len, 1, 1)`` (the clip layout of :mod:`deepvideo.data.features`);
    for ``rgb+flow`` both an RGB clip and a flow stack."""
    t, s = recipe.clip_len, recipe.size
    if recipe.modality == "features":
        option = inspect.signature(model_builder(recipe.model)).parameters["feature_dim"]
        return [(int(recipe.model_kwargs.get("feature_dim", option.default)), t, 1, 1)]
    if recipe.modality == RGB_FLOW:
        return [(3, t, s, s), (2, t, s, s)]
    return [(2 if recipe.modality == "flow" else 3, t, s, s)]


def recipe_for_model(name: str, input_shape: tuple[int, ...], num_classes: int = 10,
                     model_kwargs: dict[str, Any] | None = None) -> Recipe:
    """A recipe for a fresh (untrained) model ``name`` taking clips ``input_shape = (C, T, H, W)``
    (the first input's, for a two-input model), classes ``class_0 ...``.

    The modality follows the builder: ``rgb+flow`` for a two-input model, ``features`` (with
    ``feature_dim = C``) for a feature head, ``flow`` (``flow_frames = T``) for a temporal
    stream, else ``rgb``.  Options the builder takes and ``model_kwargs`` leaves out are set
    from the input: ``num_frames`` and ``flow_frames`` = T, ``img_size`` = H, ``input_size`` =
    (T, H, W).  Raises ``ValueError`` for a shape that is not ``(C, T, H, W)`` or not square.
    """
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be C x T x H x W, got {'x'.join(map(str, input_shape))}")
    channels, frames, height, width = input_shape
    if height != width:
        raise ValueError(f"input_shape: height and width must be equal (a recipe's crop is square), "
                         f"got {height}x{width}")
    options = inspect.signature(model_builder(name)).parameters
    kwargs = dict(model_kwargs or {})
    implied = {"num_frames": frames, "flow_frames": frames, "img_size": height, "input_size": [frames, height, width],
               "feature_dim": channels}
    for key, value in implied.items():
        if key in options:
            kwargs.setdefault(key, value)
    if model_inputs(name) != ("video",):
        modality = RGB_FLOW
    elif "feature_dim" in options:
        modality = "features"
    elif "flow_frames" in options:
        modality = "flow"
    else:
        modality = "rgb"
    wanted = {"rgb": 3, RGB_FLOW: 3, "flow": 2}.get(modality, channels)
    if channels != wanted:
        raise ValueError(f"input_shape: model {name} takes {wanted} channels ({modality} clips), got {channels}")
    return Recipe(model=name, classes=[f"class_{i}" for i in range(num_classes)], model_kwargs=kwargs,
                  clip_len=frames, size=height, resize=max(height, round(height * 8 / 7)), flip=False,
                  modality=modality)


def load_source(source: str | os.PathLike, input_shape: tuple[int, ...] | None = None, num_classes: int = 10,
                model_kwargs: dict[str, Any] | None = None) -> tuple[Recipe, nn.Module]:
    """The recipe and the eval-mode model of ``source``: a training checkpoint
    (:func:`~deepvideo.engine.recipe.load_trained`), or a registered model name with
    ``input_shape`` ``(C, T, H, W)`` (a fresh model, :func:`recipe_for_model`).  ``ValueError``
    naming ``source`` when it is neither an existing file nor a model name."""
    path = Path(source)
    if path.is_file():
        if input_shape is not None or model_kwargs:
            raise ValueError(f"input_shape and model_kwargs are for a model name; checkpoint {path} has its recipe")
        return load_trained(path)
    name = str(source)
    if name not in MODELS:
        if os.sep in name or path.suffix:
            raise ValueError(f"{name}: no such checkpoint file (nor a model name of `deepvideo models`)")
        MODELS.get(name)  # the unknown-model error, naming a close match
    if input_shape is None:
        raise ValueError(f"input_shape: exporting a fresh {name} needs the clip shape C x T x H x W")
    recipe = recipe_for_model(name, input_shape, num_classes, model_kwargs)
    return recipe, recipe.build_model().eval()


# ----------------------------------------------------------------------------- tracing
@dataclass
class Exported:
    """A traced network (``program``), the metadata that goes into its files and the example
    batch it was traced with (``example``: one ``(2, C, T, H, W)`` float32 tensor per input)."""

    program: ExportedProgram
    metadata: ExportMetadata
    example: tuple[torch.Tensor, ...]

    def save(self, out: str | os.PathLike, format: str = "onnx", opset: int = DEFAULT_OPSET) -> Path:
        """Write the program as ``format`` (a name of :data:`EXPORT_FORMATS`) to ``out``, atomically."""
        writer = EXPORT_FORMATS.get(format)
        if opset < MIN_OPSET:
            raise ValueError(f"opset must be at least {MIN_OPSET}, got {opset}")
        out = Path(out)
        writer(self, out, opset)
        return out


def _trace(model: nn.Module, example: tuple[torch.Tensor, ...], dynamic_frames: bool) -> ExportedProgram:
    """``torch.export.export`` with a dynamic batch (axis 0) and, if asked, dynamic frames (axis 2)."""
    axes = {0: Dim.DYNAMIC, 2: Dim.DYNAMIC} if dynamic_frames else {0: Dim.DYNAMIC}
    with torch.no_grad():
        return torch.export.export(model, example, dynamic_shapes=tuple(axes for _ in example))


def _accepts(module: nn.Module, example: tuple[torch.Tensor, ...], frames: int, batch: int) -> bool:
    """Whether the exported ``module`` takes a batch of ``batch`` zero clips of ``frames``
    frames (passes its shape guards and runs)."""
    zeros = tuple(x.new_zeros(batch, x.shape[1], frames, *x.shape[3:]) for x in example)
    try:
        with torch.no_grad():
            module(*zeros)
    except Exception:  # a failed guard or a shape error: not a length this program takes
        return False
    return True


def _frame_range(program: ExportedProgram, example: tuple[torch.Tensor, ...]) -> tuple[int, int | None] | None:
    """The contiguous clip lengths around the example's that ``program`` takes: ``(min, max)``,
    ``max`` ``None`` when every length up to ``max(64, 4 T)`` passes; ``None`` when not even
    the example's length runs.  Probed on empty batches (``B = 0``: the guards and shapes, no
    arithmetic), or on one clip where a guard of the program needs a non-empty batch."""
    module, frames = program.module(), example[0].shape[2]
    batch = next((b for b in (0, 1) if _accepts(module, example, frames, b)), None)
    if batch is None:
        return None
    limit = max(64, 4 * frames)
    low = high = frames
    while low > 1 and _accepts(module, example, low - 1, batch):
        low -= 1
    while high < limit and _accepts(module, example, high + 1, batch):
        high += 1
    return low, (None if high == limit else high)


class PairOutputs(nn.Module):
    """A two-input model (``forward(rgb, flow)``, e.g. a two-stream network) whose output is
    a NamedTuple, returning it as a plain tuple in the same order: ``torch.export.save``
    serialises plain tuples only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model(rgb, flow))


def export_program(recipe: Recipe, model: nn.Module, frames: FramesMode = "auto", seed: int = 0) -> Exported:
    """Trace ``model`` (built from ``recipe``) with ``torch.export`` on a random batch of two
    clips of ``recipe``'s input shapes (:func:`input_shapes`), batch axis dynamic.

    ``frames``: ``"auto"``, a dynamic clip length where the model allows it (not for the
    models of :data:`FIXED_FRAMES`, nor where ``torch.export`` fixes it), else ``clip_len``;
    ``"dynamic"``, a ``ValueError`` naming the model and the reason where it cannot;
    ``"fixed"``, always ``clip_len``.  ``model`` is put in eval mode.  Raises ``ValueError``
    naming the model when it cannot be traced.
    """
    if frames not in FRAMES_MODES:
        raise ValueError(f"frames must be one of {', '.join(FRAMES_MODES)}, got {frames!r}")
    name = recipe.model
    generator = torch.Generator().manual_seed(seed)
    example = tuple(torch.randn(2, *shape, generator=generator) for shape in input_shapes(recipe))
    model.eval()
    if model_inputs(name) == ("rgb", "flow"):
        model = PairOutputs(model)
    reason = "fixed on request (frames='fixed')" if frames == "fixed" else FIXED_FRAMES.get(name)
    if frames == "dynamic" and reason is not None:
        raise ValueError(f"{name} cannot take a dynamic number of frames: {reason}")
    program, span = None, None
    if reason is None:
        try:
            program = _trace(model, example, dynamic_frames=True)
        except Exception as exc:  # torch.export's errors have no common base class
            reason = f"torch.export fixes them ({_first_line(exc)})"
        else:
            span = _frame_range(program, example)
            if span is None or span == (recipe.clip_len, recipe.clip_len):
                reason, program = "the traced program takes no other clip length", None
        if reason is not None and frames == "dynamic":
            raise ValueError(f"{name} cannot take a dynamic number of frames: {reason}")
    if program is None:
        try:
            program = _trace(model, example, dynamic_frames=False)
        except Exception as exc:
            raise ValueError(f"{name} cannot be exported: {_first_line(exc)}") from None
        span = (recipe.clip_len, recipe.clip_len)
    names = program.graph_signature.user_inputs
    inputs = tuple(InputSpec(str(n), (BATCH, x.shape[1], FRAMES if reason is None else x.shape[2], *x.shape[3:]))
                   for n, x in zip(names, example))
    metadata = ExportMetadata(recipe=recipe, inputs=inputs, min_frames=span[0], max_frames=span[1],
                              fixed_frames_reason=reason)
    return Exported(program, metadata, example)


def export_model(source: str | os.PathLike, out: str | os.PathLike, format: str = "onnx", *,
                 input_shape: tuple[int, ...] | None = None, num_classes: int = 10,
                 model_kwargs: dict[str, Any] | None = None, frames: FramesMode = "auto",
                 opset: int = DEFAULT_OPSET) -> Exported:
    """Export ``source`` (a training checkpoint, or a registered model name with
    ``input_shape`` ``(C, T, H, W)``, ``num_classes`` and ``model_kwargs``; see
    :func:`load_source`) to ``out`` as ``format`` (``"onnx"`` or ``"exported-program"``).
    ``frames`` as in :func:`export_program`; ``opset``: the ONNX opset (17 at least).
    Returns what was exported; ``ValueError`` naming the cause when it cannot be."""
    EXPORT_FORMATS.get(format)
    recipe, model = load_source(source, input_shape, num_classes, model_kwargs)
    exported = export_program(recipe, model, frames)
    exported.save(out, format, opset)
    return exported


# ----------------------------------------------------------------------------- writers
def _symbol_names(exported: Exported) -> dict[str, str]:
    """The program's symbols for the batch and frame axes -> ``"batch"``, ``"frames"``."""
    placeholders = {node.name: node for node in exported.program.graph.nodes if node.op == "placeholder"}
    names: dict[str, str] = {}
    for spec in exported.metadata.inputs:
        shape = placeholders[spec.name].meta["val"].shape
        for axis in (0, 2):
            if isinstance(shape[axis], torch.SymInt):
                names[str(shape[axis])] = spec.shape[axis]
    return names


@EXPORT_FORMATS.register("onnx", suffix=".onnx")
def write_onnx(exported: Exported, out: Path, opset: int = DEFAULT_OPSET) -> None:
    """``torch.onnx.export(..., dynamo=True)`` of the program at ``opset``, weights inside the
    file, the metadata in ``metadata_props[METADATA_KEY]``, the symbolic axes renamed
    ``batch`` and ``frames``."""
    require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    import onnx_ir as ir

    with contextlib.redirect_stdout(io.StringIO()):  # torch.onnx prints its steps
        program = torch.onnx.export(exported.program, exported.example, dynamo=True, opset_version=opset,
                                    external_data=False, verbose=False)
    renamed = _symbol_names(exported)
    graph = program.model.graph
    for value in [*graph.inputs, *graph.outputs, *(output for node in graph for output in node.outputs)]:
        if value.shape is not None and any(isinstance(d, ir.SymbolicDim) and d.value in renamed
                                           for d in value.shape.dims):
            value.shape = ir.Shape([ir.SymbolicDim(renamed[d.value]) if isinstance(d, ir.SymbolicDim)
                                    and d.value in renamed else d for d in value.shape.dims])
    program.model.metadata_props[METADATA_KEY] = exported.metadata.dumps()
    with atomic_path(out) as tmp:
        program.save(tmp, external_data=False)


@EXPORT_FORMATS.register("exported-program", suffix=".pt2")
def write_exported_program(exported: Exported, out: Path, opset: int = DEFAULT_OPSET) -> None:
    """``torch.export.save`` with the metadata as the extra file ``METADATA_FILE`` (``opset``
    does not apply)."""
    atomic_write(out, lambda fh: torch.export.save(exported.program, fh,
                                                   extra_files={METADATA_FILE: exported.metadata.dumps()}))
