"""Reshapes: ``flatten`` (the other reshapes are in :mod:`archviz.ops.reshape`)."""

from __future__ import annotations

from math import prod

from .fields import IntField, Settings, param
from .registry import Inferred, OpKind, Shape, TorchLayer, register
from .reshape import batch_dims, norm_dim
from .saved import Autocast, Saved, Temporaries
from .source import Mapped, Source, Unmapped


class FlattenParams(Settings):
    """The settings of ``flatten``."""
    start: int = param(IntField(doc="the first dim flattened (per example, the batch apart)"), 0)
    end: int = param(IntField(doc="the last dim flattened; -1: the last"), -1)


@register
class Flatten(OpKind):
    name, family = "flatten", "reshape"
    doc = ("flattens dims start to end of each example into one, by default all of them: (C, H, W) to"
           " (C·H·W,) (torch.nn.Flatten)")
    Params = FlattenParams
    example = {"name": "flatten", "op": "flatten"}
    keeps_int = True      # a view: token ids stay token ids
    torch_modules = ("torch.nn.Flatten",)
    torch_functions = ("torch.flatten",)
    tensor_methods = ("flatten",)
    onnx_types = ("Flatten",)

    def _span(self, p: FlattenParams, shape: Shape) -> tuple[int, int]:
        return norm_dim(p.start, len(shape), "start"), norm_dim(p.end, len(shape), "end")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        return self._mapped(src, (a["start_dim"], a["end_dim"]))

    def from_call(self, src: Source) -> Mapped:
        # torch.flatten(x, 1), x.flatten(2): torch's dims, the batch's among them
        return self._mapped(src, (src.arg(1, "start_dim", 0), src.arg(2, "end_dim", -1)))

    def from_onnx(self, src: Source) -> Mapped:
        axis = int(src.attrs.get("axis", 1)) % (len(src.ins[0]) + 1)
        if axis != 1:   # ONNX Flatten makes a 2-d tensor: (N·…, …) unless axis is 1
            raise Unmapped(f"axis={src.attrs['axis']} (only 1)")
        return self.layer() if len(src.ins[0]) > 1 else ()

    def _mapped(self, src: Source, dims: tuple[int, int]) -> Mapped:
        rank = len(src.ins[0])
        start_t, end_t = (d % (rank + 1) for d in dims)
        if start_t == 0:
            raise Unmapped("it flattens the batch dimension into the example")
        start, end = batch_dims((start_t, end_t), rank)
        if end <= start:
            return ()   # one dim or none: nothing changes
        return self.layer(start=start, end=-1 if end == rank - 1 else end)

    def infer(self, p: FlattenParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        s, e = self._span(p, shape)
        n = prod(shape[s:e + 1])
        text = " × ".join(map(str, shape[s:e + 1])) + f" = {n}"
        if (s, e) == (0, len(shape) - 1):
            return Inferred((n,), text)
        return Inferred((*shape[:s], n, *shape[e + 1:]), f"dims {s}–{e}: {text}")

    def torch(self, p: FlattenParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        s, e = self._span(p, ins[0])
        end = -1 if e == len(ins[0]) - 1 else e + 1
        return TorchLayer("Flatten", (), TorchLayer.given({"start_dim": 1, "end_dim": -1},
                                                          start_dim=s + 1, end_dim=end))

    def label(self, p: FlattenParams) -> str:
        if (p.start, p.end) == (0, -1):
            return ""
        return f"dims {p.start}–" + ("last" if p.end == -1 else str(p.end))   # "dims 1–last", not "1–-1"

    def saved(self, p: FlattenParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), ac.ins[0], view=True)  # a view of its input: no copy, nothing saved

    def temporaries(self, p: FlattenParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)  # its gradient is a view of the output's
