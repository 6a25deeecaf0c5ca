"""``archviz cost`` over comma lists (``--device a100,h100 --batch 1,2,4 --zero 0,3``): one row per
configuration (archviz.runtime.costing.Sweep), as a table, JSON (a list of the single run's
objects; an invalid combination an object with its ``error``), CSV or Markdown. The swept
options' columns are the ones that vary or are set (seq, gpus, zero), beside device and batch."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..core.cost import GIB, Cost
from ..core.cost_states import Run
from ..runtime.costing import Sweep, SweepRow
from .cost_view import SCHEMA_VERSION, to_dict
from .text import markdown, safe

COLUMNS = ("device", "batch", "tp", "dp", "pp", "peak_gib", "fits", "largest_batch", "step_ms",
           "compute_ms", "tp_ms", "pp_ms", "dp_ms", "update_ms", "run_seconds")
EXTRA = ("seq", "gpus", "zero")     # shown where swept or set


def columns(sw: Sweep) -> tuple[str, ...]:
    """The CSV's and Markdown's columns for this sweep."""
    extra = tuple(k for k in EXTRA if k in sw.columns)
    return (*COLUMNS[:2], *extra, *COLUMNS[2:], *(("error",) if any(r.error for r in sw.rows) else ()))


def _extra(r: SweepRow, k: str) -> Any:
    c = r.cost
    if c is None or k == "seq":
        return r.get(k)
    return c.gpus if k == "gpus" else c.settings.zero


def row(c: Cost, run: Run | None) -> list[Any]:
    t = c.time
    times = [None] * 6 if t is None else [round(x, 3) for x in (t.step_ms, t.compute_ms, t.link_ms,
                                                               t.pp_ms, t.dp_ms, t.update_ms)]
    return [c.target.key, c.settings.batch, c.parallel.tp, c.parallel.dp, c.parallel.pp,
            round(c.peak / GIB, 2), c.fits, c.largest_batch, *times, None if run is None else run.seconds]


def values(sw: Sweep, r: SweepRow) -> list[Any]:
    """One row's values under :func:`columns`."""
    extra = [_extra(r, k) for k in EXTRA if k in sw.columns]
    if r.cost is None:
        base: list[Any] = [r.get("device"), r.get("batch"), *extra, *[None] * (len(COLUMNS) - 2)]
    else:
        full = row(r.cost, r.run)
        base = [*full[:2], *extra, *full[2:]]
    return base + ([r.error] if any(x.error for x in sw.rows) else [])


def to_json(sw: Sweep) -> str:
    return json.dumps(as_list(sw), indent=2) + "\n"


def as_list(sw: Sweep) -> list[dict[str, Any]]:
    """The sweep's JSON: each valid row the single configuration's object (``archviz cost -f
    json``), each invalid one its swept values and why."""
    return [to_dict(r.cost, r.run) if r.cost is not None else
            {"schema_version": SCHEMA_VERSION, "name": sw.name,
             "swept": {k: v for k, v in r.values if v is not None}, "error": r.error}
            for r in sw.rows]


def to_csv(sw: Sweep) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns(sw))
    for r in sw.rows:
        w.writerow(["" if v is None else v for v in values(sw, r)])
    return buf.getvalue()


def to_markdown(sw: Sweep) -> str:
    cols = columns(sw)
    lines = [f"# {markdown(sw.name)}: cost per configuration", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if v is None else markdown(str(v)) for v in values(sw, r)) + " |"
              for r in sw.rows]
    return "\n".join(lines) + "\n"


WRITERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}


# what a narrow terminal leaves out, in this order, until the table fits (a note names them)
NARROW = ("compute", "pp comm", "tp comm", "tp·dp·pp", "largest batch", "dp comm", "fits", "run")


def sweep_view(sw: Sweep) -> Any:
    """The sweep's table, laid out for the width it is printed at: columns with nothing in any
    row (no pipeline, no run asked) are left out, and on a narrow terminal whole columns go in
    the order of :data:`NARROW` rather than cells being cut; a footnote names them."""
    return _SweepView(sw)


class _SweepView:
    def __init__(self, sw: Sweep) -> None:
        self.sw = sw

    def _columns(self) -> tuple[str, list[tuple[str, list[str]]], list[str]]:
        sw = self.sw
        extra = [k for k in EXTRA if k in sw.columns]
        first = next((r.cost for r in sw.rows if r.cost is not None), None)
        title = f"{safe(sw.name)}: cost per configuration"
        if first is not None:
            s = first.settings
            title = (f"{safe(sw.name)}: {s.mode.value}, {s.precision.value} {s.dtype.value},"
                     f" {s.optimizer.value}; times in ms (roofline lower bounds, links at peak)")
        heads = ("device", "batch", *extra, "tp·dp·pp", "peak GiB", "fits", "largest batch", "step",
                 "compute", "tp comm", "pp comm", "dp comm", "run")
        notes = list(dict.fromkeys(r.error for r in sw.rows if r.error))  # each reason once, numbered
        rows = [_cells(r, extra, notes) for r in sw.rows]
        cols = [(h, [row[i] if i < len(row) else "" for row in rows]) for i, h in enumerate(heads)]
        empty = {"–", "0.0", ""}
        cols = [(h, cells) for h, cells in cols
                if h in ("device", "batch", "fits") or not all(c in empty for c in cells)]
        return title, cols, notes

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement
        from rich.text import Text

        title, cols, notes = self._columns()
        left: list[str] = []
        table = _table(title, cols)
        wide = options.update_width(10_000)
        keep = {"tp·dp·pp"} if {"tp", "gpus"} & set(self.sw.varied) else set()   # which row is which
        for head in (h for h in NARROW if h not in keep):
            if Measurement.get(console, wide, table).maximum <= options.max_width:
                break
            if any(h == head for h, _ in cols):
                cols = [(h, c) for h, c in cols if h != head]
                left.append(head)
                table = _table(title, cols)
        yield table
        if left:
            yield Text(f"columns left out at {options.max_width} columns: {', '.join(left)};"
                       " widen the terminal, or use --format csv or json", style="dim")
        yield from (Text(f"[{i}] {n}") for i, n in enumerate(notes, 1))


def _table(title: str, cols: list[tuple[str, list[str]]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for h, _ in cols:
        table.add_column(h, justify="left" if h == "device" else "right", no_wrap=h != "device")
    for i in range(len(cols[0][1]) if cols else 0):
        table.add_row(*(c[i] for _, c in cols))
    return table


def _cells(r: SweepRow, extra: list[str], notes: list[str]) -> list[str]:
    more = ["–" if _extra(r, k) is None else str(_extra(r, k)) for k in extra]
    c, run = r.cost, r.run
    if c is None:
        tp = "–" if r.get("tp") is None else f"tp {r.get('tp')}"
        return [safe(str(r.get("device"))), str(r.get("batch") or "–"), *more, tp, "–",
                f"invalid [{notes.index(r.error) + 1}]"]
    t, p = c.time, c.parallel
    times = ["–"] * 5 if t is None else [f"{x:,.1f}" for x in (t.step_ms, t.compute_ms, t.link_ms,
                                                                t.pp_ms, t.dp_ms)]
    fits = {True: "yes", False: "no", None: "?"}[c.fits]
    return [safe(c.target.key), str(c.settings.batch), *more, f"{p.tp}·{p.dp}·{p.pp}",
            f"{c.peak / GIB:.2f}", fits, "–" if c.largest_batch is None else str(c.largest_batch),
            *times, "–" if run is None or run.seconds is None else _days(run.seconds)]


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.2f} d" if seconds >= 86400 else f"{seconds / 3600:.2f} h"
