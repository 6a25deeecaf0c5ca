"""Golden files for what people read: the shapes table at a fixed console width and the JSON,
for every bundled spec (ARCHVIZ_REGEN_GOLDEN=1 rewrites them; review the diff)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import archviz
from archviz.render import tables as report
from tests.conftest import bundled_specs

WIDTH = 160


def table_text(stem: str) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=WIDTH, no_color=True, highlight=False, force_terminal=False)
    console.print(report.ShapesView(archviz.analyze(archviz.load(stem))))
    return buf.getvalue()


@pytest.mark.parametrize("stem", bundled_specs())
def test_table(stem: str, golden) -> None:
    golden.check(f"shapes/{stem}.txt", table_text(stem))


@pytest.mark.parametrize("stem", bundled_specs())
def test_json(stem: str, golden) -> None:
    golden.check(f"shapes/{stem}.json", report.to_json(archviz.analyze(archviz.load(stem))))


def test_alexnet_table_lines() -> None:
    """A few lines of the flagship table, spelled out here so a golden rewrite cannot hide them."""
    text = table_text("alexnet")
    assert "⌊(227 + 2·0 − 11)/4⌋ + 1 = 55" in text
    assert "⌊(13 + 2·0 − 3)/2⌋ + 1 = 6" in text
    assert "60,965,224" in text and "724,406,816" in text and "659,272" in text
