"""Property tests: archviz's analysis of one conv / pool / linear layer against torch itself.

Hypothesis draws the layer's settings (many of them near the edges: a kernel about the size of
the padded input, padding at half the kernel, a ceil_mode window that would start in the
padding, zeros and negatives that the spec format refuses) and writes a one-layer spec. For
each draw, either both sides refuse it, or both accept it and agree on

* the output shape (torch's real module on a (1, C, H, W) or (1, F) input),
* the parameter count (sum of ``numel`` over the module's parameters),
* the MACs: ``torch.utils.flop_counter.FlopCounterMode`` reports FLOPs = 2 × MACs.

"Refuse" means: torch raises while building the module or running it; archviz raises
SpecError (ShapeError is a subclass) from ``loads`` or ``analyze``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import archviz
from archviz import SpecError

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Outcome:
    """What one side made of a layer: None for a refusal, else shape, params and MACs."""

    shape: tuple[int, ...]
    params: int
    macs: int


def spec_text(input_shape: tuple[int, ...], layer: dict[str, Any]) -> str:
    """A one-layer spec, written as YAML text the way a person would (flow-style layer)."""
    return yaml.safe_dump({"name": "prop", "input": list(input_shape), "layers": [layer]},
                          default_flow_style=None, sort_keys=False)


def archviz_outcome(text: str) -> Outcome | None:
    try:
        a = archviz.analyze(archviz.loads(text))
    except SpecError:
        return None
    st_ = a.layers[0]
    return Outcome(st_.output, st_.params, st_.macs)


def torch_outcome(build: Any, input_shape: tuple[int, ...]) -> Outcome | None:
    """Build the module and run it on a (1, *input_shape) input; None if torch refuses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a padded copy
        try:
            module = build()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                y = module(torch.zeros(1, *input_shape))
        except (RuntimeError, ValueError) as exc:
            event("torch refuses: " + re.sub(r"[\d(\[][^a-zA-Z]*", "N ", str(exc).splitlines()[0])[:70])
            return None
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return Outcome(tuple(y.shape[1:]), sum(p.numel() for p in module.parameters()), flops // 2)


def pair(value: Any) -> list[int]:
    """A spec's int-or-[h, w] value as [h, w]."""
    return list(value) if isinstance(value, list) else [value, value]


def axes(shape: tuple[int, ...], layer: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """Per axis: (input n, padding p, span d·(k − 1) + 1, stride s), read from the layer dict."""
    pad = layer.get("padding", 0)
    p = [0, 0] if pad == "valid" else pair(pad)
    k, d = pair(layer["kernel"]), pair(layer.get("dilation", 1))
    s = pair(layer.get("stride", layer["kernel"] if "pool" in layer["op"] else 1))
    return [(n, pp, dd * (kk - 1) + 1, ss)
            for n, pp, kk, dd, ss in zip(shape[1:], p, k, d, s, strict=True)]


def check_text(text: str, layer: dict[str, Any], shape: tuple[int, ...], out: tuple[int, ...]) -> None:
    """The arithmetic shown ends in the sizes computed, and a division that is not whole is a
    warning quoting the exact quotient (AlexNet at 224: 54.25), written out here by hand."""
    a = archviz.analyze(archviz.loads(text)).layers[0]
    if layer.get("padding") == "same":
        assert not a.warnings and "same" in a.formula
        return
    results = [int(n) for n in re.findall(r"= (\d+)(?:;|$)", a.formula)]
    assert results == ([out[1], out[2]] if a.formula.startswith("H:") else [out[1]]), a.formula
    joined = " | ".join(a.warnings)
    inexact = [(n + 2 * p - span, s) for n, p, span, s in axes(shape, layer)
               if n + 2 * p - span >= 0 and (n + 2 * p - span) % s]
    assert bool(a.warnings) == bool(inexact), (text, a.warnings)
    for num, s in inexact:
        assert f"= {float(Fraction(num, s) + 1):.4g} is not whole" in joined, joined


def compare(text: str, build: Any, input_shape: tuple[int, ...]) -> Outcome | None:
    mine, ref = archviz_outcome(text), torch_outcome(build, input_shape)
    event("both accept" if ref is not None and mine is not None else
          "both refuse" if ref is None and mine is None else "DISAGREE")
    if ref is None:
        assert mine is None, f"torch refuses this layer but archviz accepts it:\n{text}"
    else:
        assert mine is not None, f"torch accepts this layer but archviz refuses it:\n{text}"
        assert mine == ref, f"archviz {mine} != torch {ref}:\n{text}"
    return mine


# ---------------------------------------------------------------- strategies

def rare(strategy: st.SearchStrategy, other: st.SearchStrategy, one_in: int = 40) -> st.SearchStrategy:
    """Mostly ``strategy``; one draw in ``one_in`` from ``other`` (a zero, a negative, an edge)."""
    return st.integers(0, one_in - 1).flatmap(lambda r: other if r == 0 else strategy)


def as_yaml(hw: tuple[int, int]) -> int | list[int]:
    """An (h, w) pair the way a spec writes it: one int when both agree (usually), else [h, w]."""
    return hw[0] if hw[0] == hw[1] else list(hw)


@st.composite
def sizes(draw: Any, lo: int = 1, hi: int = 4, bad: tuple[int, ...] = (0, -1)) -> tuple[int, int]:
    """An (h, w) pair; square most of the time, now and then a value the spec must refuse."""
    one = rare(st.integers(lo, hi), st.sampled_from(bad))
    h = draw(one)
    w = draw(st.one_of(st.just(h), one))
    return (h, w)


@st.composite
def spatial_input(draw: Any, max_c: int = 8) -> tuple[int, int, int]:
    h = draw(st.integers(1, 20))
    w = draw(st.one_of(st.just(h), st.integers(1, 20)))
    return (draw(st.integers(1, max_c)), h, w)


def kernel_near(n: tuple[int, int], pad: tuple[int, int], d: tuple[int, int] = (1, 1)) -> st.SearchStrategy:
    """A kernel whose span is within a couple of pixels of the padded input, either side."""
    def one(axis: int) -> st.SearchStrategy:
        padded = n[axis] + 2 * max(pad[axis], 0)
        target = max((padded - 1) // max(d[axis], 1) + 1, 1)  # largest k whose span fits
        return st.one_of(st.just(target), st.integers(max(target - 2, 1), target + 1))
    return st.tuples(one(0), one(1))


# ---------------------------------------------------------------- conv

@st.composite
def conv_case(draw: Any) -> tuple[tuple[int, int, int], dict[str, Any]]:
    groups = draw(rare(st.sampled_from([1, 1, 2, 3, 4]), st.just(0)))
    g = max(groups, 1)
    c = draw(rare(st.integers(1, 4).map(lambda m: m * g), st.integers(1, 8), one_in=6))
    _, h, w = draw(spatial_input())
    dilation = draw(rare(st.just((1, 1)), sizes(1, 3), one_in=3))
    out = draw(rare(st.integers(1, 4).map(lambda m: m * g), st.integers(0, 8), one_in=6))
    stride = draw(rare(sizes(1, 3), st.just((1, 1)), one_in=2))
    padding: Any = draw(st.one_of(sizes(0, 4, bad=(-1,)), st.sampled_from(["same", "valid"])))
    pad = padding if isinstance(padding, tuple) else (0, 0)
    kernel = draw(rare(sizes(1, 5), kernel_near((h, w), pad, dilation), one_in=3))
    layer: dict[str, Any] = {"name": "conv", "op": "conv", "out": out, "kernel": as_yaml(kernel)}
    if stride != (1, 1) or draw(st.booleans()):
        layer["stride"] = as_yaml(stride)
    if padding != (0, 0) or draw(st.booleans()):
        layer["padding"] = padding if isinstance(padding, str) else as_yaml(padding)
    if dilation != (1, 1):
        layer["dilation"] = as_yaml(dilation)
    if groups != 1:
        layer["groups"] = groups
    if not draw(st.booleans()):
        layer["bias"] = False
    return (c, h, w), layer


def kernel_fills_input(shape: tuple[int, int, int], layer: dict[str, Any]) -> bool:
    return any(span == n + 2 * p for n, p, span, _ in axes(shape, layer))


def torch_conv(c: int, layer: dict[str, Any]) -> Any:
    return lambda: nn.Conv2d(c, layer["out"], layer["kernel"], stride=layer.get("stride", 1),
                             padding=layer.get("padding", 0), dilation=layer.get("dilation", 1),
                             groups=layer.get("groups", 1), bias=layer.get("bias", True))


@SETTINGS
@given(conv_case())
# AlexNet's conv1 (227 → 55) and the paper's 224 (54.25: a warning, not a refusal)
@example(((3, 227, 227), {"name": "conv", "op": "conv", "out": 96, "kernel": 11, "stride": 4}))
@example(((3, 224, 224), {"name": "conv", "op": "conv", "out": 96, "kernel": 11, "stride": 4}))
# AlexNet's grouped conv2, and 'same' with an even kernel and dilation on an H ≠ W input
@example(((96, 27, 27), {"name": "conv", "op": "conv", "out": 256, "kernel": 5, "padding": 2, "groups": 2}))
@example(((2, 5, 9), {"name": "conv", "op": "conv", "out": 2, "kernel": [4, 2], "padding": "same",
                      "dilation": [1, 3]}))
# kernel exactly the padded input, and one more than it (torch: "Kernel size can't be greater")
@example(((1, 3, 4), {"name": "conv", "op": "conv", "out": 1, "kernel": [5, 6], "padding": 1}))
@example(((1, 3, 4), {"name": "conv", "op": "conv", "out": 1, "kernel": [5, 7], "padding": 1}))
# dilation makes a small kernel too large: span 2·(3 − 1) + 1 = 5 > 4
@example(((1, 4, 4), {"name": "conv", "op": "conv", "out": 1, "kernel": 3, "dilation": 2}))
def test_conv_matches_torch(case: tuple[tuple[int, int, int], dict[str, Any]]) -> None:
    shape, layer = case
    text = spec_text(shape, layer)
    got = compare(text, torch_conv(shape[0], layer), shape)
    if got is not None and layer.get("padding") != "same" and kernel_fills_input(shape, layer):
        event("kernel span = padded input on some axis")
    if got is not None:
        check_text(text, layer, shape, got.shape)


# ---------------------------------------------------------------- pooling

@st.composite
def pool_case(draw: Any) -> tuple[tuple[int, int, int], dict[str, Any]]:
    op = draw(st.sampled_from(["maxpool", "avgpool"]))
    shape = draw(spatial_input(max_c=3))
    kernel = draw(sizes(1, 5))
    k = (max(kernel[0], 1), max(kernel[1], 1))

    def pad_axis(kk: int) -> st.SearchStrategy:
        """At most half the kernel, as torch allows; now and then one more, or -1."""
        return rare(st.integers(0, kk // 2), st.sampled_from([kk // 2 + 1, -1]), one_in=10)

    ph = draw(pad_axis(k[0]))
    padding = (ph, draw(st.one_of(st.just(ph), pad_axis(k[1]))))
    if draw(st.booleans()):
        kernel = draw(kernel_near(shape[1:], padding))
    layer: dict[str, Any] = {"name": "pool", "op": op, "kernel": as_yaml(kernel)}
    if draw(st.booleans()):
        layer["stride"] = as_yaml(draw(sizes(1, 4)))
    if padding != (0, 0) or draw(st.booleans()):
        layer["padding"] = as_yaml(padding)
    if draw(st.booleans()):
        layer["ceil_mode"] = True
    return shape, layer


def dropped_last_window(shape: tuple[int, int, int], layer: dict[str, Any]) -> bool:
    """Does torch's ceil_mode correction apply on some axis? (Pool.h, pooling_output_shape)"""
    for n, p, k, s in axes(shape, layer):
        out = -(-(n + 2 * p - k) // s) + 1
        if (out - 1) * s >= n + p:
            return True
    return False


def torch_pool(layer: dict[str, Any]) -> Any:
    cls = {"maxpool": nn.MaxPool2d, "avgpool": nn.AvgPool2d}[layer["op"]]
    return lambda: cls(layer["kernel"], stride=layer.get("stride"), padding=layer.get("padding", 0),
                       ceil_mode=layer.get("ceil_mode", False))


def _pool(shape: tuple[int, int, int], op: str = "maxpool", **kw: Any) -> Any:
    return (shape, {"name": "pool", "op": op, **kw})


@SETTINGS
@given(pool_case())
@example(_pool((96, 55, 55), kernel=3, stride=2))                    # AlexNet: 55 → 27
@example(_pool((3, 8, 6), kernel=3, padding=1))                      # stride defaults to the kernel
# ceil_mode: ⌈(5 + 2 − 2)/2⌉ + 1 = 4, but the 4th window would start at 6 ≥ 5 + 1, in the
# right padding, so torch drops it: 3 (both ops)
@example(_pool((1, 5, 5), kernel=2, stride=2, padding=1, ceil_mode=True))
@example(_pool((1, 5, 5), "avgpool", kernel=2, stride=2, padding=1, ceil_mode=True))
# ceil_mode keeps a window that overhangs the input: 2 → 1 with kernel 3 (floor mode refuses)
@example(_pool((1, 2, 2), kernel=3, stride=2, ceil_mode=True))
@example(_pool((1, 2, 2), kernel=3, stride=2))
# padding exactly half the kernel is allowed, one more is not
@example(_pool((1, 4, 4), "avgpool", kernel=[4, 3], padding=[2, 1]))
@example(_pool((1, 4, 4), "avgpool", kernel=[4, 3], padding=[2, 2]))
def test_pool_matches_torch(case: tuple[tuple[int, int, int], dict[str, Any]]) -> None:
    shape, layer = case
    text = spec_text(shape, layer)
    got = compare(text, torch_pool(layer), shape)
    if got is not None and layer.get("ceil_mode") and dropped_last_window(shape, layer):
        event("ceil_mode: a last window that would start in the padding was dropped")
    if got is not None:
        check_text(text, layer, shape, got.shape)


# ---------------------------------------------------------------- linear

@SETTINGS
@given(f_in=st.integers(1, 300), out=rare(st.integers(1, 300), st.sampled_from([0, -3])),
       bias=st.booleans())
@example(f_in=9216, out=4096, bias=True)  # AlexNet's fc6: 37,752,832 parameters
def test_linear_matches_torch(f_in: int, out: int, bias: bool) -> None:
    layer = {"name": "fc", "op": "linear", "out": out, "bias": bias}
    text = spec_text((f_in,), layer)
    if out == 0:
        # torch builds an empty Linear(F, 0); a spec with out: 0 is refused on purpose
        assert archviz_outcome(text) is None
        return
    got = compare(text, lambda: nn.Linear(f_in, out, bias=bias), (f_in,))
    if out > 0:
        assert got is not None
        assert got.params == f_in * out + (out if bias else 0)  # written out by hand as well


@SETTINGS
@given(spatial_input(), st.integers(1, 16))
def test_linear_on_a_spatial_input_is_refused(shape: tuple[int, int, int], out: int) -> None:
    """torch's Linear would act on the last axis only; a spec must say flatten first."""
    text = spec_text(shape, {"name": "fc", "op": "linear", "out": out})
    with pytest.raises(archviz.ShapeError, match="without flatten"):
        archviz.analyze(archviz.loads(text))
    flat = spec_text(shape, {"name": "flat", "op": "flatten"}).rstrip("\n") \
        + "\n- {name: fc, op: linear, out: " + str(out) + "}\n"
    c, h, w = shape
    ref = torch_outcome(lambda: nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, out)), shape)
    a = archviz.analyze(archviz.loads(flat))
    assert ref == Outcome(a.layers[-1].output, a.totals.params, a.totals.macs)
