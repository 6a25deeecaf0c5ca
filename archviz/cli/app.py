"""The ``archviz`` Typer app: built here from the command modules, which never import this one.

Commands are listed in ``archviz --help`` in the order of the work: read, draw, build, measure,
compare. Heavy libraries (torch, graphviz, matplotlib) load inside command bodies only, so
``archviz shapes`` starts fast; a test checks that importing this module pulls none of them.
"""

from __future__ import annotations

import copy
import sys

import typer

from .. import __version__
from . import bench, compare, cost, importer, inspect, model, render, view
from .common import internal_error, set_debug

app = typer.Typer(
    name="archviz",
    help="Read, check, draw, compile and benchmark a CNN or a transformer from one YAML layer spec.\n\n"
         "SPEC is a YAML file or the name of a bundled spec (see `archviz specs`); "
         "it defaults to the paper's AlexNet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMMANDS = (
    ("shapes", inspect.shapes),
    ("check", inspect.check),
    ("cost", cost.cost),
    ("draw", render.draw),
    ("plot", render.plot),
    ("view", view.view),
    ("verify", model.verify),
    ("export", model.export),
    ("import", importer.import_cmd),
    ("bench", bench.bench),
    ("diff", compare.diff_cmd),
    ("schema", compare.schema_cmd),
    ("specs", inspect.list_specs),
)
CLASSES = {"bench": bench.BenchCommand}   # a command's own click class (bench: its --json FILE alias)
SUMMARY_WIDTH = 86   # a summary in `archviz --help`'s command list: one line at 100 columns
# where a command's first docstring paragraph is longer than that, its line in the list
SUMMARIES = {"cost": "Memory and step time on given hardware: whether it fits, the largest batch."}


def summary(name: str, fn: object) -> str:
    """A command's one-line summary: its docstring's first paragraph, whole, else SUMMARIES's."""
    first = " ".join((getattr(fn, "__doc__", None) or "").strip().split("\n\n")[0].split())
    return first if len(first) <= SUMMARY_WIDTH else SUMMARIES.get(name, first)


for _name, _command in COMMANDS:
    app.command(_name, cls=CLASSES.get(_name), short_help=summary(_name, _command))(_command)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"archviz {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug",
                               help="On an internal error (exit 3, a bug), print the traceback."
                                    " Same as ARCHVIZ_DEBUG=1. Example: archviz --debug shapes x.yaml"),
) -> None:
    """Read, check, draw, compile and benchmark a CNN or a transformer from one YAML layer spec."""
    set_debug(debug)


def _app_for(args: list[str]) -> typer.Typer:
    """``app`` with only the command that ``args`` name: typer turns every registered command's
    signature into click options when it starts (~20 ms for all of them), and one command runs.
    The whole app where no known command is named, or the group's help is asked for first."""
    name = next((a for a in args if not a.startswith("-")), None)
    before = args[:args.index(name)] if name is not None else args
    if name not in dict(COMMANDS) or "-h" in before or "--help" in before:
        return app
    one = copy.copy(app)
    one.registered_commands = [c for c in app.registered_commands if c.name == name]
    return one


def main() -> None:
    try:
        _app_for(sys.argv[1:])()
    except Exception as exc:  # noqa: BLE001 - a bug outside any command body: exit 3, not 1
        try:
            internal_error(exc)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
