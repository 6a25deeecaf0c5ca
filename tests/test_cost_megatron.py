"""Megatron-style tensor and sequence parallelism and recomputation (archviz.core.cost_layout),
reconciled with Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", Table 2, and with autograd's record of a bf16 GPT block (tests/saved_oracle.py)."""

from __future__ import annotations

import pytest

import archviz
from archviz.core.analysis import analyze
from archviz.core.cost import Settings, saved_bytes
from archviz.core.cost_layout import Recompute
from archviz.core.cost_states import Precision
from archviz.core.devices import Dtype


def gpt(s: int, h: int, a: int, layers: int = 2, p: float = 0.1) -> archviz.Spec:
    """GPT blocks as Megatron runs them: pre-layernorm, eager attention with dropout on the
    probabilities, dropout after the attention projection and after the MLP."""
    return archviz.loads(f"""
name: gptblocks
input: [{s}, {h}]
blocks:
  layer:
    layers:
      - {{name: ln1, op: layernorm}}
      - {{name: attn, op: attention, heads: {a}, causal: true, dropout: {p}}}
      - {{name: drop1, op: dropout, p: {p}}}
      - {{name: add1, op: add, from: [$in, drop1]}}
      - {{name: ln2, op: layernorm}}
      - {{name: fc1, op: linear, out: {4 * h}}}
      - {{name: gelu, op: gelu}}
      - {{name: fc2, op: linear, out: {h}}}
      - {{name: drop2, op: dropout, p: {p}}}
      - {{name: add2, op: add, from: [add1, drop2]}}
layers:
  - {{name: h, block: layer, repeat: {layers}}}
""")


S, H, A, B = 2048, 12288, 96, 1     # gpt3-175b's sizes (Brown et al. 2020, Table 2.1), t = 8


def _layer(t: int, sp: bool, rc: Recompute, device: str = "cuda") -> int:
    a = analyze(gpt(S, H, A))
    got = saved_bytes(a, Settings(batch=B, dtype=Dtype.bf16, precision=Precision.mixed, torch_device=device,
                                  tp=t, sp=sp, recompute=rc))
    return sum(v for k, v in got.items() if k.startswith("h.1."))   # one transformer layer


# Table 2's rows: bytes of activations per layer (16-bit activations, 1-byte dropout masks)
ROWS = [
    (1, False, Recompute.none, S * B * H * (34 + 5 * A * S / H)),
    (8, False, Recompute.none, S * B * H * (10 + 24 / 8 + 5 * A * S / (H * 8))),
    (8, True, Recompute.none, S * B * H / 8 * (34 + 5 * A * S / H)),
    (8, False, Recompute.selective, S * B * H * (10 + 24 / 8)),
    (8, True, Recompute.selective, S * B * H * 34 / 8),
    (1, False, Recompute.full, 2 * S * B * H),
]


@pytest.mark.parametrize(("t", "sp", "rc", "table"), ROWS)
def test_a_gpt3_layer_equals_korthikanti_table_2(t: int, sp: bool, rc: Recompute, table: float) -> None:
    got = _layer(t, sp, rc)
    # the one term Table 2 leaves out: the two layernorms' fp32 mean and rstd (CUDA's layer_norm
    # keeps its statistics in fp32), 2 × 2 × 4 bytes per token, split like the layernorms
    stats = 0 if rc is Recompute.full else 16 * S * B // (t if sp else 1)
    assert got == table + stats
    assert abs(got / table - 1) < 2e-4      # the issue asks 1 %


def test_the_table_2_terms_by_layer() -> None:
    """34 sbh + 5 as²b, term by term: attention 10 sbh (its input 2, q and kᵀ 4, v 2, the heads'
    output 2) + 5 as²b (probabilities 2, mask 1, dropped 2); the dropout masks after attention
    and the MLP 1 sbh each; the MLP 2 (fc1's input) + 8 (GELU's input) + 8 (fc2's input); the
    layernorms' inputs 2 sbh each."""
    a = analyze(gpt(S, H, A))
    got = saved_bytes(a, Settings(batch=1, dtype=Dtype.bf16, precision=Precision.mixed, torch_device="cuda"))
    sbh, as2b = S * H, A * S * S
    assert got["h.1.attn"] == 10 * sbh + 5 * as2b
    assert got["h.1.drop1"] == got["h.1.drop2"] == sbh
    assert (got["h.1.fc1"], got["h.1.gelu"], got["h.1.fc2"]) == (2 * sbh, 8 * sbh, 8 * sbh)
    assert got["h.1.ln1"] == got["h.1.ln2"] == 2 * sbh + 8 * S


def test_a_small_gpt_block_equals_autograd_on_a_bf16_model() -> None:
    torch = pytest.importorskip("torch")
    from saved_oracle import measure_module

    from archviz.ops.lowering import Lowering
    from archviz.runtime.compile import compile_graph
    from archviz.runtime.inputs import example_input

    a = analyze(gpt(16, 32, 4))
    torch.manual_seed(0)
    model = compile_graph(a.graph, a, lowering=Lowering()).to(torch.bfloat16)
    x = example_input(a.input, a.input_dtype, batch=2, random=True).to(torch.bfloat16)
    measured = measure_module(model, [s.name for s in a.layers], x, "fp32")
    predicted = saved_bytes(a, Settings(batch=2, dtype=Dtype.bf16, precision=Precision.mixed,
                                        torch_device="cpu"))
    assert predicted == measured.per_layer


def test_tensor_parallel_parameters_and_pipeline_stages() -> None:
    sp = gpt(64, 32, 4, layers=4)
    a = analyze(sp)
    one = archviz.cost(sp, "h100", batch=2, precision="mixed", optimizer="adam")
    tp2 = archviz.cost(sp, "h100", gpus=2, tp=2, batch=2, precision="mixed", optimizer="adam")
    ln = 4 * 2 * 2 * 32             # four layers' two layernorms: weight and bias, replicated
    n = sum(st.params for st in a.layers)
    assert one.per_gpu[0].params == 2 * n
    assert tp2.per_gpu[0].params == 2 * ((n - ln) // 2 + ln)
    pp2 = archviz.cost(sp, "h100", gpus=2, tp=1, pp=2, batch=2, precision="mixed", optimizer="adam")
    assert pp2.per_gpu[0].params == one.per_gpu[0].params // 2   # two of the four layers
