"""The compiled AlexNet (`archviz.to_module("alexnet")`) against the hand-written one
(tests/reference_models.py, an ``nn.Sequential`` with the same layers), on the CPU.

* build: constructing the module from nothing (archviz: reading the YAML, analysing it,
  generating the torch.fx forward; both: allocating and initialising 61M parameters), the two
  interleaved over ``--rounds`` rounds;
* forward: one forward pass of the same batch, eval mode, ``torch.no_grad``, the same weights,
  the two interleaved call by call (``--calls`` each, order flipped every pair, after a warm-up).

The ratio is the median, over the back-to-back pairs, of hand-written time / compiled time:
1.0 = as fast, above 1 = the compiled one is faster (each side's median time and the ratio of
the medians are printed beside it). Target (issue #4): ≥ 0.98 for the forward pass. With
``--resnet`` the forward comparison is repeated for ResNet-18 (a graph spec with residual adds)
against the hand-written torchvision-style ResNet-18 in tests/reference_classic.py.

    python benchmarks/bench_compile.py [--batch 8] [--calls 40] [--rounds 7] [--threads N] [--resnet]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import archviz  # noqa: E402
from tests.reference_models import alexnet as hand_alexnet  # noqa: E402


def build_times(rounds: int) -> tuple[list[float], list[float]]:
    ours, theirs = [], []
    for i in range(rounds):
        pairs = [(lambda: archviz.to_module("alexnet"), ours), (hand_alexnet, theirs)]
        for make, sink in pairs if i % 2 == 0 else pairs[::-1]:
            start = time.perf_counter()
            make()
            sink.append(time.perf_counter() - start)
    return ours, theirs


def forward_times(compiled: torch.nn.Module, hand: torch.nn.Module, x: torch.Tensor,
                  calls: int) -> tuple[list[float], list[float]]:
    """``calls`` forward passes of each, interleaved one by one (the order flipped every pair),
    after a warm-up; same weights, eval mode, no_grad."""
    compiled.load_state_dict(hand.state_dict())
    compiled.eval()
    hand.eval()
    ours, theirs = [], []
    with torch.no_grad():
        assert torch.allclose(compiled(x), hand(x), atol=1e-5)  # the same function, really
        for _ in range(3):
            compiled(x), hand(x)
        for i in range(calls):
            pairs = [(compiled, ours), (hand, theirs)]
            for model, sink in pairs if i % 2 == 0 else pairs[::-1]:
                start = time.perf_counter()
                model(x)
                sink.append(time.perf_counter() - start)
    return ours, theirs


def report(what: str, ours: list[float], theirs: list[float], unit: Callable[[float], str]) -> float:
    """The ratio is the median of the per-pair ratios (hand-written / compiled, measured back to
    back, so a slow spell of a shared machine hits both sides of a pair); the medians of the
    times themselves are printed beside it."""
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = statistics.median(t / o for o, t in zip(ours, theirs, strict=True))
    print(f"{what:26} compiled {unit(a):>9}  hand-written {unit(b):>9}  ratio {ratio:.3f}"
          f"  (ratio of the medians {b / a:.3f}; {len(ours)} samples each)")
    return ratio


def ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=40, help="forward passes of each model")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--resnet", action="store_true", help="also ResNet-18 against its hand-written model")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, batch {args.batch}")
    build = report("AlexNet build", *build_times(args.rounds), ms)
    x = torch.randn(args.batch, 3, 227, 227)
    fwd = report("AlexNet forward", *forward_times(archviz.to_module("alexnet"), hand_alexnet(), x,
                                                   args.calls), ms)
    if args.resnet:
        from tests.reference_classic import resnet18

        x = torch.randn(args.batch, 3, 224, 224)
        report("ResNet-18 forward (graph)", *forward_times(archviz.to_module("resnet18"), resnet18(), x,
                                                           args.calls), ms)
    verdict = "meets" if fwd >= 0.98 else "misses"
    print(f"forward ratio {fwd:.3f} {verdict} the target ≥ 0.98; build ratio {build:.3f}")


if __name__ == "__main__":
    main()
