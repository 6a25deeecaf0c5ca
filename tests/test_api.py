"""The Python API (issue 10, point 6): archviz.analyze / check / diff / draw take a bundled name,
a path, a Spec or a Graph; results have to_dict() and display themselves in Jupyter; the
notebook docs/archviz.ipynb runs in a real kernel."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app

ROOT = Path(__file__).resolve().parents[1]


def have_dot() -> bool:
    return shutil.which("dot") is not None


@pytest.mark.parametrize("form", ["name", "path", "pathlike", "spec", "graph"])
def test_analyze_takes_every_form(form: str) -> None:
    path = ROOT / "specs" / "alexnet.yaml"
    x = {"name": "alexnet", "path": str(path), "pathlike": path, "spec": archviz.load("alexnet"),
         "graph": archviz.build(archviz.load("alexnet"))}[form]
    a = archviz.analyze(x)
    assert isinstance(a, archviz.Analysis)
    # 227 → 55 → 27 → 13 → 6, written out: (227 − 11)/4 + 1, (55 − 3)/2 + 1, (27 − 3)/2 + 1, (13 − 3)/2 + 1
    sizes = [a.input[1]] + [a.layer(n).output[1] for n in ("conv1", "pool1", "pool2", "pool5")]
    assert sizes == [227, (227 - 11) // 4 + 1, (55 - 3) // 2 + 1, (27 - 3) // 2 + 1, (13 - 3) // 2 + 1]
    assert sizes == [227, 55, 27, 13, 6]


def test_analyze_refuses_other_things_clearly() -> None:
    with pytest.raises(TypeError, match="a Spec, a Graph or a torch.nn.Module, got int"):
        archviz.analyze(3)
    with pytest.raises(archviz.SpecError, match="no bundled spec"):
        archviz.analyze("no-such-net")


def test_to_dict_is_the_cli_json() -> None:
    runner = CliRunner()
    cli = json.loads(runner.invoke(app, ["shapes", "alexnet", "--format", "json"]).stdout)
    assert archviz.analyze("alexnet").to_dict() == cli
    cli = json.loads(runner.invoke(app, ["check", "alexnet", "--format", "json"]).stdout)
    checks = archviz.check("alexnet")
    assert checks.to_dict() == cli and checks.ok is cli["ok"] is False and len(checks) == len(cli["checks"])
    r = runner.invoke(app, ["diff", "alexnet", "alexnet-torchvision", "--format", "json"])
    cli = json.loads(r.stdout)
    assert archviz.diff("alexnet", "alexnet-torchvision").to_dict() == cli


def test_results_display_themselves() -> None:
    a = archviz.analyze("alexnet")
    md = a._repr_markdown_()
    assert "| 1 | conv1 | conv 11×11 /4, 96 | 96×55×55 | ⌊(227 + 2·0 − 11)/4⌋ + 1 = 55 |" in md
    assert "**60,965,224**" in md and "params 60,965,224 (61.0M)" in md
    assert repr(a).startswith("<archviz.Report 'AlexNet': input (3, 227, 227), 23 layers, params 60,965,224")
    checks = archviz.check("alexnet")
    assert "| ✗ | conv1 neurons | 253,440 (computed +14.6%) | 290,400 |" in checks._repr_markdown_()
    held = sum(c.ok for c in checks)
    assert repr(checks) == f"<archviz.Checks 'AlexNet': {held} of {len(checks)} checks hold>"
    d = archviz.diff("alexnet", "alexnet-torchvision")
    assert "| changed | conv1 | conv | conv | 96×55×55 | 64×55×55 |" in d._repr_markdown_()


def test_draw_returns_the_graphviz_object_and_svg() -> None:
    import graphviz

    diagram = archviz.draw("alexnet", split_gpus=True)
    assert isinstance(diagram.graph, graphviz.Digraph) and "gpu0" in diagram.source
    if not have_dot():
        pytest.skip("Graphviz's dot is not installed")
    svg = diagram._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "conv1" in svg


def test_the_notebook_runs_in_a_real_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/archviz.ipynb, executed by nbclient in an ipykernel that imports this checkout."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(ROOT / "docs" / "archviz.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "docs")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "227 → 55 → 27 → 13 → 6" in text and "params 60,965,224, MACs 724,406,816" in text
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("**60,965,224**" in m and "**724,406,816**" in m for m in markdown)
    assert not [o for o in outputs if o.output_type == "error"]
    if have_dot():
        assert any("image/svg+xml" in o.get("data", {}) for o in outputs)
