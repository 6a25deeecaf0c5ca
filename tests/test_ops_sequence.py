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
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
from archviz.runtime.export import onnx_available, to_python
from archviz.runtime.importer import from_module, round_trip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import measure  # noqa: E402


def _spec(input_: str, *layers: str, dtype: str = "") -> archviz.Spec:
    head = f"name: t\ninput: {input_}\n" + (f"input_dtype: {dtype}\n" if dtype else "") + "layers:\n"
    return archviz.loads(head + "".join(f"  - {la}\n" for la in layers), "t.yaml")


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
    predicted = saved_bytes(archviz.analyze(sp), Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(sp, 3, dtype)
    for name in ("ln", "ln2"):
        assert predicted[name] == measured.per_layer[name], (name, measured.records[name])
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
