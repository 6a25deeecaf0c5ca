"""Activations: elementwise nonlinearities and softmax."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, ClassVar

from .fields import FloatField, param
from .registry import NoParams, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor

# --- activations --------------------------------------------------------------------------------

class _Elementwise(OpKind):
    """An activation with no settings: ``torch.nn.<torch_class>()``."""

    family = "act"
    torch_class: ClassVar[str]
    saves: ClassVar[str] = "output"   # what its backward reads: "output" or "input"

    def torch(self, p: Any, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer(self.torch_class)

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
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

    def torch(self, p: LeakyParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("LeakyReLU", (p.negative_slope,))

    def saved(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * prod(out)


@register
class Softmax(OpKind):
    name, family = "softmax", "act"
    doc = ("softmax over axis 0 of each example: channels, features, or a sequence's positions"
           " (torch.nn.Softmax(dim=1))")
    example = {"name": "prob", "op": "softmax"}

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Softmax", (), (("dim", 1),))

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # _softmax saves its output; CPU autocast keeps the input's dtype
        return Saved((SavedTensor("output", prod(out), ac.ins[0], "output"),), ac.ins[0])

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 5 * prod(out)  # max, subtract, exp, sum, divide

    def gpu_local(self, p: NoParams, gpus: int) -> bool:
        return False  # normalises over every channel, so it needs all GPUs' shares


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
