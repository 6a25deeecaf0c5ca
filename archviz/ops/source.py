"""What the importers show an op, and what the split code asks of it (no torch here).

An op names where it is imported from, as strings (so ``ops/`` never imports torch):

* ``torch_modules``: qualified module classes, ``"torch.nn.Conv2d"``;
* ``torch_functions``: qualified functions, ``"torch.nn.functional.relu"``, ``"torch.relu"``,
  ``"operator.add"``; ``tensor_methods``: method names, ``"relu"``, ``"view"``;
* ``onnx_types``: ONNX node types, ``"Conv"``; ``onnx_weights``: the state-dict keys of the
  node's constant inputs after the data (``("weight", "bias")``).

:mod:`archviz.runtime.mapping` resolves the names once, finds the op of each traced node, and
hands the op's facet (``from_module``, ``from_call`` or ``from_onnx``) a :class:`Source`: the
one view of a node both importers build. The facet returns the layers the node becomes
(:data:`Mapped`: ``((op, settings), ...)``, empty for an identity) or raises :class:`Unmapped`
with the reason for a variant archviz cannot describe.

:class:`Split` is an op's GPU-split (tensor-parallel) rule, read by
:mod:`archviz.runtime.parallel` and :mod:`archviz.runtime.export`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from ..record import record

Shape = tuple[int, ...]
Mapped = tuple[tuple[str, dict[str, Any]], ...]   # (op, settings) per layer; () = an identity


class Unmapped(Exception):
    """A node whose op archviz knows, in a variant it cannot describe (conv with reflect padding)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class _Tensor:
    """An argument that is a tensor computed by the graph (not a constant)."""

    def __repr__(self) -> str:
        return "<tensor>"


TENSOR = _Tensor()


@record
class Weight:
    """An argument that is a parameter of the traced model (an fx ``get_attr``: ``self.gamma * x``):
    its state-dict key and shape (the batch not in it). ``start``: the call reads rows
    ``start…`` of it, as many as the sequence has (an embedding of constant positions: GPT-2's
    ``wpe(arange(S))``, which a capture records as the rows it returned); None: the whole.
    ``row``: the call reads that one row at every position (BERT's token-type embedding of
    constant zeros)."""

    key: str
    shape: tuple[int, ...]
    start: int | None = None
    row: int | None = None


@record
class Source:
    """One node of a source graph, as an op's import facet sees it.

    ``target``: the qualified name the op declared (``"torch.nn.Conv2d"``, ``"torch.cat"``, a
    method's name, an ONNX type). ``attrs``: a module's attributes (its parameters as their
    shapes, ``None`` where absent: ``attrs["bias"] is not None``) or an ONNX node's attributes.
    ``args``/``kwargs``: a call's arguments, a computed tensor written :data:`TENSOR`; for ONNX
    the node's inputs, a constant as its array, an absent optional input as ``None``.
    ``ins``: the tensor inputs' shapes per example, ``out`` the output's (``None``: unknown);
    ``outputs``: which of an ONNX node's outputs are used. ``piece``: for a node that reads one
    output of a call with several (``x.chunk(2, 1)[1]``, an ONNX Split's second output), which.
    """

    target: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    ins: tuple[Shape, ...] = ()
    out: Shape | None = None
    outputs: tuple[bool, ...] = (True,)
    piece: int | None = None

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Positional argument ``i`` or keyword ``name`` of a call."""
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(name, default)

    def const(self, i: int) -> Any:
        """ONNX input ``i`` where it is a constant (an array), else None."""
        v = self.args[i] if len(self.args) > i else None
        return None if v is None or v is TENSOR else v

    def scalar(self, i: int) -> float | None:
        """ONNX input ``i`` where it is a one-element constant, to the 7 digits float32 holds."""
        v = self.const(i)
        return float(f"{float(v.reshape(-1)[0]):.7g}") if v is not None and v.size == 1 else None

    def given(self, i: int) -> bool:
        """ONNX input ``i`` is present (a tensor or a constant)."""
        return len(self.args) > i and self.args[i] is not None


def pair(v: Any) -> tuple[int, int]:
    """A torch size argument (``3`` or ``(3, 3)``) as a pair."""
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def sym_pads(pads: Any, n: int = 2) -> tuple[int, int]:
    """ONNX ``pads`` (begins, then ends) as symmetric padding; asymmetric ones are refused."""
    pads = list(pads or [0] * 2 * n)
    if pads[:n] != pads[n:]:
        raise Unmapped(f"asymmetric pads {pads}")
    return int(pads[0]), int(pads[1])


def no_auto_pad(attrs: Mapping[str, Any], only: str = "") -> None:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unmapped(f"auto_pad={attrs['auto_pad']!r}{only}")


@record
class Split:
    """How a layer runs split over towers by output channels (the AlexNet paper's two GPUs;
    today's tensor parallelism): tower g computes its rows of the output, i.e. rows of dim 0 of
    every weight, bias and statistic.

    ``kind``: "local" (each tower computes its rows from its own share of the input), "merge"
    (several inputs, combined share by share), "lrn" (a window over neighbouring channels, which
    may borrow the neighbours' edge channels: ``window`` channels around each). ``whole_input``:
    reading the network input, each tower takes it whole (every output row reads every input
    channel: conv, linear). ``grouped``: its channel groups are what the towers split (cannot read
    the replicated input); ``even_inputs``: its input channels must split evenly over the towers.
    ``refuse``: why the layer cannot run split (yet), if it cannot."""

    kind: str = "local"
    whole_input: bool = False
    grouped: bool = False
    even_inputs: bool = False
    window: int = 1
    refuse: str = ""
