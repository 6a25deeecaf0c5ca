"""Regularisation: ``dropout``, ``stochastic_depth``."""

from __future__ import annotations

from math import prod

from .fields import ChoiceField, FloatField, Settings, param
from .registry import OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped

# --- regularisation, reshape, fully connected ---------------------------------------------------

class DropoutParams(Settings):
    """The settings of ``dropout``."""
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


class StochasticDepthParams(Settings):
    """The settings of ``stochastic_depth``."""
    p: float = param(FloatField(lo=0.0, hi=1.0, doc="probability of dropping the branch"), 0.1)
    mode: str = param(ChoiceField(choices=("row", "batch"), doc="row: a coin per example; batch: one"
                                                                 " for the whole batch"), "row")


@register
class StochasticDepth(OpKind):
    name, family = "stochastic_depth", "regularise"
    doc = ("stochastic depth / drop path (Huang et al. 2016): a residual branch zeroed per example with"
           " probability p in training, the rest scaled by 1/(1 − p); identity at inference"
           " (torchvision.ops.StochasticDepth, timm's DropPath)")
    Params = StochasticDepthParams
    example = {"name": "drop_path", "op": "stochastic_depth", "p": 0.1}
    # by name, resolved where installed (torchvision and timm are optional); archviz's own module
    # (what a compiled spec holds, torchvision's code) imports back too
    torch_modules = ("torchvision.ops.stochastic_depth.StochasticDepth", "timm.layers.drop.DropPath",
                     "archviz.runtime.layers.StochasticDepth")
    torch_functions = ("torchvision.ops.stochastic_depth.stochastic_depth",)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if "drop_prob" in a:   # timm's DropPath: per example, scaled by default
            if not a.get("scale_by_keep", True):
                raise Unmapped("scale_by_keep=False")
            return self.layer(p=float(a["drop_prob"]))
        return self.layer(p=float(a["p"]), mode=a["mode"])

    def from_call(self, src: Source) -> Mapped:
        if not src.arg(3, "training", True):
            return ()
        return self.layer(p=float(src.arg(1, "p")), mode=src.arg(2, "mode"))

    def torch(self, p: StochasticDepthParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("StochasticDepth", (p.p, p.mode))

    def saved(self, p: StochasticDepthParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # training: x * mask, the mask (N, 1, 1, 1) per example ("row") or (1, 1, 1, 1) ("batch") of the
        # input's dtype is saved (the input needs no saving: the mask is not trained); p = 0: identity
        if p.p == 0.0:
            return Saved((), ac.ins[0], view=True)
        row = p.mode == "row"
        return Saved((SavedTensor("mask", 1, ac.ins[0], per_image=row),), ac.ins[0])

    def work(self, p: StochasticDepthParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)  # the scaling multiply

    def label(self, p: StochasticDepthParams) -> str:
        return f"p={p.p:g}" + ("" if p.mode == "row" else ", batch")
