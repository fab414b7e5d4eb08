"""Model registry: ``create_model(name, num_classes, **kw)`` and ``list_models()``.

Every architecture registers one builder with :func:`register_model` in :data:`MODELS`.
Builders live in the modules of :mod:`deepvideo.models`; they are imported on first lookup
so that a new model file needs no edit anywhere else.  A model's ``forward`` takes one
video tensor unless it was registered with ``inputs`` (a two-stream network takes
``(rgb, flow)``); :func:`model_inputs` tells which.

Model options (``--model-opt key=value``, a recipe's ``model_kwargs``) are checked before
anything is built (:func:`check_model_options`): against the builder's signature and type
annotations (``bool`` is not an ``int``; JSON lists stand for tuples and sequences), then by
one rule on numbers: an integer option, or an integer in a list, is a size, count, length,
stride, kernel or stage number and must be positive; a number must be finite, in [0, 1) if
its name contains "drop" or "prob" (a probability), else positive.  :func:`create_model` then
builds the model on the meta device and refuses one with more than :data:`MAX_PARAMETERS`
parameters and buffers before allocating any memory.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import pkgutil
import reprlib
import types
import warnings
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, Callable, Literal, Union, get_args, get_origin, get_type_hints, overload

import torch
import torch.nn as nn

from deepvideo.registry import Registry

Builder = Callable[..., nn.Module]
VIDEO_INPUT = ("video",)
_NON_MODEL_MODULES = {"registry", "summary", "weights"}
MAX_PARAMETERS = 2_000_000_000  # parameters and buffers of one model: 8 GB in float32
_PROBABILITY_WORDS = ("drop", "prob")
_SEQUENCES = (list, tuple, Sequence)
_PLURALS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


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


def create_model(name: str, num_classes: int = 400, **kwargs: Any) -> nn.Module:
    """Build a registered model.  Input and output layouts are in each builder's docstring.

    Raises ``ValueError`` naming a close match for an unknown model name or keyword, for an
    option of the wrong type or range (:func:`check_model_options`) and for a model of more
    than :data:`MAX_PARAMETERS` parameters and buffers, counted on the meta device before
    anything is allocated (under ``torch.device("meta")`` nothing is, and no limit applies).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    check_model_options(name, kwargs)
    if torch.get_default_device().type != "meta":
        count = _meta_size(name, num_classes, kwargs)
        if count > MAX_PARAMETERS:
            raise ValueError(f"{name}: {count:,} parameters and buffers{_with(kwargs)}, over the limit "
                             f"of {MAX_PARAMETERS:,}")
    return MODELS.build(name, num_classes=num_classes, **kwargs)


def check_model_options(name: str, options: Mapping[str, Any]) -> None:
    """``ValueError`` naming the model and the option unless every one of ``options`` is a
    keyword of model ``name``'s builder (not ``num_classes``: the data sets it) whose value
    fits its type annotation and the rule on numbers of this module's docstring."""
    builder = MODELS.get(name)
    if "num_classes" in options:
        raise ValueError(f"{name}: num_classes={reprlib.repr(options['num_classes'])} is not a model option: "
                         f"the classes of the data set it")
    hints = get_type_hints(builder.__init__ if isinstance(builder, type) else builder)
    for key, value in options.items():
        hint = hints.get(key, Any)  # an unknown key: MODELS.check names it below
        if not type_matches(value, hint):
            raise ValueError(f"{name}: model option {key}={reprlib.repr(value)}: expected {describe_type(hint)}")
        problem = _out_of_range(key, value, hint)
        if problem:
            raise ValueError(f"{name}: model option {key}={reprlib.repr(value)}: {problem}")
    MODELS.check(name, {"num_classes": 1, **options}, set_by_caller=("num_classes",))


def type_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as JSON or ``torch.load`` gives it) fits the annotation ``hint``:
    ``int``, ``float`` (an integer too), ``bool``, ``str``, paths (a string too), ``None``,
    unions, ``Literal``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]`` and ``Sequence[X]``
    (a list or a tuple), ``dict[K, V]``; anything else (``Any``) fits."""
    if hint is Any:
        return True
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(type_matches(value, arg) for arg in args)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    if origin in _SEQUENCES:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(type_matches, value, args))
        return all(type_matches(item, args[0]) for item in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(type_matches(k, args[0]) and type_matches(v, args[1])
                                               for k, v in value.items())
    if hint in (None, type(None)):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, hint) if isinstance(hint, type) else True


def describe_type(hint: Any) -> str:
    """The annotation ``hint`` in words: ``tuple[int, ...]`` is "a list of integers"."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        *others, last = map(describe_type, args)
        return f"{', '.join(others)} or {last}"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in _SEQUENCES and args:
        if origin is tuple and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"a list of {len(args)} {_plural(args[0])}"
            return f"a list [{', '.join(map(describe_type, args))}]"
        return f"a list of {_plural(args[0])}"
    if origin is dict:
        return "a dict"
    if hint in (None, type(None)):
        return "none"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return "a path"
    return getattr(hint, "__name__", str(hint))


def _plural(hint: Any) -> str:
    """Many values of the annotation ``hint``, in words: "integers", "lists of 2 strings"."""
    if hint in _PLURALS:
        return _PLURALS[hint]
    words = describe_type(hint)
    return "lists" + words.removeprefix("a list") if words.startswith("a list") else f"values ({words})"


def _out_of_range(key: str, value: Any, hint: Any) -> str | None:
    """What breaks the rule on numbers in ``value`` (which fits ``hint``), or ``None``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _out_of_range(key, value, next(arg for arg in args if type_matches(value, arg)))
    if origin in _SEQUENCES and args:
        items = args if origin is tuple and args[-1] is not Ellipsis else [args[0]] * len(value)
        return next(filter(None, (_out_of_range(key, v, h) for v, h in zip(value, items))), None)
    if hint is int and value < 1:
        return "sizes and counts must be positive integers"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if hint is float and any(word in key for word in _PROBABILITY_WORDS):
        return None if 0 <= value < 1 else "a probability must be in [0, 1)"
    if hint is float and value <= 0:
        return "must be positive"
    return None


def _meta_size(name: str, num_classes: int, options: Mapping[str, Any]) -> int:
    """Parameters and buffers of model ``name``, built on the meta device (no memory); a
    builder's error other than ``ValueError`` (a size torch cannot hold) as ``ValueError``."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loading weights into meta tensors warns once per tensor
        try:
            model = MODELS.build(name, num_classes=num_classes, **options)
        except (RuntimeError, OverflowError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"{name}: cannot be built{_with(options)} ({first})") from None
    return sum(t.numel() for t in chain(model.parameters(), model.buffers()))


def _with(options: Mapping[str, Any]) -> str:
    """Options as `` with key=value, ...`` for a message (long values shortened); "" without any."""
    return " with " + ", ".join(f"{k}={reprlib.repr(v)}" for k, v in options.items()) if options else ""


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
