"""The README stays true to the code: its bundled-spec table, its commands and its set-up."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from tests.conftest import ROOT, bundled_specs

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_bundled_table_matches_the_analysis() -> None:
    rows = re.findall(r"^\| `([\w-]+)` \| .*? \| ([\d×]+) \| (\d+) \| ([\d,]+) \| ([\d.]+) G \|$",
                      README, re.MULTILINE)
    assert sorted(r[0] for r in rows) == bundled_specs()
    for stem, shape, layers, params, gmacs in rows:
        a = archviz.analyze(archviz.load(stem))
        assert shape == "×".join(map(str, a.input)), stem
        assert int(layers) == len(a.layers), stem
        assert int(params.replace(",", "")) == a.totals.params, stem
        assert gmacs == f"{a.totals.macs / 1e9:.3f}", stem


# commands as the README writes them: `archviz NAME` at the start of a code line or in backticks
COMMANDS = sorted(set(re.findall(r"(?:^\$? ?|`)archviz ([a-z]+)", README, re.MULTILINE)))


def test_the_readme_shows_every_command() -> None:
    registered = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert set(COMMANDS) == registered


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_the_readme_exists(command: str) -> None:
    r = CliRunner().invoke(app, [command, "--help"])
    assert r.exit_code == 0, f"README mentions `archviz {command}`, which does not exist"


def test_setup_commands_are_the_ci_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./install.sh --dev && .venv/bin/python -m pytest -q" in ci
    assert "./install.sh --dev && .venv/bin/python -m pytest -q" in README
    assert "./install.sh && .venv/bin/archviz shapes specs/alexnet.yaml" in README
