"""Commands ``diff`` (two specs side by side) and ``schema`` (JSON Schema of the spec format)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from .common import DEFAULT_SPEC, SPEC_HELP, OutputOpt, console, emit, fail, guarded, load_analysis


class DiffFormat(str, Enum):
    table = "table"
    json = "json"




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
    from ..render import views

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
        console().print(views.diff_view(d, changed_only))
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
