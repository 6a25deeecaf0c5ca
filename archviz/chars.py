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

BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"             # a character class's contents
CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{BIDI}]")              # any control character
CONTROL_IN_TEXT = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")   # all but tab and newline
IS_BIDI = re.compile(rf"[{BIDI}]")
