"""`allow: [inexact]` on a spec, a layer, a block or a block use: accepted divisions are shown as
accepted, not warned about, so `--strict` passes on every bundled spec but AlexNet at 224."""

from __future__ import annotations

import json

import pytest
from conftest import bundled_specs
from typer.testing import CliRunner

from archviz import analyze, loads
from archviz.cli import app
from archviz.errors import SpecError
from archviz.ops.arith import Window, rows_read

runner = CliRunner()

NET = """
name: t
input: [3, 56, 56]
{top}
layers:
  - {{name: down, op: conv, out: 8, kernel: 1, stride: 2{layer}}}
  - {{name: pool, op: maxpool, kernel: 2, stride: 2}}
"""


def _net(top: str = "", layer: str = "") -> str:
    return NET.format(top=top, layer=layer)


def test_without_allow_an_inexact_division_warns() -> None:
    a = analyze(loads(_net()))
    # (56 − 1)/2 + 1 = 28.5: a 1×1 window at stride 2 reads rows 0, 2, …, 54: 28 of 56
    assert [n for n, _ in a.warnings] == ["down"]
    assert "reads 28 of the 56 input rows and columns; the other 28" in a.warnings[0][1]
    assert a.accepted == ()


@pytest.mark.parametrize("top, layer", [("allow: [inexact]", ""), ("", ", allow: [inexact]"),
                                        ("allow: inexact", "")])
def test_allow_on_the_spec_or_the_layer_accepts_it(top: str, layer: str) -> None:
    a = analyze(loads(_net(top, layer)))
    assert a.warnings == ()
    assert [n for n, _ in a.accepted] == ["down"]
    assert a.layer("down").accepted and not a.layer("down").warnings


def test_allow_on_a_block_and_on_a_use() -> None:
    text = """
name: t
input: [3, 56, 56]
blocks:
  down:
    {block_allow}
    layers:
      - {{name: conv, op: conv, out: 8, kernel: 1, stride: 2}}
layers:
  - {{name: a, block: down{use_allow}}}
  - {{name: b, block: down}}
"""
    plain = analyze(loads(text.format(block_allow="", use_allow="")))
    assert [n for n, _ in plain.warnings] == ["a.conv", "b.conv"]
    used = analyze(loads(text.format(block_allow="", use_allow=", allow: [inexact]")))
    assert [n for n, _ in used.warnings] == ["b.conv"] and [n for n, _ in used.accepted] == ["a.conv"]
    block = analyze(loads(text.format(block_allow="allow: [inexact]", use_allow="")))
    assert block.warnings == () and [n for n, _ in block.accepted] == ["a.conv", "b.conv"]


def test_allow_refuses_unknown_words_with_a_location() -> None:
    with pytest.raises(SpecError) as exc:
        loads(_net(layer=", allow: [inexcat]"))
    text = exc.value.format()
    assert "down.allow: expected one of inexact, got 'inexcat'" in text and ":6:" in text


def test_accepted_rows_are_shown_not_hidden() -> None:
    r = runner.invoke(app, ["shapes", "resnet18"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "conv1 ✓" in r.output
    assert "accepted (allow: inexact) layer2.0.downsample.0" in r.output
    assert "warning" not in r.output
    data = json.loads(runner.invoke(app, ["shapes", "resnet18", "--format", "json"]).stdout)
    assert len(data["accepted"]) == 8 and data["warnings"] == []


@pytest.mark.parametrize("name", bundled_specs())
def test_strict_passes_on_every_bundled_spec(name: str) -> None:
    r = runner.invoke(app, ["shapes", name, "--strict", "--format", "json"])
    assert r.exit_code == 0, r.output


def test_strict_still_fails_on_alexnet_at_224() -> None:
    r = runner.invoke(app, ["shapes", "alexnet", "--input", "3x224x224", "--strict", "--format", "json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["warnings"][0].startswith("conv1: (224 + 2·0 − 11)/4 + 1 = 54.25")


@pytest.mark.parametrize("n, k, s, p", [(56, 1, 2, 0), (55, 1, 2, 0), (14, 1, 3, 0), (9, 2, 3, 1),
                                         (28, 3, 2, 1)])
def test_rows_read_counts_what_the_windows_cover(n: int, k: int, s: int, p: int) -> None:
    w = Window(n, k, s, p)
    covered = {i * s + j - p for i in range(w.out) for j in range(k)}
    assert rows_read(w) == len(covered & set(range(n)))
