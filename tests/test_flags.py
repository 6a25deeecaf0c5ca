"""One flag vocabulary (issue 10, points 1 and 2): --format table|json|csv|markdown and -o FILE
for every text result, --json only as the documented alias where it existed; every column when
the output is piped or written to a file, and a narrow terminal says what it left out."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.core.diff import diff as compare
from archviz.render import tables, views

runner = CliRunner()
FAST_BENCH = ("--device", "cpu", "--batch", "1", "--mode", "infer", "--warmup", "0", "--iters", "1")


def invoke(*args: str, columns: int = 80):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


@pytest.mark.parametrize("args", [("shapes", "lenet5"), ("check", "lenet5"), ("diff", "alexnet", "lenet5"),
                                  ("verify", "lenet5"), ("specs",), ("bench", "lenet5", *FAST_BENCH)])
def test_every_text_result_has_json_with_a_schema_version(args: tuple[str, ...], tmp_path: Path) -> None:
    r = invoke(*args, "--format", "json")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["schema_version"] == 1
    out = tmp_path / "result.json"            # -o FILE: the format from the suffix
    r = invoke(*args, "-o", str(out))
    assert r.exit_code in (0, 1), r.output
    assert json.loads(out.read_text(encoding="utf-8"))["schema_version"] == 1


@pytest.mark.parametrize("args", [("shapes", "lenet5"), ("check", "lenet5"), ("diff", "alexnet", "lenet5"),
                                  ("verify", "lenet5"), ("specs",)])
def test_csv_and_markdown_from_the_flag_or_the_suffix(args: tuple[str, ...], tmp_path: Path) -> None:
    r = invoke(*args, "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert len(rows) > 2 and all(len(row) == len(rows[0]) for row in rows)
    md = tmp_path / "result.md"
    invoke(*args, "-o", str(md))
    lines = md.read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line.startswith("|")]
    cells = {line.replace("\\|", "").count("|") for line in table}
    assert len(table) > 2 and len(cells) == 1


def test_json_alias_is_format_json_and_a_conflict_is_refused() -> None:
    for command in ("check", "verify"):
        alias = invoke(command, "lenet5", "--json").stdout
        assert alias == invoke(command, "lenet5", "--format", "json").stdout
        r = invoke(command, "lenet5", "--json", "--format", "csv")
        assert r.exit_code == 2 and "--json and --format csv disagree" in r.output


def test_json_is_format_json_in_bench_too_and_csv_is_no_choice(tmp_path: Path) -> None:
    """One meaning per flag: --json is --format json everywhere; bench's old --json FILE.json still
    writes the file (a deprecated alias, with a warning); csv is not among bench's --format choices."""
    flag = invoke("bench", "lenet5", *FAST_BENCH, "--json")
    assert flag.exit_code == 0, flag.output
    assert json.loads(flag.stdout)["rows"][0]["batch"] == 1
    out = tmp_path / "b.json"
    r = invoke("bench", "lenet5", *FAST_BENCH, "--json", str(out))
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["rows"][0]["batch"] == 1
    assert "--json FILE is deprecated" in r.output and f"-o {out}" in " ".join(r.output.split())
    r = invoke("bench", "lenet5", *FAST_BENCH, "--format", "csv")
    assert r.exit_code == 2 and "'table', 'json'" in r.output
    r = invoke("bench", "lenet5", *FAST_BENCH, "-o", str(tmp_path / "b.csv"))
    assert r.exit_code == 2 and "bench writes table or json" in r.output


def test_specs_lists_params_macs_and_input_as_the_analysis() -> None:
    data = json.loads(invoke("specs", "--format", "json").stdout)["specs"]
    by_stem = {s["spec"]: s for s in data}
    a = archviz.analyze(archviz.load("alexnet"))
    assert by_stem["alexnet"]["params"] == a.totals.params == 60_965_224
    assert by_stem["alexnet"]["macs"] == a.totals.macs and by_stem["alexnet"]["input"] == "3×227×227"
    assert by_stem["lenet5"]["input"] == "1×32×32" and by_stem["alexnet"]["layers"] == len(a.layers) == 23
    text = invoke("specs").stdout
    assert "60,965,224" in text and "724,406,816" in text


def test_export_takes_its_format_from_the_suffix(tmp_path: Path) -> None:
    out = tmp_path / "lenet5.pt"
    r = invoke("export", "lenet5", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "torchscript" in r.output and out.read_bytes()[:2] == b"PK"   # a TorchScript zip


def test_piped_output_has_every_column() -> None:
    """CliRunner's stdout is not a terminal: the full table even at COLUMNS=80."""
    text = invoke("shapes", "alexnet", columns=80).stdout
    header = next(line for line in text.splitlines() if "arithmetic" in line)
    assert "neurons" in header and "RF" in header
    assert "724,406,816" in text and "left out" not in text
    text = invoke("diff", "alexnet", "alexnet-torchvision", columns=80).stdout
    header = next(line for line in text.splitlines() if "layer" in line and "output" in line)
    assert "op" in header.split() and "settings" in header and "padding 0 → 2" in text


def _terminal(renderable: object, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=True, color_system=None).print(renderable)
    return buf.getvalue()


def test_a_narrow_terminal_says_what_it_left_out() -> None:
    a = archviz.analyze(archviz.load("alexnet"))
    narrow = " ".join(_terminal(tables.ShapesView(a), 80).split())
    assert "columns left out at 80 columns: neurons, RF" in narrow and "--wide" in narrow
    assert "left out" not in _terminal(tables.ShapesView(a), 160)
    b = archviz.analyze(archviz.load("alexnet-torchvision"))
    d = compare(a, b)
    narrow = " ".join(_terminal(views.diff_view(d), 80).split())
    assert "the op and settings columns are left out" in narrow and "settings A → B" not in narrow
    wide = _terminal(views.diff_view(d), 200)
    assert "settings A → B" in wide and "left out" not in wide


def test_help_text_shows_what_it_says() -> None:
    """No option help swallowed by markup (a `[...]` rendered as nothing)."""
    for command in ("shapes", "check", "draw", "plot", "verify", "export", "bench", "diff", "specs"):
        text = invoke(command, "--help", columns=200).stdout
        assert not re.search(r"\w \.(\s|$)", text), command      # "markdown ." and the like
        assert "allow: `" not in text and "<spec>" not in text or command in ("draw", "plot"), command
