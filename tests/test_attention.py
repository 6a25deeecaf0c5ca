"""The ``attention`` op against torch: hand-written references (GPT-2's causal attention, Llama's
grouped-query attention with rotary embedding) and ``nn.MultiheadAttention`` give the same
outputs with the same weights, the same parameter count, and FlopCounterMode the same MACs on the
eager lowering; what each lowering saves for backward equals autograd's record (fp32 and bf16)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

import archviz
from archviz.ops import OPS
from archviz.ops.lowering import Lowering
from archviz.runtime.importer import from_module, load_weights, round_trip
from archviz.runtime.mapping import count_flops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import saves_as_predicted  # noqa: E402
from spec_text import spec_of as _spec  # noqa: E402

# ---- hand-written references -------------------------------------------------------------------------

class GPT2Attention(nn.Module):
    """nanoGPT's CausalSelfAttention with separate q, k, v projections (GPT-2's c_attn split in three)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.o_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = (p(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(b, s, d))


class LlamaAttention(nn.Module):
    """Hugging Face's LlamaAttention, written out: no biases, grouped-query heads, RoPE on q and k
    (rotate-half), causal."""

    def __init__(self, d: int, heads: int, kv_heads: int, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.h, self.kv, self.hd, self.theta = heads, kv_heads, head_dim, theta
        self.q_proj = nn.Linear(d, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv, self.hd).transpose(1, 2)
        inv = 1.0 / self.theta ** (torch.arange(0, self.hd, 2).float() / self.hd)
        freqs = torch.outer(torch.arange(s).float(), inv)
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos(), emb.sin()

        def rot(t: torch.Tensor) -> torch.Tensor:
            return torch.cat((-t[..., self.hd // 2:], t[..., :self.hd // 2]), -1)

        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        rep = self.h // self.kv
        k = k[:, :, None].expand(b, self.kv, rep, s, self.hd).reshape(b, self.h, s, self.hd)
        v = v[:, :, None].expand(b, self.kv, rep, s, self.hd).reshape(b, self.h, s, self.hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, s, self.h * self.hd))


def _compiled(sp: archviz.Spec, ref: nn.Module, lowering: str = "eager") -> nn.Module:
    model = archviz.to_module(sp, lowering=Lowering.of({"attention": lowering})).eval()
    model.attn.load_state_dict(ref.state_dict())
    return model


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_gpt2_attention_equals_the_reference(lowering: str) -> None:
    sp = _spec("[24, 64]", "{name: attn, op: attention, heads: 4, causal: true}")
    a = archviz.analyze(sp)
    ref = GPT2Attention(64, 4).eval()
    model = _compiled(sp, ref, lowering)
    x = torch.randn(2, 24, 64)
    assert torch.allclose(model(x), ref(x), atol=1e-5)
    assert a.layers[0].params == sum(p.numel() for p in ref.parameters())
    assert 2 * a.layers[0].macs == count_flops(ref, x)[1]
    if lowering == "eager":
        assert count_flops(model, x)[1] == 2 * a.layers[0].macs
    else:   # FlopCounterMode counts CPU SDPA as 0 (pytorch/pytorch#195460): archviz's count stands
        assert count_flops(model, x)[1] == 2 * a.layers[0].macs - 2 * 2 * 4 * 24 * 24 * 16


@pytest.mark.parametrize(("heads", "kv_heads"), [(8, 2), (4, 1), (4, 4)])
@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_llama_gqa_with_rope_equals_the_reference(heads: int, kv_heads: int, lowering: str) -> None:
    sp = _spec("[12, 48]", f"{{name: attn, op: attention, heads: {heads}, kv_heads: {kv_heads}, head_dim: 8,"
                           " causal: true, rope: true, bias: false, rope_theta: 500000.0}")
    ref = LlamaAttention(48, heads, kv_heads, 8, 500000.0).eval()
    a = archviz.analyze(sp)
    model = _compiled(sp, ref, lowering)
    x = torch.randn(3, 12, 48)
    assert torch.allclose(model(x), ref(x), atol=1e-5)
    assert a.layers[0].params == sum(p.numel() for p in ref.parameters())
    if lowering == "eager":
        assert count_flops(model, x)[1] == 2 * a.layers[0].macs


def test_multihead_attention_weights_load_and_outputs_agree() -> None:
    mha = nn.MultiheadAttention(32, 4, batch_first=True, dropout=0.0).eval()
    sp = _spec("[10, 32]", "{name: attn, op: attention, heads: 4}")
    a = archviz.analyze(sp)
    model = _compiled(sp, mha)   # in_proj_weight split into q_proj, k_proj, v_proj at load
    x = torch.randn(2, 10, 32)
    assert torch.allclose(model(x), mha(x, x, x)[0], atol=1e-5)
    assert a.layers[0].params == sum(p.numel() for p in mha.parameters())
    assert count_flops(model, x)[1] == 2 * a.layers[0].macs


class _MHANet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.head = nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return self.head(self.mha(x, x, x)[0])


def test_multihead_attention_imports_with_its_weights() -> None:
    net = _MHANet()
    imported = from_module(net, (10, 32))
    assert [(la.op, la.name) for la in imported.spec.layers] == \
        [("linear", "fc"), ("attention", "mha"), ("linear", "head")]
    rt = round_trip(net, imported)
    # FlopCounterMode misses nn.MultiheadAttention's fused inference path: the source's count is
    # not an oracle here; the compiled spec's is (eager lowering)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params, rt
    assert rt.spec_flops == 2 * rt.analysis_macs
    compiled = load_weights(archviz.to_module(imported.spec), net.state_dict(), imported.name_map)
    assert set(dict(compiled.named_parameters())) >= {"mha.q_proj.weight", "mha.o_proj.bias"}


def test_arithmetic_text_and_kv_bytes() -> None:
    a = archviz.analyze(_spec("[1024, 768]", "{name: attn, op: attention, heads: 12, causal: true}"))
    f = a.layers[0].formula
    assert "QKᵀ: 12 heads × (1024×64)·(64×1024) → 12×1024×1024" in f and "·V → 1024×768" in f
    assert "full square" in f and "K/V 1,536 values a token" in f
    assert a.layers[0].params == 4 * 768 * 768 + 4 * 768   # GPT-2 small's attention block
    assert a.layers[0].macs == 4 * 1024 * 768 * 768 + 2 * 12 * 1024 * 1024 * 64
    p, ins = a.spec.layers[0].params, a.layers[0].in_shapes
    assert OPS["attention"].kv_bytes_per_token(p, ins, 2) == 2 * 12 * 64 * 2
    llama = archviz.analyze(_spec("[8, 4096]", "{name: attn, op: attention, heads: 32, kv_heads: 8}"))
    q = llama.spec.layers[0].params
    assert OPS["attention"].kv_bytes_per_token(q, llama.layers[0].in_shapes, 2) == 2 * 8 * 128 * 2


@pytest.mark.parametrize(("layer", "key", "message"), [
    ("{name: attn, op: attention, heads: 5}", "heads", "heads 5 does not divide the model width D = 32"),
    ("{name: attn, op: attention, heads: 4, kv_heads: 3}", "kv_heads", "kv_heads 3 does not divide heads 4"),
    ("{name: attn, op: attention, heads: 4, head_dim: 5, rope: true}", "rope", "rope needs an even head size,"
     " got 5"),
])
def test_located_errors(layer: str, key: str, message: str) -> None:
    with pytest.raises(archviz.ShapeError) as exc:
        archviz.analyze(_spec("[10, 32]", layer))
    col = len("  - ") + layer.index(f" {key}: ") + len(f" {key}: ") + 1   # the value of the key
    assert str(exc.value).splitlines()[0] == f"t.yaml:4:{col}: attn: {message}"


def test_leading_dims_are_more_sequences() -> None:
    sp = _spec("[3, 10, 32]", "{name: attn, op: attention, heads: 4}")   # Swin's windows
    a = archviz.analyze(sp)
    assert a.layers[0].output == (3, 10, 32)
    single = archviz.analyze(_spec("[10, 32]", "{name: attn, op: attention, heads: 4}"))
    assert a.layers[0].macs == 3 * single.layers[0].macs
    model = archviz.to_module(sp).eval()
    x = torch.randn(2, 3, 10, 32)
    assert torch.allclose(model(x)[:, 1], model.attn(x[:, 1]), atol=1e-6)


_SAVED = [
    "{name: attn, op: attention, heads: 4}",
    "{name: attn, op: attention, heads: 4, causal: true, dropout: 0.1}",
    "{name: attn, op: attention, heads: 4, kv_heads: 2, rope: true, causal: true, bias: false}",
    "{name: attn, op: attention, heads: 4, kv_heads: 1, head_dim: 6, rope: true, dropout: 0.2}",
    "{name: attn, op: attention, heads: 4, causal: true, dropout: 0.1, packed: true}",   # one input copy
]


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("layer", _SAVED)
def test_attention_saves_what_autograd_saves(layer: str, dtype: str, lowering: str) -> None:
    # once reading the network input (no gradient: no weight copies for q, k, v), once after a linear
    second = layer.replace("name: attn", "name: attn2")
    sp = _spec("[10, 32]", layer, "{name: fc, op: linear, out: 32}", second)
    low = Lowering.of({"attention": lowering})
    saves_as_predicted(sp, dtype, ("attn", "attn2"), lowering=low)
