"""`archviz cost` of an imported model against autograd's record for the source module itself.

Hugging Face GPT2LMHeadModel and LlamaForCausalLM (tiny configs, dropout on, eager and SDPA
attention) and torch's nn.TransformerEncoderLayer are imported (``archviz.from_module``), and
the per-layer ``saved`` bytes of ``archviz.cost(..., mode="train")`` are compared with what
autograd keeps during one training step of the *source* module (tests/saved_oracle.py's
``measure_step``: forward and loss, deduplicated by storage, parameters and buffers apart), per
source module: a decoder layer, the embedding, the head, the loss. Where the two differ, each
term is named and computed here (docs/cost.md, "Cost of an imported model").
"""

from __future__ import annotations

from functools import cache
from math import prod

import pytest
import torch
from saved_oracle import measure_step
from torch import nn

import archviz

transformers = pytest.importorskip("transformers")

B, S, LAYERS = 2, 8, 2
BYTES = {"fp32": 4, "bf16": 2}


@cache
def _gpt2(impl: str) -> nn.Module:
    cfg = transformers.GPT2Config(n_layer=LAYERS, n_embd=64, n_head=4, vocab_size=100, n_positions=32,
                                  attn_implementation=impl)    # resid, embd, attn dropout: 0.1
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg)


@cache
def _llama(impl: str) -> nn.Module:
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=64, attention_dropout=0.1,
                                   attn_implementation=impl)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg)


@cache
def _imported(model: nn.Module, shape: tuple[int, ...], ids: bool) -> archviz.Spec:
    return archviz.from_module(model, shape, **({"input_dtype": "int64"} if ids else {}))


def _by_group(spec: archviz.Spec, groups: list[str], dtype: str) -> dict[str, int]:
    """`archviz cost`'s per-layer saved bytes, summed per source module: a layer counts in the
    innermost group its name lies under (a layer made from a function call, such as GPT-2's
    position add, in the module that called it; "" the model itself)."""
    c = archviz.cost(spec, device="cpu", batch=B, mode="train", dtype=dtype)
    out = dict.fromkeys(groups, 0)
    for lc in c.layers:
        inside = [g for g in groups if g and (lc.name == g or lc.name.startswith(g + "."))]
        out[max(inside, key=len) if inside else ""] += lc.saved
    return out


def _check_loss(records: list[tuple[tuple[int, ...], str, int]], spec: archviz.Spec) -> None:
    """The loss saves log-softmax of the fp32 logits, what archviz's step adds at the loss (the
    step's walk, archviz/core/cost_memory.py: fp32, where nothing else changes there); besides,
    cross-entropy keeps its target (the labels, B·S int64; a causal LM's shifted copy: archviz
    counts the labels in the step's ``input``, not in ``saved``) and its 0-d total weight (4
    bytes, left out)."""
    from archviz.core.cost_memory import at, timeline
    from archviz.core.flops import Mode

    a = archviz.analyze(spec)
    moments = timeline(a, Mode.train, None, "cpu", lambda tensors: (0, 0))
    i = next(i for i, m in enumerate(moments) if m.layer == "(loss)")
    log_softmax = at(moments[i].acts, B) - at(moments[i - 1].acts, B)
    out = a.layers[-1].output
    assert log_softmax == B * prod(out) * 4
    assert sorted(records, key=lambda r: -r[2]) == [((B * S, out[-1]), "fp32", log_softmax),
                                                    ((B * S,), "int64", B * S * 8), ((), "fp32", 4)]


CAUSAL = [(name, impl, dt) for name in ("gpt2", "llama") for impl in ("eager", "sdpa")
          for dt in ("fp32", "bf16")]


def _groups(name: str) -> tuple[list[str], list[str]]:
    """The source modules compared (the model's own forward, outside them all, is the loss) and
    the decoder layers among them."""
    if name == "gpt2":
        blocks = [f"transformer.h.{i}" for i in range(LAYERS)]
        # wpe is no layer: its rows are the pos_embedding's (`transformer.add`, lowering: lookup)
        return ["transformer", *(f"transformer.{c}" for c in ("wte", "drop", "ln_f")), *blocks,
                "lm_head"], blocks
    blocks = [f"model.layers.{i}" for i in range(LAYERS)]
    children = [f"model.{c}" for c in ("embed_tokens", "norm", "rotary_emb")]
    return ["model", *children, *blocks, "lm_head"], blocks


def _named(name: str, impl: str, dtype: str) -> dict[str, int]:
    """Where autograd's record of the source differs from `archviz cost`, measured − predicted
    bytes, per source module, each term named (docs/cost.md, "Cost of an imported model")."""
    groups, blocks = _groups(name)
    h, hd, low = 4, 16, BYTES[dtype]
    out = dict.fromkeys(groups, 0)
    # eager under amp: the source's softmax runs in fp32 (Llama asks for dtype=float32, GPT-2's
    # scores meet its fp32 additive mask) and keeps fp32 probabilities, where archviz's eager keeps
    # them in the compute dtype: B·H·S·S·2 more a layer
    softmax = B * h * S * S * (4 - low) if impl == "eager" else 0
    if name == "gpt2":
        # eager: scores / torch.full([], √hd), a 0-d tensor autograd keeps (one element)
        scalar = low if impl == "eager" else 0
        out |= {blk: softmax + scalar for blk in blocks}
    else:
        # eager: Llama's probabilities go back to q's dtype before dropout, and q is fp32 after RoPE
        # with fp32 cos and sin: the dropout mask is fp32 too (B·H·S·S·2 more under amp)
        out |= {blk: 2 * softmax for blk in blocks}
        # cos and sin of the rotary embedding, (1, 1, S, hd) fp32, computed in each forward by
        # model.rotary_emb and kept (once, by storage) by the first layer's q·cos + rotate(q)·sin;
        # archviz's attention holds its table as a buffer
        out[blocks[0]] += 2 * S * hd * 4
    return out


@pytest.mark.parametrize(("name", "impl", "dtype"), CAUSAL)
def test_cost_of_an_imported_causal_lm_equals_autograd_of_the_source(name: str, impl: str,
                                                                    dtype: str) -> None:
    model = _gpt2(impl) if name == "gpt2" else _llama(impl)
    spec = _imported(model, (S,), True)
    groups, _ = _groups(name)
    predicted = _by_group(spec, groups, dtype)
    measured = measure_step(model, groups, torch.randint(0, 100, (B, S)), dtype, labels=True)
    diff = {g: measured.per_layer[g] - predicted[g] for g in groups}
    assert diff == _named(name, impl, dtype), (predicted, {g: measured.records[g] for g in groups if diff[g]})
    _check_loss(measured.records["(loss)"], spec)


def test_the_import_records_the_sources_lowerings_and_dropouts() -> None:
    """What the cost depends on, read from the source: the attention implementation of the config,
    each dropout's p, and GPT-2's gelu_new written out op by op (`lowering: formula`)."""
    from archviz.runtime.importer import from_module

    for impl in ("eager", "sdpa"):
        text = from_module(_gpt2(impl), (S,), input_dtype="int64").text
        assert f"lowering: {impl}" in text and "dropout: 0.1" in text
        assert "op: gelu, approximate: tanh, lowering: formula" in text
        assert "op: pos_embedding, length: 32, lowering: lookup" in text      # wpe(position_ids)
        assert "packed: true" in text                                          # c_attn: q, k, v at once
        assert text.count("op: dropout, p: 0.1") == 3       # embd_pdrop, resid_pdrop after attn and MLP
    spec = _imported(_llama("sdpa"), (S,), True)
    attn = [la for la in spec.layers if la.op == "attention"]
    assert {(la.lowering, la.params.dropout) for la in attn} == {("sdpa", 0.1)}


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_cost_of_an_imported_encoder_layer_equals_autograd_of_the_source(dtype: str) -> None:
    """nn.TransformerEncoderLayer calls its attention with need_weights=False: torch runs SDPA
    (with dropout on the CPU, its math fallback, which computes a bf16 input in fp32), and the
    import reads that call's argument: `lowering: sdpa`."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.2, batch_first=True)
    spec = _imported(layer, (S, 32), False)
    attn = [(la.lowering, la.params.dropout, la.params.packed) for la in spec.layers if la.op == "attention"]
    assert attn == [("sdpa", 0.2, True)]
    assert {la.params.p for la in spec.layers if la.op == "dropout"} == {0.2}
    groups = ["", *(n for n, _ in layer.named_children())]
    predicted = _by_group(spec, groups, dtype)
    measured = measure_step(layer, groups, torch.randn(B, S, 32), dtype)
    d = 32
    # nn.MultiheadAttention projects q, k, v in one matmul (in_proj, `packed: true`); in fp32 the
    # math fallback's v is a view of that output, so autograd's record keeps the whole storage,
    # q and k too: 2·B·S·D fp32 more (under amp v is cast to fp32: a copy)
    expected = dict.fromkeys(groups, 0)
    expected["self_attn"] = 2 * B * S * d * 4 if dtype == "fp32" else 0
    diff = {g: measured.per_layer[g] - predicted[g] for g in groups}
    assert diff == expected, (predicted, measured.records)
    _check_loss(measured.records["(loss)"], spec)   # cross-entropy over the outputs' last dim


GELU_FORMULA = """name: gelu_new
input: [6, 16]
layers:
  - {name: fc1, op: linear, out: 32}
  - {name: act, op: gelu, approximate: tanh, lowering: formula}
  - {name: fc2, op: linear, out: 16}
"""


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_gelu_written_out_saves_what_autograd_records(dtype: str) -> None:
    """`lowering: formula` (GPT-2's gelu_new op by op): the compiled layer computes
    NewGELUActivation's values and the rule counts what autograd keeps: x, tanh(…), 0.5·x,
    1 + tanh(…) (4 tensors of the input's size where nn.GELU keeps 1)."""
    from saved_oracle import measure

    from archviz.core.cost import Settings, saved_bytes
    from archviz.core.devices import Dtype

    spec = archviz.loads(GELU_FORMULA)
    a = archviz.analyze(spec)
    predicted = saved_bytes(a, Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(spec, 3, dtype)
    assert predicted == measured.per_layer, measured.records
    assert predicted["act"] == 4 * 3 * 6 * 32 * BYTES[dtype]
    act = archviz.to_module(spec).get_submodule("act")
    x = torch.randn(4, 32)
    assert torch.equal(act(x), transformers.activations.NewGELUActivation()(x))


POSITIONS = """name: positions
input: [6]
input_dtype: int64
layers:
  - {name: wte, op: embedding, vocab: 50, dim: 16}
  - {name: wpe, op: pos_embedding, length: 10, start: 2, lowering: lookup}
  - {name: fc, op: linear, out: 8}
"""


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_positions_looked_up_save_their_ids(dtype: str) -> None:
    """`lowering: lookup` (GPT-2's wpe(position_ids)): the same values as the slice, and the
    embedding's backward keeps the (1, S) int64 ids, once for the batch."""
    from saved_oracle import measure

    from archviz.core.cost import Settings, saved_bytes
    from archviz.core.devices import Dtype

    spec = archviz.loads(POSITIONS)
    predicted = saved_bytes(archviz.analyze(spec), Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(spec, 3, dtype)
    assert predicted == measured.per_layer, measured.records
    assert predicted["wpe"] == 6 * 8
    looked = archviz.to_module(spec).get_submodule("wpe")
    x = torch.randn(3, 6, 16)
    assert torch.equal(looked(x), x + looked.weight[2:8])
