"""Analysis → a rich table, JSON, CSV or Markdown. Reads an Analysis; computes nothing new."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from ..core.analysis import Analysis, LayerStats
from ..ops import fmt_dims as _dims
from ..ops import fmt_shape
from ..ops.dtypes import is_integer
from ..ops.dtypes import note as dtype_note
from .text import markdown, safe, strip_control

if TYPE_CHECKING:  # pragma: no cover
    from ..core.check import CheckResult  # not imported by `archviz shapes`

SCHEMA_VERSION = 1  # of every JSON output; raised when a key changes meaning or goes away


def _n(x: int) -> str:
    return f"{x:,}" if x else "–"


def human(x: float) -> str:
    """60965224 → '61.0M'."""
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:g}"


def _pairs(v: tuple[int | float, int | float] | None) -> list[int | float] | None:
    return None if v is None else list(v)


def rf_text(s: LayerStats) -> str:
    """The receptive field size for tables: ``195``, ``195×163``; ``all`` for vector layers."""
    if s.rf is None:
        return ""
    if s.rf_jump is None:
        return "all"
    return f"{s.rf[0]:g}" if s.rf[0] == s.rf[1] else f"{s.rf[0]:g}×{s.rf[1]:g}"


def _csv_pair(v: tuple[int | float, int | float] | None) -> str:
    return "" if v is None else f"{v[0]:g}×{v[1]:g}"


def to_dict(a: Analysis) -> dict[str, Any]:
    """The JSON layout documented in the README (shapes as lists of ints; ``input_dtype`` and a
    layer's ``output_dtype`` only where they are integers: token ids)."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": a.name,
        "source": a.source,
        "input": list(a.input),
        **({"input_dtype": a.input_dtype} if is_integer(a.input_dtype) else {}),
        "layers": [_layer_dict(s) for s in a.layers],
        "totals": {"params": a.totals.params, "buffers": a.totals.buffers,
                   "neurons": a.totals.neurons, "activations": a.totals.activations,
                   "macs": a.totals.macs, "flops": a.totals.flops},
        "warnings": [f"{layer}: {msg}" for layer, msg in a.warnings],
        "accepted": [f"{layer}: {msg}" for layer, msg in a.accepted],
    }
    if a.split is not None:
        out["gpus"] = {
            "count": a.split.gpus,
            "lanes": [{"gpu": ln.gpu, "params": ln.params, "macs": ln.macs, "neurons": ln.neurons,
                       "activations": ln.activations} for ln in a.split.lanes],
            "crossing_layers": list(a.split.crossing),
            "cross_elements": a.split.cross_elements,
            "cross_bytes_per_image_fp32": a.split.cross_bytes(1),
        }
    return out


def _layer_dict(s: LayerStats) -> dict[str, Any]:
    out = {
        "name": s.name, "op": s.op, "label": s.label, "inputs": list(s.inputs),
        "output": list(s.output), **({"output_dtype": s.dtype} if is_integer(s.dtype) else {}),
        "params": s.params, "buffers": s.buffers,
        "neurons": s.neurons, "activations": s.activations, "macs": s.macs, "flops": s.flops,
        "formula": s.formula, "warnings": list(s.warnings), "accepted": list(s.accepted),
        "gpu_local": s.gpu_local,
        "rf": _pairs(s.rf), "rf_jump": _pairs(s.rf_jump), "rf_start": _pairs(s.rf_start),
    }
    if s.origin is not None:  # a layer of a block: its use in `layers:`, the block, which copy
        o = s.origin
        out["block"] = {"use": o.use, "name": o.block, "copy": o.index, "copies": o.count}
    return out


def to_json(a: Analysis) -> str:
    return json.dumps(to_dict(a), indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("name", "op", "label", "inputs", "output", "params", "buffers", "neurons",
               "activations", "macs", "flops", "formula", "warnings", "rf", "rf_jump", "rf_start",
               "accepted")


def to_csv(a: Analysis) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in a.layers:
        w.writerow([s.name, s.op, s.label, ";".join(s.inputs), _dims(s.output) + dtype_note(s.dtype),
                    s.params, s.buffers, s.neurons, s.activations, s.macs, s.flops, s.formula,
                    "; ".join(s.warnings), _csv_pair(s.rf), _csv_pair(s.rf_jump), _csv_pair(s.rf_start),
                    "; ".join(s.accepted)])
    t = a.totals
    w.writerow(["total", "", "", "", "", t.params, t.buffers, t.neurons, t.activations, t.macs,
                t.flops, "", "", "", "", "", ""])
    return buf.getvalue()


def to_markdown(a: Analysis) -> str:
    head = "| # | layer | op | output | arithmetic | params | MACs | neurons |"
    md = markdown   # every user string escaped for Markdown: names, sources, settings
    source = f" {md(a.source)}." if a.source else ""
    rows = [f"## {md(a.name)}", "", f"Input {fmt_shape(a.input)}{dtype_note(a.input_dtype)}.{source}",
            "", head, "|---|---|---|---|---|---:|---:|---:|"]
    for i, s in enumerate(a.layers, 1):
        op = md(f"{s.op} {s.label}".strip())
        flag = " ⚠" if s.warnings else " ✓" if s.accepted else ""
        out = _dims(s.output) + dtype_note(s.dtype)
        rows.append(f"| {i} | {md(s.name)}{flag} | {op} | {out} | {md(s.formula)} |"
                    f" {_n(s.params)} | {_n(s.macs)} | {_n(s.neurons)} |")
    t = a.totals
    rows.append(f"| | **total** | | | | **{t.params:,}** | **{t.macs:,}** | **{t.neurons:,}** |")
    if a.warnings:
        rows += ["", "**Warnings**", ""] + [f"- {md(n)}: {md(m)}" for n, m in a.warnings]
    if a.accepted:
        rows += ["", "**Accepted** (`allow: [inexact]`)", ""] + [f"- {md(n)}: {md(m)}" for n, m in a.accepted]
    return "\n".join(rows) + "\n"


WIDE = 120  # columns from which the shapes table shows every column


class ShapesView:
    """The per-layer table, the totals, the GPU split and the warnings, as a rich renderable.

    It lays itself out for the width it is printed at: below 120 columns MACs are shown in
    millions and the neurons and RF columns are left out. Printing is the caller's business.
    """

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def __rich_console__(self, console: Any, options: Any) -> Any:
        a = self.analysis
        wide = options.max_width >= WIDE
        yield _shapes_table(a, wide=wide)
        if not wide:
            yield (f"[dim]at {options.max_width} columns the neurons and RF columns are left out and"
                   f" MACs shortened: --wide, or COLUMNS={WIDE + 40}, shows every column[/]")
        t = a.totals
        yield (f"params {t.params:,} ({human(t.params)}) · MACs {t.macs:,} ({human(t.macs)},"
               f" FLOPs {human(t.flops)}) · neurons {t.neurons:,} · activations"
               f" {t.activations:,} per image" + (f" · buffers {t.buffers:,}" if t.buffers else ""))
        if a.split is not None:
            lanes = " · ".join(f"GPU {ln.gpu}: {human(ln.params)} params, {human(ln.macs)} MACs"
                               for ln in a.split.lanes)
            yield (f"split over {a.split.gpus} GPUs: {lanes}; layers reading every GPU: "
                   f"{', '.join(a.split.crossing) or 'none'}"
                   f" ({a.split.cross_bytes(1):,} bytes cross per image, fp32)")
        for layer, msg in a.accepted:
            yield f"[dim]accepted (allow: inexact) {safe(layer)}: {safe(msg.rsplit('; input ', 1)[0])}[/]"
        for layer, msg in a.warnings:
            yield f"[yellow]warning[/] {safe(layer)}: {safe(msg)}"


def _shapes_table(a: Analysis, wide: bool) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{safe(a.name)} · input {fmt_shape(a.input)}{dtype_note(a.input_dtype)}",
                  title_justify="left",
                  header_style="bold", show_footer=True, footer_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    table.add_column("layer", footer="total", no_wrap=True)
    table.add_column("op", footer="", overflow="fold", min_width=10)
    table.add_column("output", footer="", no_wrap=True)
    table.add_column("arithmetic", style="cyan", footer="", no_wrap=wide, overflow="fold")
    table.add_column("params", justify="right", footer=f"{a.totals.params:,}", no_wrap=True)
    macs = _n if wide else (lambda x: human(x) if x else "–")
    table.add_column("MACs", justify="right", footer=macs(a.totals.macs), no_wrap=True)
    if wide:
        table.add_column("neurons", justify="right", footer=f"{a.totals.neurons:,}", no_wrap=True)
        table.add_column("RF", justify="right", footer="", no_wrap=True)
    for s in a.layers:
        name = (f"[yellow]{safe(s.name)} ⚠[/]" if s.warnings
                else f"{safe(s.name)} [dim]✓[/]" if s.accepted else safe(s.name))
        formula = "" if s.formula == "same as input" else s.formula
        cells = [name, safe(f"{s.op} {s.label}".strip()), _dims(s.output) + dtype_note(s.dtype), formula,
                 _n(s.params),
                 macs(s.macs)]
        table.add_row(*cells, *((_n(s.neurons), rf_text(s)) if wide else ()))
    return table


def checks_view(results: list[CheckResult]) -> Any:
    """The check results as a rich renderable: a ✓/✗ table, a summary, and where each failure is."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("")
    table.add_column("check")
    table.add_column("claimed", justify="right")
    table.add_column("computed", justify="right")
    table.add_column("how", style="cyan")
    for r in results:
        mark = Text("✓", style="green") if r.ok else Text("✗", style="red")
        table.add_row(mark, safe(r.what), safe(r.claimed), safe(r.computed), safe(r.how))
    bad = [r for r in results if not r.ok]
    summary = f"{len(results) - len(bad)} of {len(results)} checks hold"
    parts: list[Any] = [table, Text(f"{summary}; {len(bad)} fail", style="red") if bad
                        else Text(summary, style="green")]
    for r in bad:
        if r.loc is not None:
            where = f"  {r.loc}: {r.what}: claimed {r.claimed}, computed {r.computed}"
            parts.append(Text(strip_control(where)))
        if r.explanation:
            parts.append(Text(strip_control(f"    perhaps {r.explanation}"), style="yellow"))
        if r.source:
            parts.append(Text(strip_control(f"    source: {r.source}")))
    return Group(*parts)


def checks_to_dict(results: list[CheckResult]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "ok": all(r.ok for r in results),
            "checks": [{"what": r.what, "claimed": r.claimed, "computed": r.computed,
                        "how": r.how, "ok": r.ok, "where": str(r.loc) if r.loc else None,
                        "source": r.source, "explanation": r.explanation or None}
                       for r in results]}


CHECK_COLUMNS = ("ok", "what", "claimed", "computed", "how", "where", "source", "explanation")


def checks_csv(results: list[CheckResult]) -> str:
    return records_csv(CHECK_COLUMNS, checks_to_dict(results)["checks"])


def checks_markdown(results: list[CheckResult]) -> str:
    rows = [{**c, "ok": "✓" if c["ok"] else "✗"} for c in checks_to_dict(results)["checks"]]
    bad = sum(1 for r in results if not r.ok)
    return records_markdown(("ok", "what", "claimed", "computed", "how"), rows,
                            f"{len(results) - bad} of {len(results)} checks hold")


def records_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """Rows of a JSON result as CSV (lists joined with ';', None empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def records_markdown(columns: tuple[str, ...], rows: list[dict[str, Any]], footer: str = "") -> str:
    """Rows of a JSON result as a Markdown table, each cell escaped by :func:`markdown` (names
    are user text: pipes, HTML, links and emphasis stay literal), then ``footer`` (which the
    caller escapes)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(markdown(_cell(r.get(c))) for c in columns) + " |")
    return "\n".join(lines) + (f"\n\n{footer}" if footer else "") + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return ";".join(map(_cell, v))
    return strip_control(str(v))


SHAPES_WRITERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}


def plain_text(renderable: Any, width: int = 160) -> str:
    """A rich renderable as plain text at a fixed width (for files): no colour, no trailing blanks."""
    import io as _io

    from rich.console import Console

    buf = _io.StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, emoji=False).print(renderable)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())
