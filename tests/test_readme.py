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


# ---- the tour's example outputs are the commands' real output ---------------------------------

def console_blocks() -> list[tuple[str, list[str]]]:
    """Each ```console block: its `$ archviz ...` command and the lines shown under it."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", README, re.DOTALL):
        first, *lines = body.rstrip("\n").split("\n")
        assert first.startswith("$ archviz "), first
        blocks.append((first[2:].split("  #")[0].strip(), lines))
    return blocks


def _runs(lines: list[str]) -> list[list[str]]:
    """The shown lines cut at `...` (an elision): each run must appear whole and in order."""
    runs: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == "...":
            runs.append([])
        else:
            runs[-1].append(line.rstrip())
    return [r for r in runs if r]


# files the README's examples read, as the README shows them
FILES = {"my-net.yaml": "name: my net\ninput: [3, 32, 32]\nlayers:\n"
                        "  - {name: conv1, op: conv, out: 8, kernel: [3, 3}\n"}


@pytest.mark.parametrize("command, shown", console_blocks(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_example_output_is_the_real_output(command: str, shown: list[str], tmp_path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pipe or a file gets (every column, no colour); `...` lines stand for lines left out."""
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, command.split()[1:], env={"COLUMNS": "80"})
    real = [line.rstrip() for line in r.output.splitlines()]
    at = 0
    for run in _runs(shown):
        found = next((i for i in range(at, len(real) - len(run) + 1) if real[i:i + len(run)] == run), None)
        assert found is not None, f"README: `{command}` shows\n" + "\n".join(run) + \
            "\nwhich is not (in this order) in its real output:\n" + "\n".join(real)
        at = found + len(run)


def test_the_tour_has_its_examples() -> None:
    commands = [c for c, _ in console_blocks()]
    for c in ("archviz shapes", "archviz shapes alexnet --input 3x224x224", "archviz check alexnet",
              "archviz verify alexnet", "archviz diff alexnet alexnet-torchvision"):
        assert c in commands


def test_install_notes() -> None:
    """pip install . pulls torch's CUDA build where none is installed: the README says so and how
    to get the CPU one; the onnx extra is written as it works from a clone."""
    assert "pip install '.[onnx]'" in README and "pip install archviz[onnx]" not in README
    assert "https://download.pytorch.org/whl/cpu" in README
    assert re.search(r"`pip install \.`.{0,200}CUDA build", README, re.DOTALL)
