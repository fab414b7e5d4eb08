"""Argument types and the one-line error shared by the ``deepvideo`` sub-commands."""

from __future__ import annotations

import argparse
import importlib
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator

EXIT_USAGE = 2


class LibraryNames:
    """The names in ``module.attribute`` (a tuple or registry of the library), imported only
    when argparse checks a value or prints help, so that building the parser does not import
    the library (torch, torchvision, PyAV: seconds).  Options with such choices sit in
    argument groups, whose ``add_argument`` does not format them."""

    def __init__(self, module: str, attribute: str) -> None:
        self.module, self.attribute = module, attribute

    def _names(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.attribute))

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


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


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive number")
nonneg_float = _number(float, lambda v: 0 <= v < math.inf, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
unit_float = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def workers_count(text: str) -> int | str:
    """``auto`` or an integer >= 0 (DataLoader worker processes)."""
    return text if text == "auto" else _number(int, lambda v: v >= 0, "auto or an integer >= 0")(text)


def model_option(text: str) -> tuple[str, Any]:
    """``key=value`` with value parsed as JSON when possible (numbers, lists, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def label_pair(text: str) -> tuple[str, str]:
    """``A:B``: two different class names."""
    first, sep, second = text.partition(":")
    if not sep or not first or not second or first == second:
        raise argparse.ArgumentTypeError(f"expected two different class names as A:B, got {text!r}")
    return first, second


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes joined by x like 3x16x112x112, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 3x16x112x112, got {text!r}")
    return shape


TRAINING_FIELDS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "warmup_epochs", "clip_grad", "seed",
                   "accumulate", "device", "amp", "workers", "prefetch")
WORKERS_HELP = ("DataLoader worker processes, or auto: chosen from the cores and the cache, and printed "
                "(default auto)")
CACHE_HELP = ("decoded-frame cache of the training videos, decoded and resized once (rgb clips): ram (shared "
              "memory), disk (packed raw files in --cache-dir, reused by later runs), none, or auto: ram when "
              "the frames fit in half of the available memory, else none (default auto)")


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache`` and ``--cache-dir`` (:mod:`deepvideo.data.cache`)."""
    group = parser.add_argument_group("decoded-frame cache")
    group.add_argument("--cache", default="auto", choices=("auto", "ram", "disk", "none"), help=CACHE_HELP)
    group.add_argument("--cache-dir", help="folder of --cache disk (default OUT/cache); a folder made with "
                       "another --resize is refused")
    parser.set_defaults(workers="auto")  # their datasets draw each sample from its own seed: any count is exact


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The engine's options (:class:`deepvideo.engine.TrainConfig`); those left out take the
    command's defaults (:func:`train_config`)."""
    group = parser.add_argument_group("optimisation (defaults: the command's, see its docs page)")
    group.add_argument("--epochs", type=positive_int)
    group.add_argument("--batch-size", type=positive_int, help="samples per step and process")
    group.add_argument("--lr", type=positive_float, help="peak learning rate")
    group.add_argument("--optimizer", choices=("adamw", "adam", "sgd"))
    group.add_argument("--weight-decay", type=nonneg_float)
    group.add_argument("--warmup-epochs", type=nonneg_float, help="linear warm-up, then cosine decay")
    group.add_argument("--clip-grad", type=nonneg_float, help="max gradient norm, 0 = off")
    group.add_argument("--seed", type=int)
    group.add_argument("--accumulate", type=positive_int, help="gradient accumulation: batches per optimiser step")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the model: faster steps after a one-time compilation "
                       "that takes minutes on the CPU (worth it only for long runs)")
    group.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across torchrun processes (CUDA only)")
    group = parser.add_argument_group("runtime")
    group.add_argument("--device", help="cpu, cuda, cuda:N or auto (default cpu)")
    group.add_argument("--amp", choices=("none", "bf16", "fp16", "auto"),
                       help="mixed precision, CPU or CUDA (fp16 with gradient scaling; on a CPU only fast "
                       "where it has bf16/fp16 arithmetic; auto: bf16 where the hardware has it, else fp16 "
                       "on CUDA and fp32 on the CPU; default none)")
    group.add_argument("--channels-last", action="store_true",
                       help="channels_last memory layout (faster convolutions on recent CPUs)")
    group.add_argument("--workers", type=workers_count, help="DataLoader worker processes, or auto (chosen from "
                       "the cores, and printed); default 0, auto for commands with --cache")
    group.add_argument("--prefetch", type=positive_int, help="batches each DataLoader worker loads ahead (default 2)")
    group.add_argument("--tensorboard", action="store_true",
                       help="also write the metrics to OUT/tensorboard (pip install 'deepvideo[tensorboard]')")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")


def train_config(args: argparse.Namespace, defaults: Any) -> Any:
    """``defaults`` (a ``TrainConfig``) with the options of :func:`add_training_options` given."""
    from dataclasses import replace

    given = {name: getattr(args, name) for name in TRAINING_FIELDS if getattr(args, name) is not None}
    if "clip_grad" in given:
        given["clip_grad"] = given["clip_grad"] or None
    flags = {name: True for name in ("compile", "sync_bn", "channels_last", "tensorboard") if getattr(args, name)}
    return replace(defaults, **given, **flags)


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint``, ``--backend`` and ``--model``: the network that predict and stream run."""
    parser.add_argument("--checkpoint", type=existing_file, help="a training checkpoint (--backend pytorch)")
    parser.add_argument("--backend", default="pytorch", choices=("pytorch", "onnxruntime", "exported-program"),
                        help="pytorch: the --checkpoint's model; onnxruntime (CPU) or exported-program: the "
                        "--model file of deepvideo export (default %(default)s)")
    parser.add_argument("--model", type=existing_file, metavar="FILE",
                        help="an exported model (.onnx for onnxruntime, .pt2 for exported-program)")


def predict_network(args: argparse.Namespace, device: Any) -> tuple[Any, Any]:
    """The recipe and network of ``--backend``: a checkpoint's model (pytorch) or an exported
    file's (onnxruntime, exported-program; CPU, fp32)."""
    from deepvideo.deploy import load_network

    if args.backend == "pytorch" and (args.model is not None or args.checkpoint is None):
        raise UsageError("--backend pytorch runs a --checkpoint (an exported file is run with "
                         "--backend onnxruntime or exported-program and --model FILE)")
    if args.backend != "pytorch":
        if args.checkpoint is not None or args.model is None:
            raise UsageError(f"--backend {args.backend} runs an exported --model FILE (from deepvideo export), "
                             f"not a --checkpoint")
        if device.type != "cpu" or args.amp != "none":
            raise UsageError(f"--backend {args.backend} runs on the CPU in fp32 (--device cpu, --amp none)")
    try:
        return load_network(args.checkpoint or args.model, args.backend, device)
    except ImportError as exc:  # onnxruntime not installed: one line naming the extra
        raise UsageError(str(exc)) from None
