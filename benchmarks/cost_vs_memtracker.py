"""`archviz cost`'s training peak against PyTorch's MemTracker, on the CPU under FakeTensorMode.

For every bundled spec × batch × dtype: MemTracker's peak of a second training step (SGD with
momentum by default; zero_grad(set_to_none), forward under CPU autocast for bf16, cross-entropy,
backward, step; tests/memtracker_oracle.py) beside archviz's predicted peak. Prints a Markdown
table; issue 23's target is ±5 %.

    python benchmarks/cost_vs_memtracker.py [--specs alexnet,resnet18] [--batches 32,128]
        [--dtypes fp32,bf16] [--optimizer momentum]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from memtracker_oracle import peak  # noqa: E402

from archviz.core.analysis import analyze  # noqa: E402
from archviz.core.cost import GIB, Optimizer, Settings, estimate, target  # noqa: E402
from archviz.core.devices import Dtype  # noqa: E402
from archviz.spec import bundled, load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default=",".join(bundled.names()))
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--optimizer", default="momentum", choices=[o.value for o in Optimizer])
    args = parser.parse_args()
    print("| model | dtype | batch | archviz GiB | MemTracker GiB | ratio | peak at |")
    print("|---|---|--:|--:|--:|--:|---|")
    worst = 0.0
    for name in args.specs.split(","):
        sp = load(name)
        a = analyze(sp, gpus=1)
        for dt in args.dtypes.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                s = Settings(batch=batch, dtype=Dtype(dt), optimizer=Optimizer(args.optimizer),
                             torch_device="cpu")
                c = estimate(a, s, target("h100"), 1)
                got = peak(sp, batch, dt, args.optimizer).total
                worst = max(worst, abs(c.peak / got - 1))
                print(f"| {name} | {dt} | {batch} | {c.peak / GIB:.3f} | {got / GIB:.3f} | {c.peak / got:.3f}"
                      f" | {c.memory.phase} {c.memory.at} |", flush=True)
    print(f"\nlargest deviation: {worst:.2%}")


if __name__ == "__main__":
    main()
