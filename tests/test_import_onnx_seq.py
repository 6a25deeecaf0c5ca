"""Issue 22: the attention-era ops written by torch.onnx (the dynamo exporter, opset 20, as
``archviz export --format onnx``) and imported back by ``from_onnx``: the spec's ops, and
``round_trip`` against onnxruntime (outputs within 1e-5, parameters equal to the file's, the
compiled spec's FLOPs twice the analysis' MACs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import archviz

pytest.importorskip("onnxruntime")
from archviz.runtime.export import onnx_available, to_onnx  # noqa: E402
from archviz.runtime.onnx_import import from_onnx, round_trip  # noqa: E402

pytestmark = pytest.mark.skipif(not onnx_available(), reason="torch.onnx needs onnx and onnxscript")

FC = "{name: fc, op: linear, out: 16}"

# case → (input, its layers after a linear on (8, 16), the ops the import must give back); attention
# has tests of its own below
CASES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "rmsnorm": ("[8, 16]", ("{name: n, op: rmsnorm, eps: 0.001}",), ("linear", "rmsnorm")),
    "rmsnorm_plain": ("[8, 16]", ("{name: n, op: rmsnorm, affine: false}",), ("linear", "rmsnorm")),
    "gelu": ("[8, 16]", ("{name: g, op: gelu}",), ("linear", "gelu")),
    "gelu_tanh": ("[8, 16]", ("{name: g, op: gelu, approximate: tanh}",), ("linear", "gelu")),
    "silu": ("[8, 16]", ("{name: s, op: silu}",), ("linear", "silu")),
    "gated_mlp": ("[8, 16]", ("{name: m, op: gated_mlp, hidden: 24}",), ("linear", "gated_mlp")),
    "gated_mlp_gelu": ("[8, 16]", ("{name: m, op: gated_mlp, hidden: 24, act: gelu_tanh, bias: true}",),
                       ("linear", "gated_mlp")),
    "pos_embedding": ("[8, 16]", ("{name: p, op: pos_embedding}",), ("linear", "pos_embedding")),
    # the fixed table is a constant in the file: read as sinusoidal by its values, no parameters
    "pos_sinusoidal": ("[8, 16]", ("{name: p, op: pos_embedding, kind: sinusoidal}",),
                       ("linear", "pos_embedding")),
    "cls_token": ("[8, 16]", ("{name: c, op: cls_token}",), ("linear", "cls_token")),
    "softmax_dim0": ("[8, 16]", ("{name: s, op: softmax, dim: 0}",), ("linear", "softmax")),
    "pad": ("[8, 16]", ("{name: p, op: pad, pad: [1, 2, 0, 3]}",), ("linear", "pad")),
    # roll comes back as what ONNX writes: two slices and their concatenation
    "roll": ("[8, 16]", ("{name: r, op: roll, shifts: [2], dims: [0]}",),
             ("linear", "narrow", "narrow", "concat")),
    "matmul": ("[8, 16]", ("{name: t, op: transpose, dim0: 0, dim1: 1}",
                           "{name: mm, op: matmul, from: [fc, t]}"), ("linear", "permute", "matmul")),
    "mul_broadcast": ("[8, 16]", ("{name: m, op: mean, dims: [1], keepdim: true}",
                                  "{name: x, op: mul, from: [fc, m]}"), ("linear", "mean", "mul")),
    "add_broadcast": ("[8, 16]", ("{name: m, op: mean, dims: [1], keepdim: true}",
                                  "{name: x, op: add, from: [fc, m]}"), ("linear", "mean", "add")),
    # the patch embedding comes back as its conv, flatten and transpose
    "patch_embed": ("[3, 8, 8]", ("{name: p, op: patch_embed, patch: 4, dim: 16}",),
                    ("conv", "flatten", "permute")),
}


def _spec(shape: str, layers: tuple[str, ...]) -> archviz.Spec:
    first = () if shape == "[3, 8, 8]" else (FC,)
    text = f"name: t\ninput: {shape}\nlayers:\n" + "".join(f"  - {la}\n" for la in (*first, *layers))
    return archviz.loads(text, "t.yaml")


SLOW = {"gelu_tanh", "rmsnorm_plain", "add_broadcast", "gated_mlp_gelu"}   # variants (~8 s each)


@pytest.mark.parametrize("case", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in CASES])
def test_op_round_trips_through_onnx(tmp_path: Path, case: str) -> None:
    shape, layers, want = CASES[case]
    spec = _spec(shape, layers)
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(to_onnx(spec))
    imported = from_onnx(path)
    assert tuple(la.op for la in imported.spec.layers) == want, imported.text
    rt = round_trip(imported)
    assert rt.ok, rt
    assert rt.params == archviz.analyze(spec).totals.params   # the original spec's parameters
    mine = {la.op: la for la in spec.layers}
    for la in imported.spec.layers:   # settings as written (layers of the original's ops)
        if la.op in mine and la.op not in ("linear", "permute"):
            assert la.params == mine[la.op].params, (la, mine[la.op])


@pytest.mark.parametrize(("layer", "settings"), [
    ("{name: attn, op: attention, heads: 4}", {"heads": 4}),
    ("{name: attn, op: attention, heads: 2, causal: true, bias: false}",
     {"heads": 2, "causal": True, "bias": False}),
    ("{name: attn, op: attention, heads: 4, kv_heads: 2}", {"heads": 4, "kv_heads": 2}),
    ("{name: attn, op: attention, heads: 2, head_dim: 4, out_bias: false}",
     {"heads": 2, "head_dim": 4, "out_bias": False}),
])
def test_archviz_attention_is_one_layer_with_its_heads(tmp_path: Path, layer: str, settings: dict) -> None:
    spec = _spec("[8, 16]", (layer,))
    path = tmp_path / "attn.onnx"
    path.write_bytes(to_onnx(spec))
    imported = from_onnx(path)
    attn = [la for la in imported.spec.layers if la.op == "attention"]
    assert len(attn) == 1, imported.text
    p = attn[0].params
    assert {k: getattr(p, k) for k in settings} == settings
    assert archviz.analyze(imported.spec).totals.macs == archviz.analyze(spec).totals.macs
    assert round_trip(imported).ok


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_is_one_layer(tmp_path: Path, causal: bool) -> None:
    """nn.MultiheadAttention: its packed in_proj (one MatMul split by Gather), √ of the scale on
    q and k, the causal mask as an Add of -inf: one attention layer, weights and outputs equal."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
            nn.init.normal_(self.attn.in_proj_bias)
            nn.init.normal_(self.attn.out_proj.bias)   # nonzero: the exporter keeps it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.ones(8, 8, dtype=torch.bool).triu(1) if causal else None
            return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    model = Block().eval()
    path = tmp_path / "mha.onnx"
    torch.onnx.export(model, (torch.randn(2, 8, 16),), str(path), input_names=["input"], dynamo=True,
                      external_data=False, verbose=False)
    imported = from_onnx(path)
    (layer,) = imported.spec.layers
    assert (layer.op, layer.params.heads, layer.params.causal) == ("attention", 4, causal), imported.text
    rt = round_trip(imported)
    assert rt.ok, rt
    assert rt.params == sum(p.numel() for p in model.parameters())


def test_sinusoidal_table_is_recognised_by_its_values() -> None:
    """The check against archviz's module's own table (torch, float64 rounded to float32): equal
    (an odd width too); not for rows from another start, a perturbed entry or a random table."""
    import numpy as np

    from archviz.ops.position import is_sinusoidal
    from archviz.runtime.layers import PosEmbedding

    for s, d in ((8, 16), (1, 2), (50, 64), (8, 15)):
        table = PosEmbedding.sinusoids(s, d).numpy()
        assert is_sinusoidal(table), (s, d)
        bumped = table.copy()
        bumped[-1, -1] += 1e-5
        assert not is_sinusoidal(bumped)
    assert not is_sinusoidal(PosEmbedding.sinusoids(9, 16).numpy()[1:])
    assert not is_sinusoidal(np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32))


@pytest.mark.parametrize(("layer", "settings"), [
    ("{name: attn, op: attention, heads: 4, kv_heads: 2, rope: true}",
     {"heads": 4, "kv_heads": 2, "rope": True, "rope_theta": 10000.0}),
    ("{name: attn, op: attention, heads: 2, causal: true, bias: false, rope: true, rope_theta: 500000}",
     {"heads": 2, "causal": True, "bias": False, "rope": True, "rope_theta": 500000.0}),
])
def test_rotary_attention_is_one_layer(tmp_path: Path, layer: str, settings: dict) -> None:
    """RoPE's rotate-half step on q and k (Slice, Neg, Concat, Mul by the cos and sin tables, Add)
    is read into the attention layer, θ read off the tables; weights and outputs equal."""
    spec = _spec("[8, 32]", (layer,))
    path = tmp_path / "rope.onnx"
    path.write_bytes(to_onnx(spec))
    imported = from_onnx(path)
    attn = [la for la in imported.spec.layers if la.op == "attention"]
    assert len(attn) == 1, imported.text
    assert {k: getattr(attn[0].params, k) for k in settings} == settings
    assert archviz.analyze(imported.spec).totals.macs == archviz.analyze(spec).totals.macs
    rt = round_trip(imported)
    assert rt.ok, rt
    assert rt.params == archviz.analyze(spec).totals.params


def test_rotary_tables_that_are_not_archviz_s_are_refused(tmp_path: Path) -> None:
    """Tables of RoPE with positions scaled by 2 (linear rope_scaling): no θ gives them, so the
    attention pattern does not take the nodes, which are left to their own ops."""
    import torch

    from archviz.runtime.mapping import ImportFailed

    spec = _spec("[8, 32]", ("{name: attn, op: attention, heads: 4, rope: true}",))
    model = archviz.to_module(spec).eval()
    attn = next(m for m in model.modules() if hasattr(m, "rope_tables"))
    cos, sin = attn.rope_tables(16, attn.cos.shape[-1], 10000.0)
    attn.cos, attn.sin = cos[::2].contiguous(), sin[::2].contiguous()   # positions 0, 2, 4, …
    path = tmp_path / "scaled.onnx"
    torch.onnx.export(model, (torch.randn(2, 8, 32),), str(path), input_names=["input"], dynamo=True,
                      external_data=False, verbose=False)
    with pytest.raises(ImportFailed, match="ONNX (Mul|Neg|Slice|Concat)"):
        from_onnx(path)


def _legacy(model: object, path: Path) -> None:
    """torch.onnx's TorchScript-based exporter (dynamo=False) at opset 17: GELU written out with
    Erf or Tanh, Constant nodes, a Dropout node kept in attention."""
    import logging
    import warnings

    import torch

    logger = logging.getLogger("torch.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level, _ = logger.level, logger.setLevel(logging.ERROR)
        torch.onnx.export(model, (torch.randn(2, 8, 16),), str(path), input_names=["input"], dynamo=False,
                          opset_version=17)
        logger.setLevel(level)


def _imports_as(path: Path, spec: archviz.Spec, want: dict) -> None:
    """``path`` (``spec`` exported) imports as the first layer and one layer ``want`` says,
    whose round trip matches the file with the spec's parameter count."""
    imported = from_onnx(path)
    last = imported.spec.layers[-1]
    assert len(imported.spec.layers) == 2, imported.text
    assert {"op": last.op} | {k: getattr(last.params, k) for k in want if k != "op"} == want
    rt = round_trip(imported)
    assert rt.ok, rt
    assert rt.params == archviz.analyze(spec).totals.params


@pytest.mark.parametrize(("layer", "want"), [
    ("{name: g, op: gelu}", {"op": "gelu", "approximate": "none"}),
    ("{name: g, op: gelu, approximate: tanh}", {"op": "gelu", "approximate": "tanh"}),
    ("{name: attn, op: attention, heads: 4, causal: true}", {"op": "attention", "heads": 4, "causal": True}),
    pytest.param("{name: attn, op: attention, heads: 4, rope: true, rope_theta: 1000}",
                 {"op": "attention", "heads": 4, "rope": True, "rope_theta": 1000.0}, marks=pytest.mark.slow),
])
def test_torchscript_exporter_opset_17(tmp_path: Path, layer: str, want: dict) -> None:
    """GELU's Erf and Tanh formulas (recognised by evaluating the written-out function), and the
    attention pattern with the exporter's Dropout node in it."""
    spec = _spec("[8, 16]", (layer,))
    path = tmp_path / "legacy.onnx"
    _legacy(archviz.to_module(spec).eval(), path)
    _imports_as(path, spec, want)


def test_an_erf_function_that_is_not_gelu_stays_unmapped(tmp_path: Path) -> None:
    """x·erf(x) has GELU's nodes but not its values: not read as gelu."""
    import torch
    from torch import nn

    from archviz.runtime.mapping import ImportFailed

    class NotGelu(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x * (1 + torch.erf(x / 1.5))

    path = tmp_path / "erf.onnx"
    _legacy(NotGelu(), path)
    with pytest.raises(ImportFailed, match="ONNX (Mul|Div|Erf)"):
        from_onnx(path)


def test_cli_import_verify_of_attention(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archviz.cli.app import app

    path = tmp_path / "attn.onnx"
    path.write_bytes(to_onnx(_spec("[8, 16]", ("{name: attn, op: attention, heads: 4, causal: true}",))))
    out = tmp_path / "attn.yaml"
    r = CliRunner().invoke(app, ["import", str(path), "-o", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "round trip ok against onnxruntime" in r.output.replace("\n", " ")
    assert "op: attention, heads: 4, causal: true" in out.read_text()


def test_tied_weights_come_back_tied(tmp_path: Path) -> None:
    """The exporter writes a tied weight twice (the Gather's table, and its transpose for the
    MatMul): the linear comes back with ``tie:`` the embedding, the matrix counted once."""
    text = ("name: t\ninput: [8]\ninput_dtype: int64\nlayers:\n"
            "  - {name: wte, op: embedding, vocab: 32, dim: 16}\n  - {name: n, op: layernorm}\n"
            "  - {name: lm_head, op: linear, out: 32, bias: false, tie: wte}\n")
    spec = archviz.loads(text, "t.yaml")
    path = tmp_path / "tied.onnx"
    path.write_bytes(to_onnx(spec))
    imported = from_onnx(path)
    emb, _, head = imported.spec.layers
    assert (emb.op, head.op, head.tie) == ("embedding", "linear", emb.name), imported.text
    rt = round_trip(imported)
    assert rt.ok, rt
    assert rt.params == archviz.analyze(spec).totals.params == 32 * 16 + 2 * 16


@pytest.mark.parametrize(("layer", "want"), [
    ("{name: attn, op: attention, heads: 4, kv_heads: 2, causal: true, lowering: sdpa}",
     {"op": "attention", "heads": 4, "kv_heads": 2, "causal": True}),
    ("{name: attn, op: attention, heads: 4, kv_heads: 2, causal: true, rope: true, lowering: sdpa}",
     {"op": "attention", "heads": 4, "kv_heads": 2, "causal": True, "rope": True}),
    ("{name: n, op: rmsnorm}", {"op": "rmsnorm", "eps": None, "affine": True}),
])
def test_opset_23_attention_and_rmsnormalization_nodes(tmp_path: Path, layer: str, want: dict) -> None:
    """At opset 23 torch.onnx writes SDPA as ONNX's ``Attention`` node and RMSNorm as
    ``RMSNormalization``: read back as attention (around its projections) and rmsnorm."""
    import logging
    import warnings

    import onnx
    import torch

    spec = _spec("[8, 16]", (layer,))
    path = tmp_path / "o23.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(archviz.to_module(spec).eval(), (torch.randn(2, 8, 16),), str(path),
                          input_names=["input"], dynamo=True, opset_version=23, external_data=False,
                          verbose=False)
    nodes = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert nodes & {"Attention", "RMSNormalization"}, nodes
    _imports_as(path, spec, want)
