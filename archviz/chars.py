"""Which characters a name or a piece of free text may hold (ground level: no archviz imports).

Names (a spec's ``name:``, layer names) are one line of printable text; free text (``source:``,
``description:``, ``note:``) may also hold newlines and tabs. Everything else below U+0020, DEL
and the C1 controls (U+0080–U+009F, ESC's 8-bit forms among them) is a control character: the
loader refuses it (:mod:`archviz.spec.doc`) and terminal output strips it
(:mod:`archviz.render.text`).
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")                     # any control character
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")    # all but tab and newline
