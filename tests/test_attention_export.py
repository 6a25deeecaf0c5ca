"""Export of specs with archviz's own attention-era modules (Attention, GatedMLP, matmul): Python
source that imports only torch and defines the classes it uses, run in a fresh interpreter with the
compiled module's state dict, gives the compiled module's outputs (both lowerings); TorchScript
and ONNX of the same spec compute the same."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import archviz
import archviz.runtime.compile
import archviz.runtime.export as export_mod
from archviz.ops.lowering import Lowering

GPT = """name: gpt
input: [10, 32]
layers:
  - {name: ln1, op: layernorm}
  - {name: attn, op: attention, heads: 4, causal: true, dropout: 0.0}
  - {name: ln2, op: layernorm}
  - {name: mlp, op: gated_mlp, hidden: 64}
  - {name: head, op: linear, out: 50}
"""
# a query/key product (matmul, written inline) and a grouped-query, rotary, biased-output layer
SCORES = """name: scores
input: [10, 32]
layers:
  - {name: attn, op: attention, heads: 4, kv_heads: 2, rope: true, bias: false, out_bias: true}
  - {name: q, op: linear, out: 16}
  - {name: k, op: linear, out: 16, from: attn}
  - {name: kt, op: transpose, dim0: 0, dim1: 1}
  - {name: sim, op: matmul, from: [q, kt]}
"""
# cross-attention: the memory (6, 24) read by a second input
CROSS = """name: cross
input: [10, 32]
layers:
  - {name: t1, op: transpose, dim0: 0, dim1: 1}
  - {name: short, op: linear, out: 6}
  - {name: t2, op: transpose, dim0: 0, dim1: 1}
  - {name: mem, op: linear, out: 24}
  - {name: attn, op: attention, heads: 4, causal: true, from: [input, mem]}
"""

# Runs in a fresh interpreter: exec the exported file, load the state dict, run the saved input
CHILD = """
import sys, torch
ns = {"__name__": "exported"}
exec(compile(open(sys.argv[1], encoding="utf-8").read(), sys.argv[1], "exec"), ns)
classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
           and v.__module__ == "exported" and v.__name__ not in ("Attention", "GatedMLP")]
assert len(classes) == 1, classes
model = classes[0]().eval()
model.load_state_dict(torch.load(sys.argv[2]))
with torch.no_grad():
    torch.save(model(torch.load(sys.argv[3])), sys.argv[4])
"""


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("text", [GPT, SCORES, CROSS], ids=["gpt", "scores", "cross"])
def test_exported_source_runs_fresh_with_the_compiled_weights(tmp_path: Path, text: str,
                                                              lowering: str) -> None:
    sp = archviz.loads(text, "t.yaml")
    low = Lowering.of({"attention": lowering})
    source = export_mod.to_python(sp, lowering=low)
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
    assert modules | {n.module for n in imports if isinstance(n, ast.ImportFrom)} == {"torch"}
    defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    own = {"Attention", "GatedMLP"} if text == GPT else {"Attention"}
    assert defined == own | {archviz.runtime.compile.class_name(sp.name)}
    torch.manual_seed(0)
    model = archviz.to_module(sp, lowering=low).eval()
    x = torch.randn(3, 10, 32)
    paths = [tmp_path / n for n in ("model.py", "state.pt", "x.pt", "y.pt")]
    paths[0].write_text(source, encoding="utf-8")
    torch.save(model.state_dict(), paths[1])
    torch.save(x, paths[2])
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with torch.no_grad():
        want = model(x)
    assert torch.equal(torch.load(paths[3]), want)


def _exported_and_compiled(exporter: Any, lowering: str) -> tuple[bytes, nn.Module]:
    """GPT's block exported (torchscript or ONNX bytes) and compiled, from the same seed: the same
    weights in both."""
    sp = archviz.loads(GPT, "t.yaml")
    low = Lowering.of({"attention": lowering})
    torch.manual_seed(0)
    data = exporter(sp, lowering=low)
    torch.manual_seed(0)
    return data, archviz.to_module(sp, lowering=low).eval()


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_torchscript_export_of_a_transformer_runs(lowering: str) -> None:
    data, model = _exported_and_compiled(export_mod.to_torchscript, lowering)
    jit = torch.jit.load(io.BytesIO(data))
    x = torch.randn(2, 10, 32)
    with torch.no_grad():
        assert torch.allclose(jit(x), model(x), atol=1e-5)


@pytest.mark.skipif(not export_mod.onnx_available(), reason="needs onnx and onnxscript (archviz[onnx])")
@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_onnx_export_of_a_transformer_computes_what_the_module_computes(lowering: str) -> None:
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    data, model = _exported_and_compiled(export_mod.to_onnx, lowering)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    x = torch.randn(3, 10, 32)
    (got,) = ReferenceEvaluator(proto).run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.abs(got - model(x).numpy()).max() <= 1e-4
