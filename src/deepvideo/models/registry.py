"""Model registry: ``create_model(name, num_classes, **kw)`` and ``list_models()``.

Every architecture registers one builder with :func:`register_model`.  Builders live in
the modules of :mod:`deepvideo.models`; they are imported on first lookup so that a new
model file needs no edit anywhere else.  A model's ``forward`` takes one video tensor
unless it was registered with ``inputs`` (a two-stream network takes ``(rgb, flow)``);
:func:`model_inputs` tells which.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from typing import Callable, overload

import torch.nn as nn

Builder = Callable[..., nn.Module]
VIDEO_INPUT = ("video",)
_REGISTRY: dict[str, Builder] = {}
_INPUTS: dict[str, tuple[str, ...]] = {}
_NON_MODEL_MODULES = {"registry", "summary", "blocks", "weights"}
_loaded = False


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
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        _REGISTRY[fn.__name__], _INPUTS[fn.__name__] = fn, tuple(inputs)
        return fn

    return register if fn is None else register(fn)


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import deepvideo.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _NON_MODEL_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"deepvideo.models.{info.name}")
    _loaded = True


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def _close(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def model_builder(name: str) -> Builder:
    """The builder registered as ``name``; ``ValueError`` naming a close match if unknown."""
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}{_close(name, list(_REGISTRY))}; "
                         f"see `deepvideo models`")
    return _REGISTRY[name]


def model_inputs(name: str) -> tuple[str, ...]:
    """Names of the tensors model ``name``'s ``forward`` takes: ``("video",)`` for most,
    ``("rgb", "flow")`` for two-stream networks; ``ValueError`` if ``name`` is unknown."""
    model_builder(name)
    return _INPUTS[name]


def create_model(name: str, num_classes: int = 400, **kwargs) -> nn.Module:
    """Build a registered model.  Input and output layouts are in each builder's docstring.

    Raises ``ValueError`` naming a close match for an unknown model name or keyword.
    """
    builder = model_builder(name)
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [p for p in params if p != "num_classes"]
        for key in kwargs:
            if key not in params:
                raise ValueError(f"model {name!r} has no option {key!r}{_close(key, allowed)}; "
                                 f"options: {', '.join(allowed) or 'none'}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return builder(num_classes=num_classes, **kwargs)


def model_doc(name: str) -> str:
    """First line of a model builder's docstring."""
    _load_all()
    doc = inspect.getdoc(_REGISTRY[name]) or ""
    return doc.splitlines()[0] if doc else ""
