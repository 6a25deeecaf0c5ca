"""``archviz bench`` on a terminal: the header lines, the main table, the ratio lines and the
per-layer tables, as rich renderables built from the bench records (no printing here). Every
user-provided string (spec, model and layer names, notes, device names) passes through
:func:`.text.safe`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..core.devices import Dtype
from ..core.flops import Mode
from ..runtime.bench_rows import LayerReport, Ratio, Row, Settings, Status
from .text import safe

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..core.devices import DeviceInfo
    from ..runtime.bench_ddp import DdpResult

MAIN_COLUMNS = ("model", "mode", "dtype", "batch", "ms/batch", "IQR ms", "images/s", "TFLOP/s", "% peak",
                "memory", "predicted MiB", "× roofline", "note")
LAYER_COLUMNS = ("layer", "forward", "backward", "total", "% of sum", "× roofline")


def _markup(text: str) -> Text:
    from rich.text import Text

    return Text.from_markup(text, emoji=False)


def _fmt(v: Optional[float], spec: str) -> str:
    return "—" if v is None else format(v, spec)


def header(name: str, info: DeviceInfo, s: Settings) -> list[Text]:
    """What ran on what: the model, the device and its versions, the settings."""
    versions = f"torch {info.torch}" + (f", CUDA {info.cuda}, driver {info.driver}, cuDNN {info.cudnn}"
                                        if info.kind == "cuda" else f", {info.threads} threads")
    flags = [f for f, on in (("channels-last", s.channels_last), ("compile", s.compile),
                             ("cuda-graphs", s.cuda_graphs)) if on]
    return [_markup(f"[bold]{safe(name)}[/] on {safe(info.name)} ({safe(versions)})"),
            _markup(f"warm-up {s.warmup}, {s.iters} timed iterations per row"
                    + (f"; {', '.join(flags)}" if flags else ""))]


def towers_line(line: str) -> Text:
    return _markup(f"[bold]--split-gpus[/]: {safe(line)}")


def ddp_header(name: str, device: str, n: int, batch: int, dtype: str, warmup: int, iters: int) -> Text:
    backend = "nccl" if device == "cuda" else "gloo"
    return _markup(f"[bold]{safe(name)}[/] data parallel: {n} worker(s) on {device} ({backend}, torchrun),"
                   f" batch {batch} per worker, {dtype}, warm-up {warmup}, {iters} timed DDP training steps")


def ddp_table(result: DdpResult) -> Table:
    """One line per rank of each launch, then the totals and the scaling efficiency."""
    from rich.table import Table

    eff = result.efficiency
    table = Table(title="DDP training step", caption=f"scaling efficiency {result.run.workers} workers vs 1:"
                  f" {100 * eff:.0f}% (total images/s ÷ ({result.run.workers} × one worker's))")
    for col in ("workers", "rank", "device", "ms/step", "images/s"):
        table.add_column(col, justify="left" if col in ("device",) else "right")
    runs = [result.single, result.run] if result.single else [result.run]
    for run in runs:
        for r in run.ranks:
            table.add_row(str(run.workers), str(r.rank), safe(r.device), f"{r.ms_median:.2f}",
                          f"{r.images_per_s:,.1f}")
        table.add_row(str(run.workers), "all", run.backend, "", f"[bold]{run.images_per_s:,.1f}[/]",
                      end_section=True)
    return table


def _mib(n: Optional[int]) -> str:
    """Bytes in MiB: whole MiB, one decimal below 10 MiB (LeNet's step is under 1 MiB)."""
    if n is None:
        return "—"
    return format(n / 2**20, ".1f" if n < 10 * 2**20 else ",.0f")


def calibration(found: dict[Dtype, float | None]) -> Text:
    return _markup("calibrated matmul ceiling: " + ", ".join(
        f"{d.value} {v:.2f} TFLOP/s" if v else f"{d.value} n/a" for d, v in found.items()))


def main_table(rows: list[Row], on_cpu: bool) -> Table:
    """One line per (model, mode, dtype, batch): time, spread, throughput, % of peak, memory."""
    from rich.table import Table

    notes = []
    if on_cpu:
        notes.append("peak RSS: the whole process's resident memory (torch included), not the model's alone")
    if any(r.peak_pct is None and r.status is Status.ok for r in rows):
        notes.append("% peak —: no known peak for this device and dtype; --calibrate measures one")
    notes.append("predicted MiB: archviz cost's peak memory for the step (docs/cost.md); × roofline:"
                 " measured step time / its roofline lower bound (— without a bandwidth and peak for the"
                 " device)")
    table = Table(title="archviz bench", title_justify="left", caption="\n".join(notes),
                  caption_justify="left")
    memory = "peak RSS MiB" if on_cpu else "peak mem MiB"
    for col in MAIN_COLUMNS:
        table.add_column(memory if col == "memory" else col,
                         justify="left" if col in ("model", "mode", "dtype", "note") else "right")
    for r in rows:
        c, ms = r.case, r.ms
        iqr = ms.iqr if ms is not None and ms.n > 1 else None  # one iteration has no spread
        table.add_row(safe(c.model), c.mode.value, c.dtype.value, str(c.batch),
                      _fmt(ms.median if ms else None, ".2f"), _fmt(iqr, ".2f"), _fmt(r.images_per_s, ",.1f"),
                      _fmt(r.tflops, ".3f"), _fmt(r.peak_pct, ".1f"),
                      _fmt(r.memory and r.memory / 2**20, ",.0f"),
                      _mib(r.predicted_memory),
                      _fmt(r.over_roofline, ".1f"),
                      safe(r.note or ("" if r.status is Status.ok else r.status.value)))
    return table


def ratio_line(label: str, q: Ratio) -> Text:
    return _markup(f"{safe(label)} / reference images/s, {q.mode.value} {q.dtype.value}"
                   f" batch {q.batch}: {q.ratio:.3f}×")


def layer_table(row: Row, lr: LayerReport) -> Table:
    """Every leaf module's median forward and backward time, slowest first."""
    from rich.table import Table

    c = row.case
    title = (f"per layer: {safe(c.model)} {c.mode.value} {c.dtype.value} batch {c.batch}"
             " (median ms; eager module, a device synchronise at every hook)")
    table = Table(title=title, title_justify="left")
    for col in LAYER_COLUMNS:
        table.add_column(col, justify="left" if col == "layer" else "right")
    predicted = row.predicted_layers or {}
    for t in lr.layers:
        backward = f"{t.backward_ms:.3f}" if c.mode is Mode.train else "—"
        bound = predicted.get(t.name)
        table.add_row(safe(t.name), f"{t.forward_ms:.3f}", backward,
                      f"{t.total_ms:.3f}", f"{100 * t.total_ms / lr.sum_ms:.1f}" if lr.sum_ms else "—",
                      f"{t.total_ms / bound:.1f}" if bound else "—")
    return table


def layer_verdict(lr: LayerReport) -> Text:
    """Does the sum of the layers' times agree with the whole step timed without hooks?"""
    verdict = "within" if lr.adds_up else "[yellow]OUTSIDE[/]"
    return _markup(f"sum of layers {lr.sum_ms:.2f} ms vs whole step {lr.step_ms:.2f} ms:"
                   f" ratio {lr.ratio:.3f} ({verdict} ±{lr.tolerance:.0%})")


def report(rows: list[Row], label: str, ratios: list[Ratio], interrupted: bool,
           on_cpu: bool) -> list[RenderableType]:
    """Everything after the header, in the order it is printed."""
    out: list[RenderableType] = [main_table(rows, on_cpu)]
    if interrupted:
        out.append(_markup(f"[yellow]interrupted:[/] {len(rows)} finished row(s) kept"))
    out += [ratio_line(label, q) for q in ratios]
    for r in rows:
        if r.layers is not None:
            out += [layer_table(r, r.layers), layer_verdict(r.layers)]
    return out
