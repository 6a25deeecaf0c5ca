"""Import of the encoders of transformers: Hugging Face's ``BertModel`` and ``ViTModel`` (built from
small configs, random weights, never downloaded) and torchvision's ``vit_b_16``, each with its
several outputs (last_hidden_state and pooler_output) kept. The oracles: the source model's own
outputs and parameters, and FlopCounterMode on the source run with eager attention."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archviz
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
from archviz.runtime.importer import from_module, load_weights, round_trip
from archviz.runtime.mapping import count_flops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import measure  # noqa: E402

try:
    import transformers
except ImportError:   # torchvision's test below runs without it
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers is not installed")


def _bert(impl: str, dropout: float = 0.1) -> nn.Module:
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=32,
                                  hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout / 2,
                                  attn_implementation=impl)
    torch.manual_seed(0)
    return transformers.BertModel(cfg)


def _vit(impl: str) -> nn.Module:
    cfg = transformers.ViTConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                 intermediate_size=128, image_size=32, patch_size=8,
                                 attention_probs_dropout_prob=0.05, attn_implementation=impl)
    torch.manual_seed(0)
    return transformers.ViTModel(cfg)


def _outputs_equal(model: nn.Module, imported: archviz.runtime.importer.Imported, x: torch.Tensor) -> None:
    """Every output of the compiled spec equals the model's (last_hidden_state, pooler_output)."""
    compiled = load_weights(archviz.to_module(imported.spec), model.state_dict(), imported.name_map,
                            imported.transpose).eval()
    with torch.no_grad():
        want = model.eval()(x)
        got = compiled(x)
    assert isinstance(got, tuple) and len(got) == 2
    assert torch.allclose(got[0], want.last_hidden_state, atol=1e-5, rtol=0)
    assert torch.allclose(got[1], want.pooler_output, atol=1e-5, rtol=0)
    assert got[1].abs().max() > 0.01       # a real result, not zeros


def ops_of(imported: archviz.runtime.importer.Imported) -> set[str]:
    return {la.op for la in imported.spec.layers}


def _eager_macs(model: nn.Module, x: torch.Tensor) -> int:
    return count_flops(model.eval(), x)[1] // 2


@needs_transformers
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_bert_imports_with_token_types_folded_layers_and_both_outputs(impl: str) -> None:
    model = _bert(impl)
    imported = from_module(model, (16,), input_dtype="int64")
    text = imported.text
    assert "repeat: 2" in text and f"lowering: {impl}" in text
    assert "outputs: [encoder.layer.1.output.LayerNorm, pooler.activation]" in text
    analysis = archviz.analyze(imported.spec)
    layers = {s.name: s for s in analysis.layers}
    tte = next(s for s in analysis.layers if s.op == "type_embedding")
    assert (tte.op_params.types, tte.op_params.type, tte.params) == (2, 0, 2 * 64)   # the whole table counted
    assert imported.name_map["embeddings.token_type_embeddings.weight"] == f"{tte.name}.weight"
    attn = layers["encoder.layer.0.attention.self"].op_params
    assert (attn.heads, attn.head_dim, attn.out_proj, attn.dropout, attn.bias) == (4, 16, False, 0.05, True)
    assert layers["encoder.layer.0.attention.output.dropout"].op_params.p == 0.1
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 79_808
    assert not [w for w in analysis.warnings if "never read" in w[1]]
    x = torch.randint(0, 100, (2, 16))
    _outputs_equal(model, imported, x)
    assert analysis.totals.macs == _eager_macs(_bert("eager"), x)
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params
    assert rt.ok and (rt.uncounted_macs > 0) == (impl == "sdpa"), rt   # CPU SDPA: its S×S matmuls unseen


@needs_transformers
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_vit_imports_with_class_token_positions_and_both_outputs(impl: str) -> None:
    model = _vit(impl)
    imported = from_module(model, (3, 32, 32))
    assert "repeat: 3" in imported.text and f"lowering: {impl}" in imported.text
    assert "outputs: [layernorm, pooler.activation]" in imported.text
    analysis = archviz.analyze(imported.spec)
    ops = {s.op: s for s in analysis.layers}
    assert ops["cls_token"].output == (17, 64) and ops["cls_token"].params == 64
    assert ops["pos_embedding"].op_params.length == 17 and ops["pos_embedding"].params == 17 * 64
    assert imported.name_map["embeddings.cls_token"] == f"{ops['cls_token'].name}.weight"
    attn = ops["attention"].op_params
    assert (attn.heads, attn.out_proj, attn.dropout) == (4, False, 0.05)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 3, 32, 32)
    _outputs_equal(model, imported, x)
    assert analysis.totals.macs == _eager_macs(_vit("eager"), x)
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params
    assert rt.ok and (rt.uncounted_macs > 0) == (impl == "sdpa"), rt


@needs_transformers
def test_a_full_bert_base_config_imports_to_the_bundled_count() -> None:
    # the import's count against the source's, full width, one layer (each layer is the same module)
    cfg = transformers.BertConfig(num_hidden_layers=1, attn_implementation="eager")
    model = transformers.BertModel(cfg)
    analysis = archviz.analyze(from_module(model, (8,), input_dtype="int64").spec)
    per_layer = sum(p.numel() for p in model.encoder.layer[0].parameters())
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    # bert-base (12 layers): the bundled spec's and DESIGN.md's 109,482,240
    assert analysis.totals.params + 11 * per_layer == 109_482_240 == archviz.analyze(
        archviz.load("bert-base")).totals.params


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_saved_bytes_of_attention_without_its_output_projection(dtype: str, lowering: str) -> None:
    text = ("name: t\ninput: [10, 16]\nlayers:\n"
            f"  - {{name: attn, op: attention, heads: 4, out_proj: false, lowering: {lowering}}}\n"
            "  - {name: dense, op: linear, out: 16}\n")
    sp = archviz.loads(text, "t.yaml")
    a = archviz.analyze(sp)
    assert a.layers[0].params == 3 * (16 * 16 + 16)               # q, k, v alone
    assert a.layers[0].macs == 3 * 10 * 16 * 16 + 2 * 4 * 10 * 10 * 4
    predicted = saved_bytes(a, Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(sp, 3, dtype)
    for name in ("attn", "dense"):
        assert predicted[name] == measured.per_layer[name], (name, measured.records[name])


def test_torchvision_vit_imports_and_verifies() -> None:
    pytest.importorskip("torchvision")
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                              mlp_dim=128)
    imported = from_module(model, (3, 32, 32))
    # encoder.layers.encoder_layer_0 … renamed encoder.layers.0 …, so that they fold (the weights follow)
    assert "repeat: 2" in imported.text and "encoder_layer_0 → encoder.layers.0" in imported.text
    assert imported.name_map["encoder.layers.encoder_layer_1.self_attention.out_proj.weight"] == \
        "encoder.layers.1.self_attention.out_proj.weight"
    assert ops_of(imported) >= {"cls_token", "pos_embedding", "attention"}
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params, rt
    # nn.MultiheadAttention runs SDPA (imported as such), whose CPU kernel FlopCounterMode does not
    # count: the two S×S matmuls of 2 layers × 4 heads × 17² positions × 16 dims, in source and compiled
    assert rt.uncounted_macs == 2 * 2 * 4 * 17 * 17 * 16 and rt.ok, rt
    assert rt.flops == rt.spec_flops == 2 * (rt.analysis_macs - rt.uncounted_macs)


@pytest.mark.slow
def test_torchvision_vit_b_16_full_size_imports_and_verifies() -> None:
    pytest.importorskip("torchvision")
    from torchvision.models import vit_b_16

    torch.manual_seed(0)
    model = vit_b_16()
    imported = from_module(model, (3, 224, 224))
    assert "repeat: 12" in imported.text
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5 and rt.params == rt.spec_params == rt.analysis_params == 86_567_656, rt
    assert rt.analysis_macs == archviz.analyze(archviz.load("vit-b16")).totals.macs == 17_563_828_224


@needs_transformers
def test_a_model_refusing_its_input_says_so_not_what_fx_failed_at() -> None:
    # BertModel traced by neither fx nor torch.export: the capture runs it, and a wrong input
    # (floats, not token ids; longer than its positions) is the model's refusal with the --input hint
    from archviz.runtime.importer import ImportFailed

    model = _bert("eager")
    for shape, dtype, says in (((16,), "float32", "does not run on input 16: RuntimeError: Expected tensor"),
                               ((64,), "int64", "on input 64 int64: RuntimeError: The expanded size")):
        with pytest.raises(ImportFailed) as err:
            from_module(model, shape, input_dtype=dtype)
        assert says in err.value.message and "torch.fx" not in err.value.message, err.value.message
        assert "--input" in err.value.hint
