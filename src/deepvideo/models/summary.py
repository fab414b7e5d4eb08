"""Per-layer summary of a model: output shapes, parameters and multiply-accumulates.

``summarize(model, input_shape)`` runs one forward pass on a single zero clip (batch 1,
eval mode, no gradients) with forward hooks and records, for every layer that does
work, its output shape (without the batch dimension), its parameters and its MACs.

What is counted (multiply-accumulates, per clip):

* convolutions (1D/2D/3D and transposed): one MAC per weight per output position;
* linear layers: ``in_features`` MACs per output value;
* RNN/LSTM/GRU layers and cells: the input and hidden matmuls of every gate and step;
* ``nn.MultiheadAttention``: the q/k/v/output projections and the two attention matmuls;
* torchvision's MViT ``MultiscaleAttention``: the two attention matmuls between the
  pooled queries and keys/values, and the relative-position matmuls (its projections and
  pooling convolutions are Linear and Conv3d layers and count themselves);
* a module that defines ``extra_macs(inputs, output) -> int`` adds that number for the
  work it does outside its child modules (e.g. the matmuls of a non-local block).

Not counted: normalisation, activations, pooling, element-wise additions and
softmax (memory-bound, or folded into the convolutions at inference).  Layers without
parameters that keep their input's shape (ReLU, dropout, ...) are left out of the table.
Build the model under ``torch.device("meta")`` to summarise a large model without
allocating or computing anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torchvision.models.video.mvit import MultiscaleAttention

_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_CELL_GATES = {nn.LSTMCell: 4, nn.GRUCell: 3, nn.RNNCell: 1}


@dataclass
class LayerSummary:
    """One row: qualified module name, class name, output shape (no batch), params, MACs."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass
class Summary:
    """A model's layers and totals for one clip of ``input_shape`` (no batch dimension)."""

    model: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: list[LayerSummary] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (shapes as lists)."""
        return asdict(self)


def _arg(inputs: tuple, kwargs: dict[str, Any], index: int, name: str) -> Any:
    """A forward argument given by position or by keyword."""
    return inputs[index] if len(inputs) > index else kwargs[name]


def _pooled_thw(pool: nn.Module | None, thw: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (T, H, W) token grid after an MViT ``Pool`` (a strided Conv3d) or none."""
    if pool is None:
        return thw
    conv = pool.pool
    return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d
                 in zip(thw, conv.kernel_size, conv.stride, conv.padding, conv.dilation))


def _multiscale_attention_macs(module: MultiscaleAttention, inputs: tuple,
                               kwargs: dict[str, Any], output: tuple) -> int:
    """QK^T and AV over the pooled (T, H, W) grids plus a class token, and the
    decomposed relative-position matmuls: each query against every key row, column
    and frame (``_add_rel_pos``)."""
    x, thw = _arg(inputs, kwargs, 0, "x"), _arg(inputs, kwargs, 1, "thw")
    q_thw, k_thw = output[1], _pooled_thw(module.pool_k, thw)
    queries, keys = 1 + math.prod(q_thw), 1 + math.prod(k_thw)
    per_head = 2 * queries * keys
    if module.rel_pos_h is not None:
        per_head += math.prod(q_thw) * sum(k_thw)
    return x.shape[0] * module.num_heads * per_head * module.head_dim


def _macs(module: nn.Module, inputs: tuple, kwargs: dict[str, Any], output: Any) -> int:
    """Multiply-accumulates of one call of ``module`` (see the module docstring)."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    macs = 0
    if isinstance(module, nn.modules.conv._ConvNd):
        # conv: each output value sums (in/groups * kernel) products; transposed conv:
        # each input value is scattered onto (out/groups * kernel) outputs
        scattered = inputs[0] if module.transposed else out
        macs = scattered.numel() * module.weight[0].numel()
    elif isinstance(module, nn.Linear):
        macs = out.numel() * module.in_features
    elif isinstance(module, nn.RNNBase):
        x = _arg(inputs, kwargs, 0, "input")
        if isinstance(x, nn.utils.rnn.PackedSequence):
            steps_batch = x.data.shape[0]
        else:
            steps_batch = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
        h, gates = module.hidden_size, _RNN_GATES[module.mode]
        directions = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            in_size = module.input_size if layer == 0 else h * directions
            macs += directions * steps_batch * gates * h * (in_size + h)
    elif type(module) in _CELL_GATES:
        x = _arg(inputs, kwargs, 0, "input")
        batch = x.shape[0] if x.dim() == 2 else 1
        h = module.hidden_size
        macs = batch * _CELL_GATES[type(module)] * h * (module.input_size + h)
    elif isinstance(module, nn.MultiheadAttention):
        query, key = _arg(inputs, kwargs, 0, "query"), _arg(inputs, kwargs, 1, "key")
        if not module.batch_first and query.dim() == 3:
            query, key = query.transpose(0, 1), key.transpose(0, 1)
        q_len, k_len = query.shape[-2], key.shape[-2]
        batch = query.shape[0] if query.dim() == 3 else 1
        e = module.embed_dim
        projections = q_len * e * e + k_len * (module.kdim + module.vdim) * e + q_len * e * e
        macs = batch * (projections + 2 * q_len * k_len * e)
    elif isinstance(module, MultiscaleAttention):
        macs = _multiscale_attention_macs(module, inputs, kwargs, output)
    if hasattr(module, "extra_macs"):
        macs += int(module.extra_macs(inputs, output))
    return macs


def _opaque(module: nn.Module) -> bool:
    """Modules counted as a whole (their children are not separate rows)."""
    return isinstance(module, nn.MultiheadAttention)


def summarize(model: nn.Module, input_shape: tuple[int, ...] = (3, 16, 112, 112)) -> Summary:
    """Summarise ``model`` on one input of ``input_shape`` (e.g. ``(C, T, H, W)``).

    The forward pass runs on the device of the model's parameters (``meta`` is fine) in
    eval mode without gradients; the model's training flag is restored afterwards.
    """
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    rows: dict[str, LayerSummary] = {}
    handles = []
    skipped: set[str] = set()

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, kwargs: dict[str, Any], output: Any) -> None:
            macs = _macs(module, inputs, kwargs, output)
            if name in rows:  # a module called again (shared ReLU, recurrent cell): add up
                rows[name].macs += macs
                return
            params = sum(p.numel() for p in module.parameters(recurse=_opaque(module)))
            out = output[0] if isinstance(output, (tuple, list)) else output
            shape = tuple(out.shape[1:] if out.dim() > 0 and out.shape[0] == 1 else out.shape)
            same_shape = bool(inputs) and isinstance(inputs[0], torch.Tensor) and inputs[0].shape == out.shape
            if params == 0 and macs == 0 and same_shape:
                return  # activation, dropout, identity: not a row
            rows[name] = LayerSummary(name, type(module).__name__, shape, params, macs)
        return record

    for name, module in model.named_modules():
        if any(name.startswith(s + ".") for s in skipped):
            continue
        if _opaque(module):
            skipped.add(name)
        is_leaf = next(module.children(), None) is None
        has_own = next(module.parameters(recurse=False), None) is not None
        counts_itself = isinstance(module, MultiscaleAttention) or hasattr(module, "extra_macs")
        if is_leaf or has_own or _opaque(module) or counts_itself:
            handles.append(module.register_forward_hook(hook(name or type(model).__name__),
                                                        with_kwargs=True))

    training = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in training.items():
            module.training = flag
    out = output[0] if isinstance(output, (tuple, list)) else output
    params = list(model.parameters())
    layers = list(rows.values())
    return Summary(model=type(model).__name__, input_shape=tuple(input_shape),
                   output_shape=tuple(out.shape[1:]), layers=layers,
                   total_params=sum(p.numel() for p in params),
                   trainable_params=sum(p.numel() for p in params if p.requires_grad),
                   total_macs=sum(layer.macs for layer in layers))


def _si(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return str(value)


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def format_summary(summary: Summary) -> str:
    """A plain-text table of ``summary`` with totals."""
    header = ("Layer", "Type", "Output shape", "Params", "MACs")
    table = [header] + [(row.name, row.type, _shape(row.output_shape), f"{row.params:,}",
                         _si(row.macs) if row.macs else "-") for row in summary.layers]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [f"{summary.model}: input {_shape(summary.input_shape)} -> output "
             f"{_shape(summary.output_shape)}"]
    for i, r in enumerate(table):
        cells = [c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    share = summary.trainable_params / max(summary.total_params, 1)
    lines.append(f"Total params: {summary.total_params:,} (trainable {summary.trainable_params:,}: {share:.1%})")
    lines.append(f"Total MACs per clip: {_si(summary.total_macs)} "
                 f"(convolutions, linear, recurrent and attention matmuls)")
    return "\n".join(lines)
