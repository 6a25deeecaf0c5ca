"""Matrix products of two computed tensors: ``matmul`` (attention written out by hand, q @ kᵀ)."""

from __future__ import annotations

from math import prod

from . import receptive as rf
from .registry import Inferred, NoParams, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped


@register
class MatMul(OpKind):
    name, family = "matmul", "merge"
    doc = "batched matrix product of two inputs (…, n, k)·(…, k, m) → (…, n, m) (torch.matmul, @, torch.bmm)"
    example = {"name": "scores", "op": "matmul", "from": ["a", "b"]}
    multi_input = True
    torch_functions = ("torch.matmul", "operator.matmul", "torch.bmm")
    tensor_methods = ("matmul", "bmm")

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins) != 2:
            raise OpError(f"matmul takes two inputs, got {len(ins)}", "from")
        a, b = ins
        if len(a) < 2 or len(b) < 2 or len(a) != len(b):
            raise OpError(f"matmul needs two inputs of one rank, 2 or more, got {fmt_shape(a)} and"
                          f" {fmt_shape(b)}", "from", "hint: (…, n, k) and (…, k, m), the leading dims equal")
        if a[-1] != b[-2] or a[:-2] != b[:-2]:
            raise OpError(f"matmul of {fmt_shape(a)} by {fmt_shape(b)}: the inner sizes ({a[-1]}, {b[-2]})"
                          " or the leading dims differ", "from")
        out = (*a[:-2], a[-2], b[-1])
        each = f", for each of {prod(a[:-2]):,}" if len(a) > 2 else ""
        return Inferred(out, f"({a[-2]}×{a[-1]})·({b[-2]}×{b[-1]}) → {a[-2]}×{b[-1]}{each}")

    def macs(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * ins[0][-1]   # n·k·m per matrix pair: each output element, k products

    def receptive(self, p: NoParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        return rf.union(fs, image)

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("MatMul", inline="torch.matmul({xs})")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # each factor's gradient needs the other: both saved (under autocast as low-precision copies
        # of a fp32 input)
        low = ac.low
        return Saved(tuple(SavedTensor(f"input {i}", prod(s), low, "input" if ac.ins[i] == low else "", i)
                           for i, s in enumerate(ins)), low)

    def split(self, p: NoParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="matmul layers cannot run split over towers yet")

    def gpu_local(self, p: NoParams, gpus: int) -> bool:
        return False

    def from_call(self, src: Source) -> Mapped:
        if len(src.ins) != 2 or len(src.ins[0]) != len(src.ins[1]) or len(src.ins[0]) < 2:
            raise Unmapped("a product of two computed tensors of one rank, 2 or more per example")
        return self.layer()
