"""A :class:`~archviz.core.cost.Cost` as a rich table, JSON, CSV or Markdown (reads; computes nothing)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..core.cost import GIB, Cost, LayerCost
from .tables import human
from .text import markdown, safe

SCHEMA_VERSION = 1
COLUMNS = ("layer", "op", "saved_bytes", "params_bytes", "mac_flops", "other_flops", "bytes_moved",
           "bound", "predicted_ms")


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}" if n else "–"


def verdict(c: Cost) -> str:
    """'fits on GeForce GTX 580 3 GB (1.31 of 3.00 GiB per GPU)' or 'does not fit: …'."""
    if c.capacity is None:
        return f"{c.target.name}: memory unknown"
    each = " per GPU" if c.gpus > 1 else ""
    used = f"{c.peak / GIB:.2f} of {c.capacity / GIB:.2f} GiB{each}"
    if c.fits:
        return f"fits on {c.target.name} ({used}); largest batch that fits: {c.largest_batch}"
    if not c.largest_batch:
        return f"does not fit on {c.target.name} ({used}), not even one image"
    return f"does not fit on {c.target.name} ({used}): largest batch that fits is {c.largest_batch}"


def _row(lc: LayerCost) -> list[Any]:
    return [lc.name, lc.op, lc.saved if lc.saved_known else None, lc.params, lc.mac_flops_fwd + 0,
            lc.work_fwd, lc.bytes_fwd + lc.bytes_bwd, lc.bound, lc.time_ms]


def to_dict(c: Cost) -> dict[str, Any]:
    s = c.settings
    t = c.time
    return {
        "schema_version": SCHEMA_VERSION,
        "name": c.name,
        "settings": {"mode": s.mode.value, "batch": s.batch, "dtype": s.dtype.value,
                     "optimizer": s.optimizer.value, "gpus": c.gpus,
                     "lowering": s.lowering.as_dict()},   # the run's; a layer's own lowering: wins
        "device": {"key": c.target.key, "name": c.target.name, "memory_gib": c.target.memory_gib,
                   "bandwidth_gbs": c.target.bandwidth_gbs,
                   "peak_tflops": c.target.tflops(s.dtype), "source": c.target.source,
                   "link": c.target.link.name if c.target.link and c.gpus > 1 else None},
        "memory": c.memory.as_dict() | {"phase": c.memory.phase, "at": c.memory.at},
        "per_gpu": [m.as_dict() for m in c.per_gpu],
        "peak_bytes": c.peak,
        "capacity_bytes": c.capacity,
        "fits": c.fits,
        "largest_batch": c.largest_batch,
        "lower_bound": c.lower_bound,
        "time": None if t is None else {"step_ms": t.step_ms, "compute_ms": t.compute_ms,
                                         "link_ms": t.link_ms, "update_ms": t.update_ms,
                                         "train_flops_per_image": t.train_flops_per_image},
        "layers": [dict(zip(COLUMNS, _row(lc), strict=True)) | {"flops_bwd": lc.flops_bwd,
                                                                 "out_dtype": lc.out_dtype}
                   for lc in c.layers],
    }


def to_json(c: Cost, extra: dict[str, Any] | None = None) -> str:
    return json.dumps(to_dict(c) | (extra or {}), indent=2) + "\n"


def to_csv(c: Cost, extra: dict[str, Any] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for lc in c.layers:
        w.writerow(["" if v is None else v for v in _row(lc)])
    return buf.getvalue()


def to_markdown(c: Cost, extra: dict[str, Any] | None = None) -> str:
    lines = [f"# {markdown(c.name)}: cost at batch {c.settings.batch}, {c.settings.dtype.value},"
             f" {c.settings.mode.value}", "",
             "| layer | op | saved MiB | params MiB | MAC FLOPs | other FLOPs | bytes moved | bound | ms |",
             "|---|---|--:|--:|--:|--:|--:|---|--:|"]
    for lc in c.layers:
        ms = f"{lc.time_ms:.3f}" if lc.time_ms is not None else ""
        lines.append(f"| {markdown(lc.name)} | {lc.op} | {mib(lc.saved)} | {mib(lc.params)}"
                     f" | {human(lc.mac_flops_fwd)} | {human(lc.work_fwd)}"
                     f" | {human(lc.bytes_fwd + lc.bytes_bwd)} | {lc.bound} | {ms} |")
    lines += ["", markdown(verdict(c)), ""]
    return "\n".join(lines) + "\n"


WRITERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}


def cost_view(c: Cost, run: str = "") -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = c.settings
    title = (f"{safe(c.name)}: {s.mode.value}, batch {s.batch}, {s.dtype.value}, {s.optimizer.value}"
             f" on {safe(c.target.name)}" + (f" × {c.gpus}" if c.gpus > 1 else ""))
    table = Table(title=title, title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("saved MiB", "right"), ("params MiB", "right"),
                      ("MAC FLOPs", "right"), ("other FLOPs", "right"), ("bytes moved", "right"),
                      ("bound", "left"), ("ms", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for lc in c.layers:
        table.add_row(safe(lc.name), lc.op, mib(lc.saved) if lc.saved_known else "?", mib(lc.params),
                      human(lc.mac_flops_fwd) if lc.mac_flops_fwd else "–",
                      human(lc.work_fwd) if lc.work_fwd else "–", human(lc.bytes_fwd + lc.bytes_bwd),
                      lc.bound, f"{lc.time_ms:.3f}" if lc.time_ms is not None else "")
    parts: list[Any] = [table]
    mem = Table(title="memory (MiB)" + (" per GPU" if c.gpus > 1 else ""), title_justify="left")
    keys = ("params", "grads", "optimizer", "model_states", "buffers", "input", "saved", "transient",
            "cross", "peak")
    mem.add_column("")
    for k in keys:
        mem.add_column(k, justify="right")
    rows = [("whole model", c.memory)] + ([(f"GPU {i}", m) for i, m in enumerate(c.per_gpu)]
                                          if c.gpus > 1 else [])
    for label, m in rows:
        d = m.as_dict()
        mem.add_row(label, *(mib(d[k]) for k in keys))
    parts.append(mem)
    lines = [verdict(c)]
    if c.memory.phase:
        lines.append(f"the peak: in the {c.memory.phase} step's {safe(c.memory.at)}"
                     " (grads: made by then; saved: activations alive; transient: gradients and buffers)")
    if c.lower_bound:
        lines.append("a layer's saved bytes are unknown (?): the totals are lower bounds")
    if c.time is not None:
        t = c.time
        lines.append(f"step ≥ {t.step_ms:.1f} ms (compute {t.compute_ms:.1f}, cross-GPU {t.link_ms:.1f},"
                     f" optimizer update {t.update_ms:.1f}); roofline lower bound")
    else:
        lines.append(f"no peak FLOP/s or bandwidth for {c.target.name}: no time estimate")
    if run:
        lines.append(run)
    parts.append(Text("\n".join(lines)))
    return Group(*parts)
