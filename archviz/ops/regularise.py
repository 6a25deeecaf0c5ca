"""Regularisation: ``dropout``."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .fields import FloatField, param
from .registry import OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source

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
    torch_modules = ("torch.nn.Dropout",)
    torch_functions = ("torch.nn.functional.dropout",)
    onnx_types = ("Dropout",)

    def from_module(self, src: Source) -> Mapped:
        return self.layer(p=src.attrs["p"])

    def from_call(self, src: Source) -> Mapped:
        return self.layer(p=float(src.arg(1, "p", 0.5)))

    def from_onnx(self, src: Source) -> Mapped:
        p = src.scalar(1) if src.given(1) else src.attrs.get("ratio", 0.5)   # ratio: opset < 12
        return self.layer(p=float(p if p is not None else 0.5))

    def torch(self, p: DropoutParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Dropout", (p.p,))

    def saved(self, p: DropoutParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # the mask: on the CPU a tensor of the input's dtype, on CUDA bool (native_dropout)
        mask = "bool" if ac.device == "cuda" else ac.ins[0]
        return Saved((SavedTensor("mask", prod(out), mask),), ac.ins[0])

    def work(self, p: DropoutParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * prod(out)  # draw and scale

    def label(self, p: DropoutParams) -> str:
        return f"p={p.p:g}"
