"""The ``archviz`` command line: parse arguments, call the core, print. The one place that
prints errors and picks exit codes: 0 ok, 1 a check or threshold failed, 2 bad input.

Heavy libraries (torch, graphviz, matplotlib) are imported inside command bodies only, so
``archviz shapes`` starts fast; a test checks that importing this module pulls none of them.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from . import __version__
from .errors import ArchvizError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="archviz",
    help="Read, check, draw, compile and benchmark a CNN from one YAML layer spec.\n\n"
         "SPEC is a YAML file or the name of a bundled spec (see `archviz specs`); "
         "it defaults to the paper's AlexNet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

SPEC_HELP = "YAML spec file, or a bundled spec's name (alexnet, alexnet-1gpu, lenet5, ...)."
DEFAULT_SPEC = "alexnet"


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, emoji=False)


def fail(message: str, code: int = 2) -> None:
    """Print an error (no traceback) and exit with ``code``."""
    from rich.markup import escape

    err = console(stderr=True)
    first, _, rest = message.partition("\n")
    err.print(f"[bold red]error:[/] {escape(first)}", markup=True, soft_wrap=True, highlight=False)
    if rest:
        err.print(rest, markup=False, soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn ArchvizError into a located message and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArchvizError as exc:
            fail(exc.format())
        except KeyboardInterrupt:
            console(stderr=True).print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def parse_input(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``3x224x224`` → (3, 224, 224); ``784`` → (784,)."""
    if text is None:
        return None
    parts = re.split(r"[x×,]", text.strip().lower())
    if len(parts) not in (1, 3) or not all(re.fullmatch(r"[0-9]+", p) and int(p) > 0 for p in parts):
        raise ArchvizError(f"--input: expected CxHxW (e.g. 3x224x224) or F, got {text!r}")
    return tuple(int(p) for p in parts)


def analyse(spec: str, input_text: Optional[str] = None, gpus: Optional[int] = None) -> Any:
    """Load and analyse: (Spec, Analysis)."""
    from .analysis import analyze
    from .spec import load

    sp = load(spec)
    return sp, analyze(sp, parse_input(input_text), gpus)


def emit(text: str, output: Optional[str]) -> None:
    """Write ``text`` to ``output`` atomically, or to standard output."""
    if output:
        from .io import write_atomic

        write_atomic(output, text)
        console(stderr=True).print(f"wrote {output}")
    else:
        sys.stdout.write(text)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"archviz {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Read, check, draw, compile and benchmark a CNN from one YAML layer spec."""


@app.command()
@guarded
def shapes(
    spec: str = typer.Argument(DEFAULT_SPEC, help=SPEC_HELP),
    fmt: Optional[str] = typer.Option(None, "--format", "-f",
                                      help="table, json, csv or markdown [default: table, or from"
                                           " -o's suffix: .json, .csv, .md]."),
    input_size: Optional[str] = typer.Option(None, "--input", "-i",
                                             help="Try another input size, e.g. 3x224x224."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when there is any warning."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write to this file (atomically) instead of the terminal."),
) -> None:
    """Every layer's output size with the arithmetic written out, and its parameters, MACs and neurons.

    Examples:

      archviz shapes                                  # the paper's AlexNet

      archviz shapes alexnet --input 3x224x224        # the paper's 224: see the warning

      archviz shapes specs/lenet5.yaml --format json
    """
    from . import report

    if fmt is None:
        suffix = Path(output).suffix.lower() if output else ""
        fmt = {".json": "json", ".csv": "csv", ".md": "markdown"}.get(suffix, "table")
    if fmt not in report.FORMATS:
        raise ArchvizError(f"--format: expected one of {', '.join(report.FORMATS)}, got {fmt!r}")
    _, a = analyse(spec, input_size)
    if fmt == "table":
        if output:
            import io

            from rich.console import Console

            buf = io.StringIO()
            Console(file=buf, width=160, no_color=True, highlight=False).print(report.ShapesView(a))
            emit("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()), output)
        else:
            console().print(report.ShapesView(a))
    else:
        render = {"json": report.to_json, "csv": report.to_csv, "markdown": report.to_markdown}
        emit(render[fmt](a), output)
    if strict and a.warnings:
        fail(f"--strict: {len(a.warnings)} warning(s)", 1)


@app.command()
@guarded
def check(
    spec: str = typer.Argument(DEFAULT_SPEC, help=SPEC_HELP),
    input_size: Optional[str] = typer.Option(None, "--input", "-i",
                                             help="Another input size, e.g. 3x224x224."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Compare every `expect:` shape and every `claims:` figure with the computation.

    One line per check with ✓ or ✗, the claimed and the computed value and how the latter was
    obtained. Exit 1 when any check fails.

    Examples:

      archviz check                    # the AlexNet paper's own figures against its architecture

      archviz check my-net.yaml --json
    """
    import json

    from . import report
    from .check import run_checks

    sp, a = analyse(spec, input_size)
    results = run_checks(sp, a)
    if as_json:
        sys.stdout.write(json.dumps(report.checks_to_dict(results), indent=2, ensure_ascii=False) + "\n")
    else:
        if not results:
            console().print(f"{sp.name}: the spec has no expect: or claims: entries to check")
        else:
            console().print(report.checks_view(results))
    if any(not r.ok for r in results):
        raise typer.Exit(1)


@app.command("specs")
@guarded
def list_specs() -> None:
    """List the bundled specs (usable by name from any directory)."""
    from . import bundled
    from .spec import load

    for name in bundled.names():
        sp = load(name)
        typer.echo(f"{name:24} {sp.name}" + (f"  — {sp.source}" if sp.source else ""))


def main() -> None:
    app()


# The other commands live in their own modules (each imports its heavy libraries lazily);
# importing them registers them on `app`.
from . import cli_bench, cli_more, cli_render, cli_torch  # noqa: E402,F401

# `archviz --help` lists the commands in the order of the work: read, draw, build, measure, compare
_ORDER = ("shapes", "check", "draw", "plot", "verify", "export", "bench", "diff", "schema", "specs")

def _place(command: Any) -> int:
    name = command.name or command.callback.__name__
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


app.registered_commands.sort(key=_place)
