"""The ``archviz`` Typer app, built from the command modules, which never import this one.

Commands are listed in ``archviz --help`` in the order of the work: read, draw, build, measure,
compare. A command's module (``archviz.cli.<module>``) is imported when typer first reads the
app's command list, and ``main()`` hands typer an app holding only the command it runs, so
``archviz shapes`` imports the shapes command and none of the others (bench, cost, import,
drawing). Heavy libraries (torch, graphviz, matplotlib) load inside command bodies only; a test
checks what ``archviz shapes`` imports.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from importlib import import_module
from typing import Any

import typer

from .. import __version__
from .common import internal_error, set_debug

# name, module of archviz.cli, function; a command's own click class (bench: its --json FILE alias)
COMMANDS = (
    ("shapes", "inspect", "shapes"),
    ("check", "inspect", "check"),
    ("cost", "cost", "cost"),
    ("draw", "render", "draw"),
    ("plot", "render", "plot"),
    ("view", "view", "view"),
    ("verify", "model", "verify"),
    ("export", "model", "export"),
    ("import", "importer", "import_cmd"),
    ("bench", "bench", "bench"),
    ("diff", "compare", "diff_cmd"),
    ("schema", "compare", "schema_cmd"),
    ("specs", "inspect", "list_specs"),
)
NAMES = tuple(name for name, _, _ in COMMANDS)
CLASSES = {"bench": "BenchCommand"}   # command → the click class its module defines
SUMMARY_WIDTH = 86   # a summary in `archviz --help`'s command list: one line at 100 columns
# where a command's first docstring paragraph is longer than that, its line in the list
SUMMARIES = {"cost": "Memory and step time on given hardware: whether it fits, the largest batch."}
HELP = ("Read, check, draw, compile and benchmark a CNN or a transformer from one YAML layer spec.\n\n"
        "SPEC is a YAML file or the name of a bundled spec (see `archviz specs`); "
        "it defaults to the paper's AlexNet.")


def summary(name: str, fn: object) -> str:
    """A command's one-line summary: its docstring's first paragraph, whole, else SUMMARIES's."""
    first = " ".join((getattr(fn, "__doc__", None) or "").strip().split("\n\n")[0].split())
    return first if len(first) <= SUMMARY_WIDTH else SUMMARIES.get(name, first)


def command(name: str) -> tuple[Any, type | None]:
    """The function of the command ``name`` and its click class (None: typer's), imported now."""
    _, module_name, function = next(c for c in COMMANDS if c[0] == name)
    module = import_module(f"{__package__}.{module_name}")
    return getattr(module, function), getattr(module, CLASSES[name]) if name in CLASSES else None


class ArchvizApp(typer.Typer):
    """The app with the commands ``names`` (all of them by default), in :data:`COMMANDS`'s order,
    each imported and registered when typer first reads :attr:`registered_commands`."""

    def __init__(self, names: Iterable[str] = NAMES) -> None:
        self._pending = [n for n in NAMES if n in set(names)]
        super().__init__(name="archviz", help=HELP, no_args_is_help=True, add_completion=False,
                         pretty_exceptions_enable=False,
                         context_settings={"help_option_names": ["-h", "--help"]})
        self.callback()(main_callback)

    @property  # type: ignore[override]
    def registered_commands(self) -> list[Any]:
        pending, self._pending = self._pending, []
        for name in pending:
            fn, cls = command(name)
            self.command(name, cls=cls, short_help=summary(name, fn))(fn)
        return self._registered

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        self._registered = value


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"archviz {__version__}")
        raise typer.Exit()


def main_callback(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug",
                               help="On an internal error (exit 3, a bug), print the traceback."
                                    " Same as ARCHVIZ_DEBUG=1. Example: archviz --debug shapes x.yaml"),
) -> None:
    """Read, check, draw, compile and benchmark a CNN or a transformer from one YAML layer spec."""
    set_debug(debug)


app = ArchvizApp()


def _app_for(args: list[str]) -> typer.Typer:
    """An app with only the command that ``args`` name: its module alone is imported, and typer
    turns only its signature into click options. The whole app where no known command is named,
    or the group's help is asked for first (help and "No such command" read every command)."""
    name = next((a for a in args if not a.startswith("-")), None)
    before = args[:args.index(name)] if name is not None else args
    if name not in NAMES or "-h" in before or "--help" in before:
        return app
    return ArchvizApp((name,))


def main() -> None:
    """The console script. What start-up has made (typer, archviz's modules) lives as long as the
    process, so it is frozen out of the cyclic collector's walks: each full collection would
    otherwise visit it again (about 24 M of `archviz shapes`' instructions; the library, imported
    by a user's program, leaves the collector alone)."""
    gc.freeze()
    try:
        _app_for(sys.argv[1:])()
    except Exception as exc:  # noqa: BLE001 - a bug outside any command body: exit 3, not 1
        try:
            internal_error(exc)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
