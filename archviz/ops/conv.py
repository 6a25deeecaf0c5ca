"""Convolution: ``conv`` (torch.nn.Conv2d)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

from . import receptive as rf
from .arith import pair_formula, pair_warnings
from .fields import BoolField, PaddingField, Pair, PairField, PosInt, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .registry import pair_text as _pair
from .registry import spatial as _spatial
from .registry import windows as _windows
from .saved import Autocast, Saved
from .saved import matmul_saved as _matmul_saved
from .source import Mapped, Source, Split, Unmapped, no_auto_pad, pair, sym_pads

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
        if w is None or w.ndim != 4:
            raise Unmapped("a 2-d convolution whose weight is an initializer")
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
