"""Convolution: ``conv`` (torch.nn.Conv2d), ``conv1d`` and ``conv3d`` (Conv1d, Conv3d), and
``conv_transpose`` (torch.nn.ConvTranspose2d)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from math import prod
from typing import Any, ClassVar

from ..record import record
from . import receptive as rf
from .arith import TWindow, Window, nd_formula, nd_warnings, pair_formula, pair_warnings
from .fields import BoolField, PaddingField, Pair, PairField, PosInt, Settings, SizesField, param
from .registry import OPS, Inferred, OpError, OpKind, ParamsOnUse, Shape, TorchLayer, fmt_shape, register
from .registry import pair_text as _pair
from .registry import spatial as _spatial
from .registry import windows as _windows
from .saved import Autocast, Saved
from .saved import matmul_saved as _matmul_saved
from .source import Mapped, Source, Split, Unmapped, no_auto_pad, pair, sym_pads

# --- convolution --------------------------------------------------------------------------------

class ConvParams(Settings):
    """The settings of ``conv``."""
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
    ranks = (3,)          # (C, H, W); Conv1d / Conv3d are ops of their own
    Params = ConvParams
    example = {"name": "conv1", "op": "conv", "out": 96, "kernel": 11, "stride": 4}
    torch_modules = ("torch.nn.Conv2d",)
    onnx_types = ("Conv",)
    onnx_weights = ("weight", "bias")

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

    def saved(self, p: ConvParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # convolution_backward needs the input (weight grad) and the weight (input grad); under
        # autocast both are cast copies: the input unless it already arrives in the low dtype
        return _matmul_saved(prod(ins[0]), self.params(p, ins, out) - (p.out if p.bias else 0), ac)

    def receptive(self, p: ConvParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.windowed(fs[0], p.kernel, p.stride, p.pads(), p.dilation)

    def torch(self, p: ConvParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given(_CONV_DEFAULTS, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              dilation=p.dilation, groups=p.groups, bias=p.bias)
        return TorchLayer("Conv2d", (ins[0][0], p.out), kw)

    def gpu_local(self, p: ConvParams, gpus: int) -> bool:
        return p.groups % gpus == 0

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["padding_mode"] != "zeros":
            raise Unmapped(f"padding_mode={a['padding_mode']!r} (only zeros)")
        pad = a["padding"] if isinstance(a["padding"], str) else pair(a["padding"])
        return self.layer(out=a["out_channels"], kernel=pair(a["kernel_size"]), stride=pair(a["stride"]),
                          padding=pad, dilation=pair(a["dilation"]), groups=a["groups"],
                          bias=a["bias"] is not None)

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        no_auto_pad(a, " (only explicit pads)")
        w = src.const(1)
        if w is not None and w.ndim in _CONV_ND:   # a 1-d or 3-d kernel: conv1d, conv3d
            return _CONV_ND[w.ndim].from_weight(src, w)
        if w is None or w.ndim != 4:
            raise Unmapped("a convolution whose weight is an initializer")
        return self.layer(out=int(w.shape[0]), kernel=(int(w.shape[2]), int(w.shape[3])),
                          stride=tuple(a.get("strides", [1, 1])), padding=sym_pads(a.get("pads")),
                          dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)),
                          bias=src.given(2))

    def split(self, p: ConvParams, ins: tuple[Shape, ...]) -> Split:
        # every output row reads all its group's input channels; a grouped conv (AlexNet's conv2,
        # conv4, conv5) keeps groups/towers groups per tower, so its input splits evenly
        return Split(whole_input=True, grouped=p.groups != 1, even_inputs=True)

    def shard(self, p: ConvParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        # weight (rows, C/groups, kh, kw): a grouped conv's tower reads C/towers channels
        grouped = p.groups > 1
        c_in = ins[0][0] // towers if grouped else ins[0][0]
        own = replace(p, out=rows, groups=p.groups // towers if grouped else 1)
        return self.torch(own, ((c_in, *ins[0][1:]),))

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


# --- 1-d and 3-d convolution ----------------------------------------------------------------------
# Ops of their own beside the 2-d `conv`, so that every 2-d spec, message and golden file stays as
# it is. The rule is the same per axis: out = ⌊(n + 2p − d·(k − 1) − 1)/s⌋ + 1 (torch.nn.Conv1d,
# Conv3d docs); weight (out, C/groups, *kernel).

@cache   # one class per rank, made on first use (ParamsOnUse)
def _conv_nd_params(n: int) -> type:
    sizes = (1,) * n

    @record(kw_only=True)
    class ConvNdParams:
        """The settings of ``conv1d`` and ``conv3d`` (one class per rank)."""
        out: int = param(PosInt(doc="output channels, i.e. the number of kernels"))
        kernel: tuple[int, ...] = param(SizesField(n=n, doc="kernel size"))
        stride: tuple[int, ...] = param(SizesField(n=n), sizes)
        padding: Any = param(SizesField(n=n, lo=0, words=True, doc="'valid' is read as 0"), (0,) * n)
        dilation: tuple[int, ...] = param(SizesField(n=n), sizes)
        groups: int = param(PosInt(doc="channel groups"), 1)
        bias: bool = param(BoolField(), True)

        def __post_init__(self) -> None:
            if self.padding == "valid":  # torch: 'valid' is no padding
                object.__setattr__(self, "padding", (0,) * n)

        def pads(self) -> tuple[int, ...]:
            """'same' pads d·(k − 1) in all, the smaller half first (as torch)."""
            if self.padding == "same":
                return tuple(d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel, strict=True))
            return tuple(self.padding)

    ConvNdParams.__name__ = ConvNdParams.__qualname__ = f"Conv{n}dParams"
    return ConvNdParams


def _sizes_text(v: tuple[int, ...], sep: str = "×") -> str:
    return str(v[0]) if len(set(v)) == 1 else sep.join(map(str, v))


def _as_sizes(v: Any, n: int) -> tuple[int, ...]:
    """A torch size argument (``3`` or ``(3, 3, 3)``) as an n-tuple."""
    return (int(v),) * n if isinstance(v, int) else tuple(int(x) for x in v)


def _onnx_pads(pads: Any, n: int) -> tuple[int, ...]:
    """ONNX ``pads`` (begins, then ends) as symmetric padding; asymmetric ones are refused."""
    pads = list(pads or [0] * 2 * n)
    if pads[:n] != pads[n:]:
        raise Unmapped(f"asymmetric pads {pads}")
    return tuple(int(x) for x in pads[:n])


class _ConvNd(OpKind):
    family = "conv"
    counts_neurons = True
    dims: ClassVar[int]
    axes: ClassVar[str]
    torch_class: ClassVar[str]

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        c, *sizes = ins[0]
        if c % p.groups:
            raise OpError(f"{c} input channels are not divisible by groups={p.groups}", "groups")
        if p.out % p.groups:
            raise OpError(f"out={p.out} is not divisible by groups={p.groups}", "groups")
        if p.padding == "same":
            if set(p.stride) != {1}:
                raise OpError("padding 'same' needs stride 1 (as in torch)", "padding",
                              f"hint: give the padding as numbers, e.g. padding: {list(p.pads())}")
            return Inferred((p.out, *sizes), f"'same' padding: {'×'.join(map(str, sizes))} kept")
        wins = tuple(Window(n, k, s, pad, d) for n, k, s, pad, d
                     in zip(sizes, p.kernel, p.stride, p.pads(), p.dilation, strict=True))
        for win, axis in zip(wins, self.axes, strict=True):
            if win.span > win.n + 2 * win.p:
                raise OpError(f"kernel {_sizes_text(p.kernel)} spans {win.span}, which is larger than the"
                              f" padded input {axis} {win.n} + 2·{win.p} = {win.n + 2 * win.p}"
                              f" (input {fmt_shape(ins[0])})", "kernel")
        return Inferred((p.out, *(w.out for w in wins)), nd_formula(wins, self.axes),
                        inexact=nd_warnings(wins, self.axes))

    def params(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        # weight (out, C/groups, *kernel) + bias (out,)
        return p.out * (ins[0][0] // p.groups) * prod(p.kernel) + (p.out if p.bias else 0)

    def macs(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        # each output element: (C/groups)·∏kernel multiply-accumulates
        return prod(out) * (ins[0][0] // p.groups) * prod(p.kernel)

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        # as conv: convolution_backward keeps the input and the weight (cast copies under autocast)
        return _matmul_saved(prod(ins[0]), self.params(p, ins, out) - (p.out if p.bias else 0), ac)

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return fs[0]   # fields are (H, W) arithmetic: a (C, L) or (C, D, H, W) input has none

    def torch(self, p: Any, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        one, zero = (1,) * self.dims, (0,) * self.dims
        defaults = {"stride": one, "padding": zero, "dilation": one, "groups": 1, "bias": True}
        kw = TorchLayer.given(defaults, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              dilation=p.dilation, groups=p.groups, bias=p.bias)
        return TorchLayer(self.torch_class, (ins[0][0], p.out), kw)

    def gpu_local(self, p: Any, gpus: int) -> bool:
        return p.groups % gpus == 0

    def from_module(self, src: Source) -> Mapped:
        a, n = src.attrs, self.dims
        if a["padding_mode"] != "zeros":
            raise Unmapped(f"padding_mode={a['padding_mode']!r} (only zeros)")
        pad = a["padding"] if isinstance(a["padding"], str) else _as_sizes(a["padding"], n)
        return self.layer(out=a["out_channels"], kernel=_as_sizes(a["kernel_size"], n),
                          stride=_as_sizes(a["stride"], n), padding=pad,
                          dilation=_as_sizes(a["dilation"], n), groups=a["groups"],
                          bias=a["bias"] is not None)

    def from_weight(self, src: Source, w: Any) -> Mapped:
        """An ONNX Conv whose weight has this rank (``conv`` hands it over)."""
        a, n = src.attrs, self.dims
        return self.layer(out=int(w.shape[0]), kernel=tuple(int(k) for k in w.shape[2:]),
                          stride=tuple(a.get("strides", [1] * n)), padding=_onnx_pads(a.get("pads"), n),
                          dilation=tuple(a.get("dilations", [1] * n)), groups=int(a.get("group", 1)),
                          bias=src.given(2))

    def split(self, p: Any, ins: tuple[Shape, ...]) -> Split:
        return Split(whole_input=True, grouped=p.groups != 1, even_inputs=True)

    def shard(self, p: Any, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        grouped = p.groups > 1
        c_in = ins[0][0] // towers if grouped else ins[0][0]
        own = replace(p, out=rows, groups=p.groups // towers if grouped else 1)
        return self.torch(own, ((c_in, *ins[0][1:]),))

    def label(self, p: Any) -> str:
        text = "×".join(map(str, p.kernel))
        if set(p.stride) != {1}:
            text += f" /{_sizes_text(p.stride, ',')}"
        text += f", {p.out}"
        if p.padding != (0,) * self.dims:
            text += f", pad {p.padding if isinstance(p.padding, str) else _sizes_text(p.padding, ',')}"
        if set(p.dilation) != {1}:
            text += f", dil {_sizes_text(p.dilation, ',')}"
        return text + (f", groups {p.groups}" if p.groups != 1 else "")


@register
class Conv1d(_ConvNd):
    name, dims, axes, torch_class = "conv1d", 1, "L", "Conv1d"
    doc = "1-D convolution over (C, L) (torch.nn.Conv1d): audio, sequences"
    ranks = (2,)
    rank_text = "a (C, L)"
    Params = ParamsOnUse(_conv_nd_params, 1)
    example = {"name": "conv", "op": "conv1d", "out": 16, "kernel": 3, "padding": 1}
    torch_modules = ("torch.nn.Conv1d",)


@register
class Conv3d(_ConvNd):
    name, dims, axes, torch_class = "conv3d", 3, "DHW", "Conv3d"
    doc = "3-D convolution over (C, D, H, W) (torch.nn.Conv3d): video, volumes"
    ranks = (4,)
    rank_text = "a (C, D, H, W)"
    Params = ParamsOnUse(_conv_nd_params, 3)
    example = {"name": "conv", "op": "conv3d", "out": 16, "kernel": 3, "padding": 1}
    torch_modules = ("torch.nn.Conv3d",)


_CONV_ND: dict[int, OpKind] = {3: OPS["conv1d"], 5: OPS["conv3d"]}   # ONNX Conv by weight rank


# --- transposed convolution ---------------------------------------------------------------------

class ConvTransposeParams(Settings):
    """The settings of ``conv_transpose``."""
    out: int = param(PosInt(doc="output channels"))
    kernel: Pair = param(PairField(doc="kernel size"))
    stride: Pair = param(PairField(doc="the upsampling factor"), (1, 1))
    padding: Pair = param(PairField(lo=0, doc="removed from each side of the output"), (0, 0))
    output_padding: Pair = param(PairField(lo=0, doc="added to one side (below the stride)"), (0, 0))
    dilation: Pair = param(PairField(), (1, 1))
    groups: int = param(PosInt(doc="channel groups"), 1)
    bias: bool = param(BoolField(), True)


_TRANSPOSE_DEFAULTS = {"stride": (1, 1), "padding": (0, 0), "output_padding": (0, 0), "dilation": (1, 1),
                       "groups": 1, "bias": True}


@register
class ConvTranspose(OpKind):
    name, family = "conv_transpose", "conv"
    doc = "2-D transposed convolution (torch.nn.ConvTranspose2d): learned upsampling"
    counts_neurons = True
    ranks = (3,)
    Params = ConvTransposeParams
    example = {"name": "up", "op": "conv_transpose", "out": 8, "kernel": 2, "stride": 2}
    torch_modules = ("torch.nn.ConvTranspose2d",)
    onnx_types = ("ConvTranspose",)
    onnx_weights = ("weight", "bias")

    def infer(self, p: ConvTransposeParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, self.name)
        if c % p.groups:
            raise OpError(f"{c} input channels are not divisible by groups={p.groups}", "groups")
        if p.out % p.groups:
            raise OpError(f"out={p.out} is not divisible by groups={p.groups}", "groups")
        for o, s, d in zip(p.output_padding, p.stride, p.dilation, strict=True):
            if o >= s and o >= d:   # torch: "output padding must be smaller than either stride or dilation"
                raise OpError(f"output_padding {o} must be smaller than the stride {s} or the dilation {d}"
                              " (as in torch)", "output_padding")
        # out = (n − 1)·s − 2p + d·(k − 1) + output_padding + 1 (torch.nn.ConvTranspose2d docs)
        wins = tuple(TWindow(n, k, s, pad, d, o) for n, k, s, pad, d, o in
                     zip((h, w), p.kernel, p.stride, p.padding, p.dilation, p.output_padding, strict=True))
        for win, axis in zip(wins, ("height", "width"), strict=True):
            if win.out < 1:
                raise OpError(f"the output {axis} {win.formula()} is not positive: padding {win.p} removes"
                              f" more than the layer makes (input {fmt_shape(ins[0])})", "padding")
        text = wins[0].formula() if wins[0] == wins[1] else f"H: {wins[0].formula()}; W: {wins[1].formula()}"
        return Inferred((p.out, wins[0].out, wins[1].out), text)

    def params(self, p: ConvTransposeParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # weight (C_in, out/groups, kh, kw) + bias (out,)
        return ins[0][0] * (p.out // p.groups) * prod(p.kernel) + (p.out if p.bias else 0)

    def macs(self, p: ConvTransposeParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # each input element is scattered through its group's (out/groups)·kh·kw weights:
        # C_in·(out/groups)·kh·kw per input position (FlopCounterMode's conv_flop_count, transposed)
        return prod(ins[0]) * (p.out // p.groups) * prod(p.kernel)

    def saved(self, p: ConvTransposeParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # convolution_backward (transposed) keeps the input and the weight, as conv
        return _matmul_saved(prod(ins[0]), self.params(p, ins, out) - (p.out if p.bias else 0), ac)

    def receptive(self, p: ConvTransposeParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        # neighbouring outputs read different numbers of inputs (a stride-s upsampling): no regular
        # grid of fields, so none is given from here on (docs/receptive-fields.md)
        return rf.NONE

    def torch(self, p: ConvTransposeParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given(_TRANSPOSE_DEFAULTS, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              output_padding=p.output_padding, groups=p.groups, bias=p.bias,
                              dilation=p.dilation)
        return TorchLayer("ConvTranspose2d", (ins[0][0], p.out), kw)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["padding_mode"] != "zeros":
            raise Unmapped(f"padding_mode={a['padding_mode']!r} (only zeros)")
        return self.layer(out=a["out_channels"], kernel=pair(a["kernel_size"]), stride=pair(a["stride"]),
                          padding=pair(a["padding"]), output_padding=pair(a["output_padding"]),
                          dilation=pair(a["dilation"]), groups=a["groups"], bias=a["bias"] is not None)

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        no_auto_pad(a, " (only explicit pads)")
        w = src.const(1)
        if w is None or w.ndim != 4 or "output_shape" in a:
            raise Unmapped("a 2-d transposed convolution whose weight is an initializer,"
                           " without output_shape")
        group = int(a.get("group", 1))
        return self.layer(out=int(w.shape[1]) * group, kernel=(int(w.shape[2]), int(w.shape[3])),
                          stride=tuple(a.get("strides", [1, 1])), padding=sym_pads(a.get("pads")),
                          output_padding=tuple(a.get("output_padding", [0, 0])),
                          dilation=tuple(a.get("dilations", [1, 1])), groups=group, bias=src.given(2))

    def split(self, p: ConvTransposeParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="transposed convolutions cannot run split over towers yet")

    def label(self, p: ConvTransposeParams) -> str:
        text = f"{p.kernel[0]}×{p.kernel[1]}" + (f" ×{_pair(p.stride, ',')}" if p.stride != (1, 1) else "")
        text += f", {p.out}"
        if p.padding != (0, 0):
            text += f", pad {_pair(p.padding, ',')}"
        if p.output_padding != (0, 0):
            text += f", out pad {_pair(p.output_padding, ',')}"
        if p.dilation != (1, 1):
            text += f", dil {_pair(p.dilation, ',')}"
        return text + (f", groups {p.groups}" if p.groups != 1 else "")
