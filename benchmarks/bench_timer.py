"""Does `archviz bench` measure what torch's own timer measures, and is the compiled model as fast
as a hand-written one?

1. Timer agreement: for fixed CPU workloads (the compiled LeNet-5 training at batch 32, the
   compiled AlexNet inferring at batch 4), the median per-batch time of `archviz bench`'s code
   path (archviz.runtime.bench.run_case: warm-up, perf_counter around each iteration) against
   ``torch.utils.benchmark.Timer(...).blocked_autorange()`` on the same step, same thread count.
   Each timer gets the same time budget per round (--seconds, at least ~12 iterations) and
   they take turns going first, over many short rounds (3 × --rounds for LeNet-5), so that
   load from other processes falls on both alike; the ratio of the medians over rounds is printed.
   Target: within 10% (0.90 to 1.10).
2. Compiled vs hand-written: the compiled paper AlexNet (archviz.to_module) beside
   tests/reference_models.py's hand-written AlexNet in the same sweep (interleaved per case, as
   ``archviz bench alexnet --reference tests/reference_models.py:alexnet`` does; which model goes
   first alternates between rounds), infer and train; the median ratio over rounds is printed.
   Target: compiled images/s ≥ 0.98 × the reference's.

    python benchmarks/bench_timer.py [--rounds 9] [--batch 2] [--iters 10] [--seconds 0.4] [--threads 1]

CPU only (it is about the method, not the device). One thread by default: on a small shared
machine a two-thread parallel region waits for its slower thread, which makes both timers'
figures swing far more than the difference under test. Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch.utils import benchmark as tb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archviz  # noqa: E402
from archviz.core.devices import Dtype  # noqa: E402
from archviz.core.flops import Mode  # noqa: E402
from archviz.runtime import bench, steps  # noqa: E402
from archviz.runtime.bench_rows import Case, Settings, Workload, ratios  # noqa: E402
from archviz.runtime.probe import describe  # noqa: E402
from tests.reference_models import alexnet as hand_alexnet  # noqa: E402


def workload(stem: str, label: str | None = None, module: torch.nn.Module | None = None) -> Workload:
    spec = archviz.load(stem)
    a = archviz.analyze(spec)
    return Workload.of(label or spec.name, module or archviz.to_module(spec), a)


def timer_median(work: Workload, case: Case, settings: Settings, seconds: float) -> float:
    """torch.utils.benchmark's median (ms) of the very step archviz bench times."""
    model, x, y = steps.prepare(work, case.batch, settings)
    step = steps.make_step(case.mode, case.dtype, model, x, y, settings)
    timer = tb.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=seconds).median * 1e3


def agreement(stem: str, mode: Mode, batch: int, rounds: int, seconds: float) -> float:
    """Both timers get the same time budget per round, and take turns going first."""
    work = workload(stem)
    case = Case(model=work.label, mode=mode, dtype=Dtype.fp32, batch=batch)
    info = describe("cpu")
    probe = bench.run_case(case, work, Settings(warmup=1, iters=3), info, None)
    assert probe.ms is not None, probe.note
    seconds = max(seconds, 12 * probe.ms.median / 1e3)  # at least ~12 iterations each
    iters = round(seconds * 1e3 / probe.ms.median)
    settings = Settings(batches=(batch,), modes=(mode,), warmup=3, iters=iters)
    ours, theirs = [], []
    for i in range(rounds):
        if i % 2:
            theirs.append(timer_median(work, case, settings, seconds))
        row = bench.run_case(case, work, settings, info, None)
        assert row.ms is not None, row.note
        ours.append(row.ms.median)
        if not i % 2:
            theirs.append(timer_median(work, case, settings, seconds))
    a, t = statistics.median(ours), statistics.median(theirs)
    print(f"{work.label:8} {mode.value:5} batch {batch:3}: archviz bench median {a:8.2f} ms"
          f" ({settings.iters} iters)   Timer.blocked_autorange median {t:8.2f} ms ({seconds:.1f} s)"
          f"   ratio {a / t:.3f} (target 0.90-1.10)")
    return a / t


def compiled_vs_hand(batch: int, rounds: int, iters: int) -> dict[str, float]:
    ours, ref = workload("alexnet"), workload("alexnet", "reference", hand_alexnet())
    settings = Settings(batches=(batch,), modes=(Mode.infer, Mode.train), warmup=2, iters=iters)
    info = describe("cpu")
    per_mode: dict[str, list[float]] = {"infer": [], "train": []}
    for i in range(rounds):
        order = [ours, ref] if i % 2 == 0 else [ref, ours]  # cancel any first-runs-faster bias
        rows = list(bench.sweep(settings, order, info, {}))
        for q in ratios(rows, ours.label, ref.label):
            per_mode[q.mode.value].append(q.ratio)
    out = {m: statistics.median(v) for m, v in per_mode.items() if v}
    for m, r in out.items():
        spread = ", ".join(f"{x:.3f}" for x in per_mode[m])
        print(f"compiled AlexNet / hand-written, {m:5} batch {batch}: {r:.3f}× images/s "
              f"(median of {len(per_mode[m])} rounds: {spread}; target ≥ 0.98)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=2, help="batch of the compiled-vs-hand-written sweep")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per case of that sweep")
    ap.add_argument("--seconds", type=float, default=0.4, help="time budget of each timer per round")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = describe("cpu")
    print(f"{info.name}, torch {info.torch}, {info.threads} threads, python {info.python}")
    timers = [agreement("lenet5", Mode.train, 32, 3 * args.rounds, args.seconds),
              agreement("alexnet", Mode.infer, 4, args.rounds, args.seconds)]
    speed = compiled_vs_hand(args.batch, args.rounds, args.iters)
    ok = all(0.9 <= r <= 1.1 for r in timers) and all(r >= 0.98 for r in speed.values())
    print("all targets met" if ok else "a target was missed")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
