"""torchvision's Swin Transformer (Liu et al. 2021) imports with --verify: its
ShiftedWindowAttention becomes the window moves (pad, roll, partition), an ``attention`` layer
with ``rel_pos`` (and ``shift``) holding the weights, and the moves back; its patch merging a
reshape, permute, reshape. Parameters and outputs equal the source's, MACs FlopCounterMode's on
the source. Where torchvision is absent (CI), the mapping is checked against a copy of its
``shifted_window_attention``; the imports themselves need torchvision (the zoo environment)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import yaml

import archviz
from archviz.ops import OPS
from archviz.ops.attention import SWIN
from archviz.ops.source import Source
from archviz.runtime.importer import from_module, round_trip

needs_torchvision = pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                                       reason="needs torchvision (the zoo environment)")


def _shifted_window_attention(x: torch.Tensor, w: dict, window: int, heads: int, shift: int) -> torch.Tensor:
    """torchvision 0.29's ``shifted_window_attention`` (V1, no dropout), copied for CI, where
    torchvision is absent: the oracle of the mapping below."""
    b, h, wd, c = x.shape
    pad_r, pad_b = (window - wd % window) % window, (window - h % window) % window
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, ph, pw, _ = x.shape
    sh, sw = (0 if window >= ph else shift), (0 if window >= pw else shift)
    if sh + sw > 0:
        x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
    nw = (ph // window) * (pw // window)
    x = x.view(b, ph // window, window, pw // window, window, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b * nw, window * window, c)
    qkv = F.linear(x, w["qkv.weight"], w["qkv.bias"]).reshape(x.size(0), x.size(1), 3, heads, c // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    n = window * window
    bias = w["relative_position_bias_table"][w["relative_position_index"]].view(n, n, -1).permute(2, 0, 1)
    attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1)) + bias.unsqueeze(0)
    if sh + sw > 0:
        mask = x.new_zeros((ph, pw))
        count = 0
        for hs in ((0, -window), (-window, -sh), (-sh, None)):
            for ws in ((0, -window), (-window, -sw), (-sw, None)):
                mask[hs[0]:hs[1], ws[0]:ws[1]] = count
                count += 1
        mask = mask.view(ph // window, window, pw // window, window).permute(0, 2, 1, 3).reshape(nw, n)
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        attn = (attn.view(b, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, n, n)
    x = F.softmax(attn, dim=-1).matmul(v).transpose(1, 2).reshape(b * nw, n, c)
    x = F.linear(x, w["proj.weight"], w["proj.bias"])
    x = x.view(b, ph // window, pw // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, ph, pw, c)
    if sh + sw > 0:
        x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
    return x[:, :h, :wd, :].contiguous()


@pytest.mark.parametrize(("shape", "shift"), [((14, 21, 32), 3), ((10, 12, 32), 3), ((7, 7, 32), 3),
                                              ((14, 14, 32), 0)],
                         ids=["shifted", "padded", "one-window", "unshifted"])
def test_the_mapping_computes_shifted_window_attention(shape: tuple[int, ...], shift: int) -> None:
    """The layers ShiftedWindowAttention becomes (its attributes as the import reads them),
    compiled and given the module's state dict, compute torchvision's function."""
    attrs = {"window_size": [7, 7], "shift_size": [shift, shift], "num_heads": 4, "attention_dropout": 0.0,
             "dropout": 0.0, "qkv.bias": (96,), "proj.bias": (32,), "relative_position_bias_table": (169, 4)}
    mapped = OPS["attention"].from_module(Source(SWIN, attrs, ins=(shape,), out=shape))
    lines = [yaml.safe_dump({"name": "attn" if op == "attention" else f"move{i}", "op": op,
                             **{k: v for k, v in settings.items() if v is not None}},   # None: the default
                            default_flow_style=True).strip() for i, (op, settings) in enumerate(mapped)]
    text = f"name: swa\ninput: {list(shape)}\nlayers:\n" + "".join(f"  - {la}\n" for la in lines)
    sp = archviz.loads(text)
    a = archviz.analyze(sp)
    assert a.layers[-1].output == shape and a.totals.params == 4 * 32 * 32 + 4 * 32 + 169 * 4
    torch.manual_seed(0)
    n = torch.arange(7)   # torchvision's index: (Δrow + 6)·13 + Δcol + 6
    r, c = n.repeat_interleave(7), n.repeat(7)
    state = {"qkv.weight": torch.randn(96, 32) / 6, "qkv.bias": torch.randn(96),
             "proj.weight": torch.randn(32, 32) / 6, "proj.bias": torch.randn(32),
             "relative_position_bias_table": torch.randn(169, 4),
             "relative_position_index": ((r[:, None] - r[None, :] + 6) * 13 + c[:, None] - c[None, :] + 6)}
    state["relative_position_index"] = state["relative_position_index"].flatten()
    model = archviz.to_module(sp).eval()
    model.attn.load_state_dict(state)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert (model(x) - _shifted_window_attention(x, state, 7, 4, shift)).abs().max() <= 1e-5


@pytest.fixture
def swin():  # noqa: ANN201
    return pytest.importorskip("torchvision.models.swin_transformer")


def _verified(model: torch.nn.Module, shape: tuple[int, ...]):  # noqa: ANN202
    imported = from_module(model.eval(), shape)
    rt = round_trip(model, imported)
    assert rt.ok, rt
    return imported, rt


@pytest.mark.parametrize(("shape", "shift", "moves"), [
    ((14, 21, 32), [3, 3], ["roll", "reshape", "permute", "reshape", "attention", "reshape", "permute",
                            "reshape", "roll"]),
    ((10, 12, 32), [3, 3], ["pad", "roll", "reshape", "permute", "reshape", "attention", "reshape", "permute",
                            "reshape", "roll", "narrow", "narrow"]),
    ((7, 7, 32), [3, 3], ["reshape", "permute", "reshape", "attention", "reshape", "permute", "reshape"]),
    ((14, 14, 32), [0, 0], ["reshape", "permute", "reshape", "attention", "reshape", "permute", "reshape"]),
], ids=["shifted", "padded", "one-window", "unshifted"])
def test_shifted_window_attention_block(swin, shape: tuple[int, ...], shift: list[int],  # noqa: ANN001
                                        moves: list[str]) -> None:
    torch.manual_seed(0)
    block = swin.SwinTransformerBlock(32, 4, [7, 7], shift)
    with torch.no_grad():   # a bias table far from zero: a wrong index or mask would show
        block.attn.relative_position_bias_table.normal_()
    imported, rt = _verified(block, shape)
    layers = imported.spec.layers
    attn = [la for la in layers if la.name.startswith("attn")]
    assert [la.op for la in attn] == moves
    (own,) = [la for la in attn if la.op == "attention"]
    assert own.name == "attn" and own.params.rel_pos == (7, 7)
    assert own.params.shift == ((3, 3) if "roll" in moves else None)   # one window: no shift (torchvision)
    assert imported.name_map["attn.relative_position_bias_table"] == "attn.relative_position_bias_table"
    assert rt.params == sum(p.numel() for p in block.parameters())


@pytest.mark.parametrize("shape", [(8, 6, 16), (5, 7, 16)], ids=["even", "odd"])
def test_patch_merging(swin, shape: tuple[int, ...]) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    imported, _ = _verified(swin.PatchMerging(16), shape)
    ops = [la.op for la in imported.spec.layers]
    assert ops == (["pad"] if shape[0] % 2 else []) + ["reshape", "permute", "reshape", "layernorm", "linear"]


@pytest.mark.slow
@needs_torchvision
def test_swin_t_imports_and_verifies() -> None:
    from torchvision.models import swin_t

    torch.manual_seed(0)
    imported, rt = _verified(swin_t(), (3, 224, 224))
    assert rt.params == 28_288_354                  # torchvision's Swin_T_Weights meta: num_params
    assert rt.analysis_macs == 4_490_566_656        # its meta's 4.49 GFLOPS (MACs, as torchvision counts)
    assert sum(la.op == "attention" for la in imported.spec.layers) == 12
