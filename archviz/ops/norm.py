"""Normalisation: ``lrn`` (the AlexNet paper's local response normalisation), ``batchnorm``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from math import prod
from typing import Any

from ..errors import ArchvizError
from .fields import BoolField, FloatField, PosInt, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped

# --- normalisation ------------------------------------------------------------------------------

LRN_LOWERINGS = ("fast", "torch")


def lrn_lowering() -> str:
    """How LRN layers are built: "fast" (archviz's LRN module, the default) or "torch"
    (``nn.LocalResponseNorm``), from the environment variable ARCHVIZ_LRN; both compute the same
    formula. An unknown value is refused (exit 2)."""
    text = os.environ.get("ARCHVIZ_LRN", "").strip().lower() or "fast"
    if text not in LRN_LOWERINGS:
        raise ArchvizError(f"ARCHVIZ_LRN={text!r}: expected one of {', '.join(LRN_LOWERINGS)}"
                           " (how LRN layers are built; docs/pytorch.md)")
    return text


@dataclass(frozen=True, kw_only=True)
class LRNParams:
    """The AlexNet paper's formula (section 3.3), channel i of the output at one position:

        b_i = a_i / (k + α · Σ_j a_j²)^β,   j over the ``size`` = n channels around i

    ``alpha`` is that α (as the paper and TensorFlow write it). torch's ``LocalResponseNorm``,
    Caffe's and ONNX's LRN divide their alpha by n, so they are given α·n (docs/spec-format.md).
    """

    size: int = param(PosInt(doc="n, channels in the window"))
    alpha: float = param(FloatField(doc="α of the paper's formula, not divided by n (torch's alpha = α·n)"),
                         1e-4)
    beta: float = param(FloatField(doc="β, the exponent"), 0.75)
    k: float = param(FloatField(doc="k, the additive constant"), 1.0)

    @property
    def torch_alpha(self) -> float:
        """The alpha of torch's LocalResponseNorm (Caffe, ONNX): it divides by n, so α·n."""
        return self.alpha * self.size


@register
class LRN(OpKind):
    name, family = "lrn", "norm"
    doc = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    Params = LRNParams
    example = {"name": "norm1", "op": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2}
    torch_modules = ("torch.nn.LocalResponseNorm",)
    onnx_types = ("LRN",)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs   # torch divides its alpha by n: the paper's α = alpha / n
        return self.layer(size=a["size"], alpha=a["alpha"] / a["size"], beta=a["beta"], k=a["k"])

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs   # ONNX divides its alpha by n, as torch does
        size = int(a["size"])
        return self.layer(size=size, alpha=float(a.get("alpha", 1e-4)) / size,
                          beta=float(a.get("beta", 0.75)), k=float(a.get("bias", 1.0)))

    def split(self, p: LRNParams, ins: tuple[Shape, ...]) -> Split:
        # the window reads size // 2 channels before and (size - 1) // 2 after each channel
        return Split(kind="lrn", window=p.size)

    def infer(self, p: LRNParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins[0]) < 2:
            raise OpError(f"lrn needs a (C, H, W) input, got {fmt_shape(ins[0])}")
        return super().infer(p, ins)

    def torch(self, p: LRNParams, ins: tuple[Shape, ...]) -> TorchLayer:
        # torch computes a / (k + (alpha/n)·Σa²)^β: the paper's α is passed as alpha = α·n.
        # "LRN" is archviz's subclass of LocalResponseNorm (same arguments, same maths, fewer
        # kernels and saved tensors: archviz/runtime/lrn.py); ARCHVIZ_LRN=torch keeps torch's.
        cls = "LocalResponseNorm" if lrn_lowering() == "torch" else "LRN"
        return TorchLayer(cls, (p.size,), (("alpha", p.torch_alpha), ("beta", p.beta), ("k", p.k)))

    def saved(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        n, rest = prod(ins[0]), prod(ins[0][1:])
        if lrn_lowering() == "fast":
            # archviz's LRNFunction saves its input and the denominator k + α·Σa², in fp32; the
            # output keeps the input's dtype (a half input is computed in fp32 inside)
            return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                          SavedTensor("denominator", n, "fp32")), ac.ins[0])
        # F.local_response_norm: mul(a, a) saves a; avg_pool3d saves the squares padded to
        # C + n − 1 channels; pow saves its base and its result; div saves a and that result.
        # CPU autocast runs avg_pool3d in fp32, so everything after it is fp32.
        low = "fp32" if ac.compute else ac.ins[0]
        return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                      SavedTensor("padded squares", (ins[0][0] + p.size - 1) * rest, low),
                      SavedTensor("pow base", n, low), SavedTensor("divisor", n, low)), low)

    def work(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # square, window sum (n adds), scale, add k, pow, divide per element
        return prod(ins[0]) * (p.size + 5)

    def reference(self, p: LRNParams, a: Any) -> Any:
        # b_i = a_i / (k + α·Σ_j a_j²)^β, j from i − ⌊n/2⌋ to i + ⌊(n−1)/2⌋ clipped to the channels
        # (the paper's n/2 each side for odd n; torch's window for even n)
        out = a.clone()
        c = a.shape[1]
        for i in range(c):
            lo, hi = max(0, i - p.size // 2), min(c - 1, i + (p.size - 1) // 2)
            out[:, i] = a[:, i] / (p.k + p.alpha * (a[:, lo:hi + 1] ** 2).sum(dim=1)) ** p.beta
        return out

    def label(self, p: LRNParams) -> str:
        return f"n={p.size}, k={p.k:g}, α={p.alpha:g}"


@dataclass(frozen=True, kw_only=True)
class BatchNormParams:
    eps: float = param(FloatField(lo=0.0), 1e-5)
    momentum: float = param(FloatField(lo=0.0), 0.1)
    affine: bool = param(BoolField(), True)


@register
class BatchNorm(OpKind):
    name, family = "batchnorm", "norm"
    doc = "batch normalisation over channels (BatchNorm2d on (C, H, W), BatchNorm1d on (F,))"
    Params = BatchNormParams
    example = {"name": "bn1", "op": "batchnorm"}
    torch_modules = ("torch.nn.BatchNorm2d", "torch.nn.BatchNorm1d")
    onnx_types = ("BatchNormalization",)
    onnx_weights = ("weight", "bias", "running_mean", "running_var")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["momentum"] is None or not a["track_running_stats"]:
            raise Unmapped("momentum=None or no running statistics")
        return self.layer(eps=a["eps"], momentum=a["momentum"], affine=a["affine"])

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        if any(src.outputs[1:]):
            raise Unmapped("training mode (running statistics as outputs)")
        # ONNX's momentum weighs the running statistic, torch's the batch's
        momentum = round(1.0 - float(a.get("momentum", 0.9)), 12)
        return self.layer(eps=float(a.get("epsilon", 1e-5)), momentum=momentum, affine=True)

    def shard(self, p: BatchNormParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        return self.torch(p, ((rows, *ins[0][1:]),))   # weight, bias, running stats: (rows,)

    def params(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p.affine else 0  # weight (C,) + bias (C,)

    def buffers(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] + 1  # running_mean, running_var (C,) + num_batches_tracked

    def torch(self, p: BatchNormParams, ins: tuple[Shape, ...]) -> TorchLayer:
        cls = "BatchNorm2d" if len(ins[0]) == 3 else "BatchNorm1d"  # (C, H, W) or (F,)
        kw = TorchLayer.given({"eps": 1e-5, "momentum": 0.1, "affine": True},
                              eps=p.eps, momentum=p.momentum, affine=p.affine)
        return TorchLayer(cls, (ins[0][0],), kw)

    def buffer_bytes(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * 2 * ins[0][0] + 8  # fp32 running mean and var, int64 num_batches_tracked

    def saved(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast) -> Saved:
        # native_batch_norm saves the input, the running stats and weight (buffers and params:
        # not counted again) and the batch's mean and 1/std per channel, fp32 even under autocast
        c = ins[0][0]
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),
                      SavedTensor("mean", c, "fp32", per_image=False),
                      SavedTensor("invstd", c, "fp32", per_image=False)), ac.ins[0])

    def work(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])  # statistics (2) and the affine normalisation (2) per element
