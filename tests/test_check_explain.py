"""A failing count claim gets one short explanation when exactly one single change fits: one
factor of the layer's own output replaced by another of the network's numbers, or the input at
another common size. Every expected figure is worked out by hand here."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.core.check import CheckResult, network_numbers, run_checks
from archviz.render.tables import checks_to_dict, checks_view, plain_text
from archviz.spec import loads

runner = CliRunner()


def _results(text: str) -> dict[str, CheckResult]:
    spec = loads(text, "t.yaml")
    return {r.what: r for r in run_checks(archviz.analyze(spec))}


def _paper() -> dict[str, CheckResult]:
    spec = archviz.load("alexnet")
    return {r.what: r for r in run_checks(archviz.analyze(spec))}


def test_the_papers_conv1_neurons_are_a_55_read_as_48() -> None:
    r = _paper()["conv1 neurons"]
    # computed 96 × 55 × 55 = 290,400; stated 253,440 = 96 × 55 × 48 (48 = 96 kernels / 2 GPUs)
    assert 96 * 55 * 55 == 290_400 and 96 * 55 * 48 == 253_440
    assert not r.ok and r.explanation == "253,440 = 96 × 55 × 48: one 55 read as 48?"


def test_the_papers_input_is_the_224_input() -> None:
    r = _paper()["input_elements"]
    assert 3 * 227 * 227 == 154_587 and 3 * 224 * 224 == 150_528
    assert not r.ok and r.explanation == "150,528 = 3 × 224 × 224: the 224 input"


def test_claims_that_hold_have_no_explanation() -> None:
    assert all(r.explanation == "" for r in _paper().values() if r.ok)


def test_the_networks_numbers() -> None:
    spec = archviz.load("alexnet")
    nums = network_numbers(archviz.analyze(spec))
    # channels 3, 96, 256, 384; per GPU 48, 128, 192; sizes 227, 55, 27, 13, 6; kernels 11, 5, 3
    assert nums == {3, 96, 256, 384, 48, 128, 192, 227, 55, 27, 13, 6, 11, 5}


SMALL = """\
name: small
input: [3, 32, 32]
layers:
  - {name: conv1, op: conv, out: 32, kernel: 1}
  - {name: pool1, op: maxpool, kernel: 4}
  - {name: conv2, op: conv, out: 64, kernel: 1}
  - {name: pool2, op: maxpool, kernel: 2}
claims:
"""
# conv1 (32, 32, 32), pool1 (32, 8, 8), conv2 (64, 8, 8), pool2 (64, 4, 4);
# the network's numbers: 3, 32, 64 (channels), 32, 8, 4 (sizes), 4, 2 (kernels; 1 is left out)


def test_one_fitting_change_is_shown() -> None:
    # conv2: 64 × 8 × 8 = 4,096; 3 × 8 × 8 = 192 has one reading: the 64 read as 3
    r = _results(SMALL + "  layer_neurons: {conv2: 192}\n")["conv2 neurons"]
    assert r.explanation == "192 = 3 × 8 × 8: 64 read as 3?"


def test_two_fitting_changes_give_no_guess() -> None:
    # 2,048 = 32 × 8 × 8 (the 64 read as 32) = 64 × 8 × 4 (an 8 read as 4): no guess
    assert 32 * 8 * 8 == 64 * 8 * 4 == 2048
    r = _results(SMALL + "  layer_neurons: {conv2: 2048}\n")["conv2 neurons"]
    assert not r.ok and r.explanation == ""


def test_no_single_change_gives_no_explanation() -> None:
    # 4,095 is not 64 × 8 × 8 with one factor changed to any number (4,095 = 3² × 5 × 7 × 13):
    # 4095 / 64 and 4095 / (8 · 64) are not whole
    r = _results(SMALL + "  layer_neurons: {conv2: 4095}\n  input_elements: 3000\n")
    assert r["conv2 neurons"].explanation == ""
    # 3,000 / 3 = 1,000 is no square of a common input size
    assert not r["input_elements"].ok and r["input_elements"].explanation == ""
    # a change to a number the network does not have: 64 × 8 × 7 = 3,584 (no 7 anywhere)
    assert _results(SMALL + "  layer_neurons: {conv2: 3584}\n")["conv2 neurons"].explanation == ""


def test_the_paper_alexnets_other_near_misses_have_none() -> None:
    # 253,441 (one more than the paper's figure) is no single change of 96 × 55 × 55:
    # 253,441 / (55 · 55) and 253,441 / (96 · 55) are not whole
    path = Path(archviz.load("alexnet").path)
    spec_text = path.read_text(encoding="utf-8").replace("conv1: 253440", "conv1: 253441")
    spec = loads(spec_text, "alexnet.yaml")
    r = {x.what: x for x in run_checks(archviz.analyze(spec))}["conv1 neurons"]
    assert not r.ok and r.explanation == ""


def test_the_view_and_json_show_the_explanation() -> None:
    spec = archviz.load("alexnet")
    results = run_checks(archviz.analyze(spec))
    text = plain_text(checks_view(results))
    assert "    perhaps 253,440 = 96 × 55 × 48: one 55 read as 48?" in text
    assert "    perhaps 150,528 = 3 × 224 × 224: the 224 input" in text
    data = {c["what"]: c for c in checks_to_dict(results)["checks"]}
    assert data["conv1 neurons"]["explanation"] == "253,440 = 96 × 55 × 48: one 55 read as 48?"
    assert data["conv2 neurons"]["explanation"] is None


def test_cli_check_prints_the_explanations() -> None:
    r = runner.invoke(app, ["check", "alexnet"], env={"COLUMNS": "160"})
    assert r.exit_code == 1
    assert "perhaps 253,440 = 96 × 55 × 48: one 55 read as 48?" in r.stdout
    assert "perhaps 150,528 = 3 × 224 × 224: the 224 input" in r.stdout
    data = json.loads(runner.invoke(app, ["check", "alexnet", "--json"]).stdout)
    assert [c["explanation"] for c in data["checks"] if not c["ok"]] == [
        "150,528 = 3 × 224 × 224: the 224 input", "253,440 = 96 × 55 × 48: one 55 read as 48?"]
