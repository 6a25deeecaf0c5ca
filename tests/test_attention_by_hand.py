"""Attention written by hand (``q @ k.transpose(-2, -1)``, a constant divide, softmax, ``@ v``)
imports as its pieces (linear, reshape, transpose, matmul, mul_const, softmax) and verifies:
parameters and outputs equal the source's, MACs equal FlopCounterMode's on the source. The
constant's op, ``mul_const``: against torch, and what autograd saves (nothing)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
from archviz.runtime.export import to_python
from archviz.runtime.importer import ImportFailed, from_module, round_trip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import measure  # noqa: E402

HAND = '''
import math
import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention as a user writes it: heads split with view and transpose."""

    def __init__(self, d=32, heads=4, size_divisor=True):
        super().__init__()
        self.heads, self.size_divisor = heads, size_divisor
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, s, d = x.shape
        q = self.query(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        k = self.key(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        v = self.value(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)
        if self.size_divisor:   # nanoGPT's: the head size read from k's shape
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, s, d)
        return self.out(y)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = SelfAttention(size_divisor=False)
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(x + self.attn(x))
'''


@pytest.fixture(scope="module")
def hand() -> dict:
    ns: dict = {"__name__": "hand"}
    exec(compile(HAND, "hand.py", "exec"), ns)
    return ns


@pytest.mark.parametrize("size_divisor", [True, False], ids=["k.size(-1)", "constant"])
def test_hand_written_attention_imports_and_verifies(hand: dict, size_divisor: bool) -> None:
    torch.manual_seed(0)
    net = hand["SelfAttention"](size_divisor=size_divisor)
    imported = from_module(net, (10, 32))
    ops = [la.op for la in imported.spec.layers]
    assert ops.count("matmul") == 2 and ops.count("softmax") == 1 and ops.count("linear") == 4
    (scale,) = [la for la in imported.spec.layers if la.op == "mul_const"]
    want = (1 / math.sqrt(8), False) if size_divisor else (math.sqrt(8), True)
    assert (scale.params.factor, scale.params.divide) == want
    rt = round_trip(net, imported)
    assert rt.max_abs_diff <= 1e-6, rt
    assert rt.params == rt.spec_params == rt.analysis_params == 4 * (32 * 32 + 32)
    # MACs: the four projections 4·S·D², QKᵀ and ·V 2·H·S²·hd; FlopCounterMode on the source
    assert rt.flops == rt.spec_flops == 2 * rt.analysis_macs == 2 * (4 * 10 * 32 * 32 + 2 * 4 * 100 * 8)


def test_cli_import_verifies(tmp_path: Path) -> None:
    path = tmp_path / "hand.py"
    path.write_text(HAND)
    out = tmp_path / "hand.yaml"
    r = CliRunner().invoke(app, ["import", f"{path}:Net", "--input", "10x32", "-o", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "round trip ok" in r.output
    text = out.read_text()
    assert "op: mul_const, factor: 2.8284271247461903, divide: true" in text


def test_a_divisor_read_from_the_batch_is_refused() -> None:
    class ByBatch(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) / x.shape[0]     # the batch's size: no constant of the spec

    with pytest.raises(ImportFailed, match="the batch.s size"):
        from_module(ByBatch(), (4, 8))


class _Consts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = 0.5 * self.fc(x)                   # a reflected product
        y = torch.div(y, 3)
        return y.div(0.25) * 2


def test_products_and_quotients_by_numbers() -> None:
    net = _Consts()
    imported = from_module(net, (4, 8))
    consts = [(la.params.factor, la.params.divide) for la in imported.spec.layers if la.op == "mul_const"]
    assert consts == [(0.5, False), (3.0, True), (0.25, True), (2.0, False)]
    assert round_trip(net, imported).ok


def test_rounding_division_and_number_over_tensor_are_refused() -> None:
    class Floor(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.div(torch.relu(x), 2, rounding_mode="floor")

    class Over(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 1 / torch.sigmoid(x)

    for net in (Floor(), Over()):
        with pytest.raises(ImportFailed, match="mul_const|truediv|div"):
            from_module(net, (4, 8))


SPEC = """name: c
input: [6, 8]
layers:
  - {name: fc, op: linear, out: 8, last_dim: true}
  - {name: halved, op: mul_const, factor: 0.5}
  - {name: thirds, op: mul_const, factor: 3, divide: true}
"""


def test_mul_const_equals_torch_and_exports() -> None:
    sp = archviz.loads(SPEC)
    a = archviz.analyze(sp)
    assert [la.formula for la in a.layers[1:]] == ["each element × 0.5", "each element ÷ 3"]
    assert [(la.params, la.macs) for la in a.layers[1:]] == [(0, 0), (0, 0)]
    torch.manual_seed(0)
    model = archviz.to_module(sp).eval()
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        got = model(x)
        assert torch.equal(got, model.fc(x) * 0.5 / 3.0)
    ns: dict = {"__name__": "exported"}
    exec(compile(to_python(sp), "<exported>", "exec"), ns)
    exported = ns["C"]().eval()
    exported.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(exported(x), got)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_mul_const_saves_nothing(dtype: str) -> None:
    sp = archviz.loads(SPEC)
    predicted = saved_bytes(archviz.analyze(sp), Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(sp, 3, dtype)
    assert measured.per_layer["halved"] == measured.per_layer["thirds"] == 0
    assert predicted["halved"] == predicted["thirds"] == 0
