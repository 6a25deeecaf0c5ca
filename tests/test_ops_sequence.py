"""The sequence-era ops of the op model (issue 20's proof of the one-file op): ``layernorm`` (and
``embedding``), each facet against torch: shapes and parameters, the saved-for-backward rule
against autograd's record (fp32 and bf16), import from torch modules, functions and ONNX, export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archviz
from archviz.runtime.export import onnx_available, to_python
from archviz.runtime.importer import from_module, round_trip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import saves_as_predicted  # noqa: E402
from spec_text import spec_of as _spec  # noqa: E402

# ---- layernorm -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "normalized"), [((32,), None), ((16, 32), None), ((16, 32), (16, 32)),
                                                   ((4, 6, 8), (6, 8)), ((3, 5, 7, 9), None)])
@pytest.mark.parametrize(("affine", "bias"), [(True, True), (True, False), (False, False)])
def test_layernorm_shape_and_params_equal_torchs(shape: tuple[int, ...], normalized: tuple[int, ...] | None,
                                                 affine: bool, bias: bool) -> None:
    norm = f", normalized: {list(normalized)}" if normalized else ""
    sp = _spec(str(list(shape)), f"{{name: ln, op: layernorm{norm}, affine: {str(affine).lower()},"
                                 f" bias: {str(bias).lower()}}}")
    a = archviz.analyze(sp)
    ref = nn.LayerNorm(normalized or shape[-1:], elementwise_affine=affine, bias=bias)
    assert a.layers[0].output == shape
    assert a.layers[0].params == sum(p.numel() for p in ref.parameters())
    model = archviz.to_module(sp).eval()
    model.ln.load_state_dict(ref.state_dict())
    x = torch.randn(3, *shape)
    assert torch.allclose(model(x), ref(x), atol=1e-6)


def test_layernorm_arithmetic_and_a_located_error() -> None:
    a = archviz.analyze(_spec("[1024, 768]", "{name: ln_1, op: layernorm}"))
    assert a.layers[0].formula == "normalised over 768 = 768, for each of 1,024"
    with pytest.raises(archviz.ShapeError) as exc:
        archviz.analyze(_spec("[16, 32]", "{name: ln, op: layernorm, normalized: [16]}"))
    assert str(exc.value).splitlines()[0] == \
        "t.yaml:4:43: ln: normalized (16,) is not the trailing dims of the input (16, 32)"   # the key


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_layernorm_saves_what_autograd_saves(dtype: str) -> None:
    sp = _spec("[12, 32]", "{name: fc0, op: linear, out: 32}", "{name: ln, op: layernorm}",
               "{name: fc, op: linear, out: 8}", "{name: ln2, op: layernorm, normalized: [12, 8]}")
    predicted, measured = saves_as_predicted(sp, dtype, ("ln", "ln2"))
    assert sum(predicted.values()) == measured.total


class _Block(nn.Module):
    """A pre-norm residual MLP over a sequence: LayerNorm, two linears, a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 32)
        self.ln_f = nn.LayerNorm(32, eps=1e-6)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.fc2(torch.relu(self.fc1(self.ln(x))))
        return self.head(torch.nn.functional.layer_norm(self.ln_f(x), (32,)))


def test_layernorm_imports_from_torch_modules_and_functions() -> None:
    imported = from_module(_Block(), (7, 32))
    ops = [la.op for la in imported.spec.layers]
    assert ops.count("layernorm") == 3, ops
    rt = round_trip(_Block(), imported)
    assert rt.ok, rt


@pytest.mark.skipif(not onnx_available(), reason="torch.onnx needs onnx and onnxscript")
def test_layernorm_imports_from_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from archviz.runtime.export import to_onnx
    from archviz.runtime.onnx_import import from_onnx
    from archviz.runtime.onnx_import import round_trip as onnx_round_trip

    sp = _spec("[7, 32]", "{name: fc, op: linear, out: 32}", "{name: ln, op: layernorm, eps: 1.0e-6}",
               "{name: head, op: linear, out: 4}")
    path = tmp_path / "ln.onnx"
    path.write_bytes(to_onnx(sp))
    imported = from_onnx(path)
    assert [la.op for la in imported.spec.layers] == ["linear", "layernorm", "linear"]
    assert imported.spec.layers[1].params.eps == pytest.approx(1e-6)
    rt = onnx_round_trip(imported)
    assert rt.ok and rt.max_abs_diff <= 1e-5, rt


def test_layernorm_exports_as_source(tmp_path: Path) -> None:
    sp = _spec("[7, 32]", "{name: ln, op: layernorm, normalized: [7, 32], eps: 1.0e-6}",
               "{name: fc, op: linear, out: 4}")
    source = to_python(sp)
    assert "nn.LayerNorm([7, 32], eps=1e-06)" in source
    path = tmp_path / "m.py"
    path.write_text(source)
    subprocess.run([sys.executable, str(path)], check=True, capture_output=True)   # its own self-test


# ---- embedding -------------------------------------------------------------------------------------

def test_embedding_shape_dtype_params_and_arithmetic() -> None:
    a = archviz.analyze(_spec("[16]", "{name: wte, op: embedding, vocab: 50257, dim: 768}", dtype="int64"))
    (s,) = a.layers
    assert (s.output, s.dtype, s.params, s.macs) == ((16, 768), "float32", 50257 * 768, 0)
    assert s.formula == "16 ids → a row of 50,257×768 each"
    ref = nn.Embedding(50257, 768)
    assert s.params == sum(p.numel() for p in ref.parameters())


def test_embedding_refuses_float_input_and_a_float_op_refuses_ids() -> None:
    with pytest.raises(archviz.ShapeError, match="embedding needs integer token ids, got float32"):
        archviz.analyze(_spec("[16]", "{name: wte, op: embedding, vocab: 10, dim: 4}"))
    with pytest.raises(archviz.ShapeError, match="linear needs a floating-point input, got int64"):
        archviz.analyze(_spec("[16]", "{name: fc, op: linear, out: 4}", dtype="int64"))


TOKEN_NET = ["{name: wte, op: embedding, vocab: 100, dim: 32, padding_idx: 0}", "{name: ln, op: layernorm}",
             "{name: fc, op: linear, out: 32}", "{name: res, op: add, from: [wte, fc]}",
             "{name: head, op: linear, out: 100}"]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_embedding_saves_what_autograd_saves(dtype: str) -> None:
    sp = _spec("[12]", *TOKEN_NET, dtype="int64")
    predicted, measured = saves_as_predicted(sp, dtype)
    assert predicted == measured.per_layer, measured.records


def test_embedding_compiles_and_runs_on_ids() -> None:
    sp = _spec("[12]", *TOKEN_NET, dtype="int64")
    model = archviz.to_module(sp)
    out = model(torch.randint(0, 100, (2, 12)))
    assert tuple(out.shape) == (2, 12, 100)
    assert sum(p.numel() for p in model.parameters()) == archviz.analyze(sp).totals.params


class _TinyLM(nn.Module):
    """Token ids in: an embedding, a pre-norm residual MLP, a linear head (issue 20's round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(100, 32)
        self.ln = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 32)
        self.head = nn.Linear(32, 100)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids)
        x = x + self.fc(self.ln(x))
        return self.head(x)


def test_a_token_model_round_trips_through_import() -> None:
    imported = from_module(_TinyLM(), (12,), input_dtype="int64")
    assert [la.op for la in imported.spec.layers] == ["embedding", "layernorm", "linear", "add", "linear"]
    assert "input_dtype: int64" in imported.text
    rt = round_trip(_TinyLM(), imported)
    assert rt.ok, rt


def test_cli_import_verify_of_a_token_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archviz.cli.app import app

    path = tmp_path / "lm.py"
    path.write_text("import torch\nfrom torch import nn\n\n\n"
                    + "".join(__import__("inspect").getsource(_TinyLM)).replace("_TinyLM", "TinyLM"))
    out = tmp_path / "lm.yaml"
    r = CliRunner().invoke(app, ["import", f"{path}:TinyLM", "--input", "12", "--input-dtype", "int64",
                                 "--verify", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "round trip ok" in r.output
    assert archviz.analyze(archviz.load(str(out))).input_dtype == "int64"


@pytest.mark.skipif(not onnx_available(), reason="torch.onnx needs onnx and onnxscript")
def test_embedding_imports_from_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from archviz.runtime.export import to_onnx
    from archviz.runtime.onnx_import import from_onnx
    from archviz.runtime.onnx_import import round_trip as onnx_round_trip

    sp = _spec("[12]", "{name: wte, op: embedding, vocab: 100, dim: 32}", "{name: head, op: linear, out: 8}",
               dtype="int64")
    path = tmp_path / "emb.onnx"
    path.write_bytes(to_onnx(sp))
    imported = from_onnx(path)
    assert [la.op for la in imported.spec.layers] == ["embedding", "linear"]
    rt = onnx_round_trip(imported)
    assert rt.ok, rt


def test_embedding_exports_as_source(tmp_path: Path) -> None:
    sp = _spec("[12]", *TOKEN_NET, dtype="int64")
    source = to_python(sp)
    assert "nn.Embedding(100, 32, padding_idx=0)" in source
    path = tmp_path / "m.py"
    path.write_text(source)
    subprocess.run([sys.executable, str(path)], check=True, capture_output=True)
