"""How load + analyse time grows with the size of a spec: 1k, 10k and 100k layers.

Two generated specs per size:

* chain:    conv 3×3 → batchnorm → relu → ... (every layer reads the previous one)
* residual: conv → relu → conv → add(from: [block input, conv]) units, i.e. `from:` edges and merges

For each, the time of ``archviz.spec.loads`` + ``archviz.core.analysis.analyze`` (best of a few
runs), the time per layer, and the ratio against a named peer: PyYAML's ``safe_load`` of the
same text (with libyaml when PyYAML has it), the floor for any tool that reads a YAML spec.
Growth is linear when the time per layer stays flat; the script checks that 10k layers take
under 1 s and that 100k layers take under 15× the time of 10k (10× is linear), and exits 1
otherwise. The checks use CPU time (``time.process_time``: the work is single-threaded, so on
an idle machine it equals wall time, and on a shared one it is not inflated by other
processes); wall time is printed beside it.

The library leaves the garbage collector alone. This script pauses the cyclic collector
(``gc.disable()``) around each timed run, as a program that loads a very large spec may
choose to: loading makes a few hundred thousand small acyclic objects, and the collections
they trigger grow with the heap. It says so in its output; ``--gc`` keeps the collector on
(what a plain ``archviz shapes`` process does) for comparison.

    python benchmarks/bench_scale.py            # 1k, 10k, 100k; gc paused by this script
    python benchmarks/bench_scale.py --gc       # the same with the collector on
    python benchmarks/bench_scale.py --profile  # also the top functions for 100k layers
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

# measure the checkout this script sits in, not whichever archviz the environment installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from archviz.core.analysis import analyze  # noqa: E402
from archviz.spec import loads  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
LIMIT_10K_S = 1.0
MAX_GROWTH = 15.0  # 10× the layers may take at most this many times as long


def chain(n: int) -> str:
    ops = ("{name: c%d, op: conv, out: 16, kernel: 3, padding: 1}",
           "{name: b%d, op: batchnorm}", "{name: r%d, op: relu}")
    lines = ["name: chain", "input: [16, 32, 32]", "layers:"]
    lines += ["  - " + ops[i % 3] % i for i in range(n)]
    return "\n".join(lines) + "\n"


def residual(n: int) -> str:
    lines = ["name: residual", "input: [16, 32, 32]", "layers:", "  - {name: stem, op: relu}"]
    prev = "stem"
    for u in range((n - 1) // 4):
        lines += [f"  - {{name: u{u}.conv1, op: conv, out: 16, kernel: 3, padding: 1, from: {prev}}}",
                  f"  - {{name: u{u}.relu, op: relu}}",
                  f"  - {{name: u{u}.conv2, op: conv, out: 16, kernel: 3, padding: 1}}",
                  f"  - {{name: u{u}.add, op: add, from: [{prev}, u{u}.conv2]}}"]
        prev = f"u{u}.add"
    return "\n".join(lines) + "\n"


PAUSE_GC = True  # main() sets it from --gc


def best(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds), each the best of ``repeats`` runs (gc paused when PAUSE_GC)."""
    cpu, wall = [], []
    for _ in range(repeats):
        gc.collect()
        if PAUSE_GC:
            gc.disable()
        try:
            t, w = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - t)
            wall.append(time.perf_counter() - w)
        finally:
            gc.enable()
    return min(cpu), min(wall)


def run(kind: str, make: Callable[[int], str]) -> dict[int, float]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = {}
    for n in SIZES:
        text = make(n)
        layers = len(loads(text).layers)
        reps = 3 if n <= 10_000 else 1
        ours, wall = best(lambda text=text: analyze(loads(text)), reps)
        peer, _ = best(lambda text=text: yaml.load(text, Loader=loader), reps)  # noqa: S506 (safe loader)
        out[n] = ours
        print(f"{kind:9} {layers:>7,} layers  load+analyse {ours:7.3f} s CPU ({wall:7.3f} s wall)"
              f"  {ours / layers * 1e6:6.1f} µs/layer  yaml.safe_load {peer:7.3f} s"
              f"  ratio {ours / peer:4.2f}×")
    return out


def profile() -> None:
    import cProfile
    import pstats

    text = residual(100_000)
    prof = cProfile.Profile()
    prof.enable()
    analyze(loads(text))
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="profile the 100k residual spec")
    parser.add_argument("--gc", action="store_true",
                        help="keep the garbage collector on while timing (default: this script pauses it)")
    args = parser.parse_args()
    global PAUSE_GC
    PAUSE_GC = not args.gc
    print("garbage collector: " + ("paused by this script around each timed run (gc.disable();"
                                   " archviz itself leaves it alone)" if PAUSE_GC else
                                   "on, as in a plain archviz process (--gc)"))
    ok = True
    for kind, make in (("chain", chain), ("residual", residual)):
        t = run(kind, make)
        growth = t[100_000] / t[10_000]
        fast = t[10_000] < LIMIT_10K_S
        linear = growth < MAX_GROWTH
        ok &= fast and linear
        print(f"{kind:9} 10k under {LIMIT_10K_S:g} s: {'yes' if fast else 'NO'} ({t[10_000]:.3f} s);"
              f" 100k / 10k = {growth:.1f}× (10× is linear): {'ok' if linear else 'NOT LINEAR'}")
    if args.profile:
        profile()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
