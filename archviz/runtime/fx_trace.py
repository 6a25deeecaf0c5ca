"""torch.fx tracing for the importer (archviz.runtime.importer): a tracer that remembers, for every
node, the module whose ``forward`` made it; one measured forward pass (``ShapeProp``) that also
keeps the numbers computed from sizes per example; and the readers of a node's shape."""

from __future__ import annotations

import contextlib
import io
import operator
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..ops.dtypes import note as dtype_note
from .inputs import example_input
from .mapping import ImportFailed, dispatch, is_mapped_module

Shape = tuple[int, ...]


# --- tracing ------------------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """fx's tracer, remembering in ``node.meta["scope"]`` the module whose forward made a node."""

    def __init__(self) -> None:
        super().__init__()
        self.where = ""
        dispatch()   # the ops' names resolved now: while fx traces, a torch.fx.wrap'ed function is patched

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_mapped_module(m) or super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        old, self.where = self.where, self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.where = old

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["scope"] = self.where
        return node


class FxFailed(ImportFailed):
    """torch.fx cannot trace the model (the import then tries torch.export)."""


def trace(model: nn.Module, input_shape: Shape, input_dtype: str = "float32") -> fx.GraphModule:
    """The fx graph of ``model`` with each node's output measured on a (2, *input_shape) input
    (token ids: all 0, valid for any vocabulary)."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, ... on dynamic code
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FxFailed(f"torch.fx cannot trace {type(model).__name__}: {reason}",
                       "hint: fx needs forward code without data-dependent control flow"
                       " (if/for over tensor values); rewrite that part or mark it as a leaf"
                       " module") from None
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    was = model.training
    model.eval()
    try:
        # ShapeProp prints the traceback of a failing node itself: the message below says it
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            _SizeProp(gm).propagate(example_input(input_shape, input_dtype, batch=2, random=True))
    except Exception as exc:  # noqa: BLE001 - the model refuses this input size
        raise refused(model, input_shape, input_dtype, exc) from None
    finally:
        model.train(was)
    return gm


def refused(model: nn.Module, input_shape: Shape, input_dtype: str, exc: BaseException) -> ImportFailed:
    """The model does not run on the input it was given: what it said, and how to give another."""
    return ImportFailed(f"{type(model).__name__} does not run on input {'x'.join(map(str, input_shape))}"
                        f"{dtype_note(input_dtype)}: {_refusal(exc)}",
                        "hint: give the input it expects with --input (e.g. 3x224x224, or 128"
                        " --input-dtype int64 for token ids)")


class _SizeProp(ShapeProp):
    """ShapeProp that also keeps the numbers the forward computes from sizes (``k.size(-1)``,
    ``math.sqrt(d // h)``) in ``node.meta["value"]``: a divisor written from a size is a constant
    of the input shape (:func:`_number`)."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            n.meta["value"] = result
        return result


def _number(n: fx.Node) -> int | float | None:
    """The value of a number computed from sizes per example only (``q.size(-1)``, its square
    root); None where it reads the batch's size (which the traced input sets), or is no number."""
    value = n.meta.get("value")
    return value if value is not None and _per_example(n) else None


def _per_example(n: fx.Node) -> bool:
    if n.op == "call_method" and n.target == "size" and len(n.args) == 2:
        return _not_batch(n.args[0], n.args[1])
    if n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], fx.Node) \
            and _whole_shape(n.args[0]):
        return _not_batch(n.args[0].args[0], n.args[1])
    if n.op not in ("call_function", "call_method") or _whole_shape(n):
        return False
    return all(m.meta.get("value") is not None and _per_example(m) for m in n.all_input_nodes)


def _whole_shape(n: fx.Node) -> bool:
    return (n.op == "call_function" and n.target is getattr and n.args[1:] == ("shape",)) or \
        (n.op == "call_method" and n.target == "size" and len(n.args) == 1)


def _not_batch(t: Any, i: Any) -> bool:
    """``t.shape[i]`` is not the batch's size: ``i`` a whole number naming another dim."""
    shape = _shape(t)
    return isinstance(i, int) and shape is not None and i % (len(shape) + 1) != 0


def _refusal(exc: BaseException) -> str:
    """What the model said when it refused the input: the error raised inside it (and the layer),
    not ShapeProp's wrapper with torch.fx's node internals."""
    cause = exc.__cause__ if exc.__cause__ is not None and "ShapeProp error" in str(exc) else exc
    node = re.search(r"node=%(\S+) ", str(exc))
    first = str(cause).splitlines()[0] if str(cause) else ""
    where = f"at {node.group(1)}: " if node and cause is not exc else ""
    return f"{where}{type(cause).__name__}: {first}"


def _shape(node: Any) -> Shape | None:
    """A tensor node's output shape without the batch; None for anything that is not a tensor."""
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(d) for d in meta.shape[1:])


def _node_shape(node: fx.Node) -> Shape | None:
    """A tensor node's shape per example (``()``: one number per example), else the shape of the
    first element of a mapped module's tuple output; None for what is no tensor."""
    shape = _shape(node)
    return shape if shape is not None else _tuple_head(node)


def _tuple_head(node: fx.Node) -> Shape | None:
    """A mapped module that returns a tuple led by its output (``nn.MultiheadAttention``: the
    output and the attention weights): the shape of element 0; None for anything else."""
    meta = node.meta.get("tensor_meta")
    if node.op != "call_module" or not isinstance(meta, (tuple, list)) or not meta or \
            not hasattr(meta[0], "shape"):
        return None
    return tuple(int(d) for d in meta[0].shape[1:])
