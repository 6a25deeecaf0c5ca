"""Analysis → a rich table, JSON, CSV or Markdown. Reads an Analysis; computes nothing new."""

from __future__ import annotations

import io
from collections.abc import Iterator
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
    import json  # here: the table needs neither json nor csv

    return json.dumps(to_dict(a), indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("name", "op", "label", "inputs", "output", "params", "buffers", "neurons",
               "activations", "macs", "flops", "formula", "warnings", "rf", "rf_jump", "rf_start",
               "accepted")


def to_csv(a: Analysis) -> str:
    import csv

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
# what a narrower terminal leaves out, in this order, until the table fits: a formula is never
# cut and an op cell never wraps past two lines (--wide, a pipe or -o shows every column)
NARROW_STEPS = (("neurons", "RF"), ("MACs",), ("params",), ("arithmetic",))


class ShapesView:
    """The per-layer table, the totals, the GPU split and the warnings, as a rich renderable.

    It lays itself out for the width it is printed at: below 120 columns MACs are shown in
    millions and the neurons and RF columns are left out; where the table is still too wide,
    whole columns go (MACs, params, then the arithmetic) rather than a formula being cut, and a
    footnote names them. Printing is the caller's business.
    """

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def __rich_console__(self, console: Any, options: Any) -> Any:
        a = self.analysis
        width = options.max_width
        left: tuple[str, ...] = ()
        table, need = _shapes_table(a, left)
        steps = iter(NARROW_STEPS)
        while width < WIDE and not left or need > width:
            step = next(steps, None)
            if step is None:
                break
            left += step
            table, need = _shapes_table(a, left)
        yield table
        if left:
            short = " and MACs shortened" if "MACs" not in left else ""
            yield (f"[dim]columns left out at {width} columns: {', '.join(left)}{short}; widen the"
                   f" terminal, or use --wide or --format json[/]")
        t = a.totals
        yield (f"params {t.params:,} ({human(t.params)}) · MACs {t.macs:,} ({human(t.macs)},"
               f" FLOPs {human(t.flops)}) · neurons {t.neurons:,} · activations"
               f" {t.activations:,} per image" + (f" · buffers {t.buffers:,}" if t.buffers else ""))
        yield from self.notes()

    def notes(self) -> Iterator[str]:
        """The lines after the totals (rich markup): the GPU split, accepted inexact sizes, warnings."""
        a = self.analysis
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


def two_line_width(text: str) -> int:
    """The narrowest width at which ``text`` wraps (at spaces) onto at most two lines."""
    words = text.split(" ")
    if len(words) == 1:
        return len(text)
    best = len(text)
    for i in range(1, len(words)):
        best = min(best, max(len(" ".join(words[:i])), len(" ".join(words[i:]))))
    return best


Column = tuple[str, dict[str, Any]]   # a column's header and its rich settings (``footer`` among them)


def _shapes_cells(a: Analysis, left: tuple[str, ...] = ()) -> tuple[list[Column], list[list[str]], int]:
    """The per-layer table's columns (without those named in ``left``; MACs shortened once the
    neurons are left out) and rows, as rich markup, and the width the table needs: every column
    but op is no_wrap; op wraps onto at most two lines."""
    from rich.cells import cell_len

    ops = [safe(f"{s.op} {s.label}".strip()) for s in a.layers]
    macs = _n if "neurons" not in left else (lambda x: human(x) if x else "–")
    columns: list[tuple[str, dict[str, Any], Any]] = [
        ("layer", {"footer": "total", "no_wrap": True}, None),
        ("op", {"footer": "", "overflow": "fold",
                "min_width": max([two_line_width(o) for o in set(ops)] + [2])}, None),
        ("output", {"footer": "", "no_wrap": True}, lambda s: _dims(s.output) + dtype_note(s.dtype)),
        ("arithmetic", {"style": "cyan", "footer": "", "no_wrap": True},
         lambda s: "" if s.formula == "same as input" else s.formula),
        ("params", {"justify": "right", "footer": f"{a.totals.params:,}", "no_wrap": True},
         lambda s: _n(s.params)),
        ("MACs", {"justify": "right", "footer": macs(a.totals.macs), "no_wrap": True},
         lambda s: macs(s.macs)),
        ("neurons", {"justify": "right", "footer": f"{a.totals.neurons:,}", "no_wrap": True},
         lambda s: _n(s.neurons)),
        ("RF", {"justify": "right", "footer": "", "no_wrap": True}, rf_text),
    ]
    shown = [(name, kw, cell) for name, kw, cell in columns if name not in left]
    widths = {name: max(cell_len(name), cell_len(kw["footer"]), kw.get("min_width", 0))
              for name, kw, _ in shown}
    rows = []
    for s, op in zip(a.layers, ops, strict=True):
        mark = " ⚠" if s.warnings else " ✓" if s.accepted else ""
        name = (f"[yellow]{safe(s.name)} ⚠[/]" if s.warnings
                else f"{safe(s.name)} [dim]✓[/]" if s.accepted else safe(s.name))
        cells = [name if n == "layer" else op if n == "op" else cell(s) for n, _, cell in shown]
        rows.append(cells)
        for (n, _, _), text in zip(shown, cells, strict=True):
            if n not in ("layer", "op"):
                widths[n] = max(widths[n], cell_len(text))
        widths["layer"] = max(widths["layer"], cell_len(safe(s.name) + mark))
    # SIMPLE_HEAD without edge padding: a blank edge each side, three columns between two columns
    return [(name, kw) for name, kw, _ in shown], rows, sum(widths.values()) + 3 * len(widths) - 1


def _title(a: Analysis) -> str:
    return f"{safe(a.name)} · input {fmt_shape(a.input)}{dtype_note(a.input_dtype)}"


def _shapes_table(a: Analysis, left: tuple[str, ...] = ()) -> tuple[Any, int]:
    """The per-layer table (:func:`_shapes_cells`) as a rich Table, and the width it needs."""
    from rich import box
    from rich.table import Table

    columns, rows, need = _shapes_cells(a, left)
    table = Table(title=_title(a), title_justify="left",
                  header_style="bold", show_footer=True, footer_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for name, kw in columns:
        table.add_column(name, **kw)
    for cells in rows:
        table.add_row(*cells)
    return table, need


def _plain(markup: str) -> str:
    """What rich prints for ``markup`` without colour (tags gone, escapes undone)."""
    if "[" not in markup:
        return markup
    from rich.markup import render

    return render(markup, emoji=False).plain


def _shapes_plain(view: ShapesView, width: int) -> str | None:
    """:func:`plain_text` of a :class:`ShapesView`, without rich laying the table out: the same
    characters, for the case where nothing wraps (every column at its natural width, at least
    :data:`WIDE` columns, the title and every line below the table within ``width``). None where
    something would wrap: rich lays that out."""
    from rich.cells import cell_len

    a = view.analysis
    columns, rows, need = _shapes_cells(a, ())
    if width < WIDE or need > width:
        return None
    title = _plain(_title(a))
    header = [name for name, _ in columns]
    footer = [kw["footer"] for _, kw in columns]
    body = [[_plain(c) for c in cells] for cells in rows]
    if "\n" in title or any("\n" in c for cells in body for c in cells):
        return None
    widths = [max([cell_len(header[i]), cell_len(footer[i]), kw.get("min_width", 0)]
                  + [cell_len(cells[i]) for cells in body]) for i, (_, kw) in enumerate(columns)]
    right = [kw.get("justify") == "right" for _, kw in columns]
    full = sum(widths) + 3 * len(widths) - 1   # the op column's whole text counts here, not in `need`
    if full > width or cell_len(title) > full:
        return None

    def line(cells: list[str]) -> str:
        parts = []
        for i, text in enumerate(cells):
            gap = " " * (widths[i] - cell_len(text))
            parts.append((gap + text) if right[i] else (text + gap))
        # SIMPLE_HEAD, no edge padding: a blank edge, one space of padding each side of a divider
        return (" " + "   ".join(parts)).rstrip()

    out = [title, "", line(header), " " + "─" * (full - 2)]
    out += [line(cells) for cells in body]
    out += ["", line(footer), ""]
    t = a.totals
    tail = [(f"params {t.params:,} ({human(t.params)}) · MACs {t.macs:,} ({human(t.macs)},"
             f" FLOPs {human(t.flops)}) · neurons {t.neurons:,} · activations"
             f" {t.activations:,} per image" + (f" · buffers {t.buffers:,}" if t.buffers else ""))]
    tail += list(view.notes())
    for text in map(_plain, tail):
        if "\n" in text or cell_len(text) > width:
            return None
        out.append(text.rstrip())
    return "".join(line + "\n" for line in out)


def checks_view(results: list[CheckResult]) -> Any:
    """The check results as a rich renderable: a ✓/✗ table, a summary, and where each failure is.

    The table when its "how" column fits (a formula on one line, a sum on at most two); on a
    narrower console each check's "how" goes on its own line under the check instead."""
    return ChecksView(results)


class ChecksView:
    def __init__(self, results: list[CheckResult]) -> None:
        self.results = results

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.cells import cell_len

        results, width = self.results, options.max_width
        cols = [[safe(r.what) for r in results], [safe(r.claimed) for r in results],
                [safe(r.computed) for r in results]]
        heads = ("check", "claimed", "computed")
        widths = [max([cell_len(h)] + [cell_len(c) for c in col]) for h, col in zip(heads, cols, strict=True)]
        room = width - (1 + sum(widths) + 3 * 5 - 1)      # what the "how" column would get
        hows = [safe(r.how) for r in results]
        # a formula (a short how) on one line; a long how (a sum, a sentence) on at most two
        if all(cell_len(h) <= room or (cell_len(h) > 50 and two_line_width(h) <= room) for h in hows):
            yield _checks_table(results)
        else:
            yield from _checks_lines(results, cols, hows, widths, width)
        yield from _checks_footer(results)


def _fit(natural: list[int], least: list[int], room: int) -> list[int]:
    """Column widths within ``room``: each at least ``least`` (two lines), the rest shared out
    in proportion, none above ``natural``."""
    if sum(natural) <= room:
        return natural
    spare = max(0, room - sum(least))
    want = [n - m for n, m in zip(natural, least, strict=True)]
    total = sum(want) or 1
    return [m + min(w, spare * w // total) for m, w in zip(least, want, strict=True)]


def wrap_words(text: str, width: int) -> list[str]:
    """``text`` wrapped at spaces to ``width`` (a longer word on a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _checks_lines(results: list[CheckResult], cols: list[list[str]], hows: list[str], natural: list[int],
                  width: int) -> Any:
    """The checks on a narrow console: check, claimed and computed as columns (each cell on at
    most two lines), each check's "how" on the line under it, whole."""
    from rich.text import Text

    least = [max([len(h)] + [two_line_width(c) for c in col]) for h, col in zip(
        ("check", "claimed", "computed"), cols, strict=True)]
    w = _fit(natural, least, width - 3 - 6)
    yield Text(f"   {'check':<{w[0]}}   {'claimed':>{w[1]}}   {'computed':>{w[2]}}", style="bold")
    yield Text("─" * min(width, 3 + sum(w) + 6))
    for r, what, claimed, computed, how in zip(results, *cols, hows, strict=True):
        cells = [wrap_words(what, w[0]), wrap_words(claimed, w[1]), wrap_words(computed, w[2])]
        for i in range(max(map(len, cells))):
            part = [c[i] if i < len(c) else "" for c in cells]
            mark = (Text("✓", style="green") if r.ok else Text("✗", style="red")) if i == 0 else Text(" ")
            yield Text.assemble(mark, f"  {part[0]:<{w[0]}}   {part[1]:>{w[1]}}   {part[2]:>{w[2]}}")
        for line in wrap_words(how, max(20, width - 5)):
            yield Text(f"     {line}", style="cyan")


def _checks_table(results: list[CheckResult]) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("")
    table.add_column("check", no_wrap=True)
    table.add_column("claimed", justify="right", no_wrap=True)
    table.add_column("computed", justify="right", no_wrap=True)
    table.add_column("how", style="cyan")
    for r in results:
        mark = Text("✓", style="green") if r.ok else Text("✗", style="red")
        table.add_row(mark, safe(r.what), safe(r.claimed), safe(r.computed), safe(r.how))
    return table


def _checks_footer(results: list[CheckResult]) -> Any:
    from rich.text import Text

    bad = [r for r in results if not r.ok]
    summary = f"{len(results) - len(bad)} of {len(results)} checks hold"
    yield Text(f"{summary}; {len(bad)} fail", style="red") if bad else Text(summary, style="green")
    for r in bad:
        if r.loc is not None:
            where = f"  {r.loc}: {r.what}: claimed {r.claimed}, computed {r.computed}"
            yield Text(strip_control(where))
        if r.explanation:
            yield Text(strip_control(f"    perhaps {r.explanation}"), style="yellow")
        if r.source:
            yield Text(strip_control(f"    source: {r.source}"))


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
    import csv

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
    if isinstance(renderable, ShapesView):  # rich's table layout costs more than the rest of `archviz shapes`
        text = _shapes_plain(renderable, width)
        if text is not None:
            return text
    import io as _io

    from rich.console import Console

    buf = _io.StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, emoji=False).print(renderable)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())
