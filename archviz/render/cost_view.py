"""A :class:`~archviz.core.cost.Cost` as a rich table, JSON, CSV or Markdown (reads; computes nothing)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..core.cost import GIB, Cost, LayerCost
from ..core.cost_states import Run, fmt_duration
from .tables import human
from .text import markdown, safe

SCHEMA_VERSION = 1
COLUMNS = ("layer", "op", "saved_bytes", "params_bytes", "mac_flops", "other_flops", "bytes_moved",
           "bound", "predicted_ms")


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}" if n else "–"


def verdict(c: Cost) -> str:
    """'fits on H100 SXM: 23.2 of 80.0 GiB, 1.66 GiB kept for the CUDA context and the allocator;
    largest batch that fits: 512' or 'does not fit: …'."""
    if c.capacity is None:
        return f"{c.target.name}: memory unknown"
    each = " per GPU" if c.gpus > 1 else ""
    used = f"{c.peak / GIB:.2f} of {c.capacity / GIB:.2f} GiB{each}"
    if c.kept:
        used += f", {c.kept / GIB:.2f} GiB kept for the CUDA context and the allocator"
    if c.fits:
        return f"fits on {c.target.name}: {used}; largest batch that fits: {c.largest_batch}"
    if not c.largest_batch:
        return f"does not fit on {c.target.name}: {used}; not even one sample"
    return f"does not fit on {c.target.name}: {used}; largest batch that fits is {c.largest_batch}"


def layout(c: Cost) -> str:
    """'tp 2 · dp 4 · pp 1 = 8 GPUs, ZeRO-3' (the header's parallelism)."""
    p, s = c.parallel, c.settings
    zero = f", ZeRO-{s.zero}" if s.zero else ""
    return f"tp {p.tp} · dp {p.dp} · pp {p.pp} = {c.gpus} device{'s' if c.gpus > 1 else ''}{zero}"


def time_line(c: Cost) -> str:
    """The step's roofline bound, or how to get one."""
    if c.time is None:
        if c.target.key == "cpu":
            return ("no time for this CPU yet: `archviz bench --calibrate --device cpu` measures its peak"
                    " FLOP/s and bandwidth, which archviz cost then uses")
        return f"no peak FLOP/s or bandwidth for {c.target.name}: no time estimate"
    t = c.time
    accum = f" over {c.settings.grad_accum} micro-steps" if c.settings.grad_accum > 1 else ""
    pp = f", pipeline {t.pp_ms:.1f}" if c.settings.pp > 1 else ""
    via = "; ".join(f"{k} over {v}" for k, v in t.links.items()
                    if getattr(c.parallel, k) > 1)
    return (f"step ≥ {t.step_ms:.1f} ms{accum} (compute {t.compute_ms:.1f}, tensor-parallel {t.link_ms:.1f},"
            f" data-parallel {t.dp_ms:.1f}{pp}, optimizer update {t.update_ms:.1f}); roofline lower bound,"
            f" links at peak, nothing overlapped" + (f" ({via})" if via else ""))


def run_line(c: Cost, run: Run | None) -> str:
    if run is None:
        return ""
    where = f"{c.gpus} × {c.target.name}"
    if run.seconds is None:
        return f"{run.what}: {run.steps:,} steps of {c.settings.global_batch:,} on {where} (no time model)"
    return (f"{run.what}: {run.steps:,} steps of {c.settings.global_batch:,} ≥ {fmt_duration(run.seconds)}"
            f" on {where}")


def _row(lc: LayerCost) -> list[Any]:
    return [lc.name, lc.op, lc.saved if lc.saved_known else None, lc.params, lc.mac_flops_fwd + 0,
            lc.work_fwd, lc.bytes_fwd + lc.bytes_bwd, lc.bound, lc.time_ms]


def to_dict(c: Cost, run: Run | None = None) -> dict[str, Any]:
    s = c.settings
    t = c.time
    p = c.parallel
    return {
        "schema_version": SCHEMA_VERSION,
        "name": c.name,
        "settings": {"mode": s.mode.value, "batch": s.batch, "dtype": s.dtype.value,
                     "optimizer": s.optimizer.value, "gpus": c.gpus, "tp": p.tp, "dp": p.dp, "pp": p.pp,
                     "zero": s.zero, "precision": s.precision.value, "grad_accum": s.grad_accum,
                     "global_batch": s.global_batch,
                     "lowering": s.lowering.as_dict()},   # the run's; a layer's own lowering: wins
        "device": {"key": c.target.key, "name": c.target.name, "memory_gib": c.target.memory_gib,
                   "bandwidth_gbs": c.target.bandwidth_gbs,
                   "peak_tflops": c.target.tflops(s.dtype), "source": c.target.source,
                   "link": c.target.link.name if c.target.link and c.gpus > 1 else None},
        "memory": c.memory.as_dict() | {"phase": c.memory.phase, "at": c.memory.at},
        "per_gpu": [m.as_dict() | {"phase": m.phase, "at": m.at} for m in c.per_gpu],
        "peak_bytes": c.peak,
        "capacity_bytes": c.capacity,
        "kept_bytes": c.kept,
        "fits": c.fits,
        "largest_batch": c.largest_batch,
        "lower_bound": c.lower_bound,
        "serving": None if c.serving is None else c.serving.as_dict(),
        "time": None if t is None and run is None else
        ({} if t is None else {"step_ms": t.step_ms, "compute_ms": t.compute_ms, "link_ms": t.link_ms,
                               "dp_ms": t.dp_ms, "pp_ms": t.pp_ms, "update_ms": t.update_ms, "links": t.links,
                               "train_flops_per_image": t.train_flops_per_image})
        | ({} if run is None else {"steps": run.steps, "run": run.what, "run_seconds": run.seconds}),
        "layers": [dict(zip(COLUMNS, _row(lc), strict=True)) | {"flops_bwd": lc.flops_bwd,
                                                                 "out_dtype": lc.out_dtype}
                   for lc in c.layers],
    }


def serving_line(c: Cost) -> str:
    """'KV cache: 0.50 GiB per GPU (131,072 bytes a token × 4,096 tokens × batch 1); 496,466
    tokens fit; lower bounds: prefill of 128 tokens 18.8 ms, a decode step 4.95 ms'."""
    v = c.serving
    assert v is not None
    fit = "" if v.tokens_fit is None else f"; {v.tokens_fit:,} cache tokens fit per GPU"
    times = "" if v.decode_ms is None or v.prefill_ms is None else (
        f"; lower bounds: prefill of {v.seq:,} tokens {v.prefill_ms:.3g} ms, a decode step"
        f" {v.decode_ms:.3g} ms (weights + KV read)")
    return (f"KV cache: {v.kv_cache / GIB:.2f} GiB per GPU ({v.kv_bytes_per_token:,} bytes a token ×"
            f" {v.context:,} tokens × batch {v.batch}){fit}{times}")


def to_json(c: Cost, run: Run | None = None) -> str:
    return json.dumps(to_dict(c, run), indent=2) + "\n"


def to_csv(c: Cost, run: Run | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for lc in c.layers:
        w.writerow(["" if v is None else v for v in _row(lc)])
    return buf.getvalue()


def to_markdown(c: Cost, run: Run | None = None) -> str:
    lines = [f"# {markdown(c.name)}: cost at batch {c.settings.batch}, {c.settings.dtype.value},"
             f" {c.settings.mode.value}", "",
             "| layer | op | saved MiB | params MiB | MAC FLOPs | other FLOPs | bytes moved | bound | ms |",
             "|---|---|--:|--:|--:|--:|--:|---|--:|"]
    for lc in c.layers:
        ms = f"{lc.time_ms:.3f}" if lc.time_ms is not None else ""
        lines.append(f"| {markdown(lc.name)} | {lc.op} | {mib(lc.saved)} | {mib(lc.params)}"
                     f" | {human(lc.mac_flops_fwd)} | {human(lc.work_fwd)}"
                     f" | {human(lc.bytes_fwd + lc.bytes_bwd)} | {lc.bound} | {ms} |")
    lines += ["", markdown(verdict(c)), ""] + ([markdown(run_line(c, run)), ""] if run else [])
    return "\n".join(lines) + "\n"


WRITERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}


BREAKDOWN = ("params", "grads", "optimizer", "model_states", "buffers", "input", "saved", "recompute",
             "transient", "cross", "peak")


def peak_line(c: Cost) -> str:
    """Where the peak is and what it holds. Training: the step's moment ('in the backward step's
    h.0.fc2 (…)'); inference: the phase (the prefill, or a decode step with the cache full) and
    its parts in GiB."""
    m = max(c.per_gpu, key=lambda g: g.total)
    if c.settings.mode.value == "train":
        line = (f"the peak: in the {m.phase} step's {safe(m.at)}"
                " (grads: made by then; saved: activations alive; transient: gradients and buffers)")
        if m.recompute:
            line += ("; recompute: the activations recomputed in backward, alive again while their"
                     " layer's backward runs")
        return line
    v = c.serving
    if v is None:
        when = "in the forward pass" + ("" if m.at == "(loss)" else f", at {safe(m.at)}")
    elif m.phase == "prefill":
        when = f"in the prefill of {v.seq:,} token{'s' if v.seq > 1 else ''}"
    else:
        when = f"in a decode step with the cache full ({v.context:,} tokens)"
    parts = [f"weights {m.params / GIB:.2f} GiB"] + ([f"KV cache {m.kv_cache / GIB:.2f} GiB"] if v else [])
    parts.append(f"activations {(m.saved + m.transient) / GIB:.2f} GiB")
    if m.buffers + m.input >= GIB // 200:        # shown where it reaches 0.01 GiB
        parts.append(f"buffers and input {(m.buffers + m.input) / GIB:.2f} GiB")
    return f"the peak: {when}, holding " + " + ".join(parts)


def cost_view(c: Cost, run: Run | None = None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = c.settings
    title = (f"{safe(c.name)}: {s.mode.value}, batch {s.batch}, {s.precision.value} {s.dtype.value},"
             f" {s.optimizer.value} on {safe(c.target.name)}; {layout(c)}")
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
    mem = Table(title="memory (MiB) per GPU: saved = activations, transient = temporaries",
                title_justify="left")
    mem.add_column("")
    for k in BREAKDOWN:
        mem.add_column(k, justify="right")
    rows = ([(f"GPU {i}", m) for i, m in enumerate(c.per_gpu)] if c.parallel.tp > 1
            else [("each GPU", c.memory)])
    for label, m in rows:
        d = m.as_dict()
        mem.add_row(label, *(mib(d[k]) for k in BREAKDOWN))
    lines = [verdict(c)]
    if c.memory.phase:
        lines.append(peak_line(c))
    if s.zero == 3 and c.parallel.dp > 1:
        lines.append("ZeRO-3: transient holds the gathered parameters of the running layer and the next")
    if c.lower_bound:
        lines.append("a layer's saved bytes are unknown (?): the totals are lower bounds")
    lines.append(time_line(c))
    if c.serving is not None:
        lines.append(serving_line(c))
    if run is not None:
        lines.append(run_line(c, run))
    return Group(table, mem, Text("\n".join(lines)))
