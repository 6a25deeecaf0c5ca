"""``archviz cost`` over comma lists (``--device a100,h100 --batch 1,2,4``): one row per
configuration, as a table, JSON (a list of the single run's objects) or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..core.cost import GIB, Cost
from ..core.cost_states import Run
from .cost_view import to_dict
from .text import markdown, safe

COLUMNS = ("device", "batch", "tp", "dp", "pp", "peak_gib", "fits", "largest_batch", "step_ms",
           "compute_ms", "tp_ms", "pp_ms", "dp_ms", "update_ms", "run_seconds")


def row(c: Cost, run: Run | None) -> list[Any]:
    t = c.time
    times = [None] * 6 if t is None else [round(x, 3) for x in (t.step_ms, t.compute_ms, t.link_ms,
                                                               t.pp_ms, t.dp_ms, t.update_ms)]
    return [c.target.key, c.settings.batch, c.parallel.tp, c.parallel.dp, c.parallel.pp,
            round(c.peak / GIB, 2), c.fits, c.largest_batch, *times, None if run is None else run.seconds]


def to_json(rows: list[tuple[Cost, Run | None]]) -> str:
    return json.dumps([to_dict(c, run) for c, run in rows], indent=2) + "\n"


def to_csv(rows: list[tuple[Cost, Run | None]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c, run in rows:
        w.writerow(["" if v is None else v for v in row(c, run)])
    return buf.getvalue()


def to_markdown(rows: list[tuple[Cost, Run | None]]) -> str:
    lines = [f"# {markdown(rows[0][0].name)}: cost per configuration", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row(c, run)) + " |" for c, run in rows]
    return "\n".join(lines) + "\n"


WRITERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}


def sweep_view(rows: list[tuple[Cost, Run | None]]) -> Any:
    from rich.table import Table

    c0 = rows[0][0]
    s = c0.settings
    table = Table(title=f"{safe(c0.name)}: {s.mode.value}, {s.precision.value} {s.dtype.value},"
                  f" {s.optimizer.value}; step times in ms (roofline lower bounds, links at peak)",
                  title_justify="left")
    heads = ("device", "batch", "tp·dp·pp", "peak GiB", "fits", "largest batch", "step", "compute",
             "tensor-par.", "pipeline", "data-par.", "run")
    for h in heads:
        table.add_column(h, justify="left" if h == "device" else "right")
    for c, run in rows:
        t, p = c.time, c.parallel
        times = ["–"] * 5 if t is None else [f"{x:,.1f}" for x in (t.step_ms, t.compute_ms, t.link_ms,
                                                                    t.pp_ms, t.dp_ms)]
        fits = {True: "yes", False: "no", None: "?"}[c.fits]
        table.add_row(safe(c.target.name), str(c.settings.batch), f"{p.tp}·{p.dp}·{p.pp}",
                      f"{c.peak / GIB:.2f}", fits, "–" if c.largest_batch is None else str(c.largest_batch),
                      *times, "–" if run is None or run.seconds is None else _days(run.seconds))
    return table


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.2f} d" if seconds >= 86400 else f"{seconds / 3600:.2f} h"
