"""The one function through which every user-provided string reaches a terminal.

Spec names, layer names, sources, notes and error text come from files that anyone may write.
Shown through rich they could read as markup (``[bold]``, ``[/x]`` which even crashes rich),
as emoji codes (``:smile:``) or, raw, as terminal control sequences (``ESC[31m``, BEL). rich
is not imported here, so this module is cheap on every path.
"""

from __future__ import annotations

import re

from ..chars import CONTROL_IN_TEXT

# what rich reads as a tag: [name...] or [/...], and an escaping backslash before one
_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@].*?\])")


def strip_control(text: str) -> str:
    """``text`` without control characters (newlines and tabs kept)."""
    return CONTROL_IN_TEXT.sub("", text)


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

    s = _TAG.sub(tag, s)
    if s.endswith("\\") and not s.endswith("\\\\"):
        s += "\\"  # a lone trailing backslash would escape the markup that follows it
    return s
