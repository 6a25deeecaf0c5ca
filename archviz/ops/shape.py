"""Reshapes: ``flatten``."""

from __future__ import annotations

from math import prod

from .registry import Inferred, NoParams, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, Temporaries


@register
class Flatten(OpKind):
    name, family = "flatten", "reshape"
    doc = "flatten a per-example tensor of any rank to a vector, (C, H, W) to (C·H·W,) (torch.nn.Flatten)"
    example = {"name": "flatten", "op": "flatten"}
    keeps_int = True      # a view: token ids stay token ids

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        return Inferred((prod(shape),), " × ".join(map(str, shape)) + f" = {prod(shape)}")

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Flatten")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), ac.ins[0], view=True)  # a view of its input: no copy, nothing saved

    def temporaries(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)  # its gradient is a view of the output's
