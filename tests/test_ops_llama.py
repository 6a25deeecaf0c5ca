"""The other attention-era ops against torch: ``rmsnorm`` (nn.RMSNorm), ``gated_mlp`` (Llama's MLP,
written out), ``matmul``, gelu's ``approximate`` and softmax's ``dim``: shapes, parameters, MACs
(FlopCounterMode), outputs with the same weights, and saved bytes against autograd (fp32, bf16)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archviz
from archviz.runtime.importer import from_module, round_trip
from archviz.runtime.mapping import count_flops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_transformers import SwiGLU as LlamaMLP  # noqa: E402  (Hugging Face's LlamaMLP)
from saved_oracle import saves_as_predicted  # noqa: E402
from spec_text import spec_of as _spec  # noqa: E402


def test_gated_mlp_equals_llamas() -> None:
    sp = _spec("[10, 32]", "{name: mlp, op: gated_mlp, hidden: 88}")
    a = archviz.analyze(sp)
    ref = LlamaMLP(32, 88)
    model = archviz.to_module(sp).eval()
    model.mlp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 10, 32)
    assert torch.allclose(model(x), ref(x), atol=1e-6)
    assert a.layers[0].params == sum(p.numel() for p in ref.parameters()) == 3 * 32 * 88
    assert 2 * a.layers[0].macs == count_flops(ref, x)[1] == count_flops(model, x)[1]


@pytest.mark.parametrize(("shape", "normalized", "eps"), [((16, 32), None, None), ((4, 6, 8), (6, 8), 1e-6)])
@pytest.mark.parametrize("affine", [True, False])
def test_rmsnorm_equals_torchs(shape: tuple[int, ...], normalized: tuple[int, ...] | None, eps: float | None,
                               affine: bool) -> None:
    extra = (f", normalized: {list(normalized)}" if normalized else "") + (f", eps: {eps}" if eps else "")
    sp = _spec(str(list(shape)), f"{{name: rms, op: rmsnorm, affine: {str(affine).lower()}{extra}}}")
    ref = nn.RMSNorm(normalized or shape[-1:], eps=eps, elementwise_affine=affine)
    if affine:
        nn.init.normal_(ref.weight)
    a = archviz.analyze(sp)
    assert a.layers[0].output == shape and a.layers[0].params == sum(p.numel() for p in ref.parameters())
    model = archviz.to_module(sp).eval()
    model.rms.load_state_dict(ref.state_dict())
    x = torch.randn(3, *shape)
    assert torch.allclose(model(x), ref(x), atol=1e-6)


def test_matmul_against_torch() -> None:
    sp = _spec("[6, 10, 8]", "{name: a, op: linear, out: 8, last_dim: true}",
               "{name: b, op: linear, out: 10, last_dim: true, from: input}",
               "{name: prod, op: matmul, from: [a, b]}")
    with pytest.raises(archviz.ShapeError, match="inner sizes"):
        archviz.analyze(sp)
    sp = _spec("[6, 8, 8]", "{name: a, op: linear, out: 8, last_dim: true}",
               "{name: b, op: linear, out: 5, last_dim: true, from: input}",
               "{name: prod, op: matmul, from: [a, b]}")
    a = archviz.analyze(sp)
    assert a.layers[-1].output == (6, 8, 5) and a.layers[-1].macs == 6 * 8 * 8 * 5
    model = archviz.to_module(sp).eval()
    x = torch.randn(2, 6, 8, 8)
    assert torch.allclose(model(x), model.a(x) @ model.b(x), atol=1e-6)
    assert count_flops(model, x)[1] == 2 * a.totals.macs


class _Block(nn.Module):
    """Llama-ish: RMSNorm, hand-written attention scores (q @ kᵀ, softmax on the last dim), a GELU(tanh)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(16, eps=1e-5)
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 12)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return self.act(torch.matmul(self.q(h), self.k(h)).softmax(dim=-1))


def test_import_of_rmsnorm_matmul_softmax_dim_and_tanh_gelu() -> None:
    imported = from_module(_Block(), (16, 16))
    ops = {la.op: la.params for la in imported.spec.layers}
    assert set(ops) >= {"rmsnorm", "matmul", "softmax", "gelu"}, ops
    assert ops["softmax"].dim == -1 and ops["gelu"].approximate == "tanh" and ops["rmsnorm"].eps == 1e-5
    rt = round_trip(_Block(), imported)
    assert rt.ok, rt


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_dim(dim: int) -> None:
    sp = _spec("[6, 10]", f"{{name: prob, op: softmax, dim: {dim}}}")
    x = torch.randn(2, 6, 10)
    assert torch.allclose(archviz.to_module(sp)(x), x.softmax(dim + 1 if dim >= 0 else dim))
    with pytest.raises(archviz.ShapeError, match="dim 2 is not an axis of the input"):
        archviz.analyze(_spec("[6, 10]", "{name: prob, op: softmax, dim: 2}"))


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_saved_bytes_equal_autograds(dtype: str) -> None:
    sp = _spec("[10, 16]", "{name: rms0, op: rmsnorm}", "{name: rms1, op: rmsnorm, affine: false}",
               "{name: fc, op: linear, out: 16}", "{name: rms2, op: rmsnorm}",
               "{name: rms3, op: rmsnorm, affine: false}", "{name: mlp, op: gated_mlp, hidden: 24}",
               "{name: mlp2, op: gated_mlp, hidden: 24, act: gelu_tanh, bias: true}",
               "{name: g, op: gelu, approximate: tanh}", "{name: sm, op: softmax, dim: -1}",
               "{name: fc2, op: linear, out: 10}", "{name: mm, op: matmul, from: [fc2, sm]}")
    saves_as_predicted(sp, dtype, ("rms0", "rms1", "rms2", "rms3", "mlp", "mlp2", "g", "sm", "mm"))
