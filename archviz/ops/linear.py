"""Fully connected: ``linear`` (torch.nn.Linear)."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from . import receptive as rf
from .fields import BoolField, PosInt, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved
from .saved import matmul_saved as _matmul_saved


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

    def torch(self, p: LinearParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Linear", (ins[0][0], p.out), TorchLayer.given({"bias": True}, bias=p.bias))

    def saved(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # addmm saves its input (weight grad) and the weight, transposed (input grad)
        return _matmul_saved(prod(ins[0]), ins[0][0] * p.out, ac)

    def gpu_local(self, p: LinearParams, gpus: int) -> bool:
        return False

    def label(self, p: LinearParams) -> str:
        return str(p.out)
