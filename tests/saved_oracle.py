"""The oracle of the cost model's saved-for-backward bytes: what autograd really saves.

Runs one forward pass of the compiled module (training mode) under
``torch.autograd.graph.saved_tensors_hooks`` and records every saved tensor's storage,
attributed to the layer running when it was saved; storages are deduplicated (first layer
wins) and parameters/buffers left out (they are counted as parameters and buffers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archviz.core.analysis import analyze
from archviz.core.graph import build
from archviz.ops.lowering import Lowering
from archviz.runtime.compile import compile_graph
from archviz.runtime.inputs import example_input
from archviz.spec import load

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Measured:
    per_layer: dict[str, int]          # layer → bytes of the new storages it saved
    out_dtypes: dict[str, str]         # layer → its output's dtype ("fp32", "bf16", ...)
    records: dict[str, list[tuple[tuple[int, ...], str, int]]]  # layer → (shape, dtype, nbytes)

    @property
    def total(self) -> int:
        return sum(self.per_layer.values())


_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.int64: "int64",
          torch.bool: "bool", torch.uint8: "uint8"}


def measure(spec: Any, batch: int, dtype: str = "fp32", input_shape: tuple[int, ...] | None = None,
            seed: int = 0, lowering: Lowering = Lowering()) -> Measured:
    """The spec compiled (as ``lowering`` says) and measured at ``batch``."""
    sp = load(spec) if isinstance(spec, str) else spec
    graph = build(sp)
    analysis = analyze(graph, input_shape)
    torch.manual_seed(seed)
    model = compile_graph(graph, analysis, lowering=lowering).train()
    x = example_input(analysis.input, analysis.input_dtype, batch=batch, random=True)
    return measure_module(model, [s.name for s in analysis.layers], x, dtype)


def measure_module(model: torch.nn.Module, layers: list[str], x: torch.Tensor,
                   dtype: str = "fp32") -> Measured:
    """Any module (a compiled spec, or a user's module whose submodules are named as the layers of
    its imported spec): one training-mode forward pass of ``x``, each saved storage attributed to
    the submodule in ``layers`` running when it was saved."""
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
    skip |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    current = ["(input)"]
    seen: set[int] = set()
    per_layer: dict[str, int] = {name: 0 for name in layers}
    records: dict[str, list[tuple[tuple[int, ...], str, int]]] = {name: [] for name in layers}
    out_dtypes: dict[str, str] = {}
    handles = []
    for layer in layers:
        m = model.get_submodule(layer)

        def pre(mod: Any, args: Any, name: str = layer) -> None:
            current[0] = name

        def post(mod: Any, args: Any, out: Any, name: str = layer) -> None:
            out_dtypes[name] = _NAMES.get(out.dtype, str(out.dtype))

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in skip and ptr not in seen:
            seen.add(ptr)
            per_layer[current[0]] += st.nbytes()
            records[current[0]].append((tuple(t.shape), _NAMES.get(t.dtype, str(t.dtype)), st.nbytes()))
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if DTYPES[dtype] is None:
            model(x)
        else:
            with torch.autocast("cpu", dtype=DTYPES[dtype]):
                model(x)
    for h in handles:
        h.remove()
    return Measured(per_layer, out_dtypes, records)
