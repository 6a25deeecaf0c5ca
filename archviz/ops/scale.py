"""``scale``: layer scale (Touvron et al. 2021, "Going deeper with image transformers"; ConvNeXt),
each channel multiplied by a learned γ: on the last dim ((H, W, C) channels-last, (S, D)
sequences) or on the channels, axis 0, of a channels-first map (torchvision's ConvNeXt keeps γ
as (C, 1, 1))."""

from __future__ import annotations

from math import prod

from .fields import ChoiceField, FloatField, Settings, param
from .registry import Inferred, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped, Weight


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
