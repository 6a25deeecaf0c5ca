"""Today's CNN ops (issue 21): shapes and parameter counts against torch's own modules, what
they save for backward against autograd (fp32 and bf16 autocast on the CPU), and the import of
hand-written EfficientNet, ConvNeXt and ShuffleNet blocks, round-tripped against the source."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from saved_oracle import assert_saves_equal, saves_as_predicted
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.core.analysis import analyze
from archviz.runtime.importer import ImportFailed, from_module, round_trip
from archviz.spec import loads

sys.path.insert(0, str(Path(__file__).parent))
import reference_modern as rmod  # noqa: E402


def _spec(input_shape: list[int], *layers: str) -> str:
    head = ["format: 3", "name: t", f"input: {input_shape}", "layers:"]
    return "\n".join([*head, *(f"  - {x}" for x in layers)])


# --- shapes, counts and arithmetic against torch ---------------------------------------------------

CASES = [
    ([8, 6, 6], "{name: l, op: groupnorm, groups: 4}", lambda: torch.nn.GroupNorm(4, 8)),
    ([8, 6, 6], "{name: l, op: groupnorm, groups: 1, affine: false}",
     lambda: torch.nn.GroupNorm(1, 8, affine=False)),
    ([8, 10], "{name: l, op: instancenorm}", lambda: torch.nn.InstanceNorm1d(8)),
    ([8, 6, 6], "{name: l, op: instancenorm, affine: true}", lambda: torch.nn.InstanceNorm2d(8, affine=True)),
    ([4, 3, 5, 5], "{name: l, op: instancenorm, track_running_stats: true}",
     lambda: torch.nn.InstanceNorm3d(4, track_running_stats=True)),
    ([8, 6, 6], "{name: l, op: elu, alpha: 0.5}", lambda: torch.nn.ELU(0.5)),
    ([8, 6, 6], "{name: l, op: mish}", lambda: torch.nn.Mish()),
    ([8, 6, 5], "{name: l, op: permute, dims: [1, 2, 0]}", lambda: _F(lambda x: x.permute(0, 2, 3, 1))),
    ([8, 6, 5], "{name: l, op: transpose, dim0: 0, dim1: -1}", lambda: _F(lambda x: x.transpose(1, 3))),
    ([8, 12, 12], "{name: l, op: reshape, shape: [32, -1]}",
     lambda: _F(lambda x: x.reshape(x.shape[0], 32, -1))),
    ([8, 6, 5], "{name: l, op: flatten, start: 1}", lambda: torch.nn.Flatten(2)),
    ([8, 6, 5], "{name: l, op: flatten, start: 0, end: 1}", lambda: torch.nn.Flatten(1, 2)),
    ([8, 6, 5], "{name: l, op: narrow, dim: 1, start: 2, length: 3}",
     lambda: _F(lambda x: x.narrow(2, 2, 3))),
    ([8, 6, 5], "{name: l, op: mean, dims: [0]}", lambda: _F(lambda x: x.mean(1))),
    ([8, 6, 5], "{name: l, op: mean, dims: [-1, 1], keepdim: true}",
     lambda: _F(lambda x: x.mean((3, 2), True))),
    ([6, 5, 8], "{name: l, op: scale}", lambda: _Gamma((8,))),
    ([8, 6, 5], "{name: l, op: scale, axis: channels}", lambda: _Gamma((8, 1, 1))),
    ([8, 6, 5], "{name: l, op: stochastic_depth, p: 0.3}", lambda: _F(lambda x: x)),
    ([8, 6, 5], "{name: l, op: identity}", lambda: torch.nn.Identity()),
]


class _F(torch.nn.Module):
    def __init__(self, f: object) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)  # type: ignore[operator]


class _Gamma(torch.nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.randn(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * x


@pytest.mark.parametrize(("shape", "layer", "make"), CASES, ids=[c[1] for c in CASES])
def test_shapes_params_and_outputs_equal_torchs(shape: list[int], layer: str, make: object) -> None:
    torch.manual_seed(0)
    sp = loads(_spec(shape, layer))
    a = analyze(sp)
    ref = make().eval()  # type: ignore[operator]
    x = torch.randn(2, *shape)
    want = ref(x)
    assert a.layers[-1].output == tuple(want.shape[1:])
    assert a.totals.params == sum(p.numel() for p in ref.parameters())
    assert a.layers[-1].buffers == sum(b.numel() for b in ref.buffers())
    compiled = archviz.to_module(sp).eval()
    compiled.load_state_dict({f"l.{k.replace('gamma', 'weight')}": v for k, v in ref.state_dict().items()})
    torch.testing.assert_close(compiled(x), want)


def test_the_arithmetic_is_shown() -> None:
    a = analyze(loads(_spec([8, 12, 12], "{name: r, op: reshape, shape: [32, -1]}",
                            "{name: p, op: permute, dims: [1, 0]}", "{name: m, op: mean, dims: [0]}")))
    assert [s.formula for s in a.layers] == ["8×12×12 = 1152 → 32×36", "(32, 36) → (36, 32), dims (1, 0)",
                                             "mean of 36 = 36 → (32,)"]


@pytest.mark.parametrize(("layer", "message"), [
    ("{name: r, op: reshape, shape: [5, -1]}", "1152 elements cannot take the shape [5, -1]"),
    ("{name: r, op: reshape, shape: [-1, -1]}", "at most one -1"),
    ("{name: p, op: permute, dims: [0, 0, 1]}", "not an order of the 3 dims"),
    ("{name: g, op: groupnorm, groups: 5}", "8 channels of (8, 12, 12) do not split into 5 groups"),
    ("{name: n, op: narrow, dim: 1, start: 10, length: 3}", "10 + 3 is past the end of dim 1"),
    ("{name: m, op: mean, dims: [3]}", "dim 3 is out of range for a rank-3 example"),
])
def test_mistakes_are_located(layer: str, message: str) -> None:
    import re

    with pytest.raises(archviz.ShapeError, match=re.escape(message)):
        analyze(loads(_spec([8, 12, 12], layer)))


# --- saved for backward: the rules against autograd ------------------------------------------------

SAVED = """format: 3
name: today's CNN ops
input: [8, 6, 6]
layers:
  - {name: conv, op: conv, out: 8, kernel: 3, padding: 1}
  - {name: gn, op: groupnorm, groups: 2}
  - {name: elu, op: elu}
  - {name: inorm, op: instancenorm, affine: true}
  - {name: mish, op: mish}
  - {name: itrack, op: instancenorm, track_running_stats: true}
  - {name: chan, op: scale, axis: channels}
  - {name: drop, op: stochastic_depth, p: 0.5}
  - {name: batchdrop, op: stochastic_depth, p: 0.5, mode: batch}
  - {name: last, op: permute, dims: [1, 2, 0]}
  - {name: fc, op: linear, out: 8, last_dim: true}
  - {name: gamma, op: scale}
  - {name: back, op: transpose, dim0: 0, dim1: 2}
  - {name: piece, op: narrow, dim: 0, start: 2, length: 4}
  - {name: groups, op: reshape, shape: [2, 2, 36]}
  - {name: swap, op: transpose, dim0: 0, dim1: 1}
  - {name: flat, op: flatten, start: 0, end: 1}
  - {name: conv2, op: conv, out: 4, kernel: 1, from: conv}
  - {name: same, op: identity}
  - {name: avg, op: mean, dims: [1, 2]}
"""


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_saved_bytes_equal_autograd(dtype: str) -> None:
    sp = loads(SAVED)
    assert_saves_equal(*saves_as_predicted(sp, dtype, batch=2))


# --- import: today's blocks round-trip ---------------------------------------------------------------

BLOCKS = {"efficientnet_block": rmod.efficientnet_block, "convnext_block": rmod.convnext_block,
          "convnext_block_ln": rmod.convnext_block_ln, "convnext_block_last": rmod.convnext_block_last,
          "shufflenet_unit": rmod.shufflenet_unit}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_blocks_round_trip(name: str) -> None:
    torch.manual_seed(0)
    model = BLOCKS[name]()
    imported = from_module(model, (3, 8, 8))
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5, rt
    assert rt.params == rt.spec_params == rt.analysis_params == sum(p.numel() for p in model.parameters())
    assert rt.flops == rt.spec_flops == 2 * rt.analysis_macs > 0
    ops = {la.op for la in imported.spec.layers}
    wanted = {"efficientnet_block": {"stochastic_depth", "silu", "sigmoid", "mul", "adaptive_avgpool"},
              "convnext_block": {"permute", "groupnorm", "linear", "gelu", "scale", "stochastic_depth",
                                 "add"},
              "convnext_block_ln": {"permute", "layernorm", "linear", "gelu", "scale", "stochastic_depth",
                                    "add"},
              "convnext_block_last": {"permute", "scale"},
              "shufflenet_unit": {"narrow", "concat", "reshape", "transpose", "flatten"}}[name]
    assert wanted <= ops, ops


def test_cli_import_verifies_a_convnext_block(tmp_path: Path) -> None:
    out = tmp_path / "cn.yaml"
    target = f"{Path(rmod.__file__)}:convnext_block"
    r = CliRunner().invoke(app, ["import", target, "--input", "3x8x8", "-o", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "round trip ok" in r.output
    assert "op: scale, axis: channels" in out.read_text()


class _Calls(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = torch.split(x, [2, 2, 4], dim=1)
        d, e = torch.chunk(c, 2, 1)
        y = torch.cat([a * b, d + e], 1)                 # (N, 4, 6, 6)
        return y.mean(-1).flatten(1)                     # mean over W: the mean op, not a pool


def test_split_chunk_and_a_mean_over_other_dims_import() -> None:
    imported = from_module(_Calls(), (8, 6, 6))
    layers = {la.name: la for la in imported.spec.layers}
    narrows = [(la.params.dim, la.params.start, la.params.length)
               for la in layers.values() if la.op == "narrow"]
    assert narrows == [(0, 0, 2), (0, 2, 2), (0, 4, 4), (0, 0, 2), (0, 2, 2)]
    assert any(la.op == "mean" and la.params.dims == (2,) for la in layers.values())
    assert round_trip(_Calls(), imported).ok


class _Batchy(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(1, 0, 2, 3)


def test_moving_the_batch_is_refused() -> None:
    with pytest.raises(ImportFailed, match="moves the batch dimension"):
        from_module(_Batchy(), (4, 6, 6))
