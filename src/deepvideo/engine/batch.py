"""Model inputs and outputs as the training and evaluation loops see them.

A batch's inputs are one tensor ``(B, C, T, H, W)``, or for the ``rgb+flow`` modality a
pair ``(rgb (B, 3, T, H, W), flow (B, 2, L, H, W))`` that a two-input model takes as
``model(rgb, flow)``.  Evaluation batches of several clips or views per video carry a
view axis, ``(B, V, C, T, H, W)`` (each part of a pair alike).  A model returns logits
``(B, K)`` or, for a two-stream network, a
:class:`~deepvideo.models.two_stream.TwoStreamOutput` (per-stream logits and the fused
log-probabilities).

Loss of a two-stream output: the *sum of the two streams' cross-entropies*.  The streams
share no parameter, so each one gets exactly the gradient it would get trained alone, as
Simonyan and Zisserman train them; one loop serves both from the same aligned batches
(only the optimiser's shared settings act on both at once: one learning-rate schedule, and
gradient-norm clipping, ``--clip-grad``, on the norm of both streams' gradients together).
A loss on the fused prediction (``nll_loss(log_probs)``) would instead couple them: once
one stream is confidently right the fused probability is high and the other stream's
gradient fades (scaled by its share of the fused probability of the label), so the
weaker stream stops learning on the videos its partner already gets right.  The fused output is used to predict.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.models.two_stream import TwoStreamOutput

__all__ = ["Inputs", "Output", "STREAMS", "class_probs", "class_scores", "flatten_views", "forward",
           "map_output", "output_loss", "prediction_scores"]

Inputs = torch.Tensor | tuple[torch.Tensor, ...]
Output = torch.Tensor | TwoStreamOutput
STREAMS = ("spatial", "temporal")


def forward(model: nn.Module, inputs: Inputs) -> Output:
    """``model(inputs)``, or ``model(*inputs)`` for a tuple (a two-stream pair)."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def flatten_views(clips: torch.Tensor | Sequence[torch.Tensor]) -> tuple[Inputs, int]:
    """``(B, V, C, T, H, W) -> (B * V, C, T, H, W)`` and ``V`` (1 for 5-D input); a pair's
    parts alike, which must then have the same ``V``."""
    if isinstance(clips, torch.Tensor):
        return (clips.flatten(0, 1), clips.shape[1]) if clips.dim() == 6 else (clips, 1)
    parts = [flatten_views(part) for part in clips]
    views = {v for _, v in parts}
    if len(views) != 1:
        raise ValueError(f"the parts of a clip pair have different numbers of views: {sorted(views)}")
    return tuple(part for part, _ in parts), views.pop()


def map_output(fn: Callable[[torch.Tensor], torch.Tensor], output: Output) -> Output:
    """``fn`` applied to logits, or to each tensor of a :class:`TwoStreamOutput`."""
    return TwoStreamOutput(*map(fn, output)) if isinstance(output, TwoStreamOutput) else fn(output)


def output_loss(output: Output, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of logits ``(N, K)``; of a two-stream output, the sum of the two streams'
    cross-entropies (see the module docstring).  Computed in float32."""
    if isinstance(output, TwoStreamOutput):
        return sum(F.cross_entropy(getattr(output, s).float(), labels, reduction=reduction) for s in STREAMS)
    return F.cross_entropy(output.float(), labels, reduction=reduction)


def class_scores(output: Output) -> dict[str, torch.Tensor]:
    """Scores ``(..., K)`` by name, whose argmax is each prediction: ``""`` the model's (the
    logits, or a two-stream output's fused log-probabilities), plus ``"spatial"`` and
    ``"temporal"`` (each stream's logits) for a two-stream output.  Accuracy counts these
    argmaxes: softmax rounds away logit gaps below float32 resolution and would then tie."""
    if not isinstance(output, TwoStreamOutput):
        return {"": output}
    return {"": output.log_probs, **{s: getattr(output, s) for s in STREAMS}}


def prediction_scores(output: Output) -> torch.Tensor:
    """Scores ``(..., K)`` whose argmax is the prediction: the logits, or the fused log-probabilities."""
    return class_scores(output)[""]


def class_probs(output: Output) -> dict[str, torch.Tensor]:
    """Class probabilities ``(..., K)`` under the names of :func:`class_scores`: the softmax of
    logits, the exponential of the fused log-probabilities."""
    fused = isinstance(output, TwoStreamOutput)
    return {name: scores.exp() if fused and name == "" else F.softmax(scores, dim=-1)
            for name, scores in class_scores(output).items()}
