"""Commands ``diff`` (two specs side by side) and ``schema`` (JSON Schema of the spec format)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from ..render.text import safe
from .common import DEFAULT_SPEC, SPEC_HELP, OutputOpt, console, emit, fail, guarded, load_analysis


class DiffFormat(str, Enum):
    table = "table"
    json = "json"


_MARK = {"same": " ", "changed": "[yellow]~[/]", "removed": "[red]−[/]", "added": "[green]+[/]"}


@guarded
def diff_cmd(
    spec_a: Annotated[str, typer.Argument(help="A: " + SPEC_HELP)],
    spec_b: Annotated[Optional[str], typer.Argument(
        help="B: the spec to compare with A (same forms). Given one spec only, archviz"
             f" compares the paper's AlexNet ({DEFAULT_SPEC}) with it.")] = None,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", case_sensitive=False)] = DiffFormat.table,
    max_params: Annotated[Optional[float], typer.Option(
        "--max-params-change", metavar="PCT",
        help="Exit 1 when the total parameters change by more than PCT percent (either way).")] = None,
    max_macs: Annotated[Optional[float], typer.Option(
        "--max-macs-change", metavar="PCT",
        help="Exit 1 when the total MACs change by more than PCT percent (either way).")] = None,
    changed_only: Annotated[bool, typer.Option("--changed-only", help="Leave out identical layers.")] = False,
) -> None:
    """Compare two specs layer by layer: settings, output shapes, parameters, MACs and totals.

    Layers are aligned by name, else by position among equal ops. Rows: ~ changed, − only in A,
    + only in B. Exit 1 when a --max-*-change threshold is crossed (for CI).

    Examples:

      archviz diff alexnet alexnet-torchvision

      archviz diff alexnet-keras                     # the paper's AlexNet against it

      archviz diff specs/alexnet.yaml my-alexnet.yaml --format json

      archviz diff main.yaml pr.yaml --max-params-change 1 --max-macs-change 5
    """
    from ..core.diff import diff as compare
    from ..core.diff import to_dict

    for flag, value in (("--max-params-change", max_params), ("--max-macs-change", max_macs)):
        if value is not None and value < 0:
            raise ArchvizError(f"{flag}: expected a percentage >= 0, got {value:g}")
    if spec_b is None:
        spec_a, spec_b = DEFAULT_SPEC, spec_a
    sa, a = load_analysis(spec_a)
    sb, b = load_analysis(spec_b)
    d = compare(sa, a, sb, b)
    exceeded = _exceeded(d, {"params": max_params, "macs": max_macs})
    if fmt is DiffFormat.json:
        sys.stdout.write(json.dumps(to_dict(d, exceeded), indent=2, ensure_ascii=False) + "\n")
    else:
        _render(d, console(), changed_only)
    if exceeded:
        fail("; ".join(exceeded), 1)


def _exceeded(d: Any, limits: dict[str, Optional[float]]) -> list[str]:
    from ..core.diff import percent

    out = []
    for metric, pct in limits.items():
        if pct is None:
            continue
        r = d.change(metric)
        if r is None or abs(r) * 100 > pct:
            a, b = d.total(metric)
            out.append(f"{metric} changed {percent(r)} ({a:,} → {b:,}), more than the allowed {pct:g}%")
    return out


def _arrow(a: Any, b: Any, fmt: Any = str) -> str:
    if a is None:
        return f"[green]{fmt(b)}[/]"
    if b is None:
        return f"[red]{fmt(a)}[/]"
    return fmt(a) if a == b else f"{fmt(a)} → {fmt(b)}"


def _render(d: Any, out: Any, changed_only: bool) -> None:
    from rich import box
    from rich.table import Table

    from ..core.diff import METRICS, percent, show, summary
    from ..render.tables import human

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
    out.print(table)
    for m in METRICS:
        a, b = d.total(m)
        if a or b:
            out.print(f"{m:12} {a:>14,} → {b:>14,}  ({percent(d.change(m))})", highlight=False)
    lines = summary(d)
    if lines:
        out.print("[bold]in short[/]")
        for line in lines:
            out.print(f"  • {safe(line)}", highlight=False)


@guarded
def schema_cmd(
    output: OutputOpt = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) of the spec format, generated from the op registry.

    Editors validate and complete specs with it: save it, then put this first line in a spec
    (VS Code with the YAML extension, or any yaml-language-server editor):

      # yaml-language-server: $schema=archviz.schema.json

    Examples:

      archviz schema -o archviz.schema.json

      archviz schema | python -m json.tool | less
    """
    from ..spec.schema import spec_schema

    emit(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n", output)
