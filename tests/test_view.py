"""`archviz view` without a browser: the page's data, its escaping, the block stages, the CLI's
files and errors, and the notebook object. tests/test_view_browser.py drives the page itself."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.core.check import run_checks
from archviz.render import html
from archviz.spec import load, loads

runner = CliRunner()
HOSTILE_NAME = 'Net "q" \'s\' </script><img src=x onerror=alert(1)> & <b>[bold]</b> \u2028'
HOSTILE = f"""
name: {json.dumps(HOSTILE_NAME)}
source: "line one\\nline two </script><script>alert(2)</script>"
description: "<img src=x onerror=alert(3)>"
input: [3, 32, 32]
layers:
  - {{name: conv1, op: conv, out: 8, kernel: 3, note: "</script><svg onload=alert(4)>"}}
  - {{name: flat, op: flatten}}
  - {{name: fc, op: linear, out: 10}}
"""


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="archviz-data">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


def test_script_json_cannot_end_the_script_element() -> None:
    data = {"name": "</script><!-- & \u2028\u2029 >"}
    text = html.script_json(data)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == data


def test_hostile_names_stay_inside_the_json(tmp_path: Path) -> None:
    spec = loads(HOSTILE, "hostile.yaml")
    page = html.view(spec).html
    # the page's own three script elements and nothing else: no name closes one or opens another
    assert page.count("</script>") == 3 and page.count("<script") == 3
    assert "<img" not in page
    assert "<svg onload" not in page
    data = embedded(page)
    assert data["net"]["name"] == HOSTILE_NAME
    assert data["net"]["source"].startswith("line one\nline two </script>")
    assert data["net"]["layers"][0]["note"] == "</script><svg onload=alert(4)>"
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title and htmllib.unescape(title.group(1)).startswith(HOSTILE_NAME)


def test_stages_of_resnet18() -> None:
    sts = html.stages(analyze(load("resnet18")))
    assert [(s.name, s.block, s.repeat) for s in sts] == [(f"layer{i}", "basic", 2) for i in (1, 2, 3, 4)]
    # layer1: 2 copies × 7 layers (no downsample); layer2: one copy with a 2-layer downsample
    assert [len(s.layers) for s in sts] == [14, 16, 16, 16]
    assert sts[2].layers[0] == "layer3.0.conv1" and sts[2].label() == "layer3 ×2 · basic"
    assert html.stages(analyze(load("alexnet"))) == ()


MULTILINE_USE = """
name: t
input: [4, 8, 8]
blocks:
  unit:
    params: {out: null}
    layers:
      - {name: conv, op: conv, out: $out, kernel: 3, padding: 1}
      - {name: relu, op: relu}
layers:
  - name: stage
    block: unit
    repeat: 3
    args: {out: 4}
  - {name: head, op: flatten}
"""


def test_stages_come_from_the_analysis_not_the_yaml_text() -> None:
    # the use spans four lines: its `name:` line alone does not say which block it uses
    a = analyze(loads(MULTILINE_USE, "t.yaml"))
    (st,) = html.stages(a)
    assert (st.name, st.block, st.repeat, st.label()) == ("stage", "unit", 3, "stage ×3 · unit")
    assert st.layers == tuple(f"stage.{i}.{n}" for i in range(3) for n in ("conv", "relu"))
    net = html.view_data(a)["net"]
    assert net["stages"] == [{"name": "stage", "label": "stage ×3 · unit", "layers": list(st.layers)}]
    assert [la["stage"] for la in net["layers"]] == ["stage"] * 6 + [""]


def test_view_takes_an_analysis() -> None:
    a = analyze(load("lenet5"))
    assert embedded(html.view(a).html) == embedded(html.view("lenet5").html)


def test_alexnet_view_data() -> None:
    data = html.view_data(analyze(load("alexnet")))
    assert set(data["layouts"]) == {"plain", "split"} and data["initial"] == "plain"
    net = data["net"]
    conv1 = net["layers"][0]
    assert conv1["in_shapes"] == ["3×227×227"] and conv1["output"] == "96×55×55"
    assert conv1["formula"] == "⌊(227 + 2·0 − 11)/4⌋ + 1 = 55"
    assert conv1["params"] == 11 * 11 * 3 * 96 + 96 and conv1["macs"] == 11 * 11 * 3 * 96 * 55 * 55
    assert conv1["rf"] == [11, 11] and conv1["readers"] == ["relu1"]
    assert conv1["claims"][0]["ok"] and conv1["claims"][0]["what"] == "conv1 output"
    conv3 = next(la for la in net["layers"] if la["name"] == "conv3")
    assert conv3["lane"]["crossing"] and conv3["lane"]["shapes"] == ["192×13×13", "192×13×13"]
    checks = run_checks(analyze(load("alexnet"), gpus=2))
    assert net["checks"]["failed"] == sum(not c.ok for c in checks) > 0  # the paper's 253,440 neurons
    assert net["checks"]["passed"] == sum(c.ok for c in checks) > 10
    assert net["totals"]["params"] == 60_965_224
    # the plain layout is the SVG of `archviz draw` (same graph, same layout)
    assert 'id="graph0"' in data["layouts"]["plain"] and "<!--" not in data["layouts"]["plain"]


def test_resnet_view_has_the_folded_overview() -> None:
    data = html.view_data(analyze(load("resnet18")))
    assert set(data["layouts"]) == {"plain", "folded"} and data["initial"] == "folded"
    folded = data["layouts"]["folded"]
    assert "layer3 ×2 · basic" in folded and "256×14×14" in folded and "layer3.0.conv1" not in folded


def test_compare_data_pairs_as_diff_does() -> None:
    from archviz.core.analysis import analyze
    from archviz.core.diff import diff

    a, b = load("alexnet"), load("alexnet-torchvision")
    data = html.compare_data(diff(analyze(a), analyze(b)))
    status = {(p["a"], p["b"]): p["status"] for p in data["pairs"]}
    assert status[("norm1", None)] == "removed" and status[(None, "avgpool")] == "added"
    assert status[("conv1", "conv1")] == "changed"
    assert data["totals"]["params"] == {"a": 60_965_224, "b": 61_100_840}


def test_cli_view_writes_one_file(tmp_path: Path) -> None:
    out = tmp_path / "net.html"
    r = invoke("view", "alexnet", "-o", str(out))
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "svgPanZoom" in page
    assert not re.search(r"(src|href)=\"?https?:", page)  # nothing to fetch
    assert "default-src 'none'" in page
    r = invoke("view", "alexnet", "--vs", "alexnet-torchvision", "-o", str(tmp_path / "vs.html"))
    assert r.exit_code == 0, r.output
    assert embedded((tmp_path / "vs.html").read_text(encoding="utf-8"))["mode"] == "compare"


def test_cli_view_default_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("view", "lenet5").exit_code == 0
    assert invoke("view", "alexnet", "--vs", "alexnet-1gpu").exit_code == 0
    assert invoke("draw", "resnet18", "--format", "html").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet-vs-alexnet-1gpu.html", "lenet5.html",
                                                           "resnet18.html"]
    assert embedded((tmp_path / "resnet18.html").read_text(encoding="utf-8"))["initial"] == "folded"


def test_cli_view_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput: [3, 8, 8]\nlayers:\n  - {name: c, op: conv, out: 4, kernel: 9}\n")
    r = invoke("view", str(bad), "-o", str(tmp_path / "bad.html"))
    assert r.exit_code == 2 and "bad.yaml:4" in r.output and "Traceback" not in r.output
    r = invoke("view", "alexnet", "--vs", str(bad), "-o", str(tmp_path / "bad.html"))
    assert r.exit_code == 2 and "bad.yaml:4" in r.output
    r = invoke("view", "alexnet", "-o", str(tmp_path / "missing" / "x.html"))
    assert r.exit_code == 2 and "does not exist" in r.output
    r = invoke("view", "alexnet", "-o", str(tmp_path / "x.svg"))
    assert r.exit_code == 2 and ".html" in r.output
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `dot`
    for cmd in (["view", "alexnet"], ["draw", "alexnet", "--format", "html"]):
        r = invoke(*cmd, "-o", str(tmp_path / "nodot.html"))
        assert r.exit_code == 2 and "apt install graphviz" in r.output and "Traceback" not in r.output
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*"))


def test_notebook_repr_is_an_iframe_holding_the_page() -> None:
    v = html.view("lenet5")
    shown = v._repr_html_()
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" sandbox="allow-scripts"></iframe>', shown)
    assert m, shown[:200]
    assert htmllib.unescape(m.group(1)) == v.html
    assert "<" not in m.group(1)  # the page is an attribute value, fully escaped


# ---- lane views are bounded (issue 26): 64 GPUs made Graphviz work for minutes on 2 layers -------
def _gpus_spec(tmp_path: Path, gpus: int) -> Path:
    path = tmp_path / f"g{gpus}.yaml"
    path.write_text(f"name: g\ninput: [64]\ngpus: {gpus}\nlayers:\n"
                    "  - {name: fc1, op: linear, out: 64}\n  - {name: fc2, op: linear, out: 10}\n")
    return path


def test_view_of_many_gpus_leaves_the_lanes_out(tmp_path: Path) -> None:
    from archviz.limits import MAX_GPUS, MAX_LANES

    spec = _gpus_spec(tmp_path, MAX_GPUS)
    out = tmp_path / "g.html"
    r = invoke("view", str(spec), "-o", str(out))
    assert r.exit_code == 0 and f"at most {MAX_LANES}" not in r.output, r.output
    assert "no lane view" in r.output
    page = out.read_text()
    assert len(page) < 300_000                             # was 3.2 MB: 64 lanes, 64² edges
    data = embedded(page)
    assert set(data["layouts"]) == {"plain"}
    assert len(data["net"]["layers"][0]["lane"]["shapes"]) == MAX_GPUS   # every share, in the panel


@pytest.mark.parametrize("args", [["view", "--split-gpus"], ["draw", "--split-gpus", "-f", "dot"],
                                  ["plot", "--kind", "blocks", "--split-gpus"]])
def test_lane_views_above_the_limit_are_refused(tmp_path: Path, args: list[str]) -> None:
    from archviz.limits import MAX_LANES

    spec = _gpus_spec(tmp_path, MAX_LANES + 1)
    out = tmp_path / {"view": "v.html", "draw": "d.dot", "plot": "p.png"}[args[0]]
    r = invoke(args[0], str(spec), *args[1:], "-o", str(out))
    assert r.exit_code == 2, r.output
    assert f"one lane per GPU, at most {MAX_LANES}; this analysis is over {MAX_LANES + 1}" in r.output
    assert not out.exists()


def test_lanes_up_to_the_limit_are_drawn(tmp_path: Path) -> None:
    from archviz.core.analysis import analyze
    from archviz.limits import MAX_LANES

    data = html.view_data(analyze(load(str(_gpus_spec(tmp_path, MAX_LANES)))))
    assert "split" in data["layouts"] and data["layouts"]["split"].count('class="cluster"') == MAX_LANES
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_fold_folds_each_block_use(tmp_path: Path) -> None:
    """`draw --fold`: parameter-free layers into their producer and each block use one node (25)."""
    out = tmp_path / "resnet50.svg"
    result = CliRunner().invoke(app, ["draw", "resnet50", "--fold", "-o", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "layer3 ×6 · bottleneck" in svg and "layer3.0.conv1" not in svg and "+ relu" in svg
    height = float(re.search(r'<svg width="[\d.]+pt" height="([\d.]+)pt"', svg).group(1))
    assert height * 150 / 72 < 3000  # the PNG at draw's 150 dpi stays under 3,000 px tall
