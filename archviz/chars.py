"""Which characters a name or a piece of free text may hold (ground level: no archviz imports).

Names (a spec's ``name:``, layer names) are one line of printable text; free text (``source:``,
``description:``, ``note:``) may also hold newlines and tabs. Everything else below U+0020, DEL
and the C1 controls (U+0080–U+009F, ESC's 8-bit forms among them) is a control character, and so
are the Unicode bidirectional controls (:data:`BIDI`: the embeddings, overrides and isolates
U+202A–U+202E and U+2066–U+2069, the marks U+200E, U+200F and U+061C), which reorder how the text
around them is shown ("Trojan Source", CVE-2021-42574): the loader refuses them
(:mod:`archviz.spec.doc`) and terminal output strips them (:mod:`archviz.render.text`).
"""

from __future__ import annotations

import re
from typing import Any

BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"             # a character class's contents


class Pattern:
    """A regular expression compiled when first used (``re.compile`` of a class of Unicode ranges
    costs about 0.3 ms; start-up need not pay for those it never runs). Reads as the compiled
    pattern does: ``.search``, ``.sub``, ``.match``, ..."""

    __slots__ = ("_text", "_compiled")

    def __init__(self, text: str) -> None:
        self._text, self._compiled = text, None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(self._text)
        return getattr(self._compiled, name)


CONTROL = Pattern(rf"[\x00-\x1f\x7f-\x9f{BIDI}]")              # any control character
CONTROL_IN_TEXT = Pattern(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")   # all but tab and newline
IS_BIDI = Pattern(rf"[{BIDI}]")


def printable(text: str, lines: bool = False) -> bool:
    """Whether ``text`` surely holds no control character (``lines``: tabs and newlines aside):
    Python's ``isprintable`` is false for every control and bidirectional character (categories
    Cc and Cf), so a true answer needs no pattern; a false one (a no-break space, say) is
    settled by the pattern."""
    return (text.replace("\n", "").replace("\t", "") if lines else text).isprintable()


def find_control(text: str, lines: bool = False) -> re.Match[str] | None:
    """The first control character in ``text`` (``lines``: tabs and newlines allowed), or None."""
    if printable(text, lines):
        return None
    return (CONTROL_IN_TEXT if lines else CONTROL).search(text)
