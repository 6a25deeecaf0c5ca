"""A 1,000-configuration `archviz cost` sweep (issue 24: under 2 s), against its peer: running
`archviz cost` once per configuration.

The sweep: gpt2 on 5 devices × batch 1..512 (10) × seq 64..1024 (5) × ZeRO 0,1,2,3 (4), 8 GPUs —
1,000 configurations, timed (best of N) in process through the CLI's own path
(archviz.runtime.costing.sweep with the table/CSV's totals) and as one CLI process writing CSV
(start-up included); the JSON, which carries every layer of every row, is timed once beside it.
The peer, one `archviz cost` process per configuration, is timed on a sample of configurations
and scaled to 1,000. Wall and CPU seconds are both printed: on a shared machine the wall clock
includes other processes' time. `accelerate estimate-memory` (Hugging Face) needs the Hub, which
this benchmark does not reach; where `accelerate` is importable its `calculate_maximum_sizes` on a
config-built GPT-2 (empty weights) is timed per configuration instead.

    python benchmarks/bench_sweep.py [--runs 3] [--peer-sample 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = "gpt2"
DEVICES = "a100,h100,gtx580,v100,l4"
OPTIONS = ["--device", DEVICES, "--batch", "1..512", "--seq", "64..1024", "--zero", "0,1,2,3", "--gpus", "8"]
ENV = {"COLUMNS": "160", "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def process(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `python -m archviz ...` process."""
    cpu0, start = child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "archviz", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - start, child_cpu() - cpu0


def in_process(runs: int) -> tuple[float, float, int]:
    from archviz.cli.common import load_analysis
    from archviz.runtime.costing import parse_list, sweep

    keys = ("device", "batch", "seq", "zero", "gpus")
    lists = {k: parse_list(OPTIONS[2 * i + 1], k) for i, k in enumerate(keys)}
    best = (float("inf"), float("inf"), 0)
    for _ in range(runs):       # a fresh analysis each run: nothing kept from the run before
        cpu0, start = time.process_time(), time.perf_counter()
        sw = sweep(load_analysis(SPEC), lists, detail=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        best = min(best, (wall, cpu, len(sw.rows)))
    return best


def peer_configs(n: int) -> list[list[str]]:
    """``n`` single configurations spread over the sweep."""
    import itertools

    from archviz.runtime.costing import parse_list

    grid = list(itertools.product(DEVICES.split(","), parse_list("1..512", "batch"),
                                  parse_list("64..1024", "seq"), range(4)))
    step = max(len(grid) // n, 1)
    return [[SPEC, "--device", d, "--batch", str(b), "--seq", str(s), "--zero", str(z), "--gpus", "8",
             "-f", "csv"] for d, b, s, z in grid[::step][:n]]


def accelerate_peer(n: int) -> str:
    try:
        from accelerate import init_empty_weights
        from accelerate.utils import calculate_maximum_sizes
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as exc:
        return f"accelerate estimate-memory: not measured ({exc.name} is not importable here)"
    start = time.perf_counter()
    for _ in range(n):
        with init_empty_weights():
            model = GPT2LMHeadModel(GPT2Config())
        calculate_maximum_sizes(model)
    per = (time.perf_counter() - start) / n
    return (f"accelerate calculate_maximum_sizes on a config-built GPT-2: {per * 1e3:.1f} ms a configuration,"
            f" {1000 * per:.1f} s for 1,000 (weights only: no batch, sequence or ZeRO)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-sample", type=int, default=10)
    args = parser.parse_args()
    wall, cpu, n = in_process(args.runs)
    print(f"in process: {n} configurations in {wall:.3f} s wall, {cpu:.3f} s CPU (best of {args.runs});"
          f" {n / wall:,.0f} configurations/s")
    with tempfile.TemporaryDirectory() as tmp:
        csv_out, json_out = str(Path(tmp) / "sweep.csv"), str(Path(tmp) / "sweep.json")
        process(["cost", SPEC, *OPTIONS, "-o", csv_out])          # warm the .pyc files
        cli = min(process(["cost", SPEC, *OPTIONS, "-o", csv_out]) for _ in range(args.runs))
        rows = sum(1 for _ in open(csv_out)) - 1
        js = process(["cost", SPEC, *OPTIONS, "-o", json_out])
        size = Path(json_out).stat().st_size
    print(f"one CLI process (CSV, start-up included): {rows} configurations in {cli[0]:.3f} s wall,"
          f" {cli[1]:.3f} s CPU; {rows / cli[0]:,.0f} configurations/s (target: 1,000 in < 2 s)")
    print(f"  the same as JSON (every layer of every row, {size / 2**20:.0f} MiB): {js[0]:.3f} s wall,"
          f" {js[1]:.3f} s CPU")
    peer = [process(["cost", *c]) for c in peer_configs(args.peer_sample)]
    pw, pc = sum(w for w, _ in peer) / len(peer), sum(c for _, c in peer) / len(peer)
    print(f"peer, `archviz cost` once per configuration: {pw:.3f} s wall, {pc:.3f} s CPU a process"
          f" (mean of {len(peer)}); 1,000 processes ≈ {1000 * pw:.0f} s wall")
    print(f"ratio: the sweep in one process is {rows * pw / cli[0]:,.0f}× faster than"
          f" {rows} processes (wall), {rows * pc / cli[1]:,.0f}× (CPU)")
    print(accelerate_peer(args.peer_sample))


if __name__ == "__main__":
    main()
