"""``archviz shapes``, ``archviz check`` and ``archviz specs``: reading a spec (pure Python only)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from ..render.text import safe, strip_control
from .common import (
    DEFAULT_SPEC,
    FormatOpt,
    InputDtypeOpt,
    InputOpt,
    JsonFlag,
    OutputOpt,
    SpecArg,
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
def shapes(
    spec: SpecArg = DEFAULT_SPEC,
    fmt: FormatOpt = None,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when there is any warning (accepted ones, `allow: inexact`,"
                         " do not count).")] = False,
    output: OutputOpt = None,
    wide: WideOpt = False,
) -> None:
    """Every layer's output size with the arithmetic, its parameters, MACs and neurons.

    Examples:

      archviz shapes                                  # the paper's AlexNet

      archviz shapes alexnet --input 3x224x224        # the paper's 224: see the warning

      archviz shapes specs/lenet5.yaml --format json

      archviz shapes my-lm.yaml --input 1024 --input-dtype int64   # token ids

      archviz shapes resnet50 -o resnet50.md          # Markdown, from the suffix
    """
    from ..render import tables

    kind = text_format(fmt, output)
    a = load_analysis(spec, input_size, dtype=dtype_in)
    writers = {TextFormat(k): functools.partial(w, a) for k, w in tables.SHAPES_WRITERS.items()}
    show_result(kind, output, lambda: tables.ShapesView(a), writers, wide)
    if strict and a.warnings:
        fail(f"--strict: {len(a.warnings)} warning(s)", 1)


@guarded
def check(
    spec: SpecArg = DEFAULT_SPEC,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
    wide: WideOpt = False,
) -> None:
    """Compare every `expect:` shape and every `claims:` figure with the computation.

    One line per check with ✓ or ✗, the claimed and the computed value and how the latter was
    obtained. Exit 1 when any check fails.

    Examples:

      archviz check                    # the AlexNet paper's own figures against its architecture

      archviz check my-net.yaml --format json        # --json is the same

      archviz check resnet50 -o checks.csv
    """
    from ..core.check import run_checks
    from ..render import tables

    kind = text_format(fmt, output, as_json)
    a = load_analysis(spec, input_size, dtype=dtype_in)
    results = run_checks(a)
    if kind is TextFormat.table and not results:
        emit(f"{strip_control(a.name)}: the spec has no expect: or claims: entries to check\n", output)
    else:
        show_result(kind, output, lambda: tables.checks_view(results), {
            TextFormat.json: lambda: _json(tables.checks_to_dict(results)),
            TextFormat.csv: lambda: tables.checks_csv(results),
            TextFormat.markdown: lambda: tables.checks_markdown(results)}, wide)
    if any(not r.ok for r in results):
        raise typer.Exit(1)


SPEC_COLUMNS = ("spec", "name", "input", "params", "macs", "layers", "source")


def _spec_rows() -> list[dict[str, Any]]:
    from ..core.analysis import analyze
    from ..ops import fmt_dims
    from ..spec import bundled, load

    rows = []
    for stem in bundled.names():
        sp = load(stem)
        a = analyze(sp)
        rows.append({"spec": stem, "name": sp.name, "input": fmt_dims(a.input), "params": a.totals.params,
                     "macs": a.totals.macs, "layers": len(a.layers), "source": sp.source})
    return rows


@guarded
def list_specs(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
) -> None:
    """List the bundled specs (usable by name from any directory): input, parameters, MACs.

    Examples:

      archviz specs

      archviz specs --format markdown        # the README's table

      archviz specs -o specs.json
    """
    from ..render import tables

    kind = text_format(fmt, output)
    rows = _spec_rows()
    show_result(kind, output, lambda: _specs_view(rows), {
        TextFormat.json: lambda: _json({"schema_version": tables.SCHEMA_VERSION, "specs": rows}),
        TextFormat.csv: lambda: tables.records_csv(SPEC_COLUMNS, rows),
        TextFormat.markdown: lambda: tables.records_markdown(
            ("spec", "name", "input", "layers", "params", "MACs"),
            [{**r, "params": f"{r['params']:,}", "MACs": f"{r['macs']:,}"} for r in rows])}, wide)


def _specs_view(rows: list[dict[str, Any]]) -> Any:
    from rich import box
    from rich.table import Table

    from ..render.tables import human

    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col, just in (("spec", "left"), ("name", "left"), ("input", "left"), ("layers", "right"),
                      ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["spec"], safe(r["name"]), r["input"], str(r["layers"]), f"{r['params']:,}",
                      f"{r['macs']:,} ({human(r['macs'])})")
    return table


def _json(value: Any) -> str:
    import json  # only for --format json

    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
