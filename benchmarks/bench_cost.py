"""`archviz cost alexnet` as a whole process against `archviz shapes alexnet`, and the cost
model on a 10,000-layer spec.

Both commands run in fresh interpreters, interleaved, median of N runs (start-up included:
what a user waits for). Targets (issue 11): cost within 1.2× of shapes; 10k layers < 1 s.

    python benchmarks/bench_cost.py [--runs 11]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = [sys.executable, "-m", "archviz", "shapes", "alexnet"]
COST = [sys.executable, "-m", "archviz", "cost", "alexnet"]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=True, env={"COLUMNS": "160", "PATH": ""})
    return time.perf_counter() - start


def big_spec(n: int) -> str:
    layers = [f"  - {{name: l{i}, op: {'conv' if i % 2 == 0 else 'relu'}"
              + (", out: 8, kernel: 3, padding: 1}" if i % 2 == 0 else "}") for i in range(n)]
    return "name: big\ninput: [8, 16, 16]\nlayers:\n" + "\n".join(layers) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    wall(SHAPES), wall(COST)  # warm the .pyc files
    shapes, cost = [], []
    for _ in range(args.runs):
        shapes.append(wall(SHAPES))
        cost.append(wall(COST))
    s, c = statistics.median(shapes), statistics.median(cost)
    print(f"archviz shapes alexnet: {s:.3f} s, archviz cost alexnet: {c:.3f} s,"
          f" ratio {c / s:.2f} (target ≤ 1.2)")

    import archviz
    from archviz.core.analysis import analyze
    from archviz.core.cost import Settings, estimate, target

    sp = archviz.loads(big_spec(10_000))
    a = analyze(sp)
    gc.collect()
    start = time.perf_counter()
    estimate(a, Settings(batch=128), target("h100"))
    took = time.perf_counter() - start
    print(f"cost model on 10,000 layers (analysis done): {took:.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
