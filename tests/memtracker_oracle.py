"""The oracle of the cost model's training peak: PyTorch's MemTracker over one training step.

``torch.distributed._tools.mem_tracker.MemTracker`` sees every storage an aten op returns (a
``TorchDispatchMode``), the parameters, buffers, gradients and optimizer state, and frees each
when its last reference dies; its "peak" snapshot is the largest total over the step. Under
``FakeTensorMode`` nothing is allocated or computed, so a full-size step takes a second. On the
CPU it counts bytes exactly (no rounding: the 512-byte CUDA block is applied on cuda only).

The step: zero_grad(set_to_none), forward (under CPU autocast for bf16), cross-entropy on the
fp32 logits, backward, optimizer step; a first step creates the optimizer state, the peak of the
second is measured (the steady state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.mem_tracker import MemTracker

from archviz.core.analysis import analyze
from archviz.core.graph import build
from archviz.runtime.compile import compile_graph
from archviz.spec import load

LOW = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def make_optimizer(name: str, params: list[Any]) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    return torch.optim.AdamW(params, lr=1e-3)


@dataclass(frozen=True)
class Peak:
    total: int                 # bytes at the step's peak
    parts: dict[str, int]      # MemTracker's categories at the peak (Parameter, Gradient, ...)


def track(model: Any, input_shape: tuple[int, ...], classes: int, batch: int, dtype: str = "fp32",
          optimizer: str = "momentum") -> Peak:
    """MemTracker's peak of the second training step of ``model`` (built under the caller's
    FakeTensorMode, or real)."""
    opt = make_optimizer(optimizer, list(model.parameters()))
    x = torch.randn(batch, *input_shape)
    y = torch.randint(0, classes, (batch,))
    low = LOW[dtype]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=low or torch.bfloat16, enabled=low is not None):
            out = model(x)
        torch.nn.functional.cross_entropy(out.float(), y).backward()
        opt.step()

    step()
    mt = MemTracker()
    mt.track_external(model, opt, x, y)
    with mt:
        mt.reset_mod_stats()
        step()
    snap = mt.get_tracker_snapshot("peak")
    (dev,) = snap
    parts = {str(getattr(k, "value", k)): v for k, v in snap[dev].items()}
    return Peak(parts.pop("Total"), parts)


def peak(spec: Any, batch: int, dtype: str = "fp32", optimizer: str = "momentum",
         input_shape: tuple[int, ...] | None = None) -> Peak:
    """MemTracker's training-step peak of a spec's compiled module, under FakeTensorMode."""
    sp = load(spec) if isinstance(spec, str) else spec
    graph = build(sp)
    a = analyze(graph, input_shape, gpus=1)
    with FakeTensorMode():
        torch.manual_seed(0)
        model = compile_graph(graph, a).train()
        return track(model, a.input, a.layers[-1].output[0], batch, dtype, optimizer)
