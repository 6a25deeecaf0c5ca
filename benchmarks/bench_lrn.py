"""archviz's fast LRN (archviz/runtime/lrn.py) against ``nn.LocalResponseNorm``, same maths.

1. Per layer: the paper AlexNet's norm1 (96, 55, 55) and norm2 (256, 27, 27) at ``--batch``,
   fp32 and bf16 autocast, forward (``torch.no_grad``) and forward + backward, on the CPU and on
   CUDA when there is one. The two are interleaved call by call (order flipped every pair, after a
   warm-up); the ratio is the median over the pairs of torch time / archviz time: above 1 = the
   fast module is faster.
2. Whole model (CUDA only; "no CUDA: skipped" otherwise): images/s of a bf16 autocast training
   step (SGD, cross-entropy) at ``--model-batch`` for the paper AlexNet (specs/alexnet.yaml: LRN,
   grouped convs) lowered with torch's LRN and with archviz's, and for torchvision's ungrouped
   variant without LRN (specs/alexnet-torchvision.yaml), eager and under ``torch.compile``.
   Issue 13's target: the paper AlexNet ≥ 0.8× the torchvision variant's images/s, eager and
   compiled.

    python benchmarks/bench_lrn.py [--batch 32] [--calls 30] [--threads N]
                                   [--model-batch 256] [--steps 30] [--no-compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import archviz  # noqa: E402
from archviz.ops.lowering import Lowering  # noqa: E402
from archviz.runtime import lrn  # noqa: E402

SHAPES = {"norm1": (96, 55, 55), "norm2": (256, 27, 27)}
ARGS = (5, 5e-4, 0.75, 2.0)  # the paper's n = 5, α = 1e-4 (torch's alpha α·n), β, k


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def clock(fn: Callable[[], Any], device: str) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def paired(a: Callable[[], Any], b: Callable[[], Any], device: str, calls: int) -> tuple[float, float, float]:
    """Median a-time, b-time and the median of the per-pair ratios a/b, order flipped each pair."""
    for _ in range(3):
        a(), b()
    ta, tb, r = [], [], []
    for i in range(calls):
        if i % 2:
            y, x = clock(b, device), clock(a, device)
        else:
            x, y = clock(a, device), clock(b, device)
        ta.append(x), tb.append(y), r.append(x / y)
    return statistics.median(ta), statistics.median(tb), statistics.median(r)


def autocast(device: str, bf16: bool) -> AbstractContextManager[Any]:
    return torch.autocast(device, dtype=torch.bfloat16) if bf16 else nullcontext()


def layer_case(device: str, shape: tuple[int, ...], batch: int, bf16: bool, backward: bool,
               calls: int) -> tuple[float, float, float]:
    torch.manual_seed(0)
    dtype = torch.bfloat16 if bf16 else torch.float32  # autocast hands LRN its conv's bf16 output
    x = (torch.randn(batch, *shape, device=device) * 10).to(dtype).requires_grad_(backward)
    g = torch.randn(batch, *shape, device=device).to(dtype)
    theirs, ours = nn.LocalResponseNorm(*ARGS), lrn.LRN(*ARGS)

    def step(m: nn.Module) -> Callable[[], Any]:
        def run() -> None:
            with autocast(device, bf16):
                if backward:
                    m(x).backward(g)
                    x.grad = None
                else:
                    with torch.no_grad():
                        m(x)
        return run
    return paired(step(theirs), step(ours), device, calls)


def layers(device: str, batch: int, calls: int) -> None:
    print(f"\nper layer on {device}, batch {batch}: median ms (torch, archviz), ratio torch/archviz")
    for name, shape in SHAPES.items():
        for bf16 in (False, True):
            for backward in (False, True):
                t, o, r = layer_case(device, shape, batch, bf16, backward, calls)
                what = "fwd+bwd" if backward else "fwd"
                print(f"  {name} {shape} {'bf16' if bf16 else 'fp32'} {what:7}"
                      f"  torch {t * 1e3:8.2f} ms  archviz {o * 1e3:8.2f} ms  ratio {r:5.2f}")


def images_per_s(spec: str, batch: int, steps: int, compiled: bool, lowering: str = "") -> float:
    """Each spec at its own input size (the paper's 227, torchvision's 224); ``lowering`` as
    ``--lowering`` takes it (``lrn=torch``)."""
    model = archviz.to_module(spec, lowering=Lowering.parse(lowering)).cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    fn = torch.compile(model) if compiled else model
    x = torch.randn(batch, *archviz.analyze(spec).input, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(fn(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(5):
        step()
    times = [clock(step, "cuda") for _ in range(steps)]
    return batch / statistics.median(times)


def whole_model(batch: int, steps: int, compiled: bool) -> None:
    if not torch.cuda.is_available():
        print("\nwhole model (paper AlexNet vs torchvision variant, bf16 training): no CUDA: skipped")
        return
    print(f"\nwhole model on {torch.cuda.get_device_name()}, torch {torch.__version__},"
          f" bf16 autocast training, batch {batch}: images/s (median step)")
    modes = (False, True) if compiled else (False,)
    for mode in modes:
        label = "compiled" if mode else "eager"
        tv = images_per_s("alexnet-torchvision", batch, steps, mode)
        before = images_per_s("alexnet", batch, steps, mode, "lrn=torch")
        after = images_per_s("alexnet", batch, steps, mode)
        print(f"  {label:8} torchvision variant {tv:9.0f}   paper AlexNet, torch LRN {before:9.0f}"
              f" ({before / tv:.2f}×)   paper AlexNet, archviz LRN {after:9.0f} ({after / tv:.2f}×)"
              f"   target ≥ 0.80×")
        torch._dynamo.reset()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model-batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--no-compile", action="store_true", help="whole model: eager only")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    layers("cpu", args.batch, args.calls)
    if torch.cuda.is_available():
        layers("cuda", args.batch, args.calls)
    else:
        print("\nper layer on cuda: no CUDA: skipped")
    whole_model(args.model_batch, args.steps, not args.no_compile)


if __name__ == "__main__":
    main()
