"""Pooling: ``maxpool``, ``avgpool``, ``adaptive_avgpool``."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from . import receptive as rf
from .arith import pair_formula, pair_warnings
from .fields import BoolField, Pair, PairField, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .registry import pair_text as _pair
from .registry import spatial as _spatial
from .registry import windows as _windows
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped, no_auto_pad, pair, sym_pads

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
    ranks = (3,)          # (C, H, W)
    Params = PoolParams
    torch_class: ClassVar[str]
    ceil_arg: ClassVar[int]        # position of ceil_mode in the functional form (F.max_pool2d: 5)

    def refuse(self, src: Source, torch_form: bool) -> None:
        """Raise :class:`Unmapped` for the variants this pool has and archviz does not."""

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        self.refuse(src, True)
        stride = a["stride"] if a["stride"] not in (None, ()) else a["kernel_size"]
        return self.layer(kernel=pair(a["kernel_size"]), stride=pair(stride), padding=pair(a["padding"]),
                          ceil_mode=bool(a["ceil_mode"]))

    def from_call(self, src: Source) -> Mapped:
        k = src.arg(1, "kernel_size")
        s = src.arg(2, "stride") or k
        return self.layer(kernel=pair(k), stride=pair(s), padding=pair(src.arg(3, "padding", 0)),
                          ceil_mode=bool(src.arg(self.ceil_arg, "ceil_mode", False)))

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        no_auto_pad(a)
        k = tuple(a["kernel_shape"])
        if len(k) != 2:
            raise Unmapped(f"a {len(k)}-d window (only 2-d)")
        self.refuse(src, False)
        return self.layer(kernel=k, stride=tuple(a.get("strides", k)), padding=sym_pads(a.get("pads")),
                          ceil_mode=bool(a.get("ceil_mode", 0)))

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

    def torch(self, p: PoolParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given(_POOL_DEFAULTS, kernel_size=p.kernel, stride=p.stride, padding=p.padding,
                              ceil_mode=p.ceil_mode)
        return TorchLayer(self.torch_class, (), kw)

    def saved(self, p: PoolParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
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
    name, torch_class, ceil_arg = "maxpool", "MaxPool2d", 5
    doc = "max pooling (torch.nn.MaxPool2d); kernel 3 stride 2 = AlexNet's overlapping pooling"
    example = {"name": "pool1", "op": "maxpool", "kernel": 3, "stride": 2}
    torch_modules = ("torch.nn.MaxPool2d",)
    torch_functions = ("torch.nn.functional.max_pool2d",)
    onnx_types = ("MaxPool",)

    def refuse(self, src: Source, torch_form: bool) -> None:
        a = src.attrs
        if torch_form and (a["dilation"] not in (1, (1, 1)) or a["return_indices"]):
            raise Unmapped("dilation or return_indices")
        if not torch_form and (list(a.get("dilations", [1, 1])) != [1, 1] or len(src.outputs) > 1):
            raise Unmapped("dilations or indices")


@register
class AvgPool(_Pool):
    name, torch_class, ceil_arg = "avgpool", "AvgPool2d", 4
    doc = "average pooling (torch.nn.AvgPool2d)"
    example = {"name": "pool", "op": "avgpool", "kernel": 2, "stride": 2}
    torch_modules = ("torch.nn.AvgPool2d",)
    torch_functions = ("torch.nn.functional.avg_pool2d",)
    onnx_types = ("AveragePool",)

    def refuse(self, src: Source, torch_form: bool) -> None:
        a = src.attrs
        if torch_form and (not a["count_include_pad"] or a["divisor_override"] is not None):
            raise Unmapped("count_include_pad=False or divisor_override")
        if not torch_form and not a.get("count_include_pad", 0) and sym_pads(a.get("pads")) != (0, 0):
            raise Unmapped("count_include_pad=0 with padding (only torch's default)")


@dataclass(frozen=True, kw_only=True)
class AdaptiveParams:
    out: Pair = param(PairField(doc="output size [h, w]"))


@register
class AdaptiveAvgPool(OpKind):
    name, family = "adaptive_avgpool", "pool"
    doc = "adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)"
    Params = AdaptiveParams
    ranks = (3,)
    example = {"name": "avgpool", "op": "adaptive_avgpool", "out": 6}
    torch_modules = ("torch.nn.AdaptiveAvgPool2d",)
    torch_functions = ("torch.nn.functional.adaptive_avg_pool2d",)
    onnx_types = ("GlobalAveragePool",)   # x.mean((2, 3)), ReduceMean: the mean op (archviz/ops/reduce.py)

    def from_module(self, src: Source) -> Mapped:
        assert src.out is not None
        return self.layer(out=(src.out[1], src.out[2]))  # the traced size (output_size may hold None)

    def from_call(self, src: Source) -> Mapped:
        return self.from_module(src)

    def from_onnx(self, src: Source) -> Mapped:
        return self.layer(out=(1, 1))

    def infer(self, p: AdaptiveParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = _spatial(ins, self.name)
        oh, ow = p.out
        return Inferred((c, oh, ow), f"adaptive: {h}×{w} → {oh}×{ow}")

    def receptive(self, p: AdaptiveParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.adaptive(fs[0], ins[0], out)

    def torch(self, p: AdaptiveParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("AdaptiveAvgPool2d", (p.out,))

    def saved(self, p: AdaptiveParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # torch lowers a 1×1 output to mean(), which saves nothing; otherwise it saves its input
        if p.out == (1, 1):
            return Saved((), ac.ins[0])
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: AdaptiveParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(ins[0])  # every input element added once

    def label(self, p: AdaptiveParams) -> str:
        return f"→ {p.out[0]}×{p.out[1]}"
