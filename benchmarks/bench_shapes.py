"""`archviz shapes specs/alexnet.yaml` against torchinfo's `summary` of the same network, and
against the bare start-up of the libraries it needs (`import typer, rich.console, yaml`).

All three are timed as whole processes (start-up included: that is what a user waits for),
each run in a fresh interpreter, interleaved (baseline, archviz, torchinfo, then again), N
rounds; the figures are medians of the paired comparisons within a round, so a busy machine
slows both sides of a pair alike. Peak memory is the child's maximum resident set size
(os.wait4). The torch side builds the paper's AlexNet by hand (tests/reference_models.py) and
calls ``torchinfo.summary(model, (1, 3, 227, 227))``.

    python benchmarks/bench_shapes.py [--runs 15]

Targets (issue #26, start-up): archviz at most 40 ms more than the bare imports, and at
least 12× faster than torchinfo (issue #2 asked for 10×).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHVIZ = [sys.executable, "-m", "archviz", "shapes", "specs/alexnet.yaml"]
BASELINE = [sys.executable, "-c", "import typer, rich.console, yaml"]
TORCHINFO = [sys.executable, "-c",
             "from tests.reference_models import alexnet; from torchinfo import summary; "
             "summary(alexnet(), input_size=(1, 3, 227, 227), depth=1)"]


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one whole process."""
    # as installed code runs: with its .pyc files (the warm-up run writes them)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "160"
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    import importlib.util

    # find_spec, not import: an imported torch would inflate every child's RSS reading (fork)
    if importlib.util.find_spec("torchinfo") is None:
        raise SystemExit("torchinfo is not installed: pip install torchinfo (or ./install.sh --dev)")
    run(BASELINE), run(ARCHVIZ), run(TORCHINFO)  # warm the file cache and .pyc files
    base, ours, theirs = [], [], []
    for _ in range(args.runs):
        base.append(run(BASELINE))
        ours.append(run(ARCHVIZ))
        theirs.append(run(TORCHINFO))
    z_t = statistics.median(t for t, _ in base)
    a_t = statistics.median(t for t, _ in ours)
    b_t = statistics.median(t for t, _ in theirs)
    extra = statistics.median(a - z for (a, _), (z, _) in zip(ours, base, strict=True))
    ratio = statistics.median(b / a for (a, _), (b, _) in zip(ours, theirs, strict=True))
    a_m = max(m for _, m in ours)
    b_m = max(m for _, m in theirs)
    print(f"runs: {args.runs} each, interleaved; python {sys.version.split()[0]}")
    print(f"import typer, rich.console, yaml      median {z_t * 1000:7.1f} ms")
    print(f"archviz shapes specs/alexnet.yaml     median {a_t * 1000:7.1f} ms   peak RSS {a_m:5d} MiB")
    print(f"torchinfo.summary(AlexNet) process   median {b_t * 1000:7.1f} ms   peak RSS {b_m:5d} MiB")
    print(f"archviz over the bare imports: {extra * 1000:+.1f} ms (median of pairs; target ≤ 40 ms)")
    print(f"speed-up over torchinfo: {ratio:.1f}× (median of pairs; target ≥ 12×)"
          f"   memory: {b_m / a_m:.1f}× less")


if __name__ == "__main__":
    main()
