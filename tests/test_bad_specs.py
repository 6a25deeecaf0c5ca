"""Bad specs: every fixture in tests/bad_specs/ must give its exact located message and exit 2.

Each ``tests/bad_specs/<fault>.yaml`` is one mistake a person makes; next to it,
``<fault>.expected`` holds exactly what ``archviz shapes`` prints on standard error:
``error: file:line:col: message``, the source line, a caret under the column, and the hint.
Besides the exact text, the tests check independently that the caret sits under the stated
column of the file's real line, and (through a subprocess) that no traceback is ever shown.

``ARCHVIZ_REGEN_GOLDEN=1 pytest tests/test_bad_specs.py`` rewrites the .expected files;
read the diff before committing: these messages are what a user sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from archviz.cli import app

ROOT = Path(__file__).resolve().parents[1]
REGEN = os.environ.get("ARCHVIZ_REGEN_GOLDEN") == "1"
BAD = Path("tests/bad_specs")          # relative to the repository root, as messages print it
FAULTS = sorted(p.stem for p in (ROOT / BAD).glob("*.yaml"))
# faults that are not a file's content: the argument given to `archviz shapes`
ARGS = {
    "is-a-directory": str(BAD),
    "missing-file": str(BAD / "no-such-spec.yaml"),
    "missing-bundled-name": "alexnet2",
}
CASES = {**{f: str(BAD / f"{f}.yaml") for f in FAULTS}, **ARGS}
# the YAML parser's own words differ between libyaml and PyYAML's pure-Python parser
PARSER_WORDS = {"yaml-unclosed-bracket", "yaml-bad-indentation", "yaml-tab"}
HEAD = re.compile(r"^error: (?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths print as tests/bad_specs/x.yaml whatever directory pytest was started from."""
    monkeypatch.chdir(ROOT)


def shapes(arg: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["shapes", arg])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}"
    return result.exit_code, result.stdout, result.stderr


def bundled_list() -> str:
    """The bundled specs as the missing-file hint lists them (``{bundled}`` in .expected files,
    so that adding a bundled spec does not rewrite these messages)."""
    return ", ".join(sorted(p.stem for p in (ROOT / "specs").glob("*.yaml")))


def expected(name: str) -> str:
    text = (ROOT / BAD / f"{name}.expected").read_text(encoding="utf-8")
    return text.replace("{bundled}", bundled_list())


def test_there_are_enough_faults_and_each_has_its_message() -> None:
    assert len(CASES) >= 30
    sidecars = {p.stem for p in (ROOT / BAD).glob("*.expected")}
    assert sidecars == set(CASES), "every fault needs a .expected file, and every .expected a fault"


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_message_and_exit_2(name: str) -> None:
    code, out, err = shapes(CASES[name])
    assert code == 2
    assert out == ""
    path = ROOT / BAD / f"{name}.expected"
    if REGEN:
        path.write_text(err.replace(bundled_list(), "{bundled}"), encoding="utf-8")
    if name in PARSER_WORDS and not yaml.__with_libyaml__:
        # same place, other words: compare everything but the parser's phrase
        want = expected(name).splitlines()
        got = err.splitlines()
        assert HEAD.match(got[0])["line"] == HEAD.match(want[0])["line"]  # type: ignore[index]
        assert got[1:] == want[1:]
        return
    assert err == expected(name)


@pytest.mark.parametrize("name", [f for f in FAULTS if f not in ("empty-file", "not-utf8")])
def test_caret_points_into_the_real_source_line(name: str) -> None:
    """``file:line:col`` names this file, and the excerpt is that line with ^ under that column."""
    _, _, err = shapes(CASES[name])
    lines = err.splitlines()
    head = HEAD.match(lines[0])
    assert head, lines[0]
    assert head["file"] == CASES[name]
    line, col = int(head["line"]), int(head["col"])
    source = (ROOT / BAD / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[line - 1]
    assert lines[1] == "    " + source.expandtabs(1)
    assert lines[2] == "    " + " " * (col - 1) + "^"
    assert col <= len(source) + 1


# what each message must say, beyond its place: the did-you-mean or the fact that matters
MUST_SAY = {
    "unknown-op-conv2d": "did you mean 'conv'?",
    "unknown-op-maxpol": "did you mean 'maxpool'?",
    "unknown-layer-key-kernal": "did you mean 'kernel'?",
    "unknown-top-level-key": "did you mean 'input'?",
    "from-unknown-layer": "did you mean 'relu1'?",
    "claims-unknown-key": "did you mean 'params'?",
    "missing-bundled-name": "did you mean 'alexnet'?",
    "missing-file": "bundled specs: alexnet, alexnet-1gpu,",
    "kernel-string": "write 3 without quotes",
    "linear-without-flatten": "hint: add a layer {op: flatten} before it",
    "from-cycle": "cycle in the layer graph: b → a → b",
    "in-channels-not-divisible-by-groups": "3 input channels are not divisible by groups=2",
    "out-not-divisible-by-groups": "out=6 is not divisible by groups=4",
    "conv-kernel-larger-than-input": "conv2: kernel 5 is larger than the padded input height 3 + 2·0 = 3",
    "pool-kernel-larger-than-input": "pool1: kernel 5 is larger than the padded input 4×4",
    "add-shape-mismatch": "(8, 32, 32) and (8, 30, 30)",
    "concat-shape-mismatch": "(8, 32, 32) and (4, 16, 16)",
}


@pytest.mark.parametrize("name", sorted(MUST_SAY))
def test_message_names_the_fix(name: str) -> None:
    assert MUST_SAY[name] in shapes(CASES[name])[2]


@pytest.mark.parametrize("name", ["yaml-tab", "unknown-op-conv2d", "from-cycle", "not-utf8", "is-a-directory",
                                  "missing-bundled-name", "linear-without-flatten"])
def test_real_process_exits_2_without_a_traceback(name: str) -> None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-m", "archviz", "shapes", CASES[name]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    if name not in PARSER_WORDS or yaml.__with_libyaml__:
        assert proc.stderr == expected(name)


def test_check_reports_the_same_located_message() -> None:
    """`archviz check` loads specs the same way: same message, same exit code."""
    result = CliRunner().invoke(app, ["check", CASES["unknown-op-maxpol"]])
    assert result.exit_code == 2
    assert result.stderr == expected("unknown-op-maxpol")
