"""The op registry: one class per op, each with its fields, shape rule and counting rules.

Shapes are per image, without the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for
vectors. Counting conventions (stated once, in docs/conventions.md too):

* params  = weights + biases (+ BatchNorm's affine weight and bias); buffers apart.
* MACs    = multiply-accumulates of conv and linear layers, bias adds not counted;
            FLOPs = 2 × MACs, which is what ``torch.utils.flop_counter`` reports.
* neurons = output elements of conv and linear layers (the AlexNet paper's sense).

Adding an op means adding one class here (and one builder in compile.py, one style in
render/dot.py); a test checks that every registered op has all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from typing import Any, ClassVar

from .arith import Window, pair_formula, pair_warnings
from .fields import BoolField, Field, FloatField, PaddingField, PairField, PosInt

Shape = tuple[int, ...]
Params = Mapping[str, Any]


class OpError(ValueError):
    """A shape rule refused its input; ``key`` names the field to point at, if any."""

    def __init__(self, message: str, key: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.hint = hint


@dataclass(frozen=True)
class Inferred:
    shape: Shape
    formula: str = ""
    warnings: tuple[str, ...] = ()


class OpKind:
    """Base class. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    family: ClassVar[str]          # conv, pool, norm, act, linear, reshape, merge, regularise
    doc: ClassVar[str]
    fields: ClassVar[dict[str, Field]] = {}
    example: ClassVar[dict[str, Any]] = {}
    multi_input: ClassVar[bool] = False
    counts_neurons: ClassVar[bool] = False

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(ins[0], "same as input")

    def params(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def buffers(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def macs(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def gpu_local(self, p: Params, gpus: int) -> bool:
        """True when, split over ``gpus`` GPUs by channels, each GPU needs only its own share."""
        return True

    def label(self, p: Params) -> str:
        """Key settings in a few characters, for tables and diagrams."""
        return ""


OPS: dict[str, OpKind] = {}


def register(cls: type[OpKind]) -> type[OpKind]:
    OPS[cls.name] = cls()
    return cls


def _spatial(ins: tuple[Shape, ...], op: str) -> Shape:
    shape = ins[0]
    if len(shape) != 3:
        raise OpError(f"{op} needs a (C, H, W) input, got {fmt_shape(shape)}")
    return shape


def fmt_dims(s: Shape) -> str:
    """``96×55×55``; a vector as ``9216``."""
    return "×".join(map(str, s))


def fmt_shape(s: Shape) -> str:
    """``(96, 55, 55)``; a vector as ``(9216,)``."""
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def _pair(v: tuple[int, int], sep: str = "×") -> str:
    return str(v[0]) if v[0] == v[1] else f"{v[0]}{sep}{v[1]}"


def _windows(n: Shape, k, s, p, d=(1, 1), ceil=False) -> tuple[Window, Window]:
    return (Window(n[1], k[0], s[0], p[0], d[0], ceil), Window(n[2], k[1], s[1], p[1], d[1], ceil))


@register
class Conv(OpKind):
    name, family = "conv", "conv"
    doc = "2-D convolution (torch.nn.Conv2d)"
    counts_neurons = True
    fields = {
        "out": PosInt(required=True, doc="output channels, i.e. the number of kernels"),
        "kernel": PairField(required=True, doc="kernel size"),
        "stride": PairField(default=(1, 1)),
        "padding": PaddingField(default=(0, 0)),
        "dilation": PairField(default=(1, 1)),
        "groups": PosInt(default=1, doc="channel groups; 2 = the AlexNet paper's two-GPU split"),
        "bias": BoolField(default=True),
    }
    example = {"name": "conv1", "op": "conv", "out": 96, "kernel": 11, "stride": 4}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, "conv")
        g = p["groups"]
        if c % g:
            raise OpError(f"{c} input channels are not divisible by groups={g}", "groups")
        if p["out"] % g:
            raise OpError(f"out={p['out']} is not divisible by groups={g}", "groups")
        k, s, d = p["kernel"], p["stride"], p["dilation"]
        if p["padding"] == "same":
            if s != (1, 1):
                ph, pw = (dd * (kk - 1) // 2 for kk, dd in zip(k, d, strict=True))
                half = str(ph) if ph == pw else f"[{ph}, {pw}]"
                raise OpError("padding 'same' needs stride 1 (as in torch)", "padding",
                              f"hint: give the padding as a number, e.g. padding: {half}"
                              " (half the kernel's span)")
            return Inferred((p["out"], h, w), f"'same' padding: {h}×{w} kept")
        pad = (0, 0) if p["padding"] == "valid" else p["padding"]
        wh, ww = _windows((c, h, w), k, s, pad, d)
        for win, axis in ((wh, "height"), (ww, "width")):
            if win.span > win.n + 2 * win.p:
                size = f"kernel {_pair(k)}" if win.d == 1 else \
                    f"kernel {_pair(k)} with dilation {_pair(d)} spans {win.span}, which"
                raise OpError(f"{size} is larger than the padded input {axis}"
                              f" {win.n} + 2·{win.p} = {win.n + 2 * win.p} (input {fmt_shape((c, h, w))})",
                              "kernel")
        return Inferred((p["out"], wh.out, ww.out), pair_formula(wh, ww), pair_warnings(wh, ww))

    def params(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        # weight (out, C/groups, kh, kw) + bias (out,)
        kh, kw = p["kernel"]
        return p["out"] * (ins[0][0] // p["groups"]) * kh * kw + (p["out"] if p["bias"] else 0)

    def macs(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        # each output element: (C/groups)·kh·kw multiply-accumulates
        kh, kw = p["kernel"]
        return prod(out) * (ins[0][0] // p["groups"]) * kh * kw

    def gpu_local(self, p: Params, gpus: int) -> bool:
        return p["groups"] % gpus == 0

    def label(self, p: Params) -> str:
        text = f"{_pair(p['kernel'])}×{_pair(p['kernel'])}" if p["kernel"][0] == p["kernel"][1] \
            else f"{p['kernel'][0]}×{p['kernel'][1]}"
        if p["stride"] != (1, 1):
            text += f" /{_pair(p['stride'], ',')}"
        text += f", {p['out']}"
        if p["padding"] not in ((0, 0), "valid"):
            text += f", pad {p['padding'] if isinstance(p['padding'], str) else _pair(p['padding'], ',')}"
        if p["dilation"] != (1, 1):
            text += f", dil {_pair(p['dilation'], ',')}"
        if p["groups"] != 1:
            text += f", groups {p['groups']}"
        return text


class _Pool(OpKind):
    family = "pool"
    fields = {
        "kernel": PairField(required=True),
        "stride": PairField(doc="defaults to the kernel size, as in torch"),
        "padding": PairField(lo=0, default=(0, 0)),
        "ceil_mode": BoolField(default=False),
    }

    def _half_limit(self, k: int) -> float:
        return k / 2

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        shape = _spatial(ins, self.name)
        k, pad = p["kernel"], p["padding"]
        s = p["stride"] or k
        for kk, pp in zip(k, pad, strict=True):
            if pp > self._half_limit(kk):
                raise OpError(f"padding {pp} is more than half the kernel {kk} (torch refuses it)",
                              "padding")
        wh, ww = _windows(shape, k, s, pad, ceil=p["ceil_mode"])
        if wh.out < 1 or ww.out < 1:
            raise OpError(f"kernel {_pair(k)} is larger than the padded input"
                          f" {shape[1] + 2 * pad[0]}×{shape[2] + 2 * pad[1]} (input {fmt_shape(shape)})",
                          "kernel")
        return Inferred((shape[0], wh.out, ww.out), pair_formula(wh, ww), pair_warnings(wh, ww))

    def label(self, p: Params) -> str:
        k = p["kernel"]
        s = p["stride"] or k
        text = f"{k[0]}×{k[1]}" + (f" /{_pair(s, ',')}" if s != (1, 1) else "")
        return text + (f", pad {_pair(p['padding'], ',')}" if p["padding"] != (0, 0) else "")


@register
class MaxPool(_Pool):
    name = "maxpool"
    doc = "max pooling (torch.nn.MaxPool2d); kernel 3 stride 2 = AlexNet's overlapping pooling"
    example = {"name": "pool1", "op": "maxpool", "kernel": 3, "stride": 2}

    def _half_limit(self, k: int) -> float:
        return k / 2  # torch: pad <= ((k - 1)·dilation + 1) / 2, dilation 1


@register
class AvgPool(_Pool):
    name = "avgpool"
    doc = "average pooling (torch.nn.AvgPool2d)"
    example = {"name": "pool", "op": "avgpool", "kernel": 2, "stride": 2}


@register
class AdaptiveAvgPool(OpKind):
    name, family = "adaptive_avgpool", "pool"
    doc = "adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)"
    fields = {"out": PairField(required=True, doc="output size [h, w]")}
    example = {"name": "avgpool", "op": "adaptive_avgpool", "out": 6}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, self.name)
        oh, ow = p["out"]
        return Inferred((c, oh, ow), f"adaptive: {h}×{w} → {oh}×{ow}")

    def label(self, p: Params) -> str:
        return f"→ {p['out'][0]}×{p['out'][1]}"


@register
class LRN(OpKind):
    name, family = "lrn", "norm"
    doc = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    fields = {
        "size": PosInt(required=True, doc="n, channels in the window"),
        "alpha": FloatField(default=1e-4),
        "beta": FloatField(default=0.75),
        "k": FloatField(default=1.0),
    }
    example = {"name": "norm1", "op": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins[0]) < 2:
            raise OpError(f"lrn needs a (C, H, W) input, got {fmt_shape(ins[0])}")
        return super().infer(p, ins)

    def label(self, p: Params) -> str:
        return f"n={p['size']}, k={p['k']:g}"


class _Elementwise(OpKind):
    family = "act"
    fields: ClassVar[dict[str, Field]] = {}


def _activation(op: str, doc: str, extra: dict[str, Field] | None = None) -> type[OpKind]:
    cls = type(op.title().replace("_", ""), (_Elementwise,), {
        "name": op, "doc": doc, "fields": dict(extra or {}),
        "example": {"name": op, "op": op},
    })
    return register(cls)


_activation("relu", "rectified linear unit (torch.nn.ReLU)")
_activation("tanh", "hyperbolic tangent (torch.nn.Tanh)")
_activation("sigmoid", "logistic sigmoid (torch.nn.Sigmoid)")
_activation("gelu", "Gaussian error linear unit (torch.nn.GELU)")
_activation("leaky_relu", "leaky ReLU (torch.nn.LeakyReLU)",
            {"negative_slope": FloatField(default=0.01)})


@register
class BatchNorm(OpKind):
    name, family = "batchnorm", "norm"
    doc = "batch normalisation over channels (BatchNorm2d on (C, H, W), BatchNorm1d on (F,))"
    fields = {"eps": FloatField(default=1e-5, lo=0.0), "momentum": FloatField(default=0.1, lo=0.0),
              "affine": BoolField(default=True)}
    example = {"name": "bn1", "op": "batchnorm"}

    def params(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p["affine"] else 0  # weight (C,) + bias (C,)

    def buffers(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] + 1  # running_mean, running_var (C,) + num_batches_tracked


@register
class Dropout(OpKind):
    name, family = "dropout", "regularise"
    doc = "dropout (torch.nn.Dropout); identity at inference"
    fields = {"p": FloatField(default=0.5, lo=0.0, hi=1.0, doc="probability of zeroing")}
    example = {"name": "drop6", "op": "dropout", "p": 0.5}

    def label(self, p: Params) -> str:
        return f"p={p['p']:g}"


@register
class Flatten(OpKind):
    name, family = "flatten", "reshape"
    doc = "flatten (C, H, W) to (C·H·W,) (torch.nn.Flatten)"
    example = {"name": "flatten", "op": "flatten"}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        return Inferred((prod(shape),), " × ".join(map(str, shape)) + f" = {prod(shape)}")


@register
class Linear(OpKind):
    name, family = "linear", "linear"
    doc = "fully connected layer (torch.nn.Linear)"
    counts_neurons = True
    fields = {"out": PosInt(required=True, doc="output features"), "bias": BoolField(default=True)}
    example = {"name": "fc6", "op": "linear", "out": 4096}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        if len(shape) != 1:
            raise OpError(f"linear is fed a spatial tensor {fmt_shape(shape)} without flatten",
                          hint="hint: add a layer {op: flatten} before it")
        return Inferred((p["out"],), f"{shape[0]} → {p['out']}")

    def params(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][0] * p["out"] + (p["out"] if p["bias"] else 0)  # weight (out, in) + bias

    def macs(self, p: Params, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][0] * p["out"]

    def gpu_local(self, p: Params, gpus: int) -> bool:
        return False

    def label(self, p: Params) -> str:
        return str(p["out"])


@register
class Softmax(OpKind):
    name, family = "softmax", "act"
    doc = "softmax over channels / features (torch.nn.Softmax(dim=1))"
    example = {"name": "prob", "op": "softmax"}

    def gpu_local(self, p: Params, gpus: int) -> bool:
        return False  # normalises over every channel, so it needs all GPUs' shares


@register
class Add(OpKind):
    name, family = "add", "merge"
    doc = "elementwise sum of its inputs (residual connections)"
    multi_input = True
    example = {"name": "sum", "op": "add", "from": ["a", "b"]}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        if len(set(ins)) != 1:
            raise OpError("add needs inputs of one shape, got " + " and ".join(map(fmt_shape, ins)),
                          "from")
        return Inferred(ins[0], " + ".join(map(fmt_shape, ins)))


@register
class Concat(OpKind):
    name, family = "concat", "merge"
    doc = "concatenation of its inputs along channels (Inception branches)"
    multi_input = True
    example = {"name": "cat", "op": "concat", "from": ["a", "b"]}

    def infer(self, p: Params, ins: tuple[Shape, ...]) -> Inferred:
        if len({s[1:] for s in ins}) != 1 or len({len(s) for s in ins}) != 1:
            raise OpError("concat needs inputs that differ only in channels, got "
                          + " and ".join(map(fmt_shape, ins)), "from")
        c = sum(s[0] for s in ins)
        return Inferred((c, *ins[0][1:]), " + ".join(str(s[0]) for s in ins) + f" = {c} channels")
