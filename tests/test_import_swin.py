"""torchvision's Swin Transformer (Liu et al. 2021) imports with --verify: its
ShiftedWindowAttention becomes the window moves (pad, roll, partition), an ``attention`` layer
with ``rel_pos`` (and ``shift``) holding the weights, and the moves back; its patch merging a
reshape, permute, reshape. Parameters and outputs equal the source's, MACs FlopCounterMode's on
the source. Skipped where torchvision is not installed (the zoo environment has it)."""

from __future__ import annotations

import pytest
import torch

from archviz.runtime.importer import from_module, round_trip

swin = pytest.importorskip("torchvision.models.swin_transformer")


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
def test_shifted_window_attention_block(shape: tuple[int, ...], shift: list[int], moves: list[str]) -> None:
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
def test_patch_merging(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    imported, _ = _verified(swin.PatchMerging(16), shape)
    ops = [la.op for la in imported.spec.layers]
    assert ops == (["pad"] if shape[0] % 2 else []) + ["reshape", "permute", "reshape", "layernorm", "linear"]


@pytest.mark.slow
def test_swin_t_imports_and_verifies() -> None:
    from torchvision.models import swin_t

    torch.manual_seed(0)
    imported, rt = _verified(swin_t(), (3, 224, 224))
    assert rt.params == 28_288_354                  # torchvision's Swin_T_Weights meta: num_params
    assert rt.analysis_macs == 4_490_566_656        # its meta's 4.49 GFLOPS (MACs, as torchvision counts)
    assert sum(la.op == "attention" for la in imported.spec.layers) == 12
