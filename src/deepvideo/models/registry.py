"""Model registry: ``create_model(name, num_classes, **kw)`` and ``list_models()``.

Every architecture registers one builder with :func:`register_model` in :data:`MODELS`.
Builders live in the modules of :mod:`deepvideo.models`; they are imported on first lookup
so that a new model file needs no edit anywhere else.  A model's ``forward`` takes one
video tensor unless it was registered with ``inputs`` (a two-stream network takes
``(rgb, flow)``); :func:`model_inputs` tells which.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Callable, overload

import torch.nn as nn

from deepvideo.registry import Registry

Builder = Callable[..., nn.Module]
VIDEO_INPUT = ("video",)
_NON_MODEL_MODULES = {"registry", "summary", "weights"}


def _import_models() -> None:
    import deepvideo.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _NON_MODEL_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"deepvideo.models.{info.name}")


MODELS: Registry[Builder] = Registry("model", load=_import_models)


@overload
def register_model(fn: Builder) -> Builder: ...
@overload
def register_model(*, inputs: tuple[str, ...]) -> Callable[[Builder], Builder]: ...


def register_model(fn: Builder | None = None, *, inputs: tuple[str, ...] = VIDEO_INPUT):
    """Decorator: register ``fn`` under its own name.

    ``@register_model`` for a model whose ``forward`` takes one tensor;
    ``@register_model(inputs=("rgb", "flow"))`` names, in order, the tensors of a model
    that takes several (a two-stream network's ``forward(rgb, flow)``).
    """

    if isinstance(inputs, str) or not inputs or not all(isinstance(name, str) for name in inputs):
        raise ValueError(f"register_model: inputs must be a tuple of tensor names, got {inputs!r}")

    def register(fn: Builder) -> Builder:
        return MODELS.register(fn.__name__, inputs=tuple(inputs))(fn)

    return register if fn is None else register(fn)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(MODELS)


def model_builder(name: str) -> Builder:
    """The builder registered as ``name``; ``ValueError`` naming a close match if unknown."""
    return MODELS.get(name)


def model_inputs(name: str) -> tuple[str, ...]:
    """Names of the tensors model ``name``'s ``forward`` takes: ``("video",)`` for most,
    ``("rgb", "flow")`` for two-stream networks; ``ValueError`` if ``name`` is unknown."""
    return MODELS.info(name)["inputs"]


def create_model(name: str, num_classes: int = 400, **kwargs) -> nn.Module:
    """Build a registered model.  Input and output layouts are in each builder's docstring.

    Raises ``ValueError`` naming a close match for an unknown model name or keyword.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return MODELS.build(name, num_classes=num_classes, **kwargs)


CLASSIFIERS = ("fc", "fc8", "classifier", "head", "heads")


def classifier_attribute(net: nn.Module, name: str = "model") -> str:
    """The attribute of ``net`` holding its final classifier: the first of
    :data:`CLASSIFIERS` that is a module; ``ValueError`` naming ``name`` if none is."""
    for attr in CLASSIFIERS:
        if isinstance(getattr(net, attr, None), nn.Module):
            return attr
    raise ValueError(f"{name} has no classifier to remove (none of {', '.join(CLASSIFIERS)})")


def drop_classifier(net: nn.Module, name: str = "model") -> nn.Module:
    """``net`` with its classifier (:func:`classifier_attribute`) replaced by the identity, in
    place: its output becomes the features the classifier took, ``(B, D)``."""
    setattr(net, classifier_attribute(net, name), nn.Identity())
    return net


def model_doc(name: str) -> str:
    """First line of a model builder's docstring."""
    doc = inspect.getdoc(MODELS.get(name)) or ""
    return doc.splitlines()[0] if doc else ""
