"""Training-step time of deepvideo's R3D-18, MC3-18 and R(2+1)D-18 against torchvision's.

One step is forward + cross-entropy + backward on a ``(B, 3, T, H, W)`` batch (default
1 x 3 x 16 x 112 x 112), in fp32 and under bf16 or fp16 autocast.  Both implementations carry the
same weights (ours loads torchvision's state_dict) and are timed in the same run,
interleaved (ours, theirs, theirs, ours, ...) so that drifts of a shared machine hit
both alike.  Reports the median of the timed repetitions and the ratio ours / theirs
(target: <= 1.05), and the ratio of the fastest repetitions (noise from other processes
only adds time, so on a shared machine that ratio is the steadier one).

    python benchmarks/resnet_step.py [--warmup 3] [--reps 5] [--precisions fp32,bf16,fp16]
                                     [--batch 1x3x16x112x112] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
from torchvision.models import video as tv

from deepvideo.models import create_model

MODELS = {"r3d_18": tv.r3d_18, "mc3_18": tv.mc3_18, "r2plus1d_18": tv.r2plus1d_18}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtypes


def machine(device: torch.device) -> str:
    """One line naming the processor (and GPU), the OS and the library versions."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu} ({torch.get_num_threads()} torch threads){gpu}; {platform.platform()}; "
            f"torch {torch.__version__}, torchvision {torchvision.__version__}")


def step_seconds(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype | None) -> float:
    """Wall time of one forward + backward."""
    if clips.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(clips.device.type, dtype=dtype, enabled=dtype is not None):
        loss = nn.functional.cross_entropy(model(clips), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    if clips.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(name: str, shape: tuple[int, ...], dtype: torch.dtype | None, warmup: int, reps: int,
            device: torch.device) -> dict[str, list[float]]:
    """Timed step seconds ``{"ours": [...], "theirs": [...]}``, interleaved repetitions."""
    torch.manual_seed(0)
    theirs = MODELS[name]().to(device).train()
    ours = create_model(name, num_classes=400).to(device).train()
    ours.load_state_dict(theirs.state_dict())
    clips = torch.randn(shape, device=device)
    labels = torch.randint(0, 400, (shape[0],), device=device)
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    models = {"ours": ours, "theirs": theirs}
    for i in range(warmup + reps):
        order = ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")
        for key in order:
            seconds = step_seconds(models[key], clips, labels, dtype)
            if i >= warmup:
                times[key].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1x3x16x112x112", help="B x C x T x H x W")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="fp32, bf16 and/or fp16 (autocast; very slow on CPUs without native bf16 / fp16)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = tuple(int(v) for v in args.batch.lower().split("x"))
    print(machine(device))
    print(f"batch {args.batch}, {args.warmup} warm-up + {args.reps} timed steps each, "
          f"interleaved; median seconds per step (forward + backward)")
    print(f"{'model':<12} {'precision':<10} {'deepvideo':>10} {'torchvision':>12} {'ratio':>7} "
          f"{'min ratio':>10}")
    for name in args.models.split(","):
        for precision in args.precisions.split(","):
            times = compare(name, shape, PRECISIONS[precision], args.warmup, args.reps, device)
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["theirs"])
            fastest = min(times["ours"]) / min(times["theirs"])
            print(f"{name:<12} {precision:<10} {ours:>10.3f} {theirs:>12.3f} "
                  f"{ours / theirs:>7.3f} {fastest:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
