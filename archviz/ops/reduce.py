"""Reductions: ``mean`` over dims of each example (squeeze-and-excitation's squeeze, a
sequence's mean pool)."""

from __future__ import annotations

from math import prod
from typing import Any

from . import receptive as rf
from .fields import BoolField, IntListField, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_dims, fmt_shape, register
from .reshape import batch_dims, norm_dim
from .saved import Autocast, Saved
from .source import Mapped, Source, Unmapped


class MeanParams(Settings):
    """The settings of ``mean``."""
    dims: tuple[int, ...] = param(IntListField(doc="the dims averaged over (per example, the batch apart)"))
    keepdim: bool = param(BoolField(doc="keep each averaged dim as a size of 1"), False)


@register
class Mean(OpKind):
    name, family = "mean", "pool"
    doc = ("the mean over some dims of each example, (C, H, W) → (C,) over dims [1, 2] (torch.mean);"
           " x.mean((2, 3)) imports as today's adaptive_avgpool + flatten")
    Params = MeanParams
    example = {"name": "squeeze", "op": "mean", "dims": [1, 2], "keepdim": True}
    torch_functions = ("torch.mean",)
    tensor_methods = ("mean",)
    onnx_types = ("ReduceMean",)

    def _dims(self, p: MeanParams, shape: Shape) -> tuple[int, ...]:
        dims = tuple(sorted({norm_dim(d, len(shape)) for d in p.dims}))
        if len(dims) != len(p.dims):
            raise OpError(f"dims {list(p.dims)} name one dim twice", "dims")
        return dims

    def infer(self, p: MeanParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        dims = self._dims(p, shape)
        out = tuple(1 if i in dims else n for i, n in enumerate(shape)) if p.keepdim else \
            tuple(n for i, n in enumerate(shape) if i not in dims)
        over = tuple(shape[d] for d in dims)
        # each output element: the mean of prod(over) inputs
        return Inferred(out, f"mean of {fmt_dims(over)} = {prod(over)} → {fmt_shape(out)}")

    def work(self, p: MeanParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(ins[0])  # every input element added once (the divisions: one per output)

    def saved(self, p: MeanParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # mean's backward needs only the shape: nothing saved; CPU autocast keeps the input's dtype
        return Saved((), ac.ins[0])

    def receptive(self, p: MeanParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        return fs[0] if self._dims(p, ins[0]) == (0,) else rf.whole(fs, image)   # channels only: kept

    def torch(self, p: MeanParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        dims = self._dims(p, ins[0])
        shown = "(" + ", ".join(str(d + 1) for d in dims) + ("," if len(dims) == 1 else "") + ")"
        return TorchLayer("Mean", (dims, p.keepdim), inline=f"{{xs}}.mean({shown}, keepdim={p.keepdim})")

    def label(self, p: MeanParams) -> str:
        return "dims " + ", ".join(map(str, p.dims))

    # --- import: x.mean((2, 3)) of an (N, C, H, W) map stays a global average pool, as before ---

    def from_call(self, src: Source) -> Mapped:
        return self._mean(src.arg(1, "dim"), src, bool(src.arg(2, "keepdim", False)))

    def from_onnx(self, src: Source) -> Mapped:
        axes = src.attrs.get("axes")          # ReduceMean: axes an attribute (opset < 18) or input 1
        if axes is None and len(src.args) > 1:
            c = src.const(1)
            axes = [int(x) for x in c.reshape(-1)] if c is not None else None
        return self._mean(axes, src, bool(src.attrs.get("keepdims", 1)))

    def _mean(self, dims: Any, src: Source, keepdim: bool) -> Mapped:
        if dims is None or len(src.ins) != 1:
            raise Unmapped("a mean over every dim (the batch's too)")
        rank = len(src.ins[0])
        per = tuple(sorted(batch_dims(tuple(dims) if isinstance(dims, (list, tuple)) else (dims,), rank)))
        if per == (1, 2) and rank == 3:   # (N, C, H, W).mean((2, 3)): a global average pool
            pool = (("adaptive_avgpool", {"out": (1, 1)}),)
            return pool if keepdim else pool + (("flatten", {}),)
        return self.layer(dims=per, keepdim=keepdim)
