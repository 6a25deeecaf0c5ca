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
from .tables import human
from .text import safe

if TYPE_CHECKING:  # pragma: no cover
    from ..core.diff import Diff
    from ..runtime.compile import Verification


# --- archviz verify -----------------------------------------------------------------------------

def _shape(shape: tuple[int, ...] | None) -> str:
    return "—" if shape is None else fmt_dims(shape)


def verify_to_dict(v: Verification) -> dict[str, Any]:
    """archviz verify --json."""
    return {
        "name": v.name, "input": list(v.input), "device": v.device, "ok": v.ok, "error": v.error or None,
        "layers": [{"name": c.name, "op": c.op, "shape": list(c.shape),
                    "torch_shape": None if c.real_shape is None else list(c.real_shape),
                    "params": c.params, "torch_params": c.real_params, "ok": c.ok} for c in v.layers],
        "params": v.params, "torch_params": v.real_params,
        "macs": v.macs, "flops": 2 * v.macs, "torch_flops": v.torch_flops, "macs_ok": v.macs_ok,
        "formulas": [{"name": f.name, "op": f.op, "max_rel_error": f.max_rel_error,
                      "tolerance": f.tolerance, "ok": f.ok} for f in v.formulas],
    }


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

_MARK = {"same": " ", "changed": "[yellow]~[/]", "removed": "[red]−[/]", "added": "[green]+[/]"}


def _arrow(a: Any, b: Any, fmt: Any = str) -> str:
    if a is None:
        return f"[green]{fmt(b)}[/]"
    if b is None:
        return f"[red]{fmt(a)}[/]"
    return fmt(a) if a == b else f"{fmt(a)} → {fmt(b)}"


def diff_view(d: Diff, changed_only: bool = False) -> Any:
    """archviz diff's table, totals and summary."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    title = safe(f"A: {d.a.name} ({d.a.path})\nB: {d.b.name} ({d.b.path})")
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    right = {"justify": "right", "no_wrap": True}
    for col, kw in (("", {}), ("layer", {"no_wrap": True}), ("op", {}),
                    ("settings A → B", {"overflow": "fold"}), ("output", {"no_wrap": True}),
                    ("params", right), ("MACs", right)):
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
        table.add_row(
            _MARK[r.status], safe(r.name), _arrow(sa and sa.op, sb and sb.op), safe(settings),
            _arrow(sa and sa.output, sb and sb.output, lambda s: dims(map(str, s))),
            _arrow(sa and sa.params, sb and sb.params, lambda n: f"{n:,}" if n else "–"),
            _arrow(sa and sa.macs, sb and sb.macs, lambda n: human(n) if n else "–"), style=style)
    parts: list[Any] = [table]
    for m in METRICS:
        a, b = d.total(m)
        if a or b:
            parts.append(f"{m:12} {a:>14,} → {b:>14,}  ({percent(d.change(m))})")
    lines = summary(d)
    if lines:
        parts.append("[bold]in short[/]")
        for line in lines:
            parts.append(f"  • {safe(line)}")
    return Group(*parts)
