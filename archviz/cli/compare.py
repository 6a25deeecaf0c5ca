"""Commands ``diff`` (two specs side by side) and ``schema`` (JSON Schema of the spec format)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from .common import (
    DEFAULT_SPEC,
    SPEC_HELP,
    FormatOpt,
    OutputOpt,
    TextFormat,
    WideOpt,
    emit,
    fail,
    guarded,
    load_analysis,
    show_result,
    text_format,
)


@guarded
def diff_cmd(
    spec_a: Annotated[str, typer.Argument(help="A: " + SPEC_HELP)],
    spec_b: Annotated[Optional[str], typer.Argument(
        help="B: the spec to compare with A (same forms). Given one spec only, archviz"
             f" compares the paper's AlexNet ({DEFAULT_SPEC}) with it.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    max_params: Annotated[Optional[float], typer.Option(
        "--max-params-change", metavar="PCT",
        help="Exit 1 when the total parameters change by more than PCT percent (either way).")] = None,
    max_macs: Annotated[Optional[float], typer.Option(
        "--max-macs-change", metavar="PCT",
        help="Exit 1 when the total MACs change by more than PCT percent (either way).")] = None,
    changed_only: Annotated[bool, typer.Option("--changed-only", help="Leave out identical layers.")] = False,
    wide: WideOpt = False,
) -> None:
    """Compare two specs layer by layer: settings, output shapes, parameters, MACs, totals.

    Layers are aligned by name, else by position among equal ops. Rows: ~ changed, − only in A,
    + only in B. Exit 1 when a --max-*-change threshold is crossed (for CI).

    Examples:

      archviz diff alexnet alexnet-torchvision

      archviz diff alexnet-keras                     # the paper's AlexNet against it

      archviz diff specs/alexnet.yaml my-alexnet.yaml --format json

      archviz diff alexnet resnet18 -o diff.md       # Markdown, from the suffix

      archviz diff main.yaml pr.yaml --max-params-change 1 --max-macs-change 5
    """
    from ..core.diff import diff as compare
    from ..core.diff import to_dict
    from ..render import views
    from ..render.tables import records_csv

    for flag, value in (("--max-params-change", max_params), ("--max-macs-change", max_macs)):
        if value is not None and value < 0:
            raise ArchvizError(f"{flag}: expected a percentage >= 0, got {value:g}")
    if spec_b is None:
        spec_a, spec_b = DEFAULT_SPEC, spec_a
    d = compare(load_analysis(spec_a), load_analysis(spec_b))
    exceeded = _exceeded(d, {"params": max_params, "macs": max_macs})
    show_result(text_format(fmt, output), output, lambda: views.diff_view(d, changed_only), {
        TextFormat.json: lambda: json.dumps(to_dict(d, exceeded), indent=2, ensure_ascii=False) + "\n",
        TextFormat.csv: lambda: records_csv(views.DIFF_COLUMNS, views.diff_rows(d)),
        TextFormat.markdown: lambda: views.diff_markdown(d)}, wide)
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
    """Print the JSON Schema of the spec format (draft 2020-12), from the op registry.

    Editors validate and complete specs with it: save it, then put this first line in a spec
    (VS Code with the YAML extension, or any yaml-language-server editor):

      # yaml-language-server: $schema=archviz.schema.json

    Examples:

      archviz schema -o archviz.schema.json

      archviz schema | python -m json.tool | less
    """
    from ..spec.schema import spec_schema

    emit(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n", output)
