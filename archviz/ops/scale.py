"""``scale``: layer scale (Touvron et al. 2021, "Going deeper with image transformers"; ConvNeXt),
each channel multiplied by a learned γ: on the last dim ((H, W, C) channels-last, (S, D)
sequences) or on the channels, axis 0, of a channels-first map (torchvision's ConvNeXt keeps γ
as (C, 1, 1)); and ``mul_const``, a product or quotient by a constant (x / √hd in attention
written by hand), no parameters."""

from __future__ import annotations

from math import prod

from .fields import BoolField, ChoiceField, FloatField, Settings, param
from .registry import Inferred, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor
from .source import TENSOR, Mapped, Source, Unmapped, Weight


class ScaleParams(Settings):
    """The settings of ``scale``."""
    axis: str = param(ChoiceField(choices=("last", "channels"), doc="the dim γ runs along: the last,"
                                                                    " or the channels (axis 0)"), "last")
    init: float = param(FloatField(doc="γ's initial value"), 1e-6)


@register
class Scale(OpKind):
    name, family = "scale", "norm"
    doc = "layer scale: x·γ, a learned γ per channel, on the last dim or the channels (axis 0)"
    Params = ScaleParams
    example = {"name": "layer_scale", "op": "scale", "axis": "channels"}
    onnx_weights = ("weight",)      # the state-dict key of γ (an fx get_attr, an ONNX initializer)

    def _channels(self, p: ScaleParams, shape: Shape) -> int:
        return shape[-1] if p.axis == "last" else shape[0]

    def _shape(self, p: ScaleParams, shape: Shape) -> Shape:
        """γ's shape: (C,) on the last dim, (C, 1, ..., 1) on the channels (broadcast over the rest)."""
        c = self._channels(p, shape)
        return (c,) if p.axis == "last" else (c, *(1,) * (len(shape) - 1))

    def infer(self, p: ScaleParams, ins: tuple[Shape, ...]) -> Inferred:
        c = self._channels(p, ins[0])
        where = "the last dim" if p.axis == "last" else "the channels"
        return Inferred(ins[0], f"same as input; γ of {c} along {where}")

    def params(self, p: ScaleParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return self._channels(p, ins[0])  # γ: one per channel

    def work(self, p: ScaleParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)  # one multiply per element

    def saved(self, p: ScaleParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # γ * x saves x (γ's gradient) and γ (a parameter, not counted again); mul is no autocast
        # op, so a half x times the fp32 γ gives fp32 (measured)
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), "fp32")

    def torch(self, p: ScaleParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Scale", (self._shape(p, ins[0]),), TorchLayer.given({"init": 1e-6}, init=p.init))

    def label(self, p: ScaleParams) -> str:
        return "γ" if p.axis == "last" else "γ (channels)"

    def from_call(self, src: Source) -> Mapped:
        """``γ * x`` with γ a parameter (an fx get_attr): mul hands it here."""
        (w,) = [a for a in src.args if isinstance(a, Weight)]
        shape = src.ins[0]
        if w.shape == (shape[-1],):
            return self.layer(axis="last")
        if w.shape == (shape[0], *(1,) * (len(shape) - 1)):
            return self.layer(axis="channels")
        raise Unmapped(f"a product with a parameter of shape {w.shape} (only γ per channel)")

    def from_onnx(self, src: Source) -> Mapped:
        w = next(a for a in src.args if a is not None and hasattr(a, "shape"))
        return self.from_call(Source(src.target, args=(Weight("", tuple(w.shape)),), ins=src.ins))


# --- a constant factor -----------------------------------------------------------------------------

class MulConstParams(Settings):
    """The settings of ``mul_const``."""
    factor: float = param(FloatField(doc="c, the constant (attention's √hd, written q·kᵀ / √hd)"))
    divide: bool = param(BoolField(doc="x / c instead of x · c (as the source writes it: the two round"
                                       " differently in floating point)"), False)


@register
class MulConst(OpKind):
    name, family = "mul_const", "norm"
    doc = ("x · c or x / c, a constant c with no parameters (attention written by hand:"
           " q @ k.transpose(-2, -1) / math.sqrt(d))")
    Params = MulConstParams
    example = {"name": "scaled", "op": "mul_const", "factor": 8.0, "divide": True}
    torch_functions = ("operator.truediv", "operator.itruediv", "torch.div", "torch.true_divide")
    tensor_methods = ("div", "div_", "true_divide")

    def infer(self, p: MulConstParams, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(ins[0], f"each element {'÷' if p.divide else '×'} {p.factor:g}")

    def work(self, p: MulConstParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)  # one multiply (or divide) per element

    def saved(self, p: MulConstParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # the gradient is c (or 1/c) times the output's: a Python constant, no tensor (measured)
        return Saved((), ac.ins[0])

    def torch(self, p: MulConstParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        sign = "/" if p.divide else "*"
        return TorchLayer("MulConst", (p.factor, p.divide), inline=f"{{xs}} {sign} {p.factor!r}")

    def label(self, p: MulConstParams) -> str:
        return f"{'÷' if p.divide else '×'} {p.factor:g}"

    def from_call(self, src: Source) -> Mapped:
        """``x / c`` (operator.truediv, torch.div, x.div); ``x * c`` and ``c * x`` (mul hands them
        here): c a Python number."""
        if len(src.ins) != 1 or len(src.args) != 2 or src.kwargs.get("rounding_mode") is not None:
            raise Unmapped("a product or quotient of a tensor and one Python number")
        a, b = src.args
        divide = src.target in self.torch_functions or src.target in self.tensor_methods
        c = b if a is TENSOR else a
        if divide and a is not TENSOR:
            raise Unmapped("a number divided by a tensor (only a tensor divided by a number)")
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            raise Unmapped("a divisor or factor that is a tensor, a parameter or the batch's size (only a"
                           " Python number, or one computed from per-example sizes)")
        return self.layer(factor=float(c), divide=divide)
