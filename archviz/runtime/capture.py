"""Capture by running: the model's graph recorded from one real forward pass, where ``torch.fx``'s
proxies cannot trace it (Hugging Face ``transformers`` models: their forward branches on shapes,
builds masks and caches, unpacks tuples).

The model runs once, in eval mode, on a (2, *input) example. A ``TorchFunctionMode`` sees every
torch function and tensor method called at the model's own level; forward hooks see every module
call. The modules archviz maps whole (``mapping.is_mapped_module``: ``nn.Linear``, transformers'
``LlamaAttention``, ...) are leaves: what runs inside them is not recorded. A call is recorded as
an ``fx`` node only where it reads a tensor computed from the input; everything else (position
ids, causal masks, rotary tables, the ``torch.arange`` of a sequence) is a constant of this input
size and no layer, and Python control flow is decided by the real values. The result is an
``fx.GraphModule`` whose nodes carry ``tensor_meta`` and ``scope`` as :func:`.importer.trace`'s
do, so the importer's one mapping pass walks it unchanged.

A model's output may be a tensor, a tuple or a ``ModelOutput``; its tensors computed from the
input are the graph's outputs, in order, and a cache (``past_key_values``) is left out.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import _extract_tensor_metadata
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from .mapping import is_mapped_module

CACHES = ("past_key_values", "past_key_value", "mems")   # outputs that are caches, not results

# a tensor's operators as fx writes them (``x + y`` is operator.add), and the reflected ones
_OPERATORS = {f"__{n}__": getattr(operator, n) for n in ("add", "sub", "mul", "truediv", "matmul", "getitem",
                                                         "neg", "pow", "floordiv", "mod")}
_OPERATORS |= {f"__i{n}__": getattr(operator, f"i{n}") for n in ("add", "sub", "mul", "truediv")}
_REFLECTED = {f"__r{n}__": getattr(operator, n) for n in ("add", "sub", "mul", "truediv", "matmul")}


# reading a computed tensor's value: control flow the real values would decide, silently
_VALUES = ("__bool__", "item", "tolist", "__int__", "__float__", "__index__", "cond", "nonzero")


class ValueRead(Exception):
    """The forward reads a computed tensor's value (``if x.sum() > 0``): capturing it by running
    would fix one branch silently."""


class _Recorder(TorchFunctionMode):
    """Builds the graph as the model runs: ``values`` maps a tensor (by id; the tensors kept alive
    in ``keep`` so ids stay unique) to the node that computed it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.graph = fx.Graph()
        self.values: dict[int, fx.Node] = {}
        self.pending: dict[int, tuple[fx.Node, int]] = {}   # an element of a call's tuple, not yet read
        self.keep: list[Any] = []
        self.attrs = {id(t): k for k, t in [*model.named_parameters(remove_duplicate=False),
                                            *model.named_buffers(remove_duplicate=False)]}
        self.paths = {id(m): p for p, m in reversed(list(model.named_modules(remove_duplicate=False)))}
        self.scope: list[str] = [""]
        self.leaf = 0                                        # > 0 while inside a mapped module
        # a constant that is rows start… of a weight, or (same) its row start at every position
        self.rows: dict[int, tuple[str, int, bool]] = {}
        self.constant_flops = 0      # FlopCounterMode's count of the constants' work (the rotary table)

    # --- values ---------------------------------------------------------------------------------

    def node_of(self, t: Any) -> fx.Node | None:
        """The node that computed tensor ``t`` (a pending tuple element gets its ``call[i]`` now)."""
        if not isinstance(t, torch.Tensor):
            return None
        if id(t) in self.pending:
            call, i = self.pending.pop(id(t))
            self.record(self.create("call_function", operator.getitem, (call, i), {}), t)
        return self.values.get(id(t))

    def arg(self, a: Any) -> Any:
        """An argument as a node's: a computed tensor → its node, a parameter → a get_attr node, other
        tensors (constants of this input size) → a note of their shape, containers element-wise."""
        if isinstance(a, torch.Tensor):
            if (n := self.node_of(a)) is not None:
                return n
            if id(a) in self.attrs:
                return self.create("get_attr", self.attrs[id(a)], (), {})
            if id(a) in self.rows:   # wpe(arange(S)): rows start… of wpe.weight; tte(zeros): its row 0
                key, start, same = self.rows[id(a)]
                node = self.create("get_attr", key, (), {})
                node.meta["row" if same else "start"] = start
                return node
            return _Constant(tuple(a.shape))
        if isinstance(a, (tuple, list)):
            return type(a)(self.arg(x) for x in a)
        if isinstance(a, dict):
            return {k: self.arg(v) for k, v in a.items()}
        return a

    def reads_input(self, args: Any, kwargs: Any) -> bool:
        return any(id(t) in self.values or id(t) in self.pending for t in _tensors((args, kwargs)))

    def create(self, op: str, target: Any, args: Any, kwargs: Any) -> fx.Node:
        node = self.graph.create_node(op, target, tuple(args), dict(kwargs))
        node.meta["scope"] = self.scope[-1]
        return node

    def record(self, node: fx.Node, out: Any) -> None:
        """``out`` (a tensor, or a tuple whose tensors are read later as ``node[i]``) is ``node``'s."""
        if isinstance(out, torch.Tensor):
            node.meta["tensor_meta"] = _extract_tensor_metadata(out)
            self.values[id(out)] = node
            self.keep.append(out)
        elif isinstance(out, (tuple, list)):
            node.meta["tensor_meta"] = tuple(
                _extract_tensor_metadata(t) if isinstance(t, torch.Tensor) else None for t in out)
            for i, t in enumerate(out):
                if isinstance(t, torch.Tensor):
                    self.pending[id(t)] = (node, i)
                    self.keep.append(t)

    # --- torch functions and methods --------------------------------------------------------------

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if not self.leaf and name in _VALUES and self.reads_input(args, kwargs):
            raise ValueRead(f"its forward reads a tensor's value ({name}): a spec is one fixed graph")
        if self.leaf:
            return func(*args, **kwargs)        # inside a mapped module
        if name == "expand" and isinstance(args[0], nn.Parameter) and id(args[0]) in self.attrs:
            out = func(*args, **kwargs)      # token.expand(N, -1, -1): ViT's class token, over the batch
            self.record(self.create("call_method", name, self.arg(tuple(args)), self.arg(kwargs)), out)
            return out
        if not self.reads_input(args, kwargs):   # a constant of this input size: its FLOPs counted apart
            with FlopCounterMode(display=False) as counter:
                out = func(*args, **kwargs)
            self.constant_flops += counter.get_total_flops()
            return out
        out = func(*args, **kwargs)
        if not any(True for _ in _tensors(out)):
            return out     # a size
        if name == "__getitem__" and _whole(args[1]):
            self.alias(out, args[0])                    # x[:, 0:] → x itself
            return out
        if name in _REFLECTED:
            op, target, args = "call_function", _REFLECTED[name], (args[1], args[0], *args[2:])
        elif name in _OPERATORS:
            op, target = "call_function", _OPERATORS[name]
        elif getattr(torch.Tensor, name, None) is func:
            op, target = "call_method", name
        else:
            op, target = "call_function", func
        self.record(self.create(op, target, self.arg(tuple(args)), self.arg(kwargs)), out)
        return out

    def alias(self, out: torch.Tensor, of: torch.Tensor) -> None:
        node = self.node_of(of)
        if node is not None and out.shape == of.shape:
            self.values[id(out)] = node
            self.keep.append(out)

    # --- modules -------------------------------------------------------------------------------

    def before(self, m: nn.Module, args: Any, kwargs: Any) -> None:
        if self.leaf or is_mapped_module(m):
            self.leaf += 1
        elif id(m) in self.paths:
            self.scope.append(self.paths[id(m)])

    def after(self, m: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
        if not self.leaf:
            if id(m) in self.paths and len(self.scope) > 1:
                self.scope.pop()
            return
        self.leaf -= 1
        if self.leaf or id(m) not in self.paths:
            return
        if self.reads_input(args, kwargs):
            node = self.create("call_module", self.paths[id(m)], self.arg(tuple(args)), self.arg(kwargs))
            self.record(node, out)
        elif (rows := _rows_of(args, out, m._parameters.get("weight"))) is not None:
            self.rows[id(out)] = (f"{self.paths[id(m)]}.weight", *rows)
            self.keep.append(out)


class _Constant:
    """A tensor argument that is a constant of this input size (a mask, a rotary table)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __repr__(self) -> str:   # valid Python: fx writes its graph's code with it
        return f"constant{tuple(self.shape)}"


def _rows_of(args: Any, out: Any, weight: Any) -> tuple[int, bool] | None:
    """``(start, False)`` where a module was called on constant consecutive positions (its first
    argument start, start+1, …, the same for every example: GPT-2's ``wpe(arange(S))``) and
    returned those rows of its 2-D ``weight`` (a lookup); ``(r, True)`` where it was called on one
    id r at every position (BERT's ``token_type_embeddings`` of zeros) and returned row r each
    time; None otherwise."""
    ids = args[0] if args else None
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.ndim == 0 or ids.numel() == 0 \
            or not isinstance(weight, torch.Tensor) or weight.ndim != 2 or not isinstance(out, torch.Tensor):
        return None
    first = ids.reshape(-1, ids.shape[-1])
    start, s = int(first[0, 0]), first.shape[1]
    with torch.no_grad():
        if out.shape[-2:] != (s, weight.shape[1]) or not 0 <= start < weight.shape[0]:
            return None
        rows = out.reshape(-1, s, weight.shape[1])
        want = torch.arange(start, start + s, dtype=first.dtype, device=first.device)
        if bool((first == want).all()) and start + s <= weight.shape[0]:
            return (start, False) if bool((rows == weight[start:start + s]).all()) else None
        if bool((first == start).all()):   # one id everywhere (S > 1 here: S = 1 is a run of one)
            return (start, True) if bool((rows == weight[start]).all()) else None
        return None


def _whole(index: Any) -> bool:
    """An index that keeps everything: ``[:, 0:, :]``, ``[..., :]``."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is Ellipsis or (isinstance(i, slice) and i.step in (None, 1) and i.start in (None, 0)
                                 and i.stop is None) for i in items)


def _tensors(x: Any) -> Iterator[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for k, y in x.items():
            if k not in CACHES:
                yield from _tensors(y)


def outputs(out: Any) -> list[torch.Tensor]:
    """A model's result tensors, in order: a tensor, a tuple's, a ``ModelOutput``'s (a dict), caches
    (``past_key_values``) left out."""
    return list(_tensors(dict(out) if isinstance(out, dict) else out))


def capture(model: nn.Module, x: torch.Tensor) -> fx.GraphModule:
    """The graph of ``model(x)`` (see the module doc); the model runs once, as it is (call it in
    eval mode). ``gm.meta["constant_flops"]``: FlopCounterMode's count, per example, of the work
    that reads no input (Llama's rotary table, computed from the positions in each forward): no
    layer's, so the round trip leaves it out of the source's count."""
    rec = _Recorder(model)
    handles = [h for m in model.modules() for h in (
        m.register_forward_pre_hook(rec.before, with_kwargs=True),
        m.register_forward_hook(rec.after, with_kwargs=True))]
    placeholder = rec.create("placeholder", "x", (), {})
    rec.record(placeholder, x)
    try:
        with rec:
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    results = [rec.node_of(t) for t in outputs(out)]
    rec.graph.output(results[0] if len(results) == 1 else tuple(n for n in results if n is not None))
    gm = fx.GraphModule(model, rec.graph, type(model).__name__)
    gm.graph.eliminate_dead_code()     # what the output does not read (attention weights, a mask's work)
    gm.recompile()
    gm.meta["constant_flops"] = rec.constant_flops // x.shape[0]
    return gm
