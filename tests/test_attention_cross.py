"""Cross-attention: ``attention`` with two inputs (``from: [x, memory]``), queries from the first,
keys and values from the second (Vaswani et al. 2017's decoder). Against
``nn.MultiheadAttention(q, kv, kv)`` (kdim = vdim = D_kv), a hand-written reference (both
lowerings, causal or not), torch's parameter count, FlopCounterMode's MACs and autograd's saved
tensors; the loader's input-count rule."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archviz
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
from archviz.ops.lowering import Lowering

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import measure  # noqa: E402

# queries (10, 32); the memory (6, 24): S_kv = 6 ≠ S, D_kv = 24 ≠ D
MEMORY = ["{name: t1, op: transpose, dim0: 0, dim1: 1}", "{name: short, op: linear, out: 6}",
          "{name: t2, op: transpose, dim0: 0, dim1: 1}", "{name: mem, op: linear, out: 24}"]


def _spec(layer: str, *more: str) -> archviz.Spec:
    layers = [*MEMORY, "{name: q, op: linear, out: 32, from: input}", layer, *more]
    text = "name: t\ninput: [10, 32]\nlayers:\n" + "".join(f"  - {la}\n" for la in layers)
    return archviz.loads(text, "t.yaml")


CROSS = "{name: cross, op: attention, heads: 4, from: [q, mem]}"


def _reference(m: nn.Module, x: torch.Tensor, mem: torch.Tensor, heads: int, causal: bool) -> torch.Tensor:
    """softmax(q kᵀ/√hd + mask)·v per head, k and v from the memory; the causal mask top-left
    aligned (query i reads keys 0..i), as F.scaled_dot_product_attention's is_causal."""
    b, s, _ = x.shape
    t = mem.shape[1]
    q = m.q_proj(x).view(b, s, heads, -1).transpose(1, 2)
    k, v = (p(mem).view(b, t, heads, -1).transpose(1, 2) for p in (m.k_proj, m.v_proj))
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        att = att.masked_fill(torch.ones(s, t, dtype=torch.bool).triu(1), float("-inf"))
    return m.o_proj((att.softmax(-1) @ v).transpose(1, 2).reshape(b, s, -1))


def test_shape_params_and_arithmetic() -> None:
    a = archviz.analyze(_spec(CROSS))
    st = {s.name: s for s in a.layers}["cross"]
    assert st.output == (10, 32)
    model = archviz.to_module(_spec(CROSS))
    assert st.params == sum(p.numel() for p in model.cross.parameters())
    # W_q 32·32 + W_k, W_v 24·32 each + W_o 32·32, biases 32 · 4
    assert st.params == 32 * 32 + 2 * 24 * 32 + 32 * 32 + 4 * 32
    assert "memory (6, 24)" in st.formula and "(10×8)·(8×6) → 4×10×6" in st.formula


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("causal", [False, True])
def test_equals_a_hand_written_reference(lowering: str, causal: bool) -> None:
    layer = CROSS.replace("heads: 4", f"heads: 4, causal: {str(causal).lower()}")
    model = archviz.to_module(_spec(layer), lowering=Lowering.of({"attention": lowering})).eval()
    x, mem = torch.randn(3, 10, 32), torch.randn(3, 6, 24)
    with torch.no_grad():
        assert torch.allclose(model.cross(x, mem), _reference(model.cross, x, mem, 4, causal), atol=1e-5)
        y = model(torch.randn(3, 10, 32))
    assert y.shape == (3, 10, 32)


def test_equals_nn_multihead_attention_with_kdim() -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, kdim=24, vdim=24, batch_first=True).eval()
    model = archviz.to_module(_spec(CROSS)).eval()
    model.cross.load_state_dict(mha.state_dict())   # q/k/v_proj_weight, in_proj_bias, out_proj
    x, mem = torch.randn(3, 10, 32), torch.randn(3, 6, 24)
    with torch.no_grad():
        assert torch.allclose(model.cross(x, mem), mha(x, mem, mem, need_weights=False)[0], atol=1e-5)


def test_macs_equal_flop_counter_mode() -> None:
    a = archviz.analyze(_spec(CROSS))
    st = {s.name: s for s in a.layers}["cross"]
    model = archviz.to_module(_spec(CROSS)).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.cross(torch.randn(2, 10, 32), torch.randn(2, 6, 24))
    assert st.macs == counter.get_total_flops() // 2 // 2
    # q and o over S = 10, k and v over S_kv = 6 from D_kv = 24, QKᵀ and ·V 4 heads × 10 × 6 × 8
    assert st.macs == 10 * 32 * 32 * 2 + 2 * 6 * 24 * 32 + 2 * 4 * 10 * 6 * 8


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("extra", ["", ", causal: true, dropout: 0.1", ", kv_heads: 2, rope: true"])
def test_cross_attention_saves_what_autograd_saves(extra: str, dtype: str, lowering: str) -> None:
    sp = _spec(CROSS.replace("heads: 4", "heads: 4" + extra))
    low = Lowering.of({"attention": lowering})
    predicted = saved_bytes(archviz.analyze(sp), Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu",
                                                           lowering=low))
    measured = measure(sp, 3, dtype, lowering=low)
    assert predicted["cross"] == measured.per_layer["cross"], measured.records["cross"]


def test_input_counts_are_checked_where_the_spec_says() -> None:
    with pytest.raises(archviz.SpecError, match=r"t.yaml:\d+:\d+: cross.from: attention takes one to two"
                                                r" inputs, got 3"):
        _spec("{name: cross, op: attention, heads: 4, from: [q, mem, short]}")
    # the messages of before stay
    with pytest.raises(archviz.SpecError, match="fc.from: this op takes one input, got 2"):
        _spec("{name: fc, op: linear, out: 4, from: [q, mem]}")
    with pytest.raises(archviz.SpecError, match="add.from: a merge op needs at least two inputs, got 1"):
        _spec("{name: add, op: add, from: [q]}")


def test_a_memory_with_other_leading_dims_is_a_located_error() -> None:
    with pytest.raises(archviz.ArchvizError, match="cross-attention's memory"):
        archviz.analyze(_spec("{name: r, op: reshape, shape: [2, 3, 24], from: mem}",
                              "{name: cross, op: attention, heads: 4, from: [q, r]}"))
