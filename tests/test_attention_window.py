"""Swin's additive terms on ``attention`` (Liu et al. 2021): the learned relative position bias
(``rel_pos``) and the shifted-window mask (``shift``). Against torchvision's
``ShiftedWindowAttention`` where torchvision is installed (outputs with the same weights, the same
parameters); everywhere against a reference written out here, autograd's saved tensors (fp32 and
bf16, both lowerings) and FlopCounterMode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archviz
from archviz.ops.lowering import Lowering

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import saves_as_predicted  # noqa: E402
from spec_text import spec_of as _spec  # noqa: E402


def _reference(x: torch.Tensor, m: torch.nn.Module, heads: int, window: int, shift: int) -> torch.Tensor:
    """Swin's window attention written out (the paper's eq. 4), over (N, nh, nw, S, D) windows,
    reading the compiled module's weights; the mask built from the regions' labels directly."""
    n, nh, nw, s, d = x.shape
    hd = d // heads
    q, k, v = (p(x).view(n, nh, nw, s, heads, hd).transpose(-3, -2) for p in (m.q_proj, m.k_proj, m.v_proj))
    # relative offsets of each pair of positions (i, j) in the window, table rows by (Δr, Δc)
    r, c = torch.arange(s) // window, torch.arange(s) % window
    idx = (r[:, None] - r[None, :] + window - 1) * (2 * window - 1) + (c[:, None] - c[None, :] + window - 1)
    bias = m.relative_position_bias_table[idx].permute(2, 0, 1)            # (H, S, S)
    scores = q @ k.transpose(-2, -1) / hd ** 0.5 + bias
    if shift:
        # the label of the region each position of the (unrolled) map came from
        size_h, size_w = nh * window, nw * window
        rows = torch.arange(size_h)
        cols = torch.arange(size_w)
        region = lambda i, size: (i >= size - window).long() + (i >= size - shift).long()  # noqa: E731
        label = region(rows, size_h)[:, None] * 3 + region(cols, size_w)[None, :]
        label = label.view(nh, window, nw, window).permute(0, 2, 1, 3).reshape(nh, nw, s)
        mask = (label[..., :, None] != label[..., None, :]).float() * -100.0
        scores = scores + mask[:, :, None]
    y = (scores.softmax(-1) @ v).transpose(-3, -2).reshape(n, nh, nw, s, d)
    return m.o_proj(y)


LAYER = "{name: attn, op: attention, heads: 4, rel_pos: 3%s}"


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("shift", [0, 1])
def test_equals_the_reference_with_params_and_macs(shift: int, lowering: str) -> None:
    sp = _spec("[2, 3, 9, 16]", LAYER % (", shift: 1" if shift else ""))
    a = archviz.analyze(sp)
    torch.manual_seed(0)
    model = archviz.to_module(sp, lowering=Lowering.of({"attention": lowering})).eval()
    with torch.no_grad():
        model.attn.relative_position_bias_table.normal_()   # trunc-normal 0.02 would hide a wrong index
    x = torch.randn(2, 2, 3, 9, 16)
    with torch.no_grad():
        got, want = model(x), _reference(x, model.attn, 4, 3, shift)
    assert (got - want).abs().max() <= 1e-5
    own = sum(p.numel() for p in model.parameters())
    assert a.layers[0].params == 4 * 16 * 16 + 4 * 16 + 5 * 5 * 4 == own
    assert a.layers[0].buffers == 81   # the S² pairs' index
    if lowering == "eager":
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        assert counter.get_total_flops() // 2 == 2 * a.layers[0].macs


def test_arithmetic_text() -> None:
    f = archviz.analyze(_spec("[2, 3, 49, 32]", "{name: attn, op: attention, heads: 4, rel_pos: 7,"
                                                 " shift: 3}")).layers[0].formula
    assert "+ relative position bias (a (2·7−1)·(2·7−1) = 169 × 4 table, indexed by the 49² pairs'" in f
    assert "+ shifted-window mask (rolled by 3×3: −100 across regions)" in f
    sp = _spec("[2, 3, 49, 32]", "{name: attn, op: attention, heads: 4, rel_pos: 7, shift: 3}")
    assert archviz.analyze(sp).layers[0].label == "4 heads, window 7×7, shifted"


@pytest.mark.parametrize(("layer", "key", "message"), [
    ("{name: attn, op: attention, heads: 4, rel_pos: 4}", "rel_pos", "rel_pos 4×4 needs S = 16 positions"),
    ("{name: attn, op: attention, heads: 4, shift: 1}", "shift", "shift needs rel_pos"),
    ("{name: attn, op: attention, heads: 4, rel_pos: 3, shift: 3}", "shift",
     "shift [3, 3] needs an input (nh, nw, S, D)"),
    ("{name: attn, op: attention, heads: 4, rel_pos: 3, causal: true}", "causal", "rel_pos with a causal"),
])
def test_located_errors(layer: str, key: str, message: str) -> None:
    with pytest.raises(archviz.ShapeError) as exc:
        archviz.analyze(_spec("[2, 3, 9, 16]", layer))
    assert f"attn: {message}" in str(exc.value).splitlines()[0]
    assert f":{len('  - ') + layer.index(f' {key}: ') + len(f' {key}: ') + 1}:" in str(exc.value)


_SAVED = [LAYER % "", LAYER % ", shift: 1", (LAYER % ", shift: 1, dropout: 0.1")]


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("layer", _SAVED)
def test_saves_what_autograd_saves(layer: str, dtype: str, lowering: str) -> None:
    second = layer.replace("name: attn", "name: attn2")
    sp = _spec("[2, 3, 9, 16]", layer, "{name: fc, op: linear, out: 16, last_dim: true}", second)
    low = Lowering.of({"attention": lowering})
    saves_as_predicted(sp, dtype, ("attn", "attn2"), lowering=low)


# Runs in a fresh interpreter: exec the exported file, load the state dict, run the saved input
CHILD = """
import sys, torch
ns = {"__name__": "exported"}
exec(compile(open(sys.argv[1], encoding="utf-8").read(), sys.argv[1], "exec"), ns)
model = ns[sys.argv[5]]().eval()
model.load_state_dict(torch.load(sys.argv[2]))
with torch.no_grad():
    torch.save(model(torch.load(sys.argv[3])), sys.argv[4])
"""


@pytest.mark.parametrize("lowering", ["eager", "sdpa"])
def test_exported_source_runs_fresh_with_the_compiled_weights(tmp_path: Path, lowering: str) -> None:
    import subprocess

    from archviz.runtime.compile import class_name
    from archviz.runtime.export import to_python

    sp = _spec("[2, 3, 9, 16]", LAYER % ", shift: 1", "{name: fc, op: linear, out: 16, last_dim: true}")
    low = Lowering.of({"attention": lowering})
    torch.manual_seed(0)
    model = archviz.to_module(sp, lowering=low).eval()
    with torch.no_grad():
        model.attn.relative_position_bias_table.normal_()
    paths = [tmp_path / n for n in ("model.py", "state.pt", "x.pt", "y.pt")]
    paths[0].write_text(to_python(sp, lowering=low), encoding="utf-8")
    torch.save(model.state_dict(), paths[1])
    x = torch.randn(2, 2, 3, 9, 16)
    torch.save(x, paths[2])
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths), class_name(sp.name)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "attn.relative_position_index" in model.state_dict()   # a persistent buffer: it travels
    with torch.no_grad():
        assert torch.equal(torch.load(paths[3]), model(x))
