"""Where a transformer's tokens are (issue 22): ``pos_embedding``, ``cls_token``, ``patch_embed``
and tied weights (``tie:``), each against torch: shapes and parameters against reference modules,
the saved-for-backward rule against autograd's record (fp32 and bf16), a tiny GPT-2 whose
lm_head is tied to wte counted as torch counts it, and a ViT front end equal to a hand-written
one after loading its weights."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archviz
from archviz.core.cost import Settings, estimate, target
from archviz.runtime.export import to_python
from archviz.runtime.importer import from_module, round_trip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import saves_as_predicted  # noqa: E402
from spec_text import spec_of as _spec  # noqa: E402


def _col(layer: str, value: str) -> int:
    """The column of ``value`` in a layer written by :func:`_spec` (after "  - ")."""
    return 5 + layer.index(value)


def _error(sp: archviz.Spec) -> str:
    with pytest.raises(archviz.ShapeError) as exc:
        archviz.analyze(sp)
    return str(exc.value).splitlines()[0]


# ---- pos_embedding ---------------------------------------------------------------------------------

def test_learned_pos_embedding_adds_its_rows() -> None:
    sp = _spec("[12, 8]", "{name: wpe, op: pos_embedding, length: 20, start: 5}")
    (s,) = archviz.analyze(sp).layers
    assert (s.output, s.params, s.buffers, s.macs) == ((12, 8), 20 * 8, 0, 0)
    assert s.formula == "+ rows 5…16 of the 20×8 learned table"
    model = archviz.to_module(sp)
    assert isinstance(model.wpe.weight, nn.Parameter) and model.wpe.weight.shape == (20, 8)
    ref = nn.Embedding(20, 8)                       # GPT-2's wpe: an Embedding of arange positions
    model.load_state_dict({"wpe.weight": ref.weight.detach()})
    x = torch.randn(3, 12, 8)
    assert torch.equal(model(x), x + ref(torch.arange(5, 17)))


def test_pos_embedding_length_defaults_to_the_input_and_gpt2_counts() -> None:
    (s,) = archviz.analyze(_spec("[16, 32]", "{name: wpe, op: pos_embedding}")).layers
    assert s.params == 16 * 32
    (s,) = archviz.analyze(_spec("[1024, 768]", "{name: wpe, op: pos_embedding, length: 1024}")).layers
    assert s.params == sum(p.numel() for p in nn.Embedding(1024, 768).parameters()) == 786_432


def test_sinusoidal_table_is_vaswani_et_al() -> None:
    sp = _spec("[10, 6]", "{name: pe, op: pos_embedding, kind: sinusoidal, length: 50}")
    (s,) = archviz.analyze(sp).layers
    assert (s.params, s.buffers) == (0, 50 * 6)
    model = archviz.to_module(sp)
    table = model.pe.weight
    assert not isinstance(table, nn.Parameter) and "pe.weight" in model.state_dict()
    d = 6
    for pos in (0, 1, 7, 49):        # PE(pos, 2i) = sin(pos/10000^(2i/d)), PE(pos, 2i+1) = cos(...)
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    x = torch.randn(2, 10, 6)
    assert torch.equal(model(x), x + table[:10])
    odd = archviz.to_module(_spec("[4, 5]", "{name: pe, op: pos_embedding, kind: sinusoidal}"))
    assert odd.pe.weight.shape == (4, 5)


def test_pos_embedding_refuses_a_sequence_longer_than_its_table() -> None:
    layer = "{name: wpe, op: pos_embedding, length: 10}"
    msg = _error(_spec("[12, 8]", layer))
    assert msg == (f"t.yaml:4:{_col(layer, '10')}: wpe: positions 0…11 of 12 tokens do not fit a table"
                   " of length 10")
    layer = "{name: wpe, op: pos_embedding, start: 3}"
    msg = _error(_spec("[12, 8]", layer))
    assert msg.startswith(f"t.yaml:4:{_col(layer, '3}')}: wpe: positions 3…14 of 12")
    assert "needs a (S, D) input" in _error(_spec("[3, 8, 8]", "{name: wpe, op: pos_embedding}"))


# ---- cls_token -------------------------------------------------------------------------------------

def test_cls_token_prepends_torchvisions_class_token() -> None:
    sp = _spec("[196, 24]", "{name: class_token, op: cls_token}")
    (s,) = archviz.analyze(sp).layers
    assert (s.output, s.params) == ((197, 24), 24)
    assert s.formula == "1 + 196 = 197 positions: a learned 24-vector first"
    model = archviz.to_module(sp)
    token = torch.randn(1, 1, 24)                   # torchvision vit_b_16's class_token: (1, 1, D)
    model.load_state_dict({"class_token.weight": token})
    x = torch.randn(3, 196, 24)
    assert torch.equal(model(x), torch.cat([token.expand(3, -1, -1), x], dim=1))


# ---- patch_embed -----------------------------------------------------------------------------------

def test_patch_embed_is_vit_b16s_conv_proj() -> None:
    sp = _spec("[3, 224, 224]", "{name: patch, op: patch_embed, patch: 16, dim: 768}")
    (s,) = archviz.analyze(sp).layers
    ref = nn.Conv2d(3, 768, 16, stride=16)
    assert s.output == (196, 768)
    assert s.formula == "(224/16)·(224/16) = 196 patches of 3·16·16 = 768 → 768"
    assert s.params == sum(p.numel() for p in ref.parameters()) == 3 * 16 * 16 * 768 + 768
    assert s.macs == 196 * 3 * 16 * 16 * 768


@pytest.mark.parametrize("bias", [True, False])
def test_patch_embed_equals_conv_flatten_transpose(bias: bool) -> None:
    flag = str(bias).lower()
    sp = _spec("[3, 32, 48]", f"{{name: patch, op: patch_embed, patch: 8, dim: 10, bias: {flag}}}")
    model = archviz.to_module(sp)
    ref = nn.Conv2d(3, 10, 8, stride=8, bias=bias)
    model.patch.proj.load_state_dict(ref.state_dict())
    assert sorted(model.state_dict()) == sorted(f"patch.proj.{k}" for k in ref.state_dict())
    x = torch.randn(2, 3, 32, 48)
    assert torch.equal(model(x), ref(x).flatten(2).transpose(1, 2))
    v = archviz.verify(sp)
    assert v.ok, v


def test_patch_embed_refuses_an_image_that_does_not_divide() -> None:
    layer = "{name: patch, op: patch_embed, patch: 8, dim: 10}"
    msg = _error(_spec("[3, 30, 32]", layer))
    assert msg == f"t.yaml:4:{_col(layer, '8,')}: patch: a 30×32 image does not divide into 8×8 patches"


# ---- saved for backward ----------------------------------------------------------------------------

VIT = ["{name: patch, op: patch_embed, patch: 4, dim: 16}", "{name: cls, op: cls_token}",
       "{name: pos, op: pos_embedding}", "{name: ln, op: layernorm}",
       "{name: pe, op: pos_embedding, kind: sinusoidal, length: 40, start: 2}",
       "{name: fc, op: linear, out: 8}"]
GPT = ["{name: wte, op: embedding, vocab: 50, dim: 16}", "{name: wpe, op: pos_embedding, length: 64}",
       "{name: ln, op: layernorm}", "{name: fc, op: linear, out: 16}",
       "{name: lm_head, op: linear, out: 50, bias: false, tie: wte}"]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize(("input_", "layers", "ids"), [("[3, 16, 16]", VIT, ""), ("[12]", GPT, "int64")])
def test_position_ops_save_what_autograd_saves(dtype: str, input_: str, layers: list[str], ids: str) -> None:
    sp = _spec(input_, *layers, dtype=ids)
    predicted, measured = saves_as_predicted(sp, dtype)
    assert predicted == measured.per_layer, measured.records
    for name in ("pos", "pe", "cls", "wpe"):     # nothing beyond what add and cat save: nothing
        assert measured.per_layer.get(name, 0) == 0


# ---- tie: ------------------------------------------------------------------------------------------

def test_tiny_gpt2_counts_the_tied_weight_once() -> None:
    sp = _spec("[16]", *GPT, dtype="int64")
    a = archviz.analyze(sp)
    head = a.layer("lm_head")
    assert (head.params, head.tie) == (0, "wte")
    assert head.formula.endswith("; weight 50×16 shared with wte")
    model = archviz.to_module(sp)
    assert model.lm_head.weight is model.wte.weight
    by_hand = 50 * 16 + 64 * 16 + 32 + 16 * 16 + 16          # wte, wpe, ln, fc; lm_head's weight is wte's
    assert a.totals.params == sum(p.numel() for p in model.parameters()) == by_hand
    assert set(model.state_dict()) == {"wte.weight", "wpe.weight", "ln.weight", "ln.bias", "fc.weight",
                                       "fc.bias", "lm_head.weight"}   # torch's state dict of tied modules
    v = archviz.verify(sp)
    assert v.ok and v.params == v.real_params, v


def test_tie_loads_a_tied_torch_models_state_dict() -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(50, 16), nn.Embedding(64, 16)
            self.lm_head = nn.Linear(16, 50, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.lm_head(self.wte(ids) + self.wpe(torch.arange(ids.shape[1])))

    ref = Tiny()
    sp = _spec("[12]", "{name: wte, op: embedding, vocab: 50, dim: 16}",
               "{name: wpe, op: pos_embedding, length: 64}",
               "{name: lm_head, op: linear, out: 50, bias: false, tie: wte}", dtype="int64")
    model = archviz.to_module(sp)
    model.load_state_dict(ref.state_dict())
    assert model.lm_head.weight is model.wte.weight
    ids = torch.randint(0, 50, (2, 12))
    assert torch.allclose(model(ids), ref(ids), atol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


def test_gpt2_small_has_124439808_parameters_with_tied_embeddings() -> None:
    """GPT-2 small's parameters with linear layers standing in for attention's projections (its
    own op comes with attention): c_attn D → 3D, a narrow to D, c_proj D → D."""
    text = """name: gpt2 params
input: [1024]
input_dtype: int64
blocks:
  h:
    layers:
    - {name: ln_1, op: layernorm, from: $in}
    - {name: c_attn, op: linear, out: 2304}
    - {name: heads, op: narrow, dim: 1, length: 768}
    - {name: attn_proj, op: linear, out: 768}
    - {name: res1, op: add, from: [$in, attn_proj]}
    - {name: ln_2, op: layernorm}
    - {name: c_fc, op: linear, out: 3072}
    - {name: act, op: gelu}
    - {name: mlp_proj, op: linear, out: 768}
    - {name: res2, op: add, from: [res1, mlp_proj]}
layers:
  - {name: wte, op: embedding, vocab: 50257, dim: 768}
  - {name: wpe, op: pos_embedding, length: 1024}
  - {name: h, block: h, repeat: 12}
  - {name: ln_f, op: layernorm}
  - {name: lm_head, op: linear, out: 50257, bias: false, tie: wte}
"""
    a = archviz.analyze(archviz.loads(text, "gpt2.yaml"))
    assert a.totals.params == 124_439_808


def test_cost_counts_a_tied_weight_once() -> None:
    tied = archviz.analyze(_spec("[16]", *GPT, dtype="int64"))
    untied = archviz.analyze(_spec("[16]", *GPT[:-1], "{name: lm_head, op: linear, out: 50, bias: false}",
                                   dtype="int64"))
    assert untied.totals.params - tied.totals.params == 50 * 16
    c = estimate(tied, Settings(batch=2), target("h100"))
    assert c.memory.params == tied.totals.params * 4            # fp32 parameters, once
    assert estimate(untied, Settings(batch=2), target("h100")).memory.params == untied.totals.params * 4


@pytest.mark.parametrize(("layer", "message"), [
    ("{name: lm_head, op: linear, out: 50, bias: false, tie: wtf}", "tie: no layer named 'wtf'"),
    ("{name: lm_head, op: linear, out: 40, bias: false, tie: wte}",
     "tie: this layer's weight (40, 16) is not the shape of wte's (50, 16)"),
    ("{name: lm_head, op: linear, out: 50, bias: false, tie: pe}",
     "tie: pe (pos_embedding) has no weight to share"),
    ("{name: lm_head, op: relu, tie: wte}", "tie: lm_head (relu) has no weight to share"),
])
def test_tie_errors_are_located(layer: str, message: str) -> None:
    sp = _spec("[16]", "{name: wte, op: embedding, vocab: 50, dim: 16}",
               "{name: pe, op: pos_embedding, kind: sinusoidal}", layer, dtype="int64")
    assert _error(sp) == f"t.yaml:7:{_col(layer, 'tie: ') + 5}: lm_head: {message}"   # at the tie: value
    with pytest.raises(archviz.SpecError, match="a layer cannot share its own weight"):
        _spec("[16]", "{name: wte, op: embedding, vocab: 50, dim: 16, tie: wte}", dtype="int64")


def test_tie_schema_is_on_ops_with_a_weight() -> None:
    from archviz.spec.schema import spec_schema

    branches = {b["title"]: b for b in spec_schema()["$defs"]["layer"]["oneOf"]}
    tying = {t for t, b in branches.items() if "tie" in b["properties"]}
    assert {"linear", "embedding", "pos_embedding"} <= tying
    assert "tie" not in branches["relu"]["properties"]


# ---- a ViT front end against a hand-written one ----------------------------------------------------

class ViTFront(nn.Module):
    """torchvision's VisionTransformer up to the encoder, its names kept, and a head on the class token."""

    def __init__(self, image: int = 32, patch: int = 8, dim: int = 24, classes: int = 5) -> None:
        super().__init__()
        n = (image // patch) ** 2
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).reshape(x.shape[0], self.conv_proj.out_channels, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln(x + self.pos_embedding)
        return self.head(x[:, 0])


VIT_SPEC = ["{name: patch, op: patch_embed, patch: 8, dim: 24}", "{name: cls, op: cls_token}",
            "{name: pos, op: pos_embedding}", "{name: ln, op: layernorm, eps: 1.0e-6}",
            "{name: first, op: narrow, dim: 0, length: 1}", "{name: flat, op: flatten}",
            "{name: head, op: linear, out: 5}"]


def test_vit_front_end_equals_a_hand_written_one() -> None:
    ref = ViTFront().eval()
    sp = _spec("[3, 32, 32]", *VIT_SPEC)
    a = archviz.analyze(sp)
    assert a.totals.params == sum(p.numel() for p in ref.parameters())
    model = archviz.to_module(sp).eval()
    sd = ref.state_dict()
    names = {"conv_proj.weight": "patch.proj.weight", "conv_proj.bias": "patch.proj.bias",
             "class_token": "cls.weight", "ln.weight": "ln.weight", "ln.bias": "ln.bias",
             "head.weight": "head.weight", "head.bias": "head.bias"}
    mine = {names[k]: v for k, v in sd.items() if k in names}
    mine["pos.weight"] = sd["pos_embedding"][0]          # (1, N + 1, D) → the (N + 1, D) table
    model.load_state_dict(mine)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_position_ops_export_and_import_back(tmp_path: Path) -> None:
    sp = _spec("[3, 32, 32]", *VIT_SPEC[:3],
               "{name: pe, op: pos_embedding, kind: sinusoidal, length: 20, start: 1}",
               "{name: fc, op: linear, out: 24}", "{name: tied, op: linear, out: 24, bias: false, tie: fc}")
    source = to_python(sp)
    for cls in ("class PosEmbedding(nn.Module)", "class ClsToken(nn.Module)", "class PatchEmbed(nn.Module)",
                "self.tied.weight = self.fc.weight"):
        assert cls in source
    path = tmp_path / "m.py"
    path.write_text(source)
    out = subprocess.run([sys.executable, str(path)], check=True, capture_output=True, text=True).stdout
    assert f"{archviz.analyze(sp).totals.params:,} parameters" in out
    compiled = archviz.to_module(archviz.loads("\n".join(
        ["name: t", "input: [3, 32, 32]", "layers:", *(f"  - {la}" for la in VIT_SPEC[:3]),
         "  - {name: pe, op: pos_embedding, kind: sinusoidal, length: 20, start: 1}"]), "t.yaml"))
    imported = from_module(compiled, (3, 32, 32))
    assert [(la.op, la.params) for la in imported.spec.layers] == \
        [(la.op, la.params) for la in archviz.loads("\n".join(
            ["name: t", "input: [3, 32, 32]", "layers:", *(f"  - {la}" for la in VIT_SPEC[:2]),
             "  - {name: pos, op: pos_embedding, length: 17}",
             "  - {name: pe, op: pos_embedding, kind: sinusoidal, length: 20, start: 1}"])).layers]
    rt = round_trip(compiled, imported)
    assert rt.ok, rt


class TiedLM(nn.Module):
    """A token model whose output layer is its embedding (Hugging Face's GPT2LMHeadModel ties
    lm_head.weight to transformer.wte.weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(50, 16)
        self.ln_f = nn.LayerNorm(16)
        self.lm_head = nn.Linear(16, 50, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_f(self.wte(ids)))


def test_import_writes_tie_for_a_shared_weight() -> None:
    model = TiedLM()
    imported = from_module(model, (12,), input_dtype="int64")
    assert "{name: lm_head, op: linear, out: 50, bias: false, tie: wte}" in imported.text
    head = imported.spec.layer("lm_head")
    assert head.tie == "wte"
    a = archviz.analyze(imported.spec)
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    rt = round_trip(model, imported)
    assert rt.ok, rt
