"""A fast local response normalisation with the maths of ``nn.LocalResponseNorm``.

torch's ``F.local_response_norm`` squares the input, pads it into a 5-d tensor, averages it with
``avg_pool3d``, then scales, adds, raises to a power and divides: nine kernels forward, their
backward through ``avg_pool3d``, and four input-sized tensors saved for backward. The AlexNet
paper's own implementation (cuda-convnet) saves only the input and the denominator and
recomputes the rest in backward; :class:`LRN` does the same with a custom
``torch.autograd.Function``:

    forward   d = k + (alpha/n) · S(a²),   b = a · d^(−β)          saved: a, d
    backward  ∂a = g · d^(−β) − 2β(alpha/n) · a · Sᵀ(g · a · d^(−β−1))

where S sums the channel window of torch (j from i − ⌊n/2⌋ to i + ⌊(n−1)/2⌋, clipped) and Sᵀ
is its transpose (the mirrored window; the same window for odd n). The window sum is n − 1
in-place adds of channel slices (no padded copy, exact in fp32). Half-precision inputs (bf16 or
fp16, as autocast delivers them) are computed in fp32 and the output is returned in the input's
dtype; ``d`` is kept in fp32.

:class:`LRN` subclasses ``nn.LocalResponseNorm`` (same constructor, attributes and empty state
dict: ``alpha`` is torch's, the paper's α times ``size``), so code that asks
``isinstance(m, nn.LocalResponseNorm)`` keeps working. TorchScript, tracing and ONNX export take
torch's own function, so exports keep the standard operator.

It is the ``fast`` lowering of the ``lrn`` op (the default); ``torch`` builds
``nn.LocalResponseNorm`` itself. The choice is a value passed to compile and cost
(:class:`archviz.ops.lowering.Lowering`, ``--lowering lrn=torch``, or a layer's ``lowering:``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - torch's convention
from torch import nn

_HALF = (torch.bfloat16, torch.float16)


def _no_autocast(a: torch.Tensor) -> AbstractContextManager[Any]:
    """Autocast off for a's device (the meta device, where verify builds, has no autocast)."""
    kind = a.device.type
    return torch.autocast(kind, enabled=False) if torch.amp.is_autocast_available(kind) else nullcontext()


def window_sum(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """out[:, i] = Σ x[:, j] for j from i − before to i + after, clipped to the channels (dim 1)."""
    out = x.clone()
    c = x.shape[1]
    for off in range(-before, after + 1):
        if off == 0 or abs(off) >= c:
            continue
        if off > 0:   # channel i reads i + off: channels 0 .. c − off − 1
            out[:, :c - off] += x[:, off:]
        else:         # channel i reads i − |off|: channels |off| .. c − 1
            out[:, -off:] += x[:, :c + off]
    return out


class LRNFunction(torch.autograd.Function):
    """``F.local_response_norm(a, size, alpha, beta, k)`` saving only ``a`` and the denominator."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, size: int, alpha: float, beta: float,  # type: ignore[override]
                k: float) -> torch.Tensor:
        with _no_autocast(a):
            af = a.float() if a.dtype in _HALF else a
            d = window_sum(af * af, size // 2, (size - 1) // 2).mul_(alpha / size).add_(k)
            out = af * d.pow(-beta)
        ctx.save_for_backward(a, d)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return out.to(a.dtype)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:  # type: ignore[override]
        a, d = ctx.saved_tensors
        size, alpha, beta = ctx.size, ctx.alpha, ctx.beta
        with _no_autocast(a):
            af = a.float() if a.dtype in _HALF else a
            g = grads[0].float() if grads[0].dtype in _HALF else grads[0]
            scale = d.pow(-beta)
            # ∂b_i/∂d_i = −β a_i d_i^(−β−1); d_i reads a_j² for j in i's window: the transpose
            t = window_sum(g * af * scale / d, (size - 1) // 2, size // 2)
            grad = g * scale - (2 * beta * alpha / size) * af * t
        return grad.to(a.dtype), None, None, None, None


class LRN(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` (same arguments: ``alpha`` is torch's, α·size) computed by
    :class:`LRNFunction`: fewer kernels and two saved tensors instead of four."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        if x.dim() < 3:  # torch's own message for a batch without channels
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        return LRNFunction.apply(x, self.size, self.alpha, self.beta, self.k)
