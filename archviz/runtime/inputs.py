"""The one place where an example input is made: verify, export (trace and ONNX), bench and the
cost oracles all feed a compiled module through :func:`example_input`.

Shapes are per example (the batch apart) of any rank; the dtype is the analysis's input dtype
(:mod:`archviz.ops.dtypes`). Floating-point inputs are made in float32 whatever float the spec
names (the compiled module is float32; a run in bf16 casts the module and input itself, as the
cost model's ``--dtype`` says). Integer inputs are token ids drawn from ``[0, vocab)``: ``vocab``
is a bound the caller knows (an embedding's size); without one every id is 0, valid for any
vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch

from ..ops import OPS
from ..ops.dtypes import TORCH_NAMES, is_integer

Shape = tuple[int, ...]


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype an example input of ``dtype`` is made in (float32 for every float)."""
    return getattr(torch, TORCH_NAMES[dtype]) if is_integer(dtype) else torch.float32


def id_bound(analysis: Any) -> int | None:
    """The largest vocabulary valid for every layer that reads the integer input: the smallest of
    their ops' :meth:`~archviz.ops.OpKind.id_bound` (None: no layer bounds the ids)."""
    from ..spec import INPUT

    bounds = [b for s in analysis.layers if INPUT in s.inputs
              for b in (OPS[s.op].id_bound(s.op_params),) if b is not None]
    return min(bounds) if bounds else None


def example_input(shape: Shape, dtype: str = "float32", *, batch: int = 1, device: Any = None,
                  random: bool = False, vocab: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A batch ``(batch, *shape)`` of example input: zeros, or ``random`` normal noise (floats);
    token ids in ``[0, vocab)`` (integers; all 0 without ``vocab``)."""
    size = (batch, *shape)
    if is_integer(dtype):
        high = vocab or 1
        if high == 1 or not random:
            return torch.zeros(size, dtype=torch_dtype(dtype), device=device)
        return torch.randint(0, high, size, dtype=torch_dtype(dtype), device=device, generator=generator)
    if random:
        return torch.randn(size, device=device, generator=generator)
    return torch.zeros(size, device=device)


def source(shape: Shape, dtype: str = "float32", batch: int = 1) -> str:
    """The same example input written as Python source (exported modules' self-test)."""
    dims = ", ".join(map(str, (batch, *shape)))
    if is_integer(dtype):
        return f"torch.zeros({dims}, dtype=torch.{TORCH_NAMES[dtype]})"
    return f"torch.zeros({dims})"
