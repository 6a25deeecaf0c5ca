"""The op registry: one class per op, the one home of everything archviz knows about it.

An op class holds:

* ``Params``: a frozen, typed dataclass of its settings. Each field carries the parser that
  checks its YAML value (:func:`archviz.ops.fields.param`); defaults are filled and derived
  defaults resolved (a pool's stride = its kernel, ``padding: valid`` = 0) when the spec loads,
  so no other module re-derives them.
* ``infer``: the shape rule and its arithmetic text; ``params``/``buffers``/``macs``: counts.
* ``receptive``: the receptive-field rule (arithmetic in :mod:`archviz.ops.receptive`).
* ``torch``: a :class:`TorchLayer` description (a class name and its arguments): the core
  never imports torch; :mod:`archviz.runtime.compile` and :mod:`archviz.runtime.export` build
  and write it.
* ``family``: its drawing family (colour and legend in :mod:`archviz.render.dot`).
* ``settings``: its params as a plain mapping, for diff and JSON; ``label``: a short text.
* ``schema``: its branch of the spec format's JSON Schema (:mod:`archviz.spec.schema`).

Shapes are per image, without the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for
vectors. Counting conventions (README, "What the numbers mean"):

* params  = weights + biases (+ BatchNorm's affine weight and bias); buffers apart.
* MACs    = multiply-accumulates of conv and linear layers, bias adds not counted;
            FLOPs = 2 × MACs, which is what ``torch.utils.flop_counter`` reports.
* neurons = output elements of conv and linear layers (the AlexNet paper's sense).

Adding an op means adding one class here (and its test); tests/test_ops.py checks that every
registered op has every facet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from math import prod
from typing import Any, ClassVar

from ..errors import ArchvizError
from . import fields as typed
from . import receptive as rf
from .arith import Window, pair_formula, pair_warnings
from .fields import BoolField, Field, FloatField, PaddingField, Pair, PairField, PosInt, fields_of, param

Shape = tuple[int, ...]


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
    inexact: tuple[str, ...] = ()   # divisions that are not whole: a spec may accept them (allow: [inexact])


@dataclass(frozen=True)
class TorchLayer:
    """How an op is built in torch, without importing it: ``torch.nn.<cls>(*args, **kwargs)``, or
    for ``cls`` "Add"/"Concat" archviz's merge modules. ``kwargs`` leaves torch's defaults out
    (readable exported source). ``inline``: for merges, a template over the inputs for exported
    source (``{xs}`` is the comma-joined inputs, ``{plus}`` them joined by `` + ``)."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    inline: str | None = None

    @staticmethod
    def given(defaults: Mapping[str, Any], **kwargs: Any) -> tuple[tuple[str, Any], ...]:
        """The keyword arguments that differ from torch's defaults."""
        return tuple((k, v) for k, v in kwargs.items() if k not in defaults or defaults[k] != v)


@dataclass(frozen=True)
class NoParams:
    """The settings of an op that has none."""


# --- what an op's torch lowering saves for backward (the cost model, archviz/core/cost.py) -----
# Element sizes of the dtypes that autograd saves; "fp32" is also what tf32 stores.
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "int64": 8, "bool": 1}


@dataclass(frozen=True)
class Autocast:
    """What a layer runs under: ``compute`` is the autocast dtype (None: plain fp32), ``ins`` the
    dtypes of its inputs as they arrive, ``device`` the torch device kind ("cpu" or "cuda": the
    dropout mask differs)."""

    compute: str | None
    ins: tuple[str, ...]
    device: str = "cpu"

    @property
    def low(self) -> str:
        """The dtype a conv or linear computes in: the autocast dtype, else fp32."""
        return self.compute or "fp32"


@dataclass(frozen=True)
class SavedTensor:
    """One tensor saved for backward. ``shares``: "input" (the storage of input ``index``),
    "output" (the layer's own output), or "" (a new storage only this op holds).
    ``per_image``: its elements scale with the batch (else a fixed count: a weight copy)."""

    what: str
    elements: int
    dtype: str
    shares: str = ""
    index: int = 0
    per_image: bool = True

    @property
    def bytes(self) -> int:
        return self.elements * DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class Saved:
    """An op's saved-for-backward rule applied to one layer: what it saves, its output's dtype,
    whether the output is a view of input 0 (the same storage), and whether the rule is known."""

    tensors: tuple[SavedTensor, ...]
    out_dtype: str
    view: bool = False
    known: bool = True


def _promote(dtypes: tuple[str, ...]) -> str:
    """torch's type promotion among float dtypes: fp32 wins over a half type."""
    return dtypes[0] if len(set(dtypes)) == 1 else "fp32"


class OpKind:
    """Base class. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    family: ClassVar[str]          # conv, pool, norm, act, linear, reshape, merge, regularise
    doc: ClassVar[str]
    Params: ClassVar[type] = NoParams
    example: ClassVar[dict[str, Any]] = {}
    multi_input: ClassVar[bool] = False
    counts_neurons: ClassVar[bool] = False

    _fields: ClassVar[dict[str, Field]] = {}

    @property
    def fields(self) -> dict[str, Field]:
        """Setting name → its parser (required flag, default, doc), in declaration order."""
        return self._fields

    def make(self, values: Mapping[str, Any]) -> Any:
        """The typed params from parsed values (missing keys take their defaults)."""
        return self.Params(**values)

    def settings(self, p: Any) -> dict[str, Any]:
        """The params as a plain mapping (diff, JSON)."""
        return asdict(p)

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(ins[0], "same as input")

    def params(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def buffers(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def macs(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def buffer_bytes(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        """Bytes of the buffers: fp32 unless the op says otherwise."""
        return 4 * self.buffers(p, ins, out)

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        """Forward FLOPs per image besides MACs (the roofline's own column: LRN, pooling,
        normalisation, activations); conv and linear count theirs as MACs."""
        return 0

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        """What the torch lowering (:meth:`torch`) saves for backward, per image, measured with
        ``torch.autograd.graph.saved_tensors_hooks`` (tests/test_cost_torch.py keeps it true).
        The base rule is unknown: totals that include such a layer are lower bounds."""
        return Saved((), ac.ins[0], known=False)

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        """The field of one output unit from its inputs' fields; elementwise ops keep it."""
        return fs[0]

    def torch(self, p: Any, ins: tuple[Shape, ...]) -> TorchLayer:  # pragma: no cover - overridden
        raise NotImplementedError(self.name)

    def gpu_local(self, p: Any, gpus: int) -> bool:
        """True when, split over ``gpus`` GPUs by channels, each GPU needs only its own share."""
        return True

    def reference(self, p: Any, a: Any) -> Any:
        """For a parameter-free op with a published formula: that formula written out over an
        (N, C, H, W) tensor ``a`` with tensor methods only (no torch import), which ``verify``
        compares with the compiled layer. None: the op has no such check."""
        return None

    def label(self, p: Any) -> str:
        """Key settings in a few characters, for tables and diagrams."""
        return ""

    def schema(self) -> dict[str, Any]:
        """This op's part of the spec format's JSON Schema: its settings and which are required
        (:mod:`archviz.spec.schema` adds the keys every layer has: name, from, expect, note)."""
        return {"properties": {key: f.documented_schema() for key, f in self.fields.items()},
                "required": [key for key, f in self.fields.items() if f.required]}


OPS: dict[str, OpKind] = {}


def register(cls: type[OpKind]) -> type[OpKind]:
    cls._fields = fields_of(cls.Params)
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


def _windows(n: Shape, k: Pair, s: Pair, p: Pair, d: Pair = (1, 1),
             ceil: bool = False) -> tuple[Window, Window]:
    return (Window(n[1], k[0], s[0], p[0], d[0], ceil), Window(n[2], k[1], s[1], p[1], d[1], ceil))


def _matmul_saved(inputs: int, weights: int, ac: Autocast) -> Saved:
    """Conv and linear: the input, shared unless autocast casts it (a new low-precision copy), and
    under autocast a low-precision copy of the weight (fp32: the weight is the parameter itself)."""
    low = ac.low
    shared = "input" if ac.ins[0] == low else ""
    tensors: tuple[SavedTensor, ...] = (SavedTensor("input", inputs, low, shared),)
    if ac.compute:
        tensors += (SavedTensor("weight copy", weights, low, per_image=False),)
    return Saved(tensors, low)


# --- convolution --------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ConvParams:
    out: int = param(PosInt(doc="output channels, i.e. the number of kernels"))
    kernel: Pair = param(PairField(doc="kernel size"))
    stride: Pair = param(PairField(), (1, 1))
    padding: Pair | str = param(PaddingField(doc="'valid' is read as 0"), (0, 0))  # or "same"
    dilation: Pair = param(PairField(), (1, 1))
    groups: int = param(PosInt(doc="channel groups; 2 = the AlexNet paper's two-GPU split"), 1)
    bias: bool = param(BoolField(), True)

    def __post_init__(self) -> None:
        if self.padding == "valid":  # torch: 'valid' is no padding
            object.__setattr__(self, "padding", (0, 0))

    def pads(self) -> Pair:
        """The padding as numbers: 'same' pads d·(k − 1) in all, the smaller half first (as torch)."""
        if self.padding == "same":
            (dh, dw), (kh, kw) = self.dilation, self.kernel
            return (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        assert isinstance(self.padding, tuple)
        return self.padding


_CONV_DEFAULTS = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1, "bias": True}


@register
class Conv(OpKind):
    name, family = "conv", "conv"
    doc = "2-D convolution (torch.nn.Conv2d)"
    counts_neurons = True
    Params = ConvParams
    example = {"name": "conv1", "op": "conv", "out": 96, "kernel": 11, "stride": 4}

    def infer(self, p: ConvParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, "conv")
        if c % p.groups:
            raise OpError(f"{c} input channels are not divisible by groups={p.groups}", "groups")
        if p.out % p.groups:
            raise OpError(f"out={p.out} is not divisible by groups={p.groups}", "groups")
        k, s, d = p.kernel, p.stride, p.dilation
        if p.padding == "same":
            if s != (1, 1):
                ph, pw = p.pads()
                half = str(ph) if ph == pw else f"[{ph}, {pw}]"
                raise OpError("padding 'same' needs stride 1 (as in torch)", "padding",
                              f"hint: give the padding as a number, e.g. padding: {half}"
                              " (half the kernel's span)")
            return Inferred((p.out, h, w), f"'same' padding: {h}×{w} kept")
        wh, ww = _windows((c, h, w), k, s, p.pads(), d)
        for win, axis in ((wh, "height"), (ww, "width")):
            if win.span > win.n + 2 * win.p:
                size = f"kernel {_pair(k)}" if win.d == 1 else \
                    f"kernel {_pair(k)} with dilation {_pair(d)} spans {win.span}, which"
                raise OpError(f"{size} is larger than the padded input {axis}"
                              f" {win.n} + 2·{win.p} = {win.n + 2 * win.p} (input {fmt_shape((c, h, w))})",
                              "kernel")
        return Inferred((p.out, wh.out, ww.out), pair_formula(wh, ww), inexact=pair_warnings(wh, ww))

    def params(self, p: ConvParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # weight (out, C/groups, kh, kw) + bias (out,)
        kh, kw = p.kernel
        return p.out * (ins[0][0] // p.groups) * kh * kw + (p.out if p.bias else 0)

    def macs(self, p: ConvParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # each output element: (C/groups)·kh·kw multiply-accumulates
        kh, kw = p.kernel
        return prod(out) * (ins[0][0] // p.groups) * kh * kw

    def saved(self, p: ConvParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # convolution_backward needs the input (weight grad) and the weight (input grad); under
        # autocast both are cast copies: the input unless it already arrives in the low dtype
        return _matmul_saved(prod(ins[0]), self.params(p, ins, out) - (p.out if p.bias else 0), ac)

    def receptive(self, p: ConvParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.windowed(fs[0], p.kernel, p.stride, p.pads(), p.dilation)

    def torch(self, p: ConvParams, ins: tuple[Shape, ...]) -> TorchLayer:
        kw = TorchLayer.given(_CONV_DEFAULTS, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              dilation=p.dilation, groups=p.groups, bias=p.bias)
        return TorchLayer("Conv2d", (ins[0][0], p.out), kw)

    def gpu_local(self, p: ConvParams, gpus: int) -> bool:
        return p.groups % gpus == 0

    def label(self, p: ConvParams) -> str:
        k = p.kernel
        text = f"{_pair(k)}×{_pair(k)}" if k[0] == k[1] else f"{k[0]}×{k[1]}"
        if p.stride != (1, 1):
            text += f" /{_pair(p.stride, ',')}"
        text += f", {p.out}"
        if p.padding != (0, 0):
            text += f", pad {p.padding if isinstance(p.padding, str) else _pair(p.padding, ',')}"
        if p.dilation != (1, 1):
            text += f", dil {_pair(p.dilation, ',')}"
        if p.groups != 1:
            text += f", groups {p.groups}"
        return text


# --- pooling ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PoolParams:
    kernel: Pair = param(PairField(doc="window size"))
    stride: Pair = param(PairField(doc="defaults to the kernel size, as in torch"), None)
    padding: Pair = param(PairField(lo=0), (0, 0))
    ceil_mode: bool = param(BoolField(), False)

    def __post_init__(self) -> None:
        if self.stride is None:  # torch: the stride defaults to the kernel size
            object.__setattr__(self, "stride", self.kernel)


_POOL_DEFAULTS = {"padding": (0, 0), "ceil_mode": False}


class _Pool(OpKind):
    family = "pool"
    Params = PoolParams
    torch_class: ClassVar[str]

    def infer(self, p: PoolParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = _spatial(ins, self.name)
        for kk, pp in zip(p.kernel, p.padding, strict=True):
            if pp > kk / 2:  # torch: pad <= ((k - 1)·dilation + 1) / 2, dilation 1
                raise OpError(f"padding {pp} is more than half the kernel {kk} (torch refuses it)",
                              "padding")
        wh, ww = _windows(shape, p.kernel, p.stride, p.padding, ceil=p.ceil_mode)
        if wh.out < 1 or ww.out < 1:
            raise OpError(f"kernel {_pair(p.kernel)} is larger than the padded input"
                          f" {shape[1] + 2 * p.padding[0]}×{shape[2] + 2 * p.padding[1]}"
                          f" (input {fmt_shape(shape)})", "kernel")
        return Inferred((shape[0], wh.out, ww.out), pair_formula(wh, ww), inexact=pair_warnings(wh, ww))

    def receptive(self, p: PoolParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.windowed(fs[0], p.kernel, p.stride, p.padding)

    def torch(self, p: PoolParams, ins: tuple[Shape, ...]) -> TorchLayer:
        kw = TorchLayer.given(_POOL_DEFAULTS, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              ceil_mode=p.ceil_mode)
        return TorchLayer(self.torch_class, (), kw)

    def saved(self, p: PoolParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # max_pool2d_with_indices saves its input and the int64 argmax indices; avg_pool2d its input
        tensors: tuple[SavedTensor, ...] = (SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),)
        if self.name == "maxpool":
            tensors += (SavedTensor("indices", prod(out), "int64"),)
        return Saved(tensors, ac.ins[0])

    def work(self, p: PoolParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * p.kernel[0] * p.kernel[1]  # one compare or add per window element

    def label(self, p: PoolParams) -> str:
        k = p.kernel
        text = f"{k[0]}×{k[1]}" + (f" /{_pair(p.stride, ',')}" if p.stride != (1, 1) else "")
        return text + (f", pad {_pair(p.padding, ',')}" if p.padding != (0, 0) else "")


@register
class MaxPool(_Pool):
    name, torch_class = "maxpool", "MaxPool2d"
    doc = "max pooling (torch.nn.MaxPool2d); kernel 3 stride 2 = AlexNet's overlapping pooling"
    example = {"name": "pool1", "op": "maxpool", "kernel": 3, "stride": 2}


@register
class AvgPool(_Pool):
    name, torch_class = "avgpool", "AvgPool2d"
    doc = "average pooling (torch.nn.AvgPool2d)"
    example = {"name": "pool", "op": "avgpool", "kernel": 2, "stride": 2}


@dataclass(frozen=True, kw_only=True)
class AdaptiveParams:
    out: Pair = param(PairField(doc="output size [h, w]"))


@register
class AdaptiveAvgPool(OpKind):
    name, family = "adaptive_avgpool", "pool"
    doc = "adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)"
    Params = AdaptiveParams
    example = {"name": "avgpool", "op": "adaptive_avgpool", "out": 6}

    def infer(self, p: AdaptiveParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, self.name)
        oh, ow = p.out
        return Inferred((c, oh, ow), f"adaptive: {h}×{w} → {oh}×{ow}")

    def receptive(self, p: AdaptiveParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.adaptive(fs[0], ins[0], out)

    def torch(self, p: AdaptiveParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("AdaptiveAvgPool2d", (p.out,))

    def saved(self, p: AdaptiveParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # torch lowers a 1×1 output to mean(), which saves nothing; otherwise it saves its input
        if p.out == (1, 1):
            return Saved((), ac.ins[0])
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: AdaptiveParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(ins[0])  # every input element added once

    def label(self, p: AdaptiveParams) -> str:
        return f"→ {p.out[0]}×{p.out[1]}"


# --- normalisation ------------------------------------------------------------------------------

LRN_LOWERINGS = ("fast", "torch")


def lrn_lowering() -> str:
    """How LRN layers are built: "fast" (archviz's LRN module, the default) or "torch"
    (``nn.LocalResponseNorm``), from the environment variable ARCHVIZ_LRN; both compute the same
    formula. An unknown value is refused (exit 2)."""
    text = os.environ.get("ARCHVIZ_LRN", "").strip().lower() or "fast"
    if text not in LRN_LOWERINGS:
        raise ArchvizError(f"ARCHVIZ_LRN={text!r}: expected one of {', '.join(LRN_LOWERINGS)}"
                           " (how LRN layers are built; docs/pytorch.md)")
    return text


@dataclass(frozen=True, kw_only=True)
class LRNParams:
    """The AlexNet paper's formula (section 3.3), channel i of the output at one position:

        b_i = a_i / (k + α · Σ_j a_j²)^β,   j over the ``size`` = n channels around i

    ``alpha`` is that α (as the paper and TensorFlow write it). torch's ``LocalResponseNorm``,
    Caffe's and ONNX's LRN divide their alpha by n, so they are given α·n (docs/spec-format.md).
    """

    size: int = param(PosInt(doc="n, channels in the window"))
    alpha: float = param(FloatField(doc="α of the paper's formula, not divided by n (torch's alpha = α·n)"),
                         1e-4)
    beta: float = param(FloatField(doc="β, the exponent"), 0.75)
    k: float = param(FloatField(doc="k, the additive constant"), 1.0)

    @property
    def torch_alpha(self) -> float:
        """The alpha of torch's LocalResponseNorm (Caffe, ONNX): it divides by n, so α·n."""
        return self.alpha * self.size


@register
class LRN(OpKind):
    name, family = "lrn", "norm"
    doc = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    Params = LRNParams
    example = {"name": "norm1", "op": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2}

    def infer(self, p: LRNParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins[0]) < 2:
            raise OpError(f"lrn needs a (C, H, W) input, got {fmt_shape(ins[0])}")
        return super().infer(p, ins)

    def torch(self, p: LRNParams, ins: tuple[Shape, ...]) -> TorchLayer:
        # torch computes a / (k + (alpha/n)·Σa²)^β: the paper's α is passed as alpha = α·n.
        # "LRN" is archviz's subclass of LocalResponseNorm (same arguments, same maths, fewer
        # kernels and saved tensors: archviz/runtime/lrn.py); ARCHVIZ_LRN=torch keeps torch's.
        cls = "LocalResponseNorm" if lrn_lowering() == "torch" else "LRN"
        return TorchLayer(cls, (p.size,), (("alpha", p.torch_alpha), ("beta", p.beta), ("k", p.k)))

    def saved(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        n, rest = prod(ins[0]), prod(ins[0][1:])
        if lrn_lowering() == "fast":
            # archviz's LRNFunction saves its input and the denominator k + α·Σa², in fp32; the
            # output keeps the input's dtype (a half input is computed in fp32 inside)
            return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                          SavedTensor("denominator", n, "fp32")), ac.ins[0])
        # F.local_response_norm: mul(a, a) saves a; avg_pool3d saves the squares padded to
        # C + n − 1 channels; pow saves its base and its result; div saves a and that result.
        # CPU autocast runs avg_pool3d in fp32, so everything after it is fp32.
        low = "fp32" if ac.compute else ac.ins[0]
        return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                      SavedTensor("padded squares", (ins[0][0] + p.size - 1) * rest, low),
                      SavedTensor("pow base", n, low), SavedTensor("divisor", n, low)), low)

    def work(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # square, window sum (n adds), scale, add k, pow, divide per element
        return prod(ins[0]) * (p.size + 5)

    def reference(self, p: LRNParams, a: Any) -> Any:
        # b_i = a_i / (k + α·Σ_j a_j²)^β, j from i − ⌊n/2⌋ to i + ⌊(n−1)/2⌋ clipped to the channels
        # (the paper's n/2 each side for odd n; torch's window for even n)
        out = a.clone()
        c = a.shape[1]
        for i in range(c):
            lo, hi = max(0, i - p.size // 2), min(c - 1, i + (p.size - 1) // 2)
            out[:, i] = a[:, i] / (p.k + p.alpha * (a[:, lo:hi + 1] ** 2).sum(dim=1)) ** p.beta
        return out

    def label(self, p: LRNParams) -> str:
        return f"n={p.size}, k={p.k:g}, α={p.alpha:g}"


@dataclass(frozen=True, kw_only=True)
class BatchNormParams:
    eps: float = param(FloatField(lo=0.0), 1e-5)
    momentum: float = param(FloatField(lo=0.0), 0.1)
    affine: bool = param(BoolField(), True)


@register
class BatchNorm(OpKind):
    name, family = "batchnorm", "norm"
    doc = "batch normalisation over channels (BatchNorm2d on (C, H, W), BatchNorm1d on (F,))"
    Params = BatchNormParams
    example = {"name": "bn1", "op": "batchnorm"}

    def params(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p.affine else 0  # weight (C,) + bias (C,)

    def buffers(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] + 1  # running_mean, running_var (C,) + num_batches_tracked

    def torch(self, p: BatchNormParams, ins: tuple[Shape, ...]) -> TorchLayer:
        cls = "BatchNorm2d" if len(ins[0]) == 3 else "BatchNorm1d"  # (C, H, W) or (F,)
        kw = TorchLayer.given({"eps": 1e-5, "momentum": 0.1, "affine": True},
                              eps=p.eps, momentum=p.momentum, affine=p.affine)
        return TorchLayer(cls, (ins[0][0],), kw)

    def buffer_bytes(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * 2 * ins[0][0] + 8  # fp32 running mean and var, int64 num_batches_tracked

    def saved(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # native_batch_norm saves the input, the running stats and weight (buffers and params:
        # not counted again) and the batch's mean and 1/std per channel, fp32 even under autocast
        c = ins[0][0]
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),
                      SavedTensor("mean", c, "fp32", per_image=False),
                      SavedTensor("invstd", c, "fp32", per_image=False)), ac.ins[0])

    def work(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])  # statistics (2) and the affine normalisation (2) per element


# --- activations --------------------------------------------------------------------------------

class _Elementwise(OpKind):
    """An activation with no settings: ``torch.nn.<torch_class>()``."""

    family = "act"
    torch_class: ClassVar[str]
    saves: ClassVar[str] = "output"   # what its backward reads: "output" or "input"

    def torch(self, p: Any, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer(self.torch_class)

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # relu, tanh and sigmoid save their output (their gradient is a function of it); gelu,
        # relu6, silu, hardswish and hardsigmoid their input (measured with saved_tensors_hooks)
        return Saved((SavedTensor(self.saves, prod(out), ac.ins[0], self.saves),), ac.ins[0])

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * (1 if self.name == "relu" else 8)  # a compare; a transcendental ~8


def _activation(op: str, torch_class: str, saves: str = "output") -> None:
    register(type(torch_class, (_Elementwise,), {
        "name": op, "torch_class": torch_class, "doc": f"{_ACTIVATIONS[op]} (torch.nn.{torch_class})",
        "example": {"name": op, "op": op}, "saves": saves,
    }))


_ACTIVATIONS = {"relu": "rectified linear unit", "tanh": "hyperbolic tangent", "sigmoid": "logistic sigmoid",
                "gelu": "Gaussian error linear unit"}
for _op, _cls in (("relu", "ReLU"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid")):
    _activation(_op, _cls)
_activation("gelu", "GELU", saves="input")


@dataclass(frozen=True, kw_only=True)
class LeakyParams:
    negative_slope: float = param(FloatField(), 0.01)


@register
class LeakyReLU(OpKind):
    name, family = "leaky_relu", "act"
    doc = "leaky ReLU (torch.nn.LeakyReLU)"
    Params = LeakyParams
    example = {"name": "leaky_relu", "op": "leaky_relu"}

    def torch(self, p: LeakyParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("LeakyReLU", (p.negative_slope,))

    def saved(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * prod(out)


@register
class Softmax(OpKind):
    name, family = "softmax", "act"
    doc = "softmax over channels / features (torch.nn.Softmax(dim=1))"
    example = {"name": "prob", "op": "softmax"}

    def torch(self, p: NoParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Softmax", (), (("dim", 1),))

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # _softmax saves its output; CPU autocast keeps the input's dtype
        return Saved((SavedTensor("output", prod(out), ac.ins[0], "output"),), ac.ins[0])

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 5 * prod(out)  # max, subtract, exp, sum, divide

    def gpu_local(self, p: NoParams, gpus: int) -> bool:
        return False  # normalises over every channel, so it needs all GPUs' shares


# --- regularisation, reshape, fully connected ---------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DropoutParams:
    p: float = param(FloatField(lo=0.0, hi=1.0, doc="probability of zeroing"), 0.5)


@register
class Dropout(OpKind):
    name, family = "dropout", "regularise"
    doc = "dropout (torch.nn.Dropout); identity at inference"
    Params = DropoutParams
    example = {"name": "drop6", "op": "dropout", "p": 0.5}

    def torch(self, p: DropoutParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Dropout", (p.p,))

    def saved(self, p: DropoutParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # the mask: on the CPU a tensor of the input's dtype, on CUDA bool (native_dropout)
        mask = "bool" if ac.device == "cuda" else ac.ins[0]
        return Saved((SavedTensor("mask", prod(out), mask),), ac.ins[0])

    def work(self, p: DropoutParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * prod(out)  # draw and scale

    def label(self, p: DropoutParams) -> str:
        return f"p={p.p:g}"


@register
class Flatten(OpKind):
    name, family = "flatten", "reshape"
    doc = "flatten (C, H, W) to (C·H·W,) (torch.nn.Flatten)"
    example = {"name": "flatten", "op": "flatten"}

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        return Inferred((prod(shape),), " × ".join(map(str, shape)) + f" = {prod(shape)}")

    def torch(self, p: NoParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Flatten")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        return Saved((), ac.ins[0], view=True)  # a view of its input: no copy, nothing saved


@dataclass(frozen=True, kw_only=True)
class LinearParams:
    out: int = param(PosInt(doc="output features"))
    bias: bool = param(BoolField(), True)


@register
class Linear(OpKind):
    name, family = "linear", "linear"
    doc = "fully connected layer (torch.nn.Linear)"
    counts_neurons = True
    Params = LinearParams
    example = {"name": "fc6", "op": "linear", "out": 4096}

    def infer(self, p: LinearParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        if len(shape) != 1:
            raise OpError(f"linear is fed a spatial tensor {fmt_shape(shape)} without flatten",
                          hint="hint: add a layer {op: flatten} before it")
        return Inferred((p.out,), f"{shape[0]} → {p.out}")

    def params(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][0] * p.out + (p.out if p.bias else 0)  # weight (out, in) + bias

    def macs(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][0] * p.out

    def receptive(self, p: LinearParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image)  # each unit reads every position

    def torch(self, p: LinearParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Linear", (ins[0][0], p.out), TorchLayer.given({"bias": True}, bias=p.bias))

    def saved(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # addmm saves its input (weight grad) and the weight, transposed (input grad)
        return _matmul_saved(prod(ins[0]), ins[0][0] * p.out, ac)

    def gpu_local(self, p: LinearParams, gpus: int) -> bool:
        return False

    def label(self, p: LinearParams) -> str:
        return str(p.out)


# --- merges -------------------------------------------------------------------------------------

class _Merge(OpKind):
    family = "merge"
    multi_input = True

    def receptive(self, p: NoParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.union(fs, image)


@register
class Add(_Merge):
    name = "add"
    doc = "elementwise sum of its inputs (residual connections)"
    example = {"name": "sum", "op": "add", "from": ["a", "b"]}

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(set(ins)) != 1:
            raise OpError("add needs inputs of one shape, got " + " and ".join(map(fmt_shape, ins)),
                          "from")
        return Inferred(ins[0], " + ".join(map(fmt_shape, ins)))

    def torch(self, p: NoParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Add", inline="{plus}")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        return Saved((), _promote(ac.ins))  # the gradient of a sum needs no tensor

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return (len(ins) - 1) * prod(out)


@register
class Concat(_Merge):
    name = "concat"
    doc = "concatenation of its inputs along channels (Inception branches)"
    example = {"name": "cat", "op": "concat", "from": ["a", "b"]}

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len({s[1:] for s in ins}) != 1 or len({len(s) for s in ins}) != 1:
            raise OpError("concat needs inputs that differ only in channels, got "
                          + " and ".join(map(fmt_shape, ins)), "from")
        c = sum(s[0] for s in ins)
        return Inferred((c, *ins[0][1:]), " + ".join(str(s[0]) for s in ins) + f" = {c} channels")

    def torch(self, p: NoParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Concat", inline="torch.cat([{xs}], dim=1)")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        return Saved((), _promote(ac.ins))  # cat's backward slices the gradient: nothing saved

# --- ops for imported models (archviz import) ---------------------------------------------------

@register
class ReLU6(_Elementwise):
    name, torch_class, saves = "relu6", "ReLU6", "input"
    doc = "ReLU clipped at 6, min(max(x, 0), 6) (torch.nn.ReLU6; MobileNetV2)"
    example = {"name": "relu6", "op": "relu6"}


@register
class SiLU(_Elementwise):
    name, torch_class, saves = "silu", "SiLU", "input"
    doc = "sigmoid-weighted linear unit x·σ(x), a.k.a. swish (torch.nn.SiLU; EfficientNet)"
    example = {"name": "silu", "op": "silu"}


@register
class Hardswish(_Elementwise):
    name, torch_class, saves = "hardswish", "Hardswish", "input"
    doc = "hard swish x·min(max(x + 3, 0), 6)/6 (torch.nn.Hardswish; MobileNetV3)"
    example = {"name": "hardswish", "op": "hardswish"}


@register
class Hardsigmoid(_Elementwise):
    name, torch_class, saves = "hardsigmoid", "Hardsigmoid", "input"
    doc = "hard sigmoid min(max(x + 3, 0), 6)/6 (torch.nn.Hardsigmoid; MobileNetV3)"
    example = {"name": "hardsigmoid", "op": "hardsigmoid"}


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """Two per-image shapes of one rank broadcast elementwise (torch's rule, sizes of 1 stretch);
    None when they do not."""
    if len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


@register
class Mul(_Merge):
    name = "mul"
    doc = ("elementwise product of two inputs, sizes of 1 broadcast (squeeze-and-excitation:"
           " (C, H, W) × (C, 1, 1))")
    example = {"name": "scale", "op": "mul", "from": ["a", "b"]}

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins) != 2:
            raise OpError(f"mul takes two inputs, got {len(ins)}", "from")
        out = broadcast(ins[0], ins[1])
        if out is None:
            raise OpError("mul needs inputs that broadcast (equal sizes, or 1), got "
                          + " and ".join(map(fmt_shape, ins)), "from")
        return Inferred(out, " × ".join(map(fmt_shape, ins)))

    def torch(self, p: NoParams, ins: tuple[Shape, ...]) -> TorchLayer:
        return TorchLayer("Mul", inline="torch.mul({xs})")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # each factor's gradient is the other factor: both inputs are saved (measured)
        factors = tuple(SavedTensor(f"input {i}", prod(s), ac.ins[i], "input", i) for i, s in enumerate(ins))
        return Saved(factors, _promote(ac.ins))

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)


@dataclass(frozen=True, kw_only=True)
class OpaqueParams:
    """What tracing measured of a layer archviz cannot describe (``archviz import --allow-opaque``)."""

    module: str = param(typed.TextField(doc="the traced module type or function, e.g. my_models.Mystery"))
    traced_shape: Shape = param(typed.ShapeField(doc="its output shape per image, measured by tracing"))
    traced_params: int = param(typed.Count(doc="its parameter count, measured by tracing"), 0)


class OpaqueLayer(OpError):
    """An opaque layer was asked for a torch module: there is none to build."""


@register
class Opaque(OpKind):
    name, family = "opaque", "opaque"
    doc = ("a layer archviz cannot describe, kept with its traced output shape and parameter count"
           " so that totals stay true; not compiled")
    Params = OpaqueParams
    example = {"name": "mystery", "op": "opaque", "module": "my_models.Mystery",
               "traced_shape": [8, 12, 12], "traced_params": 12}

    def infer(self, p: OpaqueParams, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(p.traced_shape, f"traced at import ({p.module})")

    def params(self, p: OpaqueParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return p.traced_params

    def receptive(self, p: OpaqueParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image)  # unknown: assume it may read every position

    def torch(self, p: OpaqueParams, ins: tuple[Shape, ...]) -> TorchLayer:
        raise OpaqueLayer(f"cannot compile an opaque layer ({p.module}): archviz knows only its traced"
                          " shape and parameter count", hint="hint: replace it in the spec by ops"
                          " archviz knows (see `archviz schema`), or compile the source model itself")

    def gpu_local(self, p: OpaqueParams, gpus: int) -> bool:
        return False

    def label(self, p: OpaqueParams) -> str:
        return f"traced: {p.module.rsplit('.', 1)[-1]}"
