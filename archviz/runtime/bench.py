"""nn.Module → benchmark rows: the plan of a sweep, its groups timed interleaved, the figures.

Method (docs/benchmarks.md says the same at more length):

* one *case* = (model, mode, dtype, batch). Each is warmed up, then timed ``iters`` times
  (:mod:`.timing`); the step it runs is built by :mod:`.steps`.
* FLOPs come from the analysis (:mod:`archviz.core.flops`), never from timing.
* ``--layers`` adds per-layer times (:mod:`.bench_layers`); the records and their JSON are in
  :mod:`.bench_rows`.

A failure stays in its row (out of memory, an unsupported dtype, any other error): the sweep
goes on.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from typing import Any

import torch
from torch import nn

from ..core import devices
from ..core.analysis import Analysis
from ..core.devices import Dtype
from ..core.flops import Mode
from ..record import record
from . import probe, steps
from .bench_layers import time_layers
from .bench_rows import BenchResult, Case, LayerReport, Peaks, Row, Settings, Status, Workload
from .timing import Stats, time_iterations


@record(kw_only=True)
class Prepared:
    """A case ready to time: its step, warmed up, and what the per-layer times need."""

    step: Callable[[], None]
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor


def plan(settings: Settings, workloads: list[Workload]) -> list[Case]:
    """Every case of the sweep, models interleaved so that a ratio compares like with like."""
    return [Case(model=w.label, mode=mode, dtype=dtype, batch=batch)
            for mode in settings.modes for dtype in settings.dtypes
            for batch in settings.batches for w in workloads]


def sweep(settings: Settings, workloads: list[Workload], info: devices.DeviceInfo,
          peaks: dict[Dtype, float | None]) -> Iterator[Row]:
    """Yield one row per case; Ctrl-C propagates between (or inside) groups, the rows so far kept."""
    by_label = {w.label: w for w in workloads}
    cases = plan(settings, workloads)
    with steps.backend(settings.device):
        for i in range(0, len(cases), len(workloads)):
            group = cases[i:i + len(workloads)]
            yield from run_group(group, [by_label[c.model] for c in group], settings, info,
                                 peaks.get(group[0].dtype))


def run_case(case: Case, work: Workload, settings: Settings, info: devices.DeviceInfo,
             peak: float | None) -> Row:
    return run_group([case], [work], settings, info, peak)[0]


def run_group(cases: list[Case], works: list[Workload], settings: Settings, info: devices.DeviceInfo,
              peak: float | None) -> list[Row]:
    """Time cases that differ only in the model, their iterations interleaved (A, B, A, B, ...)
    so that a ratio between them is not skewed by drift; a failure ends only its own row."""
    why = probe.dtype_support(info, cases[0].dtype.value)
    if why:
        return [Row(case=c, status=Status.unsupported, note=why) for c in cases]
    done: dict[Case, Row] = {}
    try:
        with ExitStack() as stack:
            ready = _ready(cases, works, settings, stack, done)
            # after the warm-up: the peak of the timed steps, not of compiling or autotuning
            probe.reset_peak_memory(settings.device)
            samples = _interleaved(ready, settings, done)
            memory, kind = probe.peak_memory(settings.device)
            for case, work in zip(cases, works, strict=True):
                if case in samples:
                    finish = partial(_finish, case, work, ready[case], Stats.of(samples[case]),
                                     settings, peak, memory, kind)
                    done[case] = _guard(case, finish)
    finally:
        steps.free(settings.device)
    return [done[c] for c in cases]


def _guard(case: Case, fn: Callable[[], Row]) -> Row:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a failure stays in its row
        return failed_row(case, exc)


def _ready(cases: list[Case], works: list[Workload], settings: Settings, stack: ExitStack,
           done: dict[Case, Row]) -> dict[Case, Prepared]:
    """Model, input and step of every case, warmed up; a case that fails gets its row in ``done``."""
    ready: dict[Case, Prepared] = {}
    for case, work in zip(cases, works, strict=True):
        refused = _over_memory(case, work, settings)
        if refused is not None:
            done[case] = refused
            continue
        try:
            steps.set_precision(case.dtype)
            model, x, y = steps.prepare(work, case.batch, settings)
            stack.enter_context(steps.restored(model, case.mode is Mode.train))
            step = steps.make_step(case.mode, case.dtype, model, x, y, settings)
            time_iterations(step, settings.warmup, 0, settings.device)
            ready[case] = Prepared(step=step, model=model, x=x, y=y)
        except Exception as exc:  # noqa: BLE001 - a failure stays in its row
            done[case] = failed_row(case, exc)
    return ready


def _over_memory(case: Case, work: Workload, settings: Settings) -> Row | None:
    """The memory guard before a case allocates: weights, buffers and activations at its batch
    (twice the activations for training) against ``settings.max_bytes`` or 80% of what the
    device has available; above it, an ``oom`` row that says so, and nothing is allocated."""
    if work.analysis is None:
        return None
    from .compile import bytes_needed, fmt_bytes, memory_limit

    need = bytes_needed(work.analysis, case.batch, training=case.mode is Mode.train)
    limit = memory_limit(settings.max_bytes, settings.device)
    if need <= limit:
        return None
    what = "--max-memory" if settings.max_bytes is not None else "80% of the available memory"
    return Row(case=case, status=Status.oom,
               note=f"out of memory at batch {case.batch}: needs {fmt_bytes(need)}, more than {what}"
                    f" ({fmt_bytes(limit)}); refused before allocating")


def _interleaved(ready: dict[Case, Prepared], settings: Settings,
                 done: dict[Case, Row]) -> dict[Case, list[float]]:
    samples: dict[Case, list[float]] = {c: [] for c in ready}
    for _ in range(settings.iters):
        for case in list(samples):
            try:
                samples[case] += time_iterations(ready[case].step, 0, 1, settings.device)
            except Exception as exc:  # noqa: BLE001 - a failure stays in its row
                done[case] = failed_row(case, exc)
                del samples[case]
    return samples


def _finish(case: Case, work: Workload, p: Prepared, stats: Stats, settings: Settings,
            peak: float | None, memory: int | None, kind: str) -> Row:
    layers = time_layers(case, p.model, p.x, p.y, settings, stats.median) if settings.layers else None
    return figures(case, work, stats, peak=peak, memory=memory, memory_kind=kind, layers=layers)


def figures(case: Case, work: Workload, stats: Stats, *, peak: float | None, memory: int | None,
            memory_kind: str, layers: LayerReport | None = None) -> Row:
    """A finished row: images/s and TFLOP/s from the median step and the analysis's FLOPs."""
    seconds = stats.median / 1e3
    tflops = work.flops.per_image(case.mode) * case.batch / seconds / 1e12
    predicted, predicted_ms, per_layer = (work.predict(case.mode, case.dtype, case.batch) if work.predict
                                          else (None, None, None))
    return Row(case=case, status=Status.ok, ms=stats, images_per_s=case.batch / seconds, tflops=tflops,
               peak_tflops=peak, peak_pct=100 * tflops / peak if peak else None, memory=memory,
               memory_kind=memory_kind, predicted_memory=predicted, predicted_ms=predicted_ms,
               predicted_layers=per_layer, layers=layers)


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def failed_row(case: Case, exc: BaseException) -> Row:
    if is_oom(exc):
        return Row(case=case, status=Status.oom, note=f"out of memory at batch {case.batch}")
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return Row(case=case, status=Status.error, note=f"{type(exc).__name__}: {first}")


def calibrate(device: str, dtypes: tuple[Dtype, ...], info: devices.DeviceInfo,
              size: int | None = None, iters: int = 10) -> dict[Dtype, float | None]:
    """This device's matmul ceiling per dtype (TFLOP/s): a large square matmul, median time."""
    n = size or (8192 if device == "cuda" else 1024)
    out: dict[Dtype, float | None] = {}
    with steps.backend(device):
        for dtype in dtypes:
            if probe.dtype_support(info, dtype.value):
                out[dtype] = None
                continue
            steps.set_precision(dtype)
            ms = _matmul_ms(n, steps.AUTOCAST.get(dtype, torch.float32), device, iters)
            out[dtype] = 2 * n**3 / (ms / 1e3) / 1e12  # an n×n×n matmul: n³ MACs
            steps.free(device)
    return out


def bandwidth(device: str, mib: int | None = None, iters: int = 10) -> float:
    """This device's memory bandwidth (GB/s): copying a buffer far larger than the caches reads
    it and writes it (2 × its bytes), median time (as STREAM's Copy)."""
    n = (mib or (1024 if device == "cuda" else 256)) * 2**20 // 4
    with steps.backend(device):
        a = torch.empty(n, device=device).fill_(1.0)
        b = torch.empty_like(a)
        ms = statistics.median(time_iterations(partial(b.copy_, a), 2, iters, device))
        del a, b
        steps.free(device)
    return 2 * n * 4 / (ms / 1e3) / 1e9


def _matmul_ms(n: int, dtype: torch.dtype, device: str, iters: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return statistics.median(time_iterations(partial(torch.mm, a, b), 3, iters, device))


def peaks(info: devices.DeviceInfo, dtypes: tuple[Dtype, ...],
          calibrated: dict[Dtype, float | None] | None) -> Peaks:
    """The peak each dtype's % is taken against, where it comes from, and the table's figure."""
    row = devices.lookup(info.name) if info.kind == "cuda" else None
    table = {d: row.get(d.value) if row else None for d in dtypes}
    if calibrated is not None:
        return Peaks(tflops=dict(calibrated), source="calibrated (measured matmul ceiling)",
                     calibrated=calibrated, table=table)
    if row is None:
        return Peaks(tflops={d: None for d in dtypes}, table=table,
                     source="none (device not in the table; use --calibrate)")
    return Peaks(tflops=dict(table), source=f"table: {row.name} ({row.source})", table=table)


def measure(a: Analysis, settings: Settings, works: list[Workload], info: devices.DeviceInfo, peaks: Peaks,
            on_row: Callable[[Row], None] | None = None) -> BenchResult:
    """The whole sweep as a :class:`BenchResult` (``archviz bench`` and ``archviz.bench``);
    ``on_row`` sees each row as it finishes (a progress bar). Ctrl-C keeps the finished rows
    (``interrupted``)."""
    from .. import __version__

    rows: list[Row] = []
    interrupted = False
    try:
        for row in sweep(settings, works, info, peaks.tflops):
            rows.append(row)
            if on_row is not None:
                on_row(row)
    except KeyboardInterrupt:
        interrupted = True
    return BenchResult(archviz=__version__, spec_name=a.name, spec_path=a.path, input=a.input, device=info,
                       settings=settings, peaks=peaks, works=tuple(works), rows=tuple(rows),
                       interrupted=interrupted)


def predictor(a: Analysis, info: devices.DeviceInfo, lower: Any) -> Any:
    """archviz cost's (peak bytes, roofline ms) for a case on this device; the bench's step is
    SGD with momentum on one device."""
    from ..core.cost import Optimizer, Target, estimate, target
    from ..core.cost import Settings as CostSettings

    row = devices.lookup(info.name) if info.kind == "cuda" else None
    where = target(row.key) if row else Target(info.kind, info.name, info.memory_gib, None, None, None, "")

    def predict(mode: Mode, dtype: Dtype, batch: int) -> tuple[int, float | None, Any]:
        settings = CostSettings(mode=mode, batch=batch, dtype=dtype, optimizer=Optimizer.momentum,
                                torch_device="cuda" if info.kind == "cuda" else "cpu", lowering=lower)
        c = estimate(a, settings, where, 1)
        if c.time is None:
            return c.peak, None, None
        return c.peak, c.time.step_ms, {lc.name: lc.time_ms for lc in c.layers if lc.time_ms is not None}

    return predict
