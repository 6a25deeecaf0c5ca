"""The fast paths of :mod:`archviz.chars` and :mod:`archviz.render.text` (``isprintable`` before
any pattern) answer as the patterns alone do, on any text: the oracle is the regular expression
compiled directly."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from archviz.chars import BIDI, find_control, printable
from archviz.render.text import markdown, one_line, safe, strip_control

CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{BIDI}]")
CONTROL_IN_TEXT = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")
ANY_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")

# text rich in what matters: controls, bidirectional marks, spaces of other kinds, brackets
SPECIAL = "\x00\t\n\r\x1b\x7f\x85\x9f\u00a0\u061c\u200b\u200e\u202e\u2028\u2066[]\\`|$"
TEXT = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=24)


def _span(m: re.Match[str] | None) -> tuple[int, str] | None:
    return None if m is None else (m.start(), m.group())


@settings(max_examples=400, deadline=None)
@given(TEXT, st.booleans())
def test_find_control_is_the_pattern(text: str, lines: bool) -> None:
    pattern = CONTROL_IN_TEXT if lines else CONTROL
    assert _span(find_control(text, lines)) == _span(pattern.search(text))
    if printable(text, lines):
        assert pattern.search(text) is None


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_the_writers_fast_paths_are_the_patterns(text: str) -> None:
    assert strip_control(text) == CONTROL_IN_TEXT.sub("", text)
    assert one_line(text) == ANY_CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)
    assert "\x1b" not in safe(text) + markdown(text) and "\u202e" not in safe(text) + markdown(text)


def test_a_name_with_a_bidirectional_control_is_still_refused() -> None:
    assert find_control("ab\u202ecd") is not None and find_control("a\u00a0b") is None
    assert find_control("two\nlines", lines=True) is None and find_control("two\nlines") is not None
