"""Argument types and the one-line error shared by the ``deepvideo`` sub-commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _number(kind: type, accept: Callable[[float], bool], wanted: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` that ``accept`` approves, else a one-line error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_nonneg_float = _number(float, lambda v: v >= 0, "a number >= 0")
_fraction = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
_unit_float = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def _model_option(text: str) -> tuple[str, Any]:
    """``key=value`` with value parsed as JSON when possible (numbers, lists, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes joined by x like 3x16x112x112, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 3x16x112x112, got {text!r}")
    return shape
