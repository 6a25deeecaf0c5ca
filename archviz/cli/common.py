"""What every command module shares: the SPEC argument, the choice Enums, the console, and the
error path (``guarded`` → ``fail``): the CLI alone prints and picks exit codes.

Exit codes: 0 ok, 1 a check or threshold failed, 2 bad input, 3 an internal error (a bug),
130 interrupted. Heavy libraries are imported inside command bodies only.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.exceptions import TyperException

from .. import __version__
from ..errors import ArchvizError
from ..render.text import safe, strip_control

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SPEC = "alexnet"
SPEC_HELP = "A YAML spec file, or a bundled spec's name (see archviz specs)."

# the one SPEC argument of every command that reads a spec
SpecArg = Annotated[str, typer.Argument(help=SPEC_HELP, show_default=True)]
InputOpt = Annotated[Optional[str], typer.Option(
    "--input", "-i", metavar="SIZE", rich_help_panel="Input",
    help="Another input size per example, any rank: 3x224x224, 784, 1024x768 (S×D).")]


class InputDtype(str, Enum):
    """The input's dtype (archviz.ops.dtypes.DTYPES): int64 / int32 for token ids."""

    float32 = "float32"
    bf16 = "bf16"
    fp16 = "fp16"
    int64 = "int64"
    int32 = "int32"


InputDtypeOpt = Annotated[Optional[InputDtype], typer.Option(
    "--input-dtype", case_sensitive=False, rich_help_panel="Input",
    help="The input's dtype instead of the spec's (float32); int64 or int32 for token ids.")]


def input_dtype(value: Optional[InputDtype]) -> Optional[str]:
    """``--input-dtype``'s value as the analysis takes it (None: the spec's)."""
    return value.value if value is not None else None


OutputOpt = Annotated[Optional[str], typer.Option(
    "--output", "-o", rich_help_panel=None,
    help="Write to this file (atomically; - is standard output).")]
WideOpt = Annotated[bool, typer.Option(
    "--wide", rich_help_panel=None,
    help="Every column even on a narrow terminal (pipes and -o always get every column).")]

JsonFlag = Annotated[bool, typer.Option(
    "--json", rich_help_panel=None, help="Same as --format json.")]


class TextFormat(str, Enum):
    """Text results: a table for people, the rest for programs."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


# help panels (`rich_help_panel`): the same names in every command's --help
# (output options stay in the default "Options" panel, beside --help)
PANEL_INPUT = "Input"
PANEL_BUILD = "Build"


SUFFIX_FORMATS = {".json": TextFormat.json, ".csv": TextFormat.csv, ".md": TextFormat.markdown}
FORMAT_HELP = ("table, json, csv or markdown. Default: table, or from -o's suffix"
               " (.json, .csv or .md).")
FormatOpt = Annotated[Optional[TextFormat], typer.Option("--format", "-f", case_sensitive=False,
                                                         rich_help_panel=None, help=FORMAT_HELP)]
FULL_WIDTH = 1000  # wider than any table: files and pipes get a table at its natural width


def text_format(fmt: Optional[TextFormat], output: Optional[str], as_json: bool = False) -> TextFormat:
    """``--format`` if given (``--json``, its alias where it exists), else from ``-o``'s suffix
    (.json, .csv, .md), else a table."""
    if as_json:
        if fmt not in (None, TextFormat.json):
            raise ArchvizError(f"--json and --format {fmt.value} disagree: give one of them")
        return TextFormat.json
    if fmt is not None:
        return fmt
    suffix = Path(output).suffix.lower() if output else ""
    return SUFFIX_FORMATS.get(suffix, TextFormat.table)


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, emoji=False)


def fail(message: str, code: int = 2) -> None:
    """Print an error (no traceback) and exit with ``code``."""
    err = console(stderr=True)
    first, _, rest = message.partition("\n")
    err.print(f"[bold red]error:[/] {safe(first)}", markup=True, soft_wrap=True, highlight=False)
    if rest:
        err.print(strip_control(rest), markup=False, soft_wrap=True, highlight=False)
    raise typer.Exit(code)


DEBUG_ENV = "ARCHVIZ_DEBUG"
_debug = False


def set_debug(on: bool) -> None:
    """``archviz --debug``: an internal error prints its traceback (as ``ARCHVIZ_DEBUG=1`` does)."""
    global _debug
    _debug = on


def debugging() -> bool:
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


# archviz's declared dependencies that commands import when they run (pyproject.toml): missing
# from the Python running archviz (installed with --no-deps, a checkout on PYTHONPATH), they are
# a set-up to fix, not a bug in archviz
DEPENDENCIES = frozenset({"torch", "graphviz", "matplotlib"})


def guarded(fn: F) -> F:
    """ArchvizError → a located message and exit 2; Ctrl-C → exit 130; any other exception is a
    bug: exit 3 with a one-line message, the traceback printed with ``--debug`` (or
    ``ARCHVIZ_DEBUG=1``) and otherwise written to a file the message names."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArchvizError as exc:
            fail(exc.format())
        except KeyboardInterrupt:
            console(stderr=True).print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if missing not in DEPENDENCIES:
                internal_error(exc)
            fail(f"this command needs the {missing!r} package, which is not installed in this Python"
                 f" ({sys.executable})\nhint: pip install '{missing}' (./install.sh"
                 f" installs every dependency)")
        except Exception as exc:  # noqa: BLE001 - the one place where a bug is reported
            internal_error(exc)
        finally:
            from ..io import unprotect_all

            unprotect_all()   # the spec this command read is protected for this command only

    return wrapper  # type: ignore[return-value]


def internal_error(exc: BaseException) -> None:
    """Report a bug: exit 3, the traceback on stderr when debugging, else in a file named here."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    err = console(stderr=True)
    head = f"internal error (a bug in archviz {__version__}): {type(exc).__name__}: {exc}"
    if debugging():
        sys.stderr.write(text)
        where = "the traceback is above"
    else:
        try:
            fd, path = tempfile.mkstemp(prefix="archviz-crash-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"{head}\n\n{text}")
            where = f"the traceback is in {path}"
        except OSError:
            where = "run again with --debug to see the traceback"
    err.print(f"[bold red]error:[/] {safe(head)}", markup=True, soft_wrap=True, highlight=False)
    err.print(f"{where}; please report it (with --debug, or ARCHVIZ_DEBUG=1, it is printed)",
              markup=False, soft_wrap=True, highlight=False)
    raise typer.Exit(3)


def parse_input(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``3x224x224`` → (3, 224, 224); ``784`` → (784,); ``1024x768`` → (1024, 768): any rank."""
    from ..limits import MAX_INT, MAX_RANK

    if text is None:
        return None
    parts = re.split(r"[x×,]", text.strip().lower())
    if len(parts) > MAX_RANK or not all(re.fullmatch(r"[0-9]+", p) and int(p) > 0 for p in parts):
        raise ArchvizError(f"--input: expected sizes joined by x (e.g. 3x224x224, 784 or 1024x768), at most"
                           f" {MAX_RANK} of them, got {text!r}")
    shape = tuple(int(p) for p in parts)
    if max(shape) > MAX_INT:
        raise ArchvizError(f"--input: sizes are at most {MAX_INT} (2^31 − 1, torch's limit), got {text!r}")
    return shape


def load_analysis(spec: str, input_text: Optional[str] = None, gpus: Optional[int] = None,
                  dtype: Optional[InputDtype] = None) -> Any:
    """Load and analyse: the Analysis (its ``spec`` is the Spec loaded); ``dtype``: ``--input-dtype``."""
    from ..core.analysis import analyze, preflight

    shape, dtype_in = parse_input(input_text), input_dtype(dtype)
    return analyze(load_spec(spec, preflight(shape, gpus, dtype_in)), shape, gpus, dtype_in)


def load_spec(spec: str, preflight: Any = None) -> Any:
    """Load a spec, and protect its file from being overwritten by this command's ``-o``;
    ``preflight``: as :func:`archviz.spec.load`'s (a shape error found before long uses expand)."""
    from ..io import protect
    from ..spec import load
    from ..spec.bundled import resolve

    sp = load(spec, preflight=preflight)
    protect(resolve(spec))
    return sp


def emit(text: str, output: Optional[str]) -> None:
    """Write ``text`` to ``output`` atomically, or to standard output (no ``-o``, or ``-o -``)."""
    if output and output != "-":
        from ..io import write_atomic

        write_atomic(output, text)
        console(stderr=True).print(f"wrote {safe(output)}")
    else:
        sys.stdout.write(text)


def show_result(kind: TextFormat, output: Optional[str], view: Callable[[], Any],
                writers: Mapping[TextFormat, Callable[[], str]], wide: bool = False) -> None:
    """One text result in the format asked for: the table (``view()``, a rich renderable) or one
    of ``writers``; to ``-o`` (atomically) or standard output.

    The table goes to a terminal at the terminal's width (a view that leaves columns out there
    says which, and how to get them) unless ``wide``; to a file or a pipe it goes as plain text
    with every column.
    """
    if kind is TextFormat.table:
        from ..render.tables import plain_text

        out = console()
        if output or not out.is_terminal:
            emit(plain_text(view(), width=FULL_WIDTH), output)
        elif wide:
            from rich.console import Console

            Console(width=FULL_WIDTH, highlight=False, emoji=False).print(view())
        else:
            out.print(view())
        return
    writer = writers.get(kind)
    if writer is None:
        choices = ", ".join(["table", *(k.value for k in writers)])
        raise ArchvizError(f"--format {kind.value}: not available here; choose {choices}")
    emit(writer(), output)
