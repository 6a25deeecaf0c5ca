"""Errors raised by the core. Only :mod:`archviz.cli` prints them.

Every error about a spec carries a :class:`Loc` (file, line, column and the text of that
line), so it can be shown as ``file:line:col: message`` with the source line and a caret.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

from .record import record


@record
class Loc:
    """A place in a spec file: 1-based line and column, plus the text of that line."""

    file: str
    line: int
    col: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ArchvizError(Exception):
    """Base class of every error archviz raises on purpose."""

    def format(self) -> str:
        return str(self)


class SpecError(ArchvizError):
    """A problem with a spec, located at ``loc`` when the place is known."""

    def __init__(self, message: str, loc: Loc | None = None, hint: str = "",
                 use_site: Loc | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint
        self.use_site = use_site

    def format(self) -> str:
        """``file:line:col: message``, the source line, a caret, then the hint."""
        if self.loc is None:
            head = self.message
        else:
            head = f"{self.loc}: {self.message}"
        lines = [head]
        if self.loc is not None and self.loc.text:
            lines.append(_excerpt(self.loc))
        if self.use_site is not None:
            lines.append(f"{self.use_site}: note: used here")
            if self.use_site.text:
                lines.append(_excerpt(self.use_site))
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class ShapeError(SpecError):
    """A layer that cannot be applied to what it is given (a kernel larger than its input, ...)."""

    def __init__(self, layer: str, message: str, loc: Loc | None = None, hint: str = "",
                 use_site: Loc | None = None) -> None:
        super().__init__(f"{layer}: {message}", loc, hint, use_site)
        self.layer = layer


def _excerpt(loc: Loc) -> str:
    """The source line, indented, with a caret under column ``loc.col``."""
    text = loc.text.rstrip("\n").expandtabs(1)
    caret = " " * (max(loc.col, 1) - 1) + "^"
    return f"    {text}\n    {caret}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'conv'?`` when a close match exists, else the list of valid choices."""
    options = sorted(set(choices))
    close = get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "valid: " + ", ".join(options)
