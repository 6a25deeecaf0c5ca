"""Views of results as rich renderables: ``archviz verify`` and ``archviz diff``.

Every user-provided string (spec and layer names, paths, error text) passes
:func:`archviz.render.text.safe`. The CLI prints what these return; nothing here prints.
(The shapes and check views live in :mod:`archviz.render.tables`, bench's in
:mod:`archviz.render.bench_view`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.diff import METRICS, percent, show, summary
from ..ops import fmt_dims
from .tables import SCHEMA_VERSION, human, records_csv, records_markdown
from .text import markdown, safe

if TYPE_CHECKING:  # pragma: no cover
    from ..core.diff import Diff
    from ..runtime.compile import Verification


# --- archviz verify -----------------------------------------------------------------------------

def _shape(shape: tuple[int, ...] | None) -> str:
    return "—" if shape is None else fmt_dims(shape)


def verify_to_dict(v: Verification) -> dict[str, Any]:
    """archviz verify --json."""
    return {
        "schema_version": SCHEMA_VERSION,
        "name": v.name, "input": list(v.input), "device": v.device, "ok": v.ok, "error": v.error or None,
        "layers": [{"name": c.name, "op": c.op, "shape": list(c.shape),
                    "torch_shape": None if c.real_shape is None else list(c.real_shape),
                    "params": c.params, "torch_params": c.real_params, "ok": c.ok} for c in v.layers],
        "params": v.params, "torch_params": v.real_params,
        "macs": v.macs, "flops": 2 * v.macs, "torch_flops": v.torch_flops, "macs_ok": v.macs_ok,
        "formulas": [{"name": f.name, "op": f.op, "max_rel_error": f.max_rel_error,
                      "tolerance": f.tolerance, "ok": f.ok} for f in v.formulas],
    }


VERIFY_COLUMNS = ("ok", "name", "op", "shape", "torch_shape", "params", "torch_params")


def verify_csv(v: Verification) -> str:
    """One row per layer (the totals and formula checks are in the JSON)."""
    return records_csv(VERIFY_COLUMNS, verify_to_dict(v)["layers"])


def verify_markdown(v: Verification) -> str:
    rows = [{**r, "ok": "✓" if r["ok"] else "✗", "shape": _shape(r["shape"]),
             "torch_shape": _shape(r["torch_shape"])} for r in verify_to_dict(v)["layers"]]
    from rich.text import Text

    footer = "\n".join(f"- {markdown(Text.from_markup(line).plain)}" for line in _verify_summary(v))
    return records_markdown(VERIFY_COLUMNS, rows, footer)


def verify_view(v: Verification) -> Any:
    """archviz verify's table and summary lines."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    title = f"{safe(v.name)} · input {_shape(v.input)} · torch on the {v.device} device"
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for col, just in (("", "left"), ("layer", "left"), ("op", "left"), ("output", "left"),
                      ("torch output", "left"), ("params", "right"), ("torch params", "right")):
        table.add_column(col, justify=just, no_wrap=True, min_width=1)  # type: ignore[arg-type]
    for c in v.layers:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        table.add_row(mark, safe(c.name), c.op, _shape(c.shape), _shape(c.real_shape),
                      f"{c.params:,}", f"{c.real_params:,}")
    parts: list[Any] = [table]
    if v.error:
        parts.append(f"[red]✗ torch refused the forward pass:[/] {safe(v.error)}")
    return Group(*parts, *_verify_summary(v))


def _verify_summary(v: Verification) -> list[str]:
    parts: list[str] = []
    bad = [c.name for c in v.layers if not c.ok]
    ok = "[green]✓[/]" if v.params == v.real_params else "[red]✗[/]"
    parts.append(f"{ok} parameters: analysis {v.params:,}, torch {v.real_params:,}")
    ok = "[green]✓[/]" if v.macs_ok else "[red]✗[/]"
    parts.append(f"{ok} FLOPs: analysis 2 × {v.macs:,} MACs = {2 * v.macs:,}, torch.utils.flop_counter"
                 f" {v.torch_flops:,} (conv and linear only, bias adds not counted)")
    for f in v.formulas:
        ok = "[green]✓[/]" if f.ok else "[red]✗[/]"
        parts.append(f"{ok} {safe(f.name)}: torch's {f.op} against the paper's formula written out (spec α):"
                     f" max relative error {f.max_rel_error:.1e} (tolerance {f.tolerance:.0e})")
    if v.ok:
        parts.append(f"[green]{len(v.layers)} of {len(v.layers)} layers match torch[/]")
    else:
        parts.append(f"[red]{len(v.layers) - len(bad)} of {len(v.layers)} layers match torch"
                     + (f"; differ: {safe(', '.join(bad))}" if bad else "") + "[/]")
    return parts


# --- archviz diff -------------------------------------------------------------------------------

DIFF_COLUMNS = ("status", "name", "op_a", "op_b", "output_a", "output_b", "params_a", "params_b",
                "macs_a", "macs_b", "changes")


def diff_rows(d: Diff) -> list[dict[str, Any]]:
    """One flat record per aligned layer (CSV and Markdown)."""
    out = []
    for r in d.layers:
        row: dict[str, Any] = {"status": r.status, "name": r.name,
                               "changes": [f"{c.key} {show(c.a)} → {show(c.b)}" for c in r.changes]
                               + ([f"moved {r.move_note}"] if r.moved else [])}
        for side, s in (("a", r.a), ("b", r.b)):
            row.update({f"op_{side}": s and s.op, f"output_{side}": s and fmt_dims(s.output),
                        f"params_{side}": s and s.params, f"macs_{side}": s and s.macs})
        out.append(row)
    return out


def diff_markdown(d: Diff) -> str:
    footer = "\n".join(f"- {markdown(line)}" for line in summary(d))
    return (f"A: {markdown(d.a.name)} ({markdown(d.a.path)}) · B: {markdown(d.b.name)}"
            f" ({markdown(d.b.path)})\n\n"
            + records_markdown(DIFF_COLUMNS, diff_rows(d), footer))

_MARK = {"same": " ", "changed": "[yellow]~[/]", "removed": "[red]−[/]", "added": "[green]+[/]"}


def _arrow(a: Any, b: Any, fmt: Any = str) -> str:
    if a is None:
        return f"[green]{fmt(b)}[/]"
    if b is None:
        return f"[red]{fmt(a)}[/]"
    return fmt(a) if a == b else f"{fmt(a)} → {fmt(b)}"


def diff_view(d: Diff, changed_only: bool = False) -> Any:
    """archviz diff's table, totals and summary (a renderable that fits itself to the width)."""
    return DiffView(d, changed_only)


class DiffView:
    """The diff table with every column where it fits; on a narrower console without the op and
    settings columns, saying so (the totals and the summary below still name every change)."""

    def __init__(self, d: Diff, changed_only: bool = False) -> None:
        self.d, self.changed_only = d, changed_only

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        table = _diff_table(self.d, self.changed_only, full=True)
        if Measurement.get(console, options.update_width(10**4), table).maximum > options.max_width:
            table = _diff_table(self.d, self.changed_only, full=False)
            yield table
            yield (f"[dim]at {options.max_width} columns the op and settings columns are left out:"
                   " --wide, or a larger COLUMNS, shows them[/]")
        else:
            yield table
        yield from _diff_footer(self.d)


def _diff_table(d: Diff, changed_only: bool, full: bool) -> Any:
    from rich import box
    from rich.table import Table

    title = safe(f"A: {d.a.name} ({d.a.path})\nB: {d.b.name} ({d.b.path})")
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    right = {"justify": "right", "no_wrap": True}
    columns: list[tuple[str, dict[str, Any]]] = [("", {}), ("layer", {"no_wrap": True})]
    if full:
        columns += [("op", {"no_wrap": True}), ("settings A → B", {"no_wrap": True})]
    columns += [("output", {"no_wrap": True}), ("params", right), ("MACs", right)]
    for col, kw in columns:
        table.add_column(col, **kw)
    dims = "×".join
    for r in d.layers:
        if changed_only and r.status == "same":
            continue
        sa, sb = r.a, r.b
        settings = "\n".join(f"{c.key} {show(c.a)} → {show(c.b)}" for c in r.changes)
        if r.moved:
            settings = "\n".join(x for x in (f"moved {r.move_note}", settings) if x)
        style = "dim" if r.status == "same" else ""
        middle = [_arrow(sa and sa.op, sb and sb.op), safe(settings)] if full else []
        table.add_row(
            _MARK[r.status], safe(r.name), *middle,
            _arrow(sa and sa.output, sb and sb.output, lambda s: dims(map(str, s))),
            _arrow(sa and sa.params, sb and sb.params, lambda n: f"{n:,}" if n else "–"),
            _arrow(sa and sa.macs, sb and sb.macs, lambda n: human(n) if n else "–"), style=style)
    return table


def _diff_footer(d: Diff) -> Any:
    for m in METRICS:
        a, b = d.total(m)
        if a or b:
            yield f"{m:12} {a:>14,} → {b:>14,}  ({percent(d.change(m))})"
    lines = summary(d)
    if lines:
        yield "[bold]in short[/]"
        for line in lines:
            yield f"  • {safe(line)}"
