"""Decoders whose layers are Llama's but for a sliding window or biases: Hugging Face's Mistral and
Qwen2, built from small configs with random weights (never downloaded); and `archviz import
--verify` of a model running SDPA (transformers' default), whose fused CPU kernel flop_counter does
not count."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.errors import ArchvizError
from archviz.runtime.importer import from_module, round_trip

transformers = pytest.importorskip("transformers")

SMALL = {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def _model(kind: str, impl: str, **kw: object) -> nn.Module:
    import torch

    torch.manual_seed(0)
    config = getattr(transformers, f"{kind}Config")(**SMALL, attn_implementation=impl, **kw)
    return getattr(transformers, f"{kind}ForCausalLM")(config).eval()


@pytest.mark.parametrize(("kind", "impl", "bias"), [("Mistral", "sdpa", False), ("Qwen2", "eager", True)])
def test_mistral_and_qwen2_import_as_llama_and_round_trip(kind: str, impl: str, bias: bool) -> None:
    model = _model(kind, impl, sliding_window=16)          # a window holding the whole sequence (S = 8)
    imported = from_module(model, (8,), input_dtype="int64")
    ops = [la.op for la in archviz.analyze(imported.spec).layers]
    assert ops.count("attention") == ops.count("gated_mlp") == 2 and ops.count("rmsnorm") == 5
    p = next(la.op_params for la in archviz.analyze(imported.spec).layers if la.op == "attention")
    # Qwen2: biases on q, k and v, none on o (its o_proj is built with bias=False)
    assert (p.heads, p.kv_heads, p.head_dim, p.causal, p.rope, p.bias, p.out_bias) == \
        (4, 2, 16, True, True, bias, False if bias else None)
    rt = round_trip(model, imported)
    assert rt.params == rt.spec_params == rt.analysis_params == sum(q.numel() for q in model.parameters())
    assert rt.max_abs_diff <= 1e-5 and rt.ok, rt
    assert rt.uncounted_macs == (2 * 2 * 4 * 8 * 8 * 16 if impl == "sdpa" else 0)


def test_a_sliding_window_shorter_than_the_sequence_is_refused() -> None:
    model = _model("Mistral", "eager", sliding_window=4)
    with pytest.raises(ArchvizError, match="sliding window of 4 positions over S = 8"):
        from_module(model, (8,), input_dtype="int64")


def test_cli_verify_of_an_sdpa_model_writes_the_spec(tmp_path: Path) -> None:
    src = tmp_path / "hf.py"
    src.write_text("import transformers\n\n\ndef make():\n"
                   f"    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**{SMALL!r}))\n")
    out = tmp_path / "llama.yaml"
    r = CliRunner().invoke(app, ["import", f"{src}:make", "--input", "8", "--input-dtype", "int64", "-o",
                                 str(out), "--verify"])
    assert r.exit_code == 0, r.output
    unseen = 2 * 2 * 4 * 8 * 8 * 16   # two layers' QKᵀ and ·V: 2·H·S²·hd MACs each
    assert "round trip ok" in r.output and f"({unseen:,} of them in fused SDPA kernels" in r.output
    assert "lowering: sdpa" in out.read_text()


@pytest.mark.parametrize("norm", ["t5.modeling_t5.T5LayerNorm", "phi3.modeling_phi3.Phi3RMSNorm"])
def test_t5_and_phi3_norms_import_as_rmsnorm(norm: str) -> None:
    import importlib

    import torch

    module, name = norm.rsplit(".", 1)
    cls = getattr(importlib.import_module(f"transformers.models.{module}"), name)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), cls(32, eps=1e-3), nn.Linear(32, 8)).eval()
    with torch.no_grad():
        model[1].weight.normal_()                          # not all ones: γ is loaded and applied
    imported = from_module(model, (5, 16))
    layer = imported.spec.layers[1]
    assert (layer.op, layer.params.normalized, layer.params.eps) == ("rmsnorm", (32,), 1e-3)
    rt = round_trip(model, imported)
    assert rt.ok and rt.max_abs_diff <= 1e-6 and rt.params == 16 * 32 + 32 + 32 + 32 * 8 + 8, rt
