"""Names a user controls reach every output safely (issue 9, point 3; DESIGN: control characters).

Printable markup in a spec's name, source and notes (``Net [/x]``, ``[bold]``, ``:smile:``, XML's
``<b>&``) goes through every command and format and comes out as the literal text: never read
as rich markup or emoji, never a traceback, valid JSON/CSV/DOT/SVG/Python. Control characters
(ESC, BEL, ...) in a name are refused at load with a located error that shows them escaped.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.render.text import safe, strip_control

runner = CliRunner()
NAME = "Net [/x] [bold]big[/bold] :smile: <b>&amp;"
SPEC = f"""format: 2
name: '{NAME}'
source: 'a [red]source[/] :fire:'
input: [3, 16, 16]
layers:
  - {{name: conv1, op: conv, out: 4, kernel: 3, note: 'see [link=x]here[/link]'}}
  - {{name: relu1, op: relu}}
  - {{name: norm1, op: lrn, size: 3, alpha: 1.0e-4, k: 2}}
  - {{name: pool1, op: maxpool, kernel: 2}}
  - {{name: flat, op: flatten}}
  - {{name: fc, op: linear, out: 5}}
"""


@pytest.fixture()
def spec(tmp_path: Path) -> str:
    path = tmp_path / "hostile.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return str(path)


def _ok(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_text_outputs_show_the_name_as_written(spec: str, fmt: str) -> None:
    out = _ok(["shapes", spec, "--format", fmt])
    assert "Net [/x] [bold]big[/bold] :smile:" in out.replace("\n", "")


def test_json_and_csv_stay_valid(spec: str) -> None:
    data = json.loads(_ok(["shapes", spec, "--format", "json"]))
    assert data["name"] == NAME
    rows = list(csv.reader(io.StringIO(_ok(["shapes", spec, "--format", "csv"]))))
    assert rows[0][0] == "name" and len({len(r) for r in rows}) == 1


def test_check_verify_diff_and_export(spec: str, tmp_path: Path) -> None:
    assert "Net [/x]" in _ok(["check", spec])
    assert "Net [/x] [bold]big[/bold]" in _ok(["verify", spec]).replace("\n", "")
    assert json.loads(_ok(["verify", spec, "--json"]))["name"] == NAME
    assert "Net [/x]" in _ok(["diff", "lenet5", spec]).replace("\n", "")
    source = _ok(["export", spec])
    namespace: dict[str, object] = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # valid Python, the name in a docstring
    assert "Net [/x] [bold]big[/bold]" in source


def test_dot_and_svg_escape_the_name(spec: str, tmp_path: Path) -> None:
    dot = tmp_path / "net.dot"
    _ok(["draw", spec, "-o", str(dot)])
    text = dot.read_text(encoding="utf-8")
    label = next(line for line in text.splitlines() if "label=<" in line and "Net [/x]" in line)
    assert "&lt;b&gt;&amp;amp;" in label and "<b>&amp;" not in label  # an HTML label: XML-escaped
    svg = tmp_path / "net.svg"
    result = runner.invoke(app, ["draw", spec, "-o", str(svg)])
    if result.exit_code == 1 and "dot" in result.output:
        pytest.skip("Graphviz's dot is not installed")
    import xml.dom.minidom

    xml.dom.minidom.parseString(svg.read_bytes())  # well-formed
    assert "Net [/x]" in svg.read_text(encoding="utf-8")


def test_bench_table_shows_the_name(spec: str) -> None:
    out = _ok(["bench", spec, "--device", "cpu", "--batch", "1", "--iters", "1", "--warmup", "0",
               "--mode", "infer"])
    assert "Net [/x]" in out.replace("\n", "")


@pytest.mark.parametrize("bad", ["\x1b[31mNet", "Net\x07", "Net\x00x", "Net\x9b1m"])
def test_control_characters_in_a_name_are_refused_with_a_location(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.yaml"
    body = SPEC.replace(f"name: '{NAME}'", "name: " + json.dumps(bad))
    path.write_text(body, encoding="utf-8")
    out = _ok(["shapes", str(path)], code=2)
    assert "bad.yaml:2:7: name: control character" in out
    assert "\x1b" not in out and "\x07" not in out and "\x00" not in out
    assert repr(bad)[1:-1].split("Net")[0] in out or "\\x" in out


def test_free_text_keeps_newlines_but_not_escapes(tmp_path: Path) -> None:
    path = tmp_path / "note.yaml"
    path.write_text(SPEC.replace("source: 'a [red]source[/] :fire:'", 'source: "two\\nlines"'),
                    encoding="utf-8")
    _ok(["shapes", str(path)])
    path.write_text(SPEC.replace("source: 'a [red]source[/] :fire:'", 'source: "bell\\a"'), encoding="utf-8")
    assert "source: control character" in _ok(["shapes", str(path)], code=2)


def test_the_one_escape_function() -> None:
    from rich.console import Console
    from rich.markup import escape

    for text in ["Net [/x]", "[bold]x[/bold]", ":smile:", "a\\[b]", "[link=file:///etc]y[/link]"]:
        assert safe(text) == escape(text)
        buf = io.StringIO()
        Console(file=buf, emoji=False, highlight=False, width=200).print(safe(text))
        assert buf.getvalue().rstrip("\n") == text
    assert safe("\x1b[31mred\x07") == "[31mred" and strip_control("a\nb\tc\x1b") == "a\nb\tc"


# ---- issue 26: Unicode bidirectional controls ("Trojan Source") -----------------------------------
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", BIDI)
def test_bidi_controls_in_a_name_are_refused_with_a_location(tmp_path: Path, char: str) -> None:
    path = tmp_path / "bidi.yaml"
    path.write_text(SPEC.replace(f"name: '{NAME}'", f"name: 'Net {char}evil'"), encoding="utf-8")
    out = _ok(["shapes", str(path)], code=2)
    assert "bidi.yaml:2:7: name: bidirectional control character" in out, out
    assert ascii(char)[1:-1] in out and char not in out


@pytest.mark.parametrize("key", ["source", "description", "note"])
def test_bidi_controls_in_free_text_are_refused(tmp_path: Path, key: str) -> None:
    path = tmp_path / "bidi.yaml"
    text = "'a \u202egnp.exe'"
    body = (SPEC.replace("note: 'see [link=x]here[/link]'", f"note: {text}") if key == "note" else
            SPEC.replace("source: 'a [red]source[/] :fire:'", f"{key}: {text}"))
    path.write_text(body, encoding="utf-8")
    out = _ok(["shapes", str(path)], code=2)
    assert "bidirectional control character \\u202e" in out and "\u202e" not in out, out


def test_every_text_writer_strips_or_escapes_bidi_controls() -> None:
    from archviz.render.text import markdown, mpl, one_line

    text = "abc\u202efed \u2066x\u2069 \u200fy\u061c"
    for out in (safe(text), strip_control(text), markdown(text), mpl(text)):
        assert not any(c in out for c in BIDI), ascii(out)
    assert one_line(text) == "abc\\u202efed \\u2066x\\u2069 \\u200fy\\u061c"   # shown, inert
