"""`archviz export`: the `py` source run in a fresh interpreter, TorchScript, ONNX's absence,
atomic output."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import archviz
import archviz.runtime.export as export_mod
from archviz.cli import app
from archviz.runtime.export import to_python
from tests.conftest import bundled_specs
from tests.test_compile import GRAPH

runner = CliRunner()

# Runs in a fresh interpreter: exec each exported file on its own, build its one class on the
# meta device (keys and shapes only, nothing allocated), print {file: [[key, shape], ...]}.
# A file defines the network's class last, after archviz's own modules it uses.
CHILD = """
import json, sys, torch
out = {}
for path in sys.argv[1:]:
    ns = {"__name__": "exported"}
    exec(compile(open(path, encoding="utf-8").read(), path, "exec"), ns)
    classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == "exported"]
    assert classes, path   # archviz's own modules (attention, ...) first, the network's class last
    with torch.device("meta"):
        model = classes[-1]()
    out[path] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
print(json.dumps(out))
"""


def _keys_and_shapes(model: torch.nn.Module) -> list[list]:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def test_exported_source_builds_the_same_model_for_every_bundled_spec(tmp_path: Path) -> None:
    files = {}
    for stem in bundled_specs():
        path = tmp_path / f"{stem.replace('-', '_')}_model.py"
        result = runner.invoke(app, ["export", stem, "--format", "py", "-o", str(path)])
        assert result.exit_code == 0, result.output
        files[str(path)] = stem
    proc = subprocess.run([sys.executable, "-c", CHILD, *files], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    for path, stem in files.items():
        with torch.device("meta"):
            expected = _keys_and_shapes(archviz.to_module(stem))
        assert built[path] == expected, stem


@pytest.mark.parametrize("stem", bundled_specs())
def test_exported_source_is_one_class_that_imports_only_torch(stem: str) -> None:
    text = to_python(stem)
    tree = ast.parse(text)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in imports if isinstance(n, ast.ImportFrom)}
    assert modules == {"torch"}, modules
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    # the network's class, last; before it only archviz's own modules it uses (attention, ...)
    from archviz.runtime.compile import LAYERS

    assert classes and all(c.name in LAYERS for c in classes[:-1]), [c.name for c in classes]
    spec = archviz.load(stem)
    assert spec.name in (ast.get_docstring(tree) or "")
    first = archviz.analyze(spec).layers[0]
    shape = "(" + ", ".join(map(str, first.output)) + ")"
    assert f"  # {shape}" in text  # the analysed shape as a comment


@pytest.mark.parametrize("stem", ["lenet5", "alexnet-keras", "resnet18", "squeezenet1_0"])
def test_exported_source_computes_what_to_module_computes(stem: str) -> None:
    _same_function(to_python(stem), archviz.to_module(stem), archviz.load(stem).input)


def test_exported_graph_with_nested_names_and_two_outputs() -> None:
    spec = archviz.loads(GRAPH)
    text = to_python(spec)
    assert 'self.layer2["0"]["conv1"] = nn.Conv2d(' in text and "torch.cat([" in text
    assert "return side, fc" in text
    _same_function(text, archviz.to_module(spec), spec.input)


def _same_function(text: str, compiled: torch.nn.Module, shape: tuple[int, ...]) -> None:
    ns: dict = {"__name__": "exported"}
    exec(compile(text, "<exported>", "exec"), ns)
    cls = next(v for v in ns.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == "exported")
    model = cls().eval()
    model.load_state_dict(compiled.state_dict())  # strict: same keys and shapes
    compiled.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        got, want = model(x), compiled(x)
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def test_py_export_prints_without_output_file() -> None:
    result = runner.invoke(app, ["export", "lenet5"])
    assert result.exit_code == 0
    assert "class LeNet5(nn.Module):" in result.output and "x = self.c1(x)  # (6, 28, 28)" in result.output


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_loads_and_runs(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(GRAPH)
    path = tmp_path / "tiny.pt"
    result = runner.invoke(app, ["export", str(spec), "-f", "torchscript", "-o", str(path)])
    assert result.exit_code == 0, result.output
    loaded = torch.jit.load(str(path)).eval()
    compiled = archviz.to_module(spec).eval()
    compiled.load_state_dict(loaded.state_dict())
    assert list(loaded.state_dict()) == list(compiled.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for g, w in zip(loaded(x), compiled(x), strict=True):
            assert torch.allclose(g, w, atol=1e-6)


def test_onnx_without_the_package_is_a_clear_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_mod, "onnx_available", lambda: False)
    path = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", "lenet5", "-f", "onnx", "-o", str(path)])
    assert result.exit_code == 2
    assert "needs the 'onnx' and 'onnxscript' packages" in result.output and "Traceback" not in result.output
    assert not path.exists()


def test_binary_formats_need_an_output_file() -> None:
    result = runner.invoke(app, ["export", "lenet5", "-f", "torchscript"])
    assert result.exit_code == 2 and "-o FILE" in result.output


def test_unknown_format_and_unwritable_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "lenet5", "-f", "keras"])
    assert result.exit_code == 2 and "'keras' is not one of" in result.output
    target = tmp_path / "missing" / "model.py"
    result = runner.invoke(app, ["export", "lenet5", "-o", str(target)])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not target.parent.exists()


def test_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("old\n")
    assert runner.invoke(app, ["export", "lenet5", "-o", str(path)]).exit_code == 0
    assert path.read_text() == to_python("lenet5")
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]  # no temporary file left



@pytest.mark.skipif(not export_mod.onnx_available(), reason="needs onnx and onnxscript (archviz[onnx])")
@pytest.mark.parametrize("stem", ["lenet5", "alexnet-keras"])
def test_onnx_export_computes_what_the_module_computes(stem: str) -> None:
    """The ONNX file, run by onnx's own reference evaluator (numpy), equals the torch module."""
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    import archviz

    torch.manual_seed(0)
    data = export_mod.to_onnx(stem)
    torch.manual_seed(0)
    model = archviz.to_module(stem).eval()  # same seed, same build order: the same weights
    model_proto = onnx.load_from_string(data)
    onnx.checker.check_model(model_proto)
    shape = archviz.analyze(archviz.load(stem)).input
    x = torch.randn(3, *shape)  # batch 3: the batch axis is dynamic (exported with 2)
    (got,) = ReferenceEvaluator(model_proto).run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4
