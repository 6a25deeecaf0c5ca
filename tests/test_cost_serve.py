"""Serving (``archviz cost --mode infer``): the KV cache against the published layouts' arithmetic
and against a real cache's tensors; the decode step's memory-bound roofline by hand."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.cli.choices import Dtype
from archviz.cli.choices import StepMode as Mode
from archviz.cli.common import load_analysis
from archviz.core.cost_states import usable
from archviz.runtime.costing import compute

runner = CliRunner()


def _serve(spec: str, dtype: Dtype, **kw: object):  # noqa: ANN202
    c, _ = compute(load_analysis(spec), kw.pop("device", "h100"), mode=Mode.infer, dtype=dtype, **kw)  # type: ignore[arg-type]
    assert c.serving is not None
    return c


def test_kv_bytes_per_token_llama3_8b_and_gpt2() -> None:
    # Llama 3 8B: 8 KV heads × 128 × 32 layers × (K, V) × 2 bytes; GPT-2: 12 heads × 64 × 12 × 2 × 2
    llama = _serve("llama3-8b", Dtype.bf16, batch=1, seq=16).serving
    assert llama.kv_bytes_per_token == 8 * 128 * 32 * 2 * 2 == 131_072
    gpt2 = _serve("gpt2", Dtype.fp16, batch=1, seq=16).serving
    assert gpt2.kv_bytes_per_token == 12 * 64 * 12 * 2 * 2 == 36_864


def test_kv_cache_against_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    batch, context = 3, 40
    c = _serve("gpt2", Dtype.fp16, batch=batch, seq=8, context=context)
    # the cache GPT-2's attention keeps: per layer K and V of (batch, heads, context, head_dim)
    cache = [torch.empty(batch, 12, context, 64, dtype=torch.float16) for _ in range(12 * 2)]
    assert c.per_gpu[0].kv_cache == c.serving.kv_cache == sum(t.nbytes for t in cache)


def _llama_cache_bytes(batch: int, tokens: int) -> int:
    """The bytes of a Hugging Face ``LlamaModel``'s ``past_key_values`` with Llama 3 8B's cache
    layout (32 layers, 32 heads, 8 KV heads of 128) and a tiny residual stream, in bf16."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=16, hidden_size=64, intermediate_size=64, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=8, head_dim=128)
    model = transformers.LlamaModel(cfg).to(torch.bfloat16).eval()
    with torch.no_grad():
        out = model(torch.zeros(batch, tokens, dtype=torch.long), use_cache=True)
    kv = out.past_key_values
    return sum(kv[i][0].nbytes + kv[i][1].nbytes for i in range(len(kv)))


def test_kv_cache_against_transformers_llama_gqa() -> None:
    batch, tokens = 2, 5
    nbytes = _llama_cache_bytes(batch, tokens)
    c = _serve("llama3-8b", Dtype.bf16, batch=batch, seq=tokens)
    assert c.serving.kv_cache == nbytes


def test_largest_batch_counts_the_kv_cache() -> None:
    """At the reported largest batch B, weights + KV cache at B + the activation peak fit (with the
    CUDA context and the allocator's reserve); at B + 1 they do not. The cache's bytes a token are
    a real Hugging Face cache's."""
    per_token = _llama_cache_bytes(1, 3) // 3
    context = 8192
    c = _serve("llama3-8b", Dtype.bf16, batch=1, seq=128, context=context)
    assert c.serving.kv_bytes_per_token == per_token
    b = c.largest_batch
    assert b is not None and b > 1
    cap = c.capacity
    at_b, over = (_serve("llama3-8b", Dtype.bf16, batch=n, seq=128, context=context) for n in (b, b + 1))
    for x, n in ((at_b, b), (over, b + 1)):
        m = x.per_gpu[0]
        assert m.kv_cache == per_token * context * n
        assert x.peak == m.params + m.kv_cache + m.transient + m.buffers + m.input
        assert x.largest_batch == b
    assert at_b.fits and at_b.peak + at_b.kept <= cap
    assert not over.fits and over.peak + over.kept > cap
    # the activations alone would have let more sequences in: the cache is what bounds it
    m = c.per_gpu[0]
    alone = (usable(cap, True) - m.params) // (m.transient + m.input)
    assert b < alone // 4


def test_tensor_parallel_splits_kv_heads() -> None:
    one = _serve("llama3-8b", Dtype.bf16, batch=1, seq=16)
    two = _serve("llama3-8b", Dtype.bf16, batch=1, seq=16, gpus=2, tp=2)
    assert two.serving.kv_bytes_per_token * 2 == one.serving.kv_bytes_per_token


def test_decode_roofline_by_hand() -> None:
    c = _serve("llama3-8b", Dtype.bf16, batch=1, seq=128, context=4096)
    weights = 8_030_261_248 * 2                      # the spec's parameter count, bf16
    kv = 131_072 * 4096
    assert c.serving.weights == c.per_gpu[0].params == weights
    bw = c.target.bandwidth_gbs * 1e9
    assert c.serving.decode_ms == pytest.approx((weights + kv) / bw * 1e3)
    assert c.serving.prefill_ms == c.time.step_ms
    cap = int(c.target.memory_gib * 2**30)
    assert c.serving.tokens_fit * 131_072 < cap - weights          # the cache beside the weights
    assert c.peak == weights + kv + c.per_gpu[0].transient + c.per_gpu[0].input


def test_cli_serving_json_and_errors() -> None:
    r = runner.invoke(app, ["cost", "gpt2", "--mode", "infer", "--dtype", "fp16", "--batch", "2",
                            "--seq", "64", "--context", "1024", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["per_gpu"][0]["kv_cache"] == 36_864 * 1024 * 2 == d["serving"]["kv_cache"]
    r = runner.invoke(app, ["cost", "gpt2", "--mode", "infer", "--seq", "64", "--context", "1024"])
    assert r.exit_code == 0 and "KV cache" in r.output
    for args in (["alexnet", "--seq", "12"], ["gpt2", "--seq", "12", "--input", "12"],
                 ["gpt2", "--mode", "infer", "--seq", "64", "--context", "32"], ["gpt2", "--context", "64"]):
        r = runner.invoke(app, ["cost", *args])
        assert r.exit_code == 2, (args, r.output)


def test_api_serving() -> None:
    import archviz

    d = archviz.cost("gpt2", "h100", mode="infer", dtype="fp16", batch=1, seq=32, context=256).to_dict()
    assert d["serving"]["kv_cache"] == 36_864 * 256


def test_infer_table_says_which_phase_sets_the_peak_and_what_it_holds() -> None:
    from dataclasses import replace

    from archviz.render.cost_view import peak_line

    r = runner.invoke(app, ["cost", "gpt2", "--mode", "infer", "--dtype", "bf16", "--seq", "64", "--context",
                            "1024", "--batch", "2"], terminal_width=200)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())                     # the table's lines, unwrapped
    line = text[text.index("the peak:"):text.index(" step ≥")]
    assert line.startswith("the peak: in the prefill of 64 tokens, holding weights 0.23 GiB"
                           " + KV cache 0.07 GiB")
    assert "+ activations" in line and "(loss)" not in line and "grads" not in line
    c = _serve("gpt2", Dtype.bf16, batch=2, seq=64, context=1024)
    m = c.per_gpu[0]
    decode = replace(c, per_gpu=(replace(m, phase="decode"),))
    assert peak_line(decode).startswith("the peak: in a decode step with the cache full (1,024 tokens)")
    r = runner.invoke(app, ["cost", "alexnet", "--device", "gtx580", "--gpus", "1"], terminal_width=200)
    assert "the peak: in the backward step's norm2 (grads: made by then;" in " ".join(r.output.split())
