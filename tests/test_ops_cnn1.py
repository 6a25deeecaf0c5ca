"""Issue 21's CNN ops against torch: conv1d / conv3d, conv_transpose, the 1-d and 3-d pools,
adaptive max pooling, upsample, pixel_shuffle / pixel_unshuffle.

* shapes, parameters and MACs equal torch's module and ``FlopCounterMode`` (hypothesis draws
  the settings; either both sides refuse a draw or both accept it and agree);
* the arithmetic text people read;
* the saved-for-backward rule equals autograd's record (fp32 and bf16 autocast on CPU);
* a small UNet and a 1-d audio net import from torch (fx) and ONNX and round-trip.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archviz
from archviz import SpecError

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import reference_import as ri  # noqa: E402
from saved_oracle import assert_saves_equal, saves_as_predicted  # noqa: E402

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
Outcome = tuple[tuple[int, ...], int, int] | None


def spec_text(shape: tuple[int, ...], *layers: dict[str, Any]) -> str:
    return yaml.safe_dump({"format": 3, "name": "cnn", "input": list(shape), "layers": list(layers)},
                          default_flow_style=None, sort_keys=False)


def ours(text: str) -> Outcome:
    try:
        s = archviz.analyze(archviz.loads(text)).layers[-1]
    except SpecError:
        return None
    return s.output, s.params, s.macs


def theirs(build: Any, shape: tuple[int, ...]) -> Outcome:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = build()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                y = module(torch.zeros(1, *shape))
        except (RuntimeError, ValueError):
            return None
    if 0 in y.shape:   # torch makes an empty tensor; a spec's sizes are positive, so archviz refuses
        return None
    return tuple(y.shape[1:]), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def _agree(text: str, build: Any, shape: tuple[int, ...]) -> None:
    assert ours(text) == theirs(build, shape), text


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 12), st.integers(1, 12), st.integers(1, 5),
       st.integers(1, 3), st.integers(0, 3), st.integers(0, 2), st.integers(1, 2), st.sampled_from([1, 2]),
       st.booleans())
def test_conv_transpose_equals_torch(c: int, out: int, h: int, w: int, k: int, s: int, p: int, op: int,
                                     d: int, g: int, bias: bool) -> None:
    layer = {"name": "up", "op": "conv_transpose", "out": out * g, "kernel": k, "stride": s, "padding": p,
             "output_padding": op, "dilation": d, "groups": g, "bias": bias}
    _agree(spec_text((c * g, h, w), layer),
           lambda: nn.ConvTranspose2d(c * g, out * g, k, s, p, op, groups=g, bias=bias, dilation=d),
           (c * g, h, w))


@SETTINGS
@given(st.sampled_from([1, 3]), st.integers(1, 4), st.integers(1, 4), st.integers(2, 9), st.integers(1, 4),
       st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.sampled_from([1, 2]))
def test_conv1d_and_conv3d_equal_torch(dims: int, c: int, out: int, n: int, k: int, s: int, p: int, d: int,
                                       g: int) -> None:
    shape = (c * g, *(n,) * dims)
    layer = {"name": "c", "op": f"conv{dims}d", "out": out * g, "kernel": k, "stride": s, "padding": p,
             "dilation": d, "groups": g}
    cls = nn.Conv1d if dims == 1 else nn.Conv3d
    _agree(spec_text(shape, layer), lambda: cls(c * g, out * g, k, s, p, d, groups=g), shape)


@SETTINGS
@given(st.sampled_from([1, 3]), st.sampled_from(["max", "avg"]), st.integers(1, 9), st.integers(1, 4),
       st.integers(1, 3), st.integers(0, 2), st.booleans())
def test_pools_1d_and_3d_equal_torch(dims: int, kind: str, n: int, k: int, s: int, p: int,
                                     ceil: bool) -> None:
    shape = (2, *(n,) * dims)
    layer = {"name": "p", "op": f"{kind}pool{dims}d", "kernel": k, "stride": s, "padding": p,
             "ceil_mode": ceil}
    cls = getattr(nn, f"{kind.title()}Pool{dims}d")
    _agree(spec_text(shape, layer), lambda: cls(k, s, p, ceil_mode=ceil), shape)


@SETTINGS
@given(st.sampled_from([1, 2, 3]), st.sampled_from(["max", "avg"]), st.integers(1, 9), st.integers(1, 5))
def test_adaptive_pools_equal_torch(dims: int, kind: str, n: int, o: int) -> None:
    shape = (2, *(n,) * dims)
    suffix = "" if dims == 2 else f"{dims}d"
    if kind == "avg" and dims == 2:
        return   # adaptive_avgpool (2-d) predates this issue: tests/test_properties.py
    layer = {"name": "p", "op": f"adaptive_{kind}pool{suffix}", "out": o}
    cls = getattr(nn, f"Adaptive{kind.title()}Pool{dims}d")
    _agree(spec_text(shape, layer), lambda: cls(o), shape)


@SETTINGS
@given(st.sampled_from([2, 3, 4]), st.booleans(), st.integers(1, 9), st.sampled_from([0.5, 1, 1.5, 2, 3]),
       st.integers(1, 12), st.booleans(), st.booleans())
def test_upsample_equals_torch(rank: int, linear: bool, n: int, scale: float, size: int, by_size: bool,
                               align: bool) -> None:
    shape = (2, *(n,) * (rank - 1))
    mode = {2: "linear", 3: "bilinear", 4: "trilinear"}[rank] if linear else "nearest"
    layer: dict[str, Any] = {"name": "up", "op": "upsample", "mode": mode}
    layer.update({"size": size} if by_size else {"scale": scale})
    kw: dict[str, Any] = {"size": size} if by_size else {"scale_factor": float(scale)}
    if linear:
        layer["align_corners"] = kw["align_corners"] = align
    _agree(spec_text(shape, layer), lambda: nn.Upsample(mode=mode, **kw), shape)


@SETTINGS
@given(st.integers(1, 16), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3), st.booleans())
def test_pixel_shuffles_equal_torch(c: int, h: int, w: int, r: int, up: bool) -> None:
    op, cls = ("pixel_shuffle", nn.PixelShuffle) if up else ("pixel_unshuffle", nn.PixelUnshuffle)
    _agree(spec_text((c, h, w), {"name": "s", "op": op, "factor": r}), lambda: cls(r), (c, h, w))


# --- the arithmetic people read ----------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "layer", "text"), [
    ((16, 13, 13), {"op": "conv_transpose", "out": 8, "kernel": 3, "stride": 2, "padding": 1,
                    "output_padding": 1}, "(13 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 26"),
    ((16, 13, 9), {"op": "conv_transpose", "out": 8, "kernel": 2, "stride": 2},
     "H: (13 − 1)·2 − 2·0 + 1·(2 − 1) + 0 + 1 = 26; W: (9 − 1)·2 − 2·0 + 1·(2 − 1) + 0 + 1 = 18"),
    ((1, 16000), {"op": "conv1d", "out": 16, "kernel": 80, "stride": 4}, "⌊(16000 + 2·0 − 80)/4⌋ + 1 = 3981"),
    ((3, 16, 112, 112), {"op": "conv3d", "out": 64, "kernel": 3, "padding": 1},
     "D: ⌊(16 + 2·1 − 3)/1⌋ + 1 = 16; H: ⌊(112 + 2·1 − 3)/1⌋ + 1 = 112; W: ⌊(112 + 2·1 − 3)/1⌋ + 1 = 112"),
    ((16, 3981), {"op": "maxpool1d", "kernel": 4}, "⌊(3981 + 2·0 − 4)/4⌋ + 1 = 995"),
    ((8, 13, 13), {"op": "upsample", "scale": 2, "mode": "bilinear"}, "13 × 2 = 26"),
    ((8, 13, 13), {"op": "upsample", "scale": 1.5}, "⌊13 × 1.5⌋ = 19"),
    ((8, 13, 13), {"op": "upsample", "size": 26}, "size 26×26"),
    ((64, 13, 13), {"op": "pixel_shuffle", "factor": 2}, "64/2² = 16 channels, 13 × 2 = 26"),
    ((16, 26, 26), {"op": "pixel_unshuffle", "factor": 2}, "16·2² = 64 channels, 26 / 2 = 13"),
    ((8, 9), {"op": "adaptive_avgpool1d", "out": 1}, "adaptive: 9 → 1"),
])
def test_arithmetic_text(shape: tuple[int, ...], layer: dict[str, Any], text: str) -> None:
    s = archviz.analyze(archviz.loads(spec_text(shape, {"name": "x", **layer}))).layers[0]
    assert s.formula == text


@pytest.mark.parametrize(("shape", "layer", "message"), [
    ((8, 5, 5), {"op": "conv_transpose", "out": 4, "kernel": 3, "stride": 2, "output_padding": 2},
     "output_padding 2 must be smaller than the stride 2 or the dilation 1"),
    ((8, 2, 2), {"op": "conv_transpose", "out": 4, "kernel": 1, "padding": 1}, "is not positive"),
    ((8, 13, 13), {"op": "upsample", "scale": 2, "mode": "trilinear"}, "mode trilinear needs a (C, D, H, W)"),
    ((8, 13, 13), {"op": "upsample"}, "give either scale or size"),
    ((6, 4, 4), {"op": "pixel_shuffle", "factor": 2}, "6 channels are not divisible by factor² = 2² = 4"),
    ((8, 13, 13), {"op": "conv1d", "out": 4, "kernel": 3}, "conv1d needs a (C, L) input, got (8, 13, 13)"),
])
def test_refusals_are_located_and_say_why(shape: tuple[int, ...], layer: dict[str, Any],
                                          message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        archviz.analyze(archviz.loads(spec_text(shape, {"name": "x", **layer})))


# --- saved for backward against autograd ---------------------------------------------------------------

SAVED_SPECS = {
    "2d": ((8, 12, 12), [
        {"name": "up", "op": "upsample", "scale": 2, "mode": "bilinear"},
        {"name": "conv", "op": "conv", "out": 16, "kernel": 3, "padding": 1},
        {"name": "shuffle", "op": "pixel_shuffle", "factor": 2},
        {"name": "unshuffle", "op": "pixel_unshuffle", "factor": 4},
        {"name": "tconv", "op": "conv_transpose", "out": 8, "kernel": 3, "stride": 2, "padding": 1,
         "output_padding": 1},
        {"name": "near", "op": "upsample", "scale": 2},
        {"name": "amax", "op": "adaptive_maxpool", "out": 3},
        {"name": "gmax", "op": "adaptive_maxpool", "out": 1}]),
    "1d": ((4, 40), [
        {"name": "mp0", "op": "maxpool1d", "kernel": 2},
        {"name": "conv", "op": "conv1d", "out": 8, "kernel": 3, "padding": 1},
        {"name": "mp", "op": "maxpool1d", "kernel": 2},
        {"name": "ap", "op": "avgpool1d", "kernel": 2},
        {"name": "lin", "op": "upsample", "scale": 2, "mode": "linear"},
        {"name": "amax", "op": "adaptive_maxpool1d", "out": 3},
        {"name": "aavg", "op": "adaptive_avgpool1d", "out": 2},
        {"name": "gavg", "op": "adaptive_avgpool1d", "out": 1}]),
    "3d": ((4, 8, 8, 8), [
        {"name": "mp0", "op": "maxpool3d", "kernel": 2},
        {"name": "conv", "op": "conv3d", "out": 8, "kernel": 3, "padding": 1},
        {"name": "mp", "op": "maxpool3d", "kernel": 2, "stride": 1},
        {"name": "conv2", "op": "conv3d", "out": 8, "kernel": 1},
        {"name": "ap", "op": "avgpool3d", "kernel": 2, "stride": 1},
        {"name": "conv3", "op": "conv3d", "out": 8, "kernel": 1},
        {"name": "tri", "op": "upsample", "scale": 2, "mode": "trilinear"},
        {"name": "conv4", "op": "conv3d", "out": 8, "kernel": 1},
        {"name": "amax", "op": "adaptive_maxpool3d", "out": 2},
        {"name": "conv5", "op": "conv3d", "out": 8, "kernel": 1},
        {"name": "aavg", "op": "adaptive_avgpool3d", "out": 2},
        {"name": "conv6", "op": "conv3d", "out": 8, "kernel": 1},
        {"name": "gavg", "op": "adaptive_avgpool3d", "out": 1}]),
}


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("case", sorted(SAVED_SPECS))
def test_saved_bytes_equal_autograd(case: str, dtype: str) -> None:

    shape, layers = SAVED_SPECS[case]
    sp = archviz.loads(spec_text(shape, *layers))
    assert_saves_equal(*saves_as_predicted(sp, dtype, batch=2))


# --- import: a UNet and an audio net from torch and from ONNX ------------------------------------------

NETS = {"unet": (ri.TinyUNet, (3, 32, 32)), "audio": (ri.AudioNet, (1, 4000))}
NET_OPS = {"unet": {"conv_transpose", "upsample", "pixel_shuffle", "concat", "maxpool"},
           "audio": {"conv1d", "maxpool1d", "adaptive_avgpool1d", "flatten", "linear"}}


@pytest.mark.parametrize("name", sorted(NETS))
def test_reference_nets_round_trip_from_torch(name: str) -> None:
    from archviz.runtime.importer import from_module, round_trip

    torch.manual_seed(0)
    make, shape = NETS[name]
    model = make()
    imported = from_module(model, shape)
    assert NET_OPS[name] <= {la.op for la in imported.spec.layers}
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5, rt
    assert rt.params == rt.spec_params == rt.analysis_params == sum(p.numel() for p in model.parameters())
    assert rt.flops == rt.spec_flops == 2 * rt.analysis_macs > 0
    assert rt.ok


@pytest.mark.parametrize("name", sorted(NETS))
def test_reference_nets_round_trip_from_onnx(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnx")
    from archviz.runtime.onnx_import import from_onnx, state_dict

    torch.manual_seed(0)
    make, shape = NETS[name]
    model = make().eval()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, *shape),), str(path), dynamo=False, external_data=False,
                          input_names=["x"], verbose=False)
    imported = from_onnx(path)
    assert NET_OPS[name] - {"flatten"} <= {la.op for la in imported.spec.layers}
    compiled = archviz.to_module(imported.spec)
    compiled.load_state_dict(state_dict(imported))
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert (compiled.eval()(x) - model(x)).abs().max() <= 1e-5
