"""Import of real transformer code: Hugging Face ``transformers`` models built from small configs
with random weights (never downloaded), torch's ``nn.TransformerEncoderLayer``. fx cannot trace
them; the import captures them by running once (archviz/runtime/capture.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archviz
from archviz.runtime.importer import from_module, round_trip

transformers = pytest.importorskip("transformers")


def _llama(impl: str, dropout: float = 0.0) -> nn.Module:
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   attention_dropout=dropout, attn_implementation=impl)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_llama_grouped_query_imports_folded_and_round_trips(impl: str) -> None:
    model = _llama(impl, dropout=0.1)
    imported = from_module(model, (16,), input_dtype="int64")
    assert "captured by running it once" in imported.text
    assert "repeat: 3" in imported.text                       # the decoder layers fold into one block
    attn = [la for la in archviz.analyze(imported.spec).layers if la.op == "attention"]
    assert len(attn) == 3
    p = attn[0].op_params
    assert (p.heads, p.kv_heads, p.head_dim, p.causal, p.rope, p.bias, p.dropout) == (4, 2, 16, True, True,
                                                                                      False, 0.1)
    assert f"lowering: {impl}" in imported.text              # the implementation the source runs
    assert model.config.use_cache                              # the import leaves the model as it was
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params == 123_840, rt
    assert rt.constant_flops == 2 * 8 * 16 // 2                # the rotary table: hd/2 · S MACs, batch-1 ids
    assert rt.flops - rt.constant_flops == rt.spec_flops       # source and compiled run the same kernels
    # FlopCounterMode counts eager's matmuls as the analysis does; CPU SDPA's two S×S matmuls it does
    # not see: QKᵀ and ·V, 2·H·S²·hd MACs a layer, exactly what the check leaves out
    unseen = 3 * 2 * 4 * 16 * 16 * 16 if impl == "sdpa" else 0
    assert rt.uncounted_macs == unseen and rt.spec_flops == 2 * (rt.analysis_macs - unseen), rt
    assert rt.ok, rt


def test_transformer_encoder_layer_imports_with_equal_outputs_and_params() -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.2, batch_first=True)
    imported = from_module(layer, (10, 32))
    ops = [(la.name, la.op) for la in imported.spec.layers]
    assert ops[0] == ("self_attn", "attention") and ("linear1", "linear") in ops
    assert all(la.params.p == 0.2 for la in imported.spec.layers if la.op == "dropout")
    # nn.MultiheadAttention called with need_weights=False runs SDPA: the import says so
    assert [la.lowering for la in imported.spec.layers if la.op == "attention"] == ["sdpa"]
    rt = round_trip(layer, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params == 8544
    # both run SDPA, whose CPU kernel FlopCounterMode does not count (documented in docs/import.md):
    # the counts agree, and lack the two S×S matmuls the analysis counts
    assert rt.spec_flops == rt.flops == 2 * (rt.analysis_macs - 2 * 4 * 10 * 10 * 8) and rt.ok


def test_a_forward_that_reads_a_value_is_not_captured() -> None:
    from archviz.runtime.capture import ValueRead, capture

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            return y.relu() if y.sum() > 0 else y

    with pytest.raises(ValueRead, match="reads a tensor's value"):
        capture(Branchy(), torch.randn(2, 4))


def _gpt2(impl: str) -> nn.Module:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32,
                                  attn_implementation=impl)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_gpt2_imports_with_positions_packed_attention_conv1d_and_tied_head(impl: str) -> None:
    model = _gpt2(impl)
    imported = from_module(model, (16,), input_dtype="int64")
    layers = {la.name: la for la in imported.spec.layers}
    pos = next(la for la in layers.values() if la.op == "pos_embedding")     # x + wpe(arange(S))
    assert (pos.params.kind, pos.params.length, pos.params.start) == ("learned", 32, 0)
    assert imported.name_map["transformer.wpe.weight"] == f"{pos.name}.weight"
    assert layers["lm_head"].tie == "transformer.wte"                         # lm_head shares wte's weight
    attn = [la for la in archviz.analyze(imported.spec).layers if la.op == "attention"]
    p = attn[0].op_params
    assert (p.heads, p.head_dim, p.causal, p.bias, p.rope, p.dropout) == (4, 16, True, True, False, 0.1)
    assert p.out_bias in (None, True)                                         # c_proj's bias (as bias's)
    assert "op: gelu, approximate: tanh" in imported.text                    # gelu_new
    assert f"lowering: {impl}" in imported.text
    assert "transformer.h.0.mlp.c_fc.weight" in imported.transpose           # Conv1D stores (in, out)
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params == 108_544, rt
    assert rt.flops == rt.spec_flops                        # source and compiled run the same kernels
    assert rt.ok and (rt.uncounted_macs > 0) == (impl == "sdpa"), rt   # CPU SDPA: its S×S matmuls unseen
