"""The Python API (issue 10, point 6; issue 26, point 2): a function for every command, taking a
bundled name, a path, a Spec, a Graph or a torch.nn.Module; results whose to_dict() is the CLI's
JSON, whose str() is the CLI's table, and which display themselves in Jupyter; the notebook
docs/archviz.ipynb runs in a real kernel."""

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
    if not have_dot():   # the view's layout needs Graphviz's dot; the rest of the notebook does not
        nb.cells = [c for c in nb.cells if "needs-dot" not in c.metadata.get("tags", [])]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "docs")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "227 → 55 → 27 → 13 → 6" in text and "params 60,965,224, MACs 724,406,816" in text
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("**60,965,224**" in m and "**724,406,816**" in m for m in markdown)
    assert not [o for o in outputs if o.output_type == "error"]
    assert "largest batch that fits: 167" in text   # archviz cost alexnet --device gtx580 --gpus 1
    assert any("fits on GeForce GTX 580 3 GB" in m and "| conv1 |" in m for m in markdown)
    if have_dot():
        assert any("image/svg+xml" in o.get("data", {}) for o in outputs)
        pages = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
        assert any(p.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") for p in pages)


# ---- issue 26, point 2: a Python API for every command -----------------------------------------

COMMAND_FUNCTIONS = ("load", "analyze", "check", "diff", "draw", "cost", "plot", "view", "verify", "export",
                     "bench", "to_module", "from_module")


def cli(*args: str) -> str:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code in (0, 1), r.output
    return r.stdout


def test_dir_shows_the_api_and_nothing_else() -> None:
    assert set(COMMAND_FUNCTIONS) <= set(archviz.__all__)
    assert dir(archviz) == sorted(archviz.__all__)
    for leak in ("os", "sys", "Any", "Shape", "TYPE_CHECKING", "annotations"):
        assert not hasattr(archviz, leak), leak
    assert all(getattr(archviz, name) is not None for name in archviz.__all__)


def test_every_public_function_says_what_it_does_with_an_example() -> None:
    import inspect

    functions = [n for n in archviz.__all__ if inspect.isfunction(getattr(archviz, n))]
    assert set(COMMAND_FUNCTIONS) <= set(functions)
    for name in functions:
        doc = inspect.getdoc(getattr(archviz, name)) or ""
        assert ">>> " in doc and f"archviz.{name}(" in doc, name
    api_md = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in functions:
        assert f"archviz.{name}(" in api_md, name


def test_the_light_functions_leave_torch_out() -> None:
    import subprocess
    import sys

    code = ("import sys, archviz; archviz.analyze('alexnet'); archviz.check('lenet5'); "
            "archviz.cost('alexnet', 'gtx580', gpus=1); archviz.diff('alexnet', 'lenet5'); "
            "str(archviz.analyze('alexnet')); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_print_shows_the_cli_table() -> None:
    assert str(archviz.analyze("alexnet")) == cli("shapes", "alexnet")
    small = archviz.analyze("lenet5", input_shape=(1, 64, 64))
    assert str(small) == cli("shapes", "lenet5", "--input", "1x64x64")
    assert str(archviz.check("alexnet")) == cli("check", "alexnet")
    d = archviz.diff("alexnet", "alexnet-torchvision")
    assert str(d) == cli("diff", "alexnet", "alexnet-torchvision")


def test_cost_is_the_cli_cost(tmp_path: Path) -> None:
    c = archviz.cost("alexnet", "gtx580", gpus=1)
    args = ("cost", "alexnet", "--device", "gtx580", "--gpus", "1")
    assert c.to_dict() == json.loads(cli(*args, "-f", "json"))
    assert isinstance(c, archviz.CostReport) and c.fits and c.largest_batch and c.largest_batch >= 128
    out = tmp_path / "cost.txt"
    cli(*args, "-o", str(out))
    assert str(c) == out.read_text(encoding="utf-8")
    run = archviz.cost("resnet50", "a100", dtype="bf16", optimizer="adam", epochs=90, images="1.2M")
    assert run.to_dict() == json.loads(cli("cost", "resnet50", "--device", "a100", "--dtype", "bf16",
                                           "--optimizer", "adam", "--epochs", "90", "--images", "1.2M",
                                           "-f", "json"))
    assert run.run and run.run.steps == 90 * 1_200_000 // 128 and "90 epochs of 1,200,000 images" in str(run)
    assert "| conv1 |" in c._repr_markdown_() and "fits on GeForce GTX 580" in c._repr_markdown_()
    with pytest.raises(archviz.ArchvizError, match="unknown optimizer 'adamm'"):
        archviz.cost("alexnet", optimizer="adamm")


def test_plot_returns_a_figure_that_shows_as_png(tmp_path: Path) -> None:
    p = archviz.plot("lenet5")
    png = p._repr_png_()
    assert png.startswith(b"\x89PNG") and png == p.png()   # no timestamps: the same bytes each time
    memory = archviz.plot("alexnet", "memory", device="gtx580", gpus=1)
    assert memory.svg().lstrip().startswith("<?xml")
    blocks = archviz.plot("alexnet", "blocks", split_gpus=True)
    blocks.save(str(tmp_path / "blocks.pdf"))
    assert (tmp_path / "blocks.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(archviz.ArchvizError, match="log applies to kind='counts'"):
        archviz.plot("alexnet", "blocks", log=True)


def test_view_is_the_offline_page_and_shows_inline(tmp_path: Path) -> None:
    if not have_dot():
        pytest.skip("Graphviz's dot is not installed")
    v = archviz.view("lenet5")
    out = tmp_path / "lenet5.html"
    cli("view", "lenet5", "-o", str(out))
    assert v.html == out.read_text(encoding="utf-8")
    html = v._repr_html_()
    assert html.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") and "archviz view" in html
    assert repr(v).startswith("<archviz.View: ") and len(repr(v)) < 60   # not the page
    compared = archviz.view("alexnet", vs="alexnet-torchvision")
    assert "alexnet-torchvision" in compared.html.lower() or "AlexNet" in compared.html


def test_verify_and_export_are_the_cli_ones() -> None:
    pytest.importorskip("torch")
    v = archviz.verify("lenet5")
    assert v.ok and v.device == "meta"
    assert v.to_dict() == json.loads(cli("verify", "lenet5", "--format", "json"))
    assert str(v) == cli("verify", "lenet5")
    assert "| ✓ | c1 | conv |" in v._repr_markdown_()
    e = archviz.export("lenet5")
    assert str(e) == cli("export", "lenet5") and e._repr_markdown_().startswith("```python\n")
    ts = archviz.export("lenet5", "torchscript")
    assert isinstance(ts.data, bytes) and ts.data[:2] == b"PK"   # a zip, as torch.jit.save writes
    with pytest.raises(archviz.ArchvizError, match="halo applies to split_gpus only"):
        archviz.export("alexnet", halo=True)


def test_bench_runs_small_on_the_cpu() -> None:
    pytest.importorskip("torch")
    r = archviz.bench("lenet5", "cpu", batch=2, mode="infer", warmup=0, iters=2)
    assert r.ok and [row.case.batch for row in r.rows] == [2]
    d = r.to_dict()
    assert d["settings"]["batches"] == [2] and d["settings"]["iters"] == 2 and d["rows"][0]["status"] == "ok"
    assert json.loads(json.dumps(d)) == d        # the CLI's JSON, as written
    text = str(r)
    assert "LeNet-5" in text and "images/s" in text
    assert r._repr_html_().lstrip().startswith("<!DOCTYPE html>") or "<pre" in r._repr_html_()
    with pytest.raises(archviz.ArchvizError, match="--batch"):
        archviz.bench("lenet5", "cpu", batch=0)


def test_analyze_a_module_with_opaque_layers() -> None:
    torch = pytest.importorskip("torch")

    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.up = torch.nn.ChannelShuffle(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.up(self.conv(x))

    a = archviz.analyze(Odd(), input_shape=(3, 8, 8), allow_opaque=True)
    assert a.layer("up").op == "opaque" and a.layers[-1].output == (8, 8, 8)
    assert a.totals.params == 3 * 8 * 9 + 8
    with pytest.raises(archviz.ArchvizError, match="archviz has no op for"):
        archviz.analyze(Odd(), input_shape=(3, 8, 8))
