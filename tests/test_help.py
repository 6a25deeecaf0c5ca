"""Help and tables people read (issue 26, point 3): every --help fits about a screen at 100
columns with whole example lines, one meaning per flag, choices shown by Enums; at 80 columns no
formula is cut and no cell wraps past two lines (shapes, check, diff, verify)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

import archviz
from archviz.cli import app, choices
from archviz.cli.app import NAMES, SUMMARY_WIDTH, summary
from archviz.cli.app import command as command_of
from archviz.core.check import run_checks
from archviz.core.diff import diff as compare
from archviz.render import tables, views

runner = CliRunner()
MAX_HELP_LINES = 62


def _help(*args: str) -> str:
    r = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("command", ["", *NAMES])
def test_every_help_fits_a_screen_with_whole_example_lines(command: str) -> None:
    text = _help(*([command] if command else []))
    lines = text.splitlines()
    assert len(lines) <= MAX_HELP_LINES, f"archviz {command} --help: {len(lines)} lines"
    assert max(len(line) for line in lines) <= 100
    examples = [line for line in lines if line.strip().startswith("archviz ")]
    for i, line in enumerate(lines[:-1]):
        if line in examples:   # an example's next line is blank: it was not wrapped
            assert not lines[i + 1].strip(), f"archviz {command} --help: example cut:\n{line}\n{lines[i + 1]}"
    if command:
        assert examples, f"archviz {command} --help has no example"


def test_the_command_list_has_one_whole_line_per_command() -> None:
    text = _help()
    for name in NAMES:
        fn = command_of(name)[0]
        line = next(line for line in text.splitlines() if re.match(rf"│ {name}\s", line))
        assert len(summary(name, fn)) <= SUMMARY_WIDTH
        assert summary(name, fn).split()[-1] in line, f"{name}'s summary is cut: {line}"


def test_json_means_format_json_wherever_it_exists() -> None:
    for command in NAMES:
        text = _help(command)
        if "--json" in text:
            assert re.search(r"--json\s+Same as --format json", text), command


def test_choices_are_enums_shown_in_help_and_case_insensitive() -> None:
    assert "<auto|cpu|cuda|mps>" in _help("bench") and "<table|json>" in _help("bench")
    assert "<table|json|csv|markdown>" in _help("shapes")
    r = runner.invoke(app, ["shapes", "lenet5", "--format", "JSON"])
    assert r.exit_code == 0 and '"schema_version"' in r.stdout


def test_the_cli_enums_are_the_cores() -> None:
    """cli/choices.py keeps the choices of cost and bench without importing the core at start-up."""
    from archviz.core.cost import Optimizer
    from archviz.core.devices import Dtype
    from archviz.core.flops import Mode

    for cli, core in ((choices.Dtype, Dtype), (choices.StepMode, Mode), (choices.Optimizer, Optimizer)):
        assert {e.value for e in cli} == {e.value for e in core}


# ---- tables at 80 columns ---------------------------------------------------------------------

def _at(renderable: object, width: int = 80) -> list[str]:
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=True, color_system=None).print(renderable)
    return buf.getvalue().splitlines()


def _rows(lines: list[str]) -> list[list[str]]:
    """The rows of a SIMPLE_HEAD table: each row with its continuation lines (a blank layer cell)."""
    head = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    at = lines[head - 1].index("layer")
    rows: list[list[str]] = []
    for line in lines[head + 1:]:
        if not line.strip():
            break
        if line[at:at + 3].strip() or not rows:
            rows.append([line])
        else:
            rows[-1].append(line)
    return rows


@pytest.mark.parametrize("stem", ["alexnet", "lenet5", "resnet18", "vgg16", "gpt2"])
def test_shapes_at_80_columns_cuts_no_formula_and_no_cell_past_two_lines(stem: str) -> None:
    try:
        a = archviz.analyze(archviz.load(stem))
    except Exception:  # noqa: BLE001 - a bundled spec of another issue, not here yet
        pytest.skip(f"no bundled {stem}")
    lines = _at(tables.ShapesView(a))
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for row in _rows(lines):
        assert len(row) <= 2, "\n".join(row)
    formulas = {s.formula for s in a.layers if s.formula != "same as input"}
    if "arithmetic" in lines[2]:
        for f in formulas:
            assert f in text, f"formula cut at 80 columns: {f}"
    else:
        assert "columns left out at 80 columns" in " ".join(text.split())


def test_shapes_says_which_columns_it_left_out() -> None:
    a = archviz.analyze(archviz.load("alexnet"))
    text = " ".join("\n".join(_at(tables.ShapesView(a))).split())
    assert "⌊(227 + 2·0 − 11)/4⌋ + 1 = 55" in text
    assert "columns left out at 80 columns: neurons, RF, MACs, params" in text and "--format json" in text
    wide = " ".join("\n".join(_at(tables.ShapesView(a), 200)).split())
    assert "left out" not in wide and "105,415,200" in wide


def test_check_at_80_columns_keeps_each_formula_whole() -> None:
    a = archviz.analyze(archviz.load("alexnet"))
    results = run_checks(a)
    lines = _at(tables.checks_view(results))
    assert max(len(line) for line in lines) <= 80
    for r in results:
        if "⌊" in r.how:
            assert any(line.strip() == r.how for line in lines), r.how
    # the cells of check, claimed and computed: at most two lines each
    marks = [i for i, line in enumerate(lines) if line[:1] in "✓✗"]
    for i in marks:
        follow = [line for line in lines[i + 1:i + 3] if line.startswith("   ") and line[3:5].strip()]
        assert len(follow) <= 1
    wide = _at(tables.checks_view(results), 250)
    assert any("how" in line.split() for line in wide[:2])   # the table where it fits


@pytest.mark.parametrize("pair", [("alexnet", "alexnet-torchvision"), ("alexnet", "lenet5")])
def test_diff_at_80_columns_fits_without_wrapping(pair: tuple[str, str]) -> None:
    d = compare(*(archviz.analyze(archviz.load(s)) for s in pair))
    lines = _at(views.diff_view(d))
    assert max(len(line) for line in lines) <= 80
    for row in _rows(lines):
        assert len(row) <= 2, "\n".join(row)


def test_verify_at_80_columns_fits() -> None:
    pytest.importorskip("torch")
    from archviz.runtime.compile import verify

    result = verify(archviz.load("alexnet"), None)
    lines = _at(views.verify_view(result))
    assert max(len(line) for line in lines) <= 80
    for row in _rows(lines):
        assert len(row) <= 2, "\n".join(row)
