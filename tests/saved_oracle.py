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
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
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


def saves_as_predicted(sp: Any, dtype: str, names: tuple[str, ...] = (), lowering: Lowering = Lowering(),
                       batch: int = 3, input_shape: tuple[int, ...] | None = None
                       ) -> tuple[dict[str, int], Measured]:
    """The cost model's saved bytes per layer (``saved_bytes``, CPU) and autograd's record of ``sp``
    at ``batch``; each layer of ``names`` is asserted to save what it predicts."""
    settings = Settings(batch=batch, dtype=Dtype(dtype), torch_device="cpu", lowering=lowering)
    predicted = saved_bytes(analyze(build(sp), input_shape), settings)
    measured = measure(sp, batch, dtype, input_shape=input_shape, lowering=lowering)
    for name in names:
        assert predicted[name] == measured.per_layer[name], (name, measured.records[name])
    return predicted, measured


def assert_saves_equal(predicted: dict[str, int], measured: Measured, total: bool = True) -> None:
    """Every layer saves what it predicts (the wrong ones listed with autograd's records) and,
    with ``total``, the sums agree (nothing saved outside the layers)."""
    wrong = {k: (predicted[k], measured.per_layer[k], measured.records[k])
             for k in predicted if predicted[k] != measured.per_layer[k]}
    assert not wrong, wrong
    if total:
        assert sum(predicted.values()) == measured.total


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


def _logits(out: Any) -> torch.Tensor:
    """A model's loss-relevant tensor: a ``ModelOutput``'s ``logits`` (or its first tensor), a
    tuple's first tensor, a tensor itself."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return out["logits"] if "logits" in out else _logits(tuple(out.values()))
    return next(t for t in out if isinstance(t, torch.Tensor))


def measure_step(model: torch.nn.Module, groups: list[str], x: torch.Tensor, dtype: str = "fp32",
                 labels: bool = False) -> Measured:
    """The forward pass and the loss of one training step of any module, whatever its forward
    returns (a Hugging Face ``ModelOutput`` or a tuple, with caches): each saved storage attributed
    to the innermost module of ``groups`` (module paths; ``""`` is the model itself) running when it
    was saved, one saved while none runs to ``(loss)``. ``labels``: the model computes its own loss
    (``model(x, labels=x)``: a causal LM's ``ForCausalLMLoss`` shifts the labels and upcasts the
    logits, in the root's own forward, outside ``groups``); otherwise the loss is cross-entropy of
    the fp32 logits over their last dimension, as archviz's step counts it. Backward saves nothing
    new (it runs, to show the record is a whole step's)."""
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
    skip |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    stack = ["(loss)"]
    seen: set[int] = set()
    per_layer: dict[str, int] = {name: 0 for name in [*groups, "(loss)"]}
    records: dict[str, list[tuple[tuple[int, ...], str, int]]] = {name: [] for name in per_layer}

    def enter(mod: Any, args: Any, name: str) -> None:
        stack.append(name)

    def leave(mod: Any, args: Any, out: Any) -> None:
        stack.pop()

    handles = []
    for path in groups:
        m = model.get_submodule(path)
        handles += [m.register_forward_pre_hook(lambda mod, args, name=path: enter(mod, args, name)),
                    m.register_forward_hook(leave)]

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in skip and ptr not in seen:
            seen.add(ptr)
            per_layer[stack[-1]] += st.nbytes()
            records[stack[-1]].append((tuple(t.shape), _NAMES.get(t.dtype, str(t.dtype)), st.nbytes()))
        return t

    def step() -> torch.Tensor:
        if labels:
            return model(x, labels=x).loss
        out = _logits(model(x))
        target = torch.zeros(out.shape[:-1].numel(), dtype=torch.long)
        return torch.nn.functional.cross_entropy(out.float().flatten(0, -2), target)

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if DTYPES[dtype] is None:
            loss = step()
        else:
            with torch.autocast("cpu", dtype=DTYPES[dtype]):
                loss = step()
    loss.backward()
    for h in handles:
        h.remove()
    return Measured(per_layer, {}, records)
