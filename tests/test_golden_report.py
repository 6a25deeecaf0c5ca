"""Golden files for what people read: the shapes table at a fixed console width and the JSON,
for every bundled spec (ARCHVIZ_REGEN_GOLDEN=1 rewrites them; review the diff)."""

from __future__ import annotations

import io
import sys

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


def test_a_missing_golden_fails_unless_regeneration_is_asked_for(golden, tmp_path, monkeypatch) -> None:
    helpers = sys.modules[type(golden).__module__]      # the conftest module the fixture comes from
    monkeypatch.setattr(helpers, "GOLDEN", tmp_path)
    monkeypatch.setattr(helpers, "REGEN", False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="shapes/none.txt is missing"):
        golden.check("shapes/none.txt", "text\n")
    assert not (tmp_path / "shapes" / "none.txt").exists()       # nothing written
    monkeypatch.setattr(helpers, "REGEN", True)                  # ARCHVIZ_REGEN_GOLDEN=1
    golden.check("shapes/none.txt", "text\n")
    assert (tmp_path / "shapes" / "none.txt").read_text(encoding="utf-8") == "text\n"
    monkeypatch.setattr(helpers, "REGEN", False)
    golden.check("shapes/none.txt", "text\n")                    # now present and equal: passes
    with pytest.raises(AssertionError, match="differs"):
        golden.check("shapes/none.txt", "other\n")
