"""Fully connected: ``linear`` (torch.nn.Linear), acting on the last dimension as torch does.

Ranks 1 and 2 (a vector ``(F,)``, a sequence ``(S, D)``) are taken as they come. An input of rank
3 or more is almost always a feature map that misses a ``flatten``, so it is refused with that
hint unless the layer says ``last_dim: true`` (a channels-last MLP, e.g. ConvNeXt's).
"""

from __future__ import annotations

from dataclasses import replace
from math import prod

from . import receptive as rf
from .fields import BoolField, PosInt, Settings, param
from .registry import OPS, Inferred, OpError, OpKind, Shape, TorchLayer, fmt_dims, fmt_shape, register
from .saved import Autocast, Saved
from .saved import matmul_saved as _matmul_saved
from .source import Mapped, Source, Split, Unmapped


class LinearParams(Settings):
    """The settings of ``linear``."""
    out: int = param(PosInt(doc="output features"))
    bias: bool = param(BoolField(), True)
    last_dim: bool = param(BoolField(doc="take an input of rank 3 or more and act on its last dimension,"
                                         " as torch.nn.Linear does (else refused: a missing flatten)"),
                           False)

CONV1D = "transformers.pytorch_utils.Conv1D"   # y = x·W + b, W stored (in, out)


@register
class Linear(OpKind):
    name, family = "linear", "linear"
    doc = "fully connected layer (torch.nn.Linear)"
    counts_neurons = True
    Params = LinearParams
    example = {"name": "fc6", "op": "linear", "out": 4096}
    torch_modules = ("torch.nn.Linear", CONV1D)
    onnx_types = ("Gemm", "MatMul")      # MatMul: (N, ..., F) by an initializer, + Add of a bias
    onnx_weights = ("weight", "bias")
    onnx_bias_add = ("MatMul",)

    def infer(self, p: LinearParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]          # (..., in) → (..., out)
        if len(shape) >= 3 and not p.last_dim:
            raise OpError(f"linear is fed a spatial tensor {fmt_shape(shape)} without flatten",
                          hint="hint: add a layer {op: flatten} before it (or say last_dim: true to act"
                               " on its last dimension, as torch.nn.Linear does)")
        lead, d = shape[:-1], shape[-1]
        if not lead:
            return Inferred((p.out,), f"{d} → {p.out}")
        return Inferred((*lead, p.out), f"{d} → {p.out} on the last dim, for each of {fmt_dims(lead)}")

    def params(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][-1] * p.out + (p.out if p.bias else 0)  # weight (out, in) + bias

    def tied_weight(self, p: LinearParams, ins: tuple[Shape, ...]) -> Shape | None:
        return (p.out, ins[0][-1])   # weight (out, in)

    def macs(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * ins[0][-1]  # each output element: in multiply-accumulates

    def receptive(self, p: LinearParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image)  # each unit reads every position

    def torch(self, p: LinearParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Linear", (ins[0][-1], p.out), TorchLayer.given({"bias": True}, bias=p.bias))

    def saved(self, p: LinearParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # addmm saves its input (weight grad) and the weight, transposed (input grad)
        return _matmul_saved(prod(ins[0]), ins[0][-1] * p.out, ac, weight_always=False)

    def gpu_local(self, p: LinearParams, gpus: int) -> bool:
        return False

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs   # transformers' Conv1D (GPT-2's): nf outputs, weight (in, out), transposed on load
        out = a["nf"] if src.target == CONV1D else a["out_features"]
        return self.layer(out=out, bias=a["bias"] is not None, **_last_dim(src))

    def module_transposed(self, src: Source) -> tuple[str, ...]:
        return ("weight",) if src.target == CONV1D else ()

    def from_onnx(self, src: Source) -> Mapped:
        a, w = src.attrs, src.const(1)
        if src.target == "MatMul":   # args: x, W (in, out) and the bias its Add adds, if any
            if w is None and len(src.ins) == 2:
                return OPS["matmul"].from_call(src)   # two computed tensors (q·kᵀ): the matmul op
            if w is None or w.ndim != 2 or not src.ins:
                raise Unmapped("MatMul of (N, ..., F) by an initializer")
            return self.layer(out=int(w.shape[1]), bias=src.given(2), **_last_dim(src))
        if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise Unmapped("Gemm(x, W, b) with W an initializer, alpha = beta = 1, transA = 0")
        return self.layer(out=int(w.shape[0] if a.get("transB", 0) else w.shape[1]), bias=src.given(2))

    def onnx_transposed(self, src: Source) -> tuple[str, ...]:
        # torch keeps (out, in); MatMul and Gemm without transB store (in, out)
        keep = src.target == "Gemm" and src.attrs.get("transB", 0)
        return () if keep else ("weight",)

    def split(self, p: LinearParams, ins: tuple[Shape, ...]) -> Split:
        return Split(whole_input=True)

    def shard(self, p: LinearParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        return self.torch(replace(p, out=rows), ins)   # weight (rows, in), bias (rows,)

    def label(self, p: LinearParams) -> str:
        return str(p.out)


def _last_dim(src: Source) -> dict[str, bool]:
    """torch's and ONNX's linear act on the last dim of any rank: say so where the spec would
    otherwise ask for a flatten (an input of rank 3 or more per example)."""
    return {"last_dim": True} if src.ins and len(src.ins[0]) >= 3 else {}
