"""``archviz shapes``, ``archviz check`` and ``archviz specs``: reading a spec (pure Python only)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..render.text import safe
from .common import (
    DEFAULT_SPEC,
    InputOpt,
    OutputOpt,
    SpecArg,
    TextFormat,
    console,
    emit,
    fail,
    guarded,
    load_analysis,
    text_format,
)


@guarded
def shapes(
    spec: SpecArg = DEFAULT_SPEC,
    fmt: Annotated[Optional[TextFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="[default: table, or from -o's suffix: .json, .csv, .md]")] = None,
    input_size: InputOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when there is any warning.")] = False,
    output: OutputOpt = None,
) -> None:
    """Every layer's output size with the arithmetic written out, and its parameters, MACs and neurons.

    Examples:

      archviz shapes                                  # the paper's AlexNet

      archviz shapes alexnet --input 3x224x224        # the paper's 224: see the warning

      archviz shapes specs/lenet5.yaml --format json
    """
    from ..render import tables

    kind = text_format(fmt, output)
    _, a = load_analysis(spec, input_size)
    if kind is TextFormat.table:
        if output:
            emit(tables.plain_text(tables.ShapesView(a), width=160), output)
        else:
            console().print(tables.ShapesView(a))
    else:
        emit(tables.SHAPES_WRITERS[kind.value](a), output)
    if strict and a.warnings:
        fail(f"--strict: {len(a.warnings)} warning(s)", 1)


@guarded
def check(
    spec: SpecArg = DEFAULT_SPEC,
    input_size: InputOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Compare every `expect:` shape and every `claims:` figure with the computation.

    One line per check with ✓ or ✗, the claimed and the computed value and how the latter was
    obtained. Exit 1 when any check fails.

    Examples:

      archviz check                    # the AlexNet paper's own figures against its architecture

      archviz check my-net.yaml --json
    """
    from ..core.check import run_checks
    from ..render import tables

    sp, a = load_analysis(spec, input_size)
    results = run_checks(sp, a)
    if as_json:
        sys.stdout.write(json.dumps(tables.checks_to_dict(results), indent=2, ensure_ascii=False) + "\n")
    elif not results:
        console().print(f"{safe(sp.name)}: the spec has no expect: or claims: entries to check")
    else:
        console().print(tables.checks_view(results))
    if any(not r.ok for r in results):
        raise typer.Exit(1)


@guarded
def list_specs() -> None:
    """List the bundled specs (usable by name from any directory)."""
    from ..spec import bundled, load

    for name in bundled.names():
        sp = load(name)
        typer.echo(f"{name:24} {sp.name}" + (f"  — {sp.source}" if sp.source else ""))
