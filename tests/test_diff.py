"""`archviz diff` on the AlexNet re-tellings: what changed, layer by layer, with exact figures.

The expected numbers are hand arithmetic written out here (weights = out·in/groups·k², biases
= out; MACs = output elements · in/groups · k²), not read back from the analysis.
"""

from __future__ import annotations

import json

import pytest
from conftest import SPECS
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.core.diff import diff, summary
from archviz.spec import load, loads

runner = CliRunner()


def _diff(a: str, b: str):
    sa, sb = load(a), load(b)
    return diff(analyze(sa), analyze(sb))


def _rows(d):
    return {r.name: r for r in d.layers}


def _changes(row) -> dict[str, tuple]:
    return {c.key: (c.a, c.b) for c in row.changes}


def test_paper_vs_torchvision() -> None:
    d = _diff("alexnet", "alexnet-torchvision")
    rows = _rows(d)
    assert _changes(rows["conv1"]) == {"out": (96, 64), "padding": ((0, 0), (2, 2))}
    assert _changes(rows["conv2"]) == {"out": (256, 192), "groups": (2, 1)}
    assert _changes(rows["conv4"]) == {"out": (384, 256), "groups": (2, 1)}
    assert _changes(rows["conv5"]) == {"groups": (2, 1)}
    assert _changes(rows["conv3"]) == {}  # same settings, but it reads 192 channels, not 256
    assert (rows["conv3"].a.params, rows["conv3"].b.params) == (384 * 256 * 9 + 384, 384 * 192 * 9 + 384)
    assert (rows["conv1"].a.params, rows["conv1"].b.params) == (96 * 3 * 121 + 96, 64 * 3 * 121 + 64)
    assert {n for n, r in rows.items() if r.status == "removed"} == {"norm1", "norm2"}
    assert {n for n, r in rows.items() if r.status == "added"} == {"avgpool"}
    assert {n: r.move_note for n, r in rows.items() if r.moved} == {
        "drop6": "before fc6, was before fc7", "drop7": "before fc7, was before fc8"}
    # a `from:` that differs only because of a removal, an addition or a move is not a change
    assert all(c.key != "from" for r in d.layers for c in r.changes)
    assert [r.status for r in d.layers if r.name in ("relu3", "relu5", "pool5", "fc6", "fc8")] == ["same"] * 5
    # display order is B's, a removed layer right after its predecessor
    assert [r.name for r in d.layers][:5] == ["conv1", "relu1", "norm1", "pool1", "conv2"]
    assert d.total("params") == (60_965_224, 61_100_840)  # torchvision documents 61,100,840
    macs_b = (64 * 55 * 55 * 3 * 121 + 192 * 27 * 27 * 64 * 25 + 384 * 169 * 192 * 9
              + 256 * 169 * 384 * 9 + 256 * 169 * 256 * 9 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert d.total("macs") == (724_406_816, macs_b)
    assert d.change("params") == pytest.approx((61_100_840 - 60_965_224) / 60_965_224)
    assert summary(d) == [
        "input 3×227×227 → 3×224×224",
        "gpus 2 → –",
        "out 96 → 64: conv1",
        "padding 0 → 2: conv1",
        "out 256 → 192: conv2",
        "groups 2 → 1: conv2, conv4, conv5",
        "out 384 → 256: conv4",
        "removed lrn: norm1, norm2",
        "added adaptive_avgpool: avgpool",
        "moved: drop6 before fc6, was before fc7; drop7 before fc7, was before fc8",
    ]


def test_paper_vs_one_gpu_only_ungroups() -> None:
    d = _diff("alexnet", "alexnet-1gpu")
    assert summary(d) == ["gpus 2 → –", "groups 2 → 1: conv2, conv4, conv5"]
    assert {r.name for r in d.layers if r.status != "same"} == {"conv2", "conv4", "conv5"}
    # ungrouping doubles each grouped weight: conv2 256·48·25, conv4 384·192·9, conv5 256·192·9
    extra = 256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9
    a, b = d.total("params")
    assert b - a == extra == 1_413_120


def test_paper_vs_keras() -> None:
    d = _diff("alexnet", "alexnet-keras")
    rows = _rows(d)
    assert _changes(rows["conv1"]) == {}  # padding 'valid' is the default 0, not a change
    assert rows["conv1"].b.output == (96, 54, 54)
    assert _changes(rows["conv2"]) == {"kernel": ((5, 5), (11, 11)), "padding": ((2, 2), (0, 0)),
                                       "groups": (2, 1)}
    assert _changes(rows["pool1"]) == {"kernel": ((3, 3), (2, 2))}  # stride 2 both
    assert _changes(rows["drop6"]) == {"p": (0.5, 0.4)}
    added = [r.name for r in d.layers if r.status == "added"]
    assert added == ["bn1", "bn2", "bn3", "bn4", "bn5", "bn6", "bn7", "prob"]
    assert _changes(rows["fc8"]) == {"out": (1000, 17)}
    assert rows["fc8"].b.params == 4096 * 17 + 17
    assert "kernel 3 → 2: pool1, pool2, pool5" in summary(d)
    assert d.total("buffers") == (0, sum(2 * c + 1 for c in (96, 256, 384, 384, 256, 4096, 4096)))


def test_paper_vs_cats_and_dogs() -> None:
    d = _diff("alexnet", "alexnet-catsdogs")
    assert summary(d) == ["input 3×227×227 → 3×224×224", "gpus 2 → –", "padding 0 → 2: conv1",
                          "alpha 0.0001 → 2e-05: norm1, norm2",  # torch's alpha=0.0001 is 0.0001/5
                          "groups 2 → 1: conv2, conv4, conv5", "out 1000 → 2: fc8",
                          "removed relu: relu1"]
    assert _changes(_rows(d)["norm1"]) == {"alpha": (1e-4, 2e-5)}
    fc8 = _rows(d)["fc8"]
    assert (fc8.a.params, fc8.b.params) == (4096 * 1000 + 1000, 4096 * 2 + 2)


def test_renamed_layers_are_aligned_by_position() -> None:
    text = (SPECS / "alexnet-1gpu.yaml").read_text()
    renamed = text.replace("name: conv1,", "name: features.0,").replace("name: relu1,", "name: features.1,")
    sa, sb = load("alexnet-1gpu"), loads(renamed, "renamed.yaml")
    d = diff(analyze(sa), analyze(sb))
    first = d.layers[0]
    assert (first.a.name, first.b.name, first.status, first.name) == \
        ("conv1", "features.0", "same", "conv1 ↔ features.0")
    assert all(r.status == "same" for r in d.layers) and summary(d) == []


def test_cli_table_json_and_thresholds() -> None:
    r = runner.invoke(app, ["diff", "alexnet", "alexnet-torchvision"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    for text in ("out 96 → 64", "padding 0 → 2", "groups 2 → 1: conv2, conv4, conv5",
                 "removed lrn: norm1, norm2", "60,965,224 →     61,100,840  (+0.222%)"):
        assert text in r.stdout
    data = json.loads(runner.invoke(app, ["diff", "alexnet", "alexnet-torchvision", "-f", "json"]).stdout)
    assert data["totals"]["params"] == {"a": 60_965_224, "b": 61_100_840,
                                        "change": (61_100_840 - 60_965_224) / 60_965_224}
    conv1 = data["layers"][0]
    assert conv1["changes"] == [{"key": "out", "a": 96, "b": 64},
                                {"key": "padding", "a": [0, 0], "b": [2, 2]}]
    assert [la["a"]["name"] for la in data["layers"] if la["status"] == "removed"] == ["norm1", "norm2"]
    # params +0.22 %, MACs −1.41 %
    ok = ["diff", "alexnet", "alexnet-torchvision", "--max-params-change", "0.3", "--max-macs-change", "1.5"]
    assert runner.invoke(app, ok).exit_code == 0
    r = runner.invoke(app, ["diff", "alexnet", "alexnet-torchvision", "--max-macs-change", "1", "-f", "json"])
    assert r.exit_code == 1 and "macs changed −1.41%" in r.output
    assert json.loads(r.stdout.split("\nerror")[0])["exceeded"][0].startswith("macs changed")
    assert runner.invoke(app, ["diff", "alexnet", "alexnet", "--max-params-change", "0"]).exit_code == 0
    assert runner.invoke(app, ["diff", "alexnet", "alexnet-1gpu", "--max-params-change", "2"]).exit_code == 1


@pytest.mark.parametrize("args", [["diff", "alexnet", "nope"], ["diff", "alexnet", "lenet5", "-f", "xml"],
                                  ["diff", "alexnet", "lenet5", "--max-macs-change", "-1"]])
def test_bad_input_exits_2(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "Traceback" not in r.output
