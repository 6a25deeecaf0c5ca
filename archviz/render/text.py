"""The one function through which every user-provided string reaches a terminal.

Spec names, layer names, sources, notes and error text come from files that anyone may write.
Shown through rich they could read as markup (``[bold]``, ``[/x]`` which even crashes rich),
as emoji codes (``:smile:``) or, raw, as terminal control sequences (``ESC[31m``, BEL). rich
is not imported here, so this module is cheap on every path.
"""

from __future__ import annotations

import re

from ..chars import BIDI, CONTROL_IN_TEXT, Pattern, printable

# what rich reads as a tag: [name...] or [/...], and an escaping backslash before one
_TAG = Pattern(r"(\\*)(\[[a-zA-Z#/@].*?\])")


def strip_control(text: str) -> str:
    """``text`` without control characters (newlines and tabs kept), bidirectional controls
    (U+202E right-to-left override and the like) among them."""
    return text if printable(text, lines=True) else CONTROL_IN_TEXT.sub("", text)


def safe(text: object) -> str:
    """``text`` as plain characters for a rich console: control characters removed, markup
    tags escaped (``[bold]`` prints as ``[bold]``), emoji codes (``:smile:``) kept as typed.

    Consoles are made with ``emoji=False`` (see :func:`archviz.cli.common.console`), so an
    emoji code needs no escape of its own; tags are escaped the way ``rich.markup.escape`` does.
    """
    s = strip_control(str(text))

    def tag(m: re.Match[str]) -> str:
        slashes, body = m.groups()
        return f"{slashes}{slashes}\\{body}"

    if "[" in s:
        s = _TAG.sub(tag, s)
    if s.endswith("\\") and not s.endswith("\\\\"):
        s += "\\"  # a lone trailing backslash would escape the markup that follows it
    return s


# ---- the other output formats: each escapes user text for its own syntax ------------------------
_ANY_CONTROL = Pattern(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")


def one_line(text: object) -> str:
    """``text`` on one line, every control character (newline included) written as its escape
    (``\\n``, ``\\x1b``): for line-ended syntax such as a DOT ``//`` comment."""
    s = str(text)
    return s if s.isprintable() else _ANY_CONTROL.sub(lambda m: ascii(m.group())[1:-1], s)


_MD = {"\\": "\\\\", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "\\`",
       "*": "\\*", "_": "\\_", "#": "\\#", "](": "]\\("}
# brackets alone stay as typed (a name may be "Net [v2]"); "](" would make them a link
_MD_CHARS = Pattern(r"\]\(|[\\|<>&`*_#]")


def markdown(text: object) -> str:
    """``text`` as literal Markdown inline text: one line (newlines and tabs as spaces, other
    control characters removed), table pipes, emphasis, links and HTML (``<script>``) escaped."""
    s = re.sub(r"[\t\n\r\u2028\u2029]+", " ", str(text))
    s = _ANY_CONTROL.sub("", s)
    return _MD_CHARS.sub(lambda m: _MD[m.group()], s)


def mpl(text: object) -> str:
    """``text`` as literal matplotlib text: each ``$`` escaped as ``\\$``, so that no pair of
    dollars reads as mathtext (a spec named ``cost $5 and $6`` would be set as maths, and
    ``$\\frac$`` fails to parse); control characters removed. matplotlib draws ``\\$`` as ``$``
    (in mathtext and LaTeX alike), so the text shows as typed. Every user string a figure shows
    (spec, layer, device and model names, op text) goes through this."""
    return strip_control(str(text)).replace("$", "\\$")
