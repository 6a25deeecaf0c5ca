"""Pooling: ``maxpool``, ``avgpool``, ``adaptive_avgpool`` over (C, H, W); their 1-d and 3-d
forms (``maxpool1d``, ``avgpool3d``, ...) and adaptive max pooling."""

from __future__ import annotations

from functools import cache
from math import prod
from typing import Any, ClassVar

from ..record import record
from . import receptive as rf
from .arith import Window, nd_formula, nd_warnings, pair_formula, pair_warnings
from .fields import BoolField, Pair, PairField, Settings, SizesField, param
from .registry import OPS, Inferred, OpError, OpKind, ParamsOnUse, Shape, TorchLayer, fmt_shape, register
from .registry import pair_text as _pair
from .registry import spatial as _spatial
from .registry import windows as _windows
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped, no_auto_pad, pair, sym_pads

# --- pooling ------------------------------------------------------------------------------------

class PoolParams(Settings):
    """The settings of ``maxpool`` and ``avgpool``."""
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
        if len(k) != 2:   # a 1-d or 3-d window: maxpool1d, avgpool3d, ...
            if f"{self.name}{len(k)}d" not in OPS:
                raise Unmapped(f"a {len(k)}-d window (only 1-d, 2-d and 3-d)")
            return OPS[f"{self.name}{len(k)}d"].from_onnx(src)
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


class AdaptiveParams(Settings):
    """The settings of ``adaptive_avgpool`` and ``adaptive_maxpool``."""
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
        rank = len(src.ins[0]) if src.ins else 3   # GlobalAveragePool, by the input's rank
        return self.layer(out=(1, 1)) if rank == 3 else _global(f"adaptive_avgpool{rank - 1}d")

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


# --- 1-d and 3-d pooling --------------------------------------------------------------------------
# Ops of their own beside the 2-d ones (whose specs, messages and golden files stay as they are);
# per axis the same rule, out = ⌊(n + 2p − k)/s⌋ + 1 (⌈⌉ with ceil_mode; torch.nn.MaxPool1d/3d docs).

@cache   # one class per rank, shared by max and avg (a dataclass costs ~1 ms to create)
def _pool_nd_params(n: int) -> type:
    @record(kw_only=True)
    class PoolNdParams:
        """The settings of the 1-d and 3-d max and average pools (one class per rank)."""
        kernel: tuple[int, ...] = param(SizesField(n=n, doc="window size"))
        stride: tuple[int, ...] = param(SizesField(n=n, doc="defaults to the kernel size, as in torch"), None)
        padding: tuple[int, ...] = param(SizesField(n=n, lo=0), (0,) * n)
        ceil_mode: bool = param(BoolField(), False)

        def __post_init__(self) -> None:
            if self.stride is None:  # torch: the stride defaults to the kernel size
                object.__setattr__(self, "stride", self.kernel)

    PoolNdParams.__name__ = PoolNdParams.__qualname__ = f"Pool{n}dParams"
    return PoolNdParams


def _sizes(v: Any, n: int) -> tuple[int, ...]:
    """A torch size argument (``3`` or ``(3, 3, 3)``) as an n-tuple."""
    return (int(v),) * n if isinstance(v, int) else tuple(int(x) for x in v)


def _low(ac: Autocast, fp32_list: bool) -> str:
    """The dtype a pool computes in: CPU autocast runs the 3-d pools in fp32 (its fp32 op list:
    max_pool3d, avg_pool3d, adaptive_*_pool3d), casting a half input to a new fp32 copy."""
    return "fp32" if fp32_list and ac.compute and ac.device == "cpu" else ac.ins[0]


def _pool_saved(ins: Shape, out: Shape, ac: Autocast, fp32_list: bool, indices: bool) -> Saved:
    # the input (a new fp32 copy where autocast casts it) and, for max, the int64 argmax indices
    low = _low(ac, fp32_list)
    tensors = (SavedTensor("input", prod(ins), low, "input" if low == ac.ins[0] else ""),)
    if indices:
        tensors += (SavedTensor("indices", prod(out), "int64"),)
    return Saved(tensors, low)


_AXES = {1: "L", 2: "HW", 3: "DHW"}


class _PoolNd(OpKind):
    family = "pool"
    dims: ClassVar[int]
    torch_class: ClassVar[str]
    ceil_arg: ClassVar[int]       # position of ceil_mode in the functional form
    is_max: ClassVar[bool]

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        c, *sizes = ins[0]
        for kk, pp in zip(p.kernel, p.padding, strict=True):
            if pp > kk / 2:  # torch: pad <= k / 2
                raise OpError(f"padding {pp} is more than half the kernel {kk} (torch refuses it)", "padding")
        wins = tuple(Window(n, k, s, pad, 1, p.ceil_mode)
                     for n, k, s, pad in zip(sizes, p.kernel, p.stride, p.padding, strict=True))
        if any(w.out < 1 for w in wins):
            raise OpError(f"kernel {'×'.join(map(str, p.kernel))} is larger than the padded input"
                          f" {'×'.join(str(w.n + 2 * w.p) for w in wins)} (input {fmt_shape(ins[0])})",
                          "kernel")
        axes = _AXES[self.dims]
        return Inferred((c, *(w.out for w in wins)), nd_formula(wins, axes), inexact=nd_warnings(wins, axes))

    def torch(self, p: Any, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"padding": (0,) * self.dims, "ceil_mode": False}, kernel_size=p.kernel,
                              stride=p.stride, padding=p.padding, ceil_mode=p.ceil_mode)
        return TorchLayer(self.torch_class, (), kw)

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        # 1-d: torch pools a (C, 1, L) view with the 2-d kernel, saving that view of the input
        return _pool_saved(ins[0], out, ac, self.dims == 3, self.is_max)

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * prod(p.kernel)  # one compare or add per window element

    def _refuse(self, dilation: Any, indices: Any, include_pad: Any, divisor: Any) -> None:
        if self.is_max and (_sizes(dilation or 1, self.dims) != (1,) * self.dims or indices):
            raise Unmapped("dilation or return_indices")
        if not self.is_max and (not include_pad or divisor is not None):
            raise Unmapped("count_include_pad=False or divisor_override")

    def from_module(self, src: Source) -> Mapped:
        a, n = src.attrs, self.dims
        self._refuse(a.get("dilation"), a.get("return_indices"), a.get("count_include_pad", True),
                     a.get("divisor_override"))
        stride = a["stride"] if a["stride"] not in (None, ()) else a["kernel_size"]
        return self.layer(kernel=_sizes(a["kernel_size"], n), stride=_sizes(stride, n),
                          padding=_sizes(a["padding"], n), ceil_mode=bool(a["ceil_mode"]))

    def from_call(self, src: Source) -> Mapped:
        n, k = self.dims, src.arg(1, "kernel_size")
        if self.is_max:
            self._refuse(src.arg(4, "dilation", 1), src.arg(6, "return_indices", False), True, None)
        else:
            self._refuse(1, False, src.arg(5, "count_include_pad", True), src.arg(6, "divisor_override"))
        return self.layer(kernel=_sizes(k, n), stride=_sizes(src.arg(2, "stride") or k, n),
                          padding=_sizes(src.arg(3, "padding", 0), n),
                          ceil_mode=bool(src.arg(self.ceil_arg, "ceil_mode", False)))

    def from_onnx(self, src: Source) -> Mapped:
        """An ONNX MaxPool / AveragePool of this rank (``maxpool`` / ``avgpool`` hand it over)."""
        a, n = src.attrs, self.dims
        if self.is_max:
            self._refuse(list(a.get("dilations", [1] * n)), len(src.outputs) > 1, True, None)
        pads = list(a.get("pads") or [0] * 2 * n)
        if pads[:n] != pads[n:]:
            raise Unmapped(f"asymmetric pads {pads}")
        if not self.is_max and not a.get("count_include_pad", 0) and any(pads):
            raise Unmapped("count_include_pad=0 with padding (only torch's default)")
        k = tuple(int(x) for x in a["kernel_shape"])
        return self.layer(kernel=k, stride=tuple(a.get("strides", k)), padding=tuple(pads[:n]),
                          ceil_mode=bool(a.get("ceil_mode", 0)))

    def label(self, p: Any) -> str:
        text = "×".join(map(str, p.kernel))
        if p.stride != (1,) * self.dims:
            text += f" /{p.stride[0] if len(set(p.stride)) == 1 else ','.join(map(str, p.stride))}"
        return text + (f", pad {','.join(map(str, p.padding))}" if any(p.padding) else "")


@register
class MaxPool1d(_PoolNd):
    name, dims, torch_class, ceil_arg, is_max = "maxpool1d", 1, "MaxPool1d", 5, True
    doc = "1-D max pooling over (C, L) (torch.nn.MaxPool1d)"
    ranks, rank_text, Params = (2,), "a (C, L)", ParamsOnUse(_pool_nd_params, 1)
    example = {"name": "pool", "op": "maxpool1d", "kernel": 2}
    torch_modules = ("torch.nn.MaxPool1d",)
    torch_functions = ("torch.nn.functional.max_pool1d",)


@register
class MaxPool3d(_PoolNd):
    name, dims, torch_class, ceil_arg, is_max = "maxpool3d", 3, "MaxPool3d", 5, True
    doc = "3-D max pooling over (C, D, H, W) (torch.nn.MaxPool3d)"
    ranks, rank_text, Params = (4,), "a (C, D, H, W)", ParamsOnUse(_pool_nd_params, 3)
    example = {"name": "pool", "op": "maxpool3d", "kernel": 2}
    torch_modules = ("torch.nn.MaxPool3d",)
    torch_functions = ("torch.nn.functional.max_pool3d",)


@register
class AvgPool1d(_PoolNd):
    name, dims, torch_class, ceil_arg, is_max = "avgpool1d", 1, "AvgPool1d", 4, False
    doc = "1-D average pooling over (C, L) (torch.nn.AvgPool1d)"
    ranks, rank_text, Params = (2,), "a (C, L)", ParamsOnUse(_pool_nd_params, 1)
    example = {"name": "pool", "op": "avgpool1d", "kernel": 2}
    torch_modules = ("torch.nn.AvgPool1d",)
    torch_functions = ("torch.nn.functional.avg_pool1d",)


@register
class AvgPool3d(_PoolNd):
    name, dims, torch_class, ceil_arg, is_max = "avgpool3d", 3, "AvgPool3d", 4, False
    doc = "3-D average pooling over (C, D, H, W) (torch.nn.AvgPool3d)"
    ranks, rank_text, Params = (4,), "a (C, D, H, W)", ParamsOnUse(_pool_nd_params, 3)
    example = {"name": "pool", "op": "avgpool3d", "kernel": 2}
    torch_modules = ("torch.nn.AvgPool3d",)
    torch_functions = ("torch.nn.functional.avg_pool3d",)

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        # torch's avg_pool3d also checks the unpadded input against the kernel
        # (aten/src/ATen/native/AvgPool3d.cpp: "input image ... smaller than kernel size")
        if any(n < k for n, k in zip(ins[0][1:], p.kernel, strict=True)):
            raise OpError(f"kernel {'×'.join(map(str, p.kernel))} is larger than the input"
                          f" {fmt_shape(ins[0])} before padding (torch refuses it)", "kernel")
        return super().infer(p, ins)


# --- adaptive pooling at any spatial rank ----------------------------------------------------------

@cache   # one class per rank, shared by max and avg
def _adaptive_params(n: int) -> type:
    @record(kw_only=True)
    class AdaptiveNdParams:
        """The settings of the 1-d and 3-d adaptive pools (one class per rank)."""
        out: tuple[int, ...] = param(SizesField(n=n, doc="output size"))

    AdaptiveNdParams.__name__ = AdaptiveNdParams.__qualname__ = f"Adaptive{n}dParams"
    return AdaptiveNdParams


def _global(op: str) -> Mapped:
    """An ONNX GlobalAveragePool / GlobalMaxPool: the adaptive pool of the input's rank to 1."""
    return ((op, {"out": 1}),)


class _AdaptiveNd(OpKind):
    family = "pool"
    dims: ClassVar[int]
    torch_class: ClassVar[str]
    is_max: ClassVar[bool]

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        c, *sizes = ins[0]
        return Inferred((c, *p.out), f"adaptive: {'×'.join(map(str, sizes))} → {'×'.join(map(str, p.out))}")

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.adaptive(fs[0], ins[0], out) if self.dims == 2 else fs[0]   # (H, W) fields only

    def torch(self, p: Any, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer(self.torch_class, (p.out,))

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        # max: its input and the int64 indices; average: its input, or nothing when torch lowers
        # an output of all ones to mean() (which keeps only the shape)
        if not self.is_max and set(p.out) == {1}:
            return Saved((), _low(ac, self.dims == 3))
        return _pool_saved(ins[0], out, ac, self.dims == 3, self.is_max)

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(ins[0])  # every input element compared or added once

    def from_module(self, src: Source) -> Mapped:
        if src.attrs.get("return_indices"):
            raise Unmapped("return_indices")
        assert src.out is not None
        return self.layer(out=tuple(src.out[1:]))  # the traced size (output_size may hold None)

    def from_call(self, src: Source) -> Mapped:
        if src.arg(2, "return_indices", False):
            raise Unmapped("return_indices")
        assert src.out is not None
        return self.layer(out=tuple(src.out[1:]))

    def from_onnx(self, src: Source) -> Mapped:
        rank = len(src.ins[0]) if src.ins else self.dims + 1   # GlobalMaxPool, at the input's rank
        return _global(f"adaptive_maxpool{'' if rank == 3 else f'{rank - 1}d'}")

    def label(self, p: Any) -> str:
        return "→ " + "×".join(map(str, p.out))


@register
class AdaptiveMaxPool(_AdaptiveNd):
    name, dims, torch_class, is_max = "adaptive_maxpool", 2, "AdaptiveMaxPool2d", True
    doc = "adaptive max pooling to a fixed output size (torch.nn.AdaptiveMaxPool2d)"
    ranks, Params = (3,), AdaptiveParams
    example = {"name": "pool", "op": "adaptive_maxpool", "out": 1}
    torch_modules = ("torch.nn.AdaptiveMaxPool2d",)
    torch_functions = ("torch.nn.functional.adaptive_max_pool2d",)
    onnx_types = ("GlobalMaxPool",)


@register
class AdaptiveMaxPool1d(_AdaptiveNd):
    name, dims, torch_class, is_max = "adaptive_maxpool1d", 1, "AdaptiveMaxPool1d", True
    doc = "adaptive max pooling over (C, L) (torch.nn.AdaptiveMaxPool1d)"
    ranks, rank_text, Params = (2,), "a (C, L)", ParamsOnUse(_adaptive_params, 1)
    example = {"name": "pool", "op": "adaptive_maxpool1d", "out": 1}
    torch_modules = ("torch.nn.AdaptiveMaxPool1d",)
    torch_functions = ("torch.nn.functional.adaptive_max_pool1d",)


@register
class AdaptiveAvgPool1d(_AdaptiveNd):
    name, dims, torch_class, is_max = "adaptive_avgpool1d", 1, "AdaptiveAvgPool1d", False
    doc = "adaptive average pooling over (C, L) (torch.nn.AdaptiveAvgPool1d)"
    ranks, rank_text, Params = (2,), "a (C, L)", ParamsOnUse(_adaptive_params, 1)
    example = {"name": "pool", "op": "adaptive_avgpool1d", "out": 1}
    torch_modules = ("torch.nn.AdaptiveAvgPool1d",)
    torch_functions = ("torch.nn.functional.adaptive_avg_pool1d",)


@register
class AdaptiveMaxPool3d(_AdaptiveNd):
    name, dims, torch_class, is_max = "adaptive_maxpool3d", 3, "AdaptiveMaxPool3d", True
    doc = "adaptive max pooling over (C, D, H, W) (torch.nn.AdaptiveMaxPool3d)"
    ranks, rank_text, Params = (4,), "a (C, D, H, W)", ParamsOnUse(_adaptive_params, 3)
    example = {"name": "pool", "op": "adaptive_maxpool3d", "out": 1}
    torch_modules = ("torch.nn.AdaptiveMaxPool3d",)
    torch_functions = ("torch.nn.functional.adaptive_max_pool3d",)


@register
class AdaptiveAvgPool3d(_AdaptiveNd):
    name, dims, torch_class, is_max = "adaptive_avgpool3d", 3, "AdaptiveAvgPool3d", False
    doc = "adaptive average pooling over (C, D, H, W) (torch.nn.AdaptiveAvgPool3d)"
    ranks, rank_text, Params = (4,), "a (C, D, H, W)", ParamsOnUse(_adaptive_params, 3)
    example = {"name": "pool", "op": "adaptive_avgpool3d", "out": 1}
    torch_modules = ("torch.nn.AdaptiveAvgPool3d",)
    torch_functions = ("torch.nn.functional.adaptive_avg_pool3d",)
