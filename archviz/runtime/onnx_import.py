"""An ONNX file → a spec (``archviz import model.onnx``), proven against onnxruntime.

The graph is read with the ``onnx`` package (the optional ``onnx`` extra), its value shapes
inferred by ``onnx.shape_inference``, and every node mapped onto an archviz op: ``Conv`` (group,
pads, strides, dilations), ``Gemm`` and ``MatMul`` (+ ``Add`` of a bias) as linear, pooling,
``BatchNormalization``, ``LRN``, activations (``Clip(0, 6)`` as relu6), ``Flatten`` and a
``Reshape`` to (N, -1) as flatten, ``Add``/``Mul``/``Concat`` as merges. Nodes that compute
shapes (integer tensors: ``Shape``, ``Gather``, the ``Concat`` of a reshape target) are not layers.
torch's exporter writes ``F.local_response_norm`` out as eleven nodes (x², a 3-d average pool
over channels, ·α, +k, ^β, x ÷ that); that pattern is recognised and read back as one LRN.
That and the other patterns of several nodes read as one layer (GroupNorm, RMSNorm, GELU, SiLU,
the class token, self-attention) are in :mod:`.onnx_patterns` and :mod:`.onnx_attention`.

LRN's α: ONNX divides its ``alpha`` by ``size`` (as torch does), a spec's ``alpha`` is the
paper's α, so the spec gets ``alpha = onnx alpha / size``.

Names (the rule written into the spec's header): a node whose weights are initializers named
``P.weight`` / ``P.bias`` / ... (what torch's exporters keep: the state-dict keys) is named
``P``; any other node is named after its node name with ``/`` read as ``.``, leading and empty
segments dropped, characters outside letters, digits and ``_`` replaced by ``_``, and a first
segment that starts with a digit prefixed ``layer_``; a node without a name gets its op type in
lower case; a name taken twice gets ``_1``, ``_2``. :attr:`Imported.name_map` maps every weight
initializer to the compiled spec's state-dict key; :func:`state_dict` builds that state dict
(``Gemm`` with ``transB=0`` and ``MatMul`` weights transposed to torch's (out, in)).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..ops import OPS, OpKind
from ..ops.source import TENSOR, Mapped, Source, Unmapped
from ..record import record
from ..spec import INPUT
from ..spec.write import LOWERING, TIE, Header
from .mapping import (
    PREFIX,
    Imported,
    ImportFailed,
    Layers,
    count_flops,
    layer_name,
    map_onnx,
    onnx_bias_add,
    onnx_op,
    supported_onnx,
)
from .modnames import compiled_keys
from .onnx_graph import Graph, attrs
from .onnx_patterns import Pattern
from .onnx_patterns import find as find_patterns

Shape = tuple[int, ...]


@record
class OnnxImported(Imported):
    """An imported ONNX graph: the spec, and where each weight initializer goes."""

    transposed: tuple[str, ...] = ()             # initializers stored (in, out): transposed on load
    initializer_params: int = 0                  # elements of the weight initializers (BN stats apart)
    batch: int = 2                               # the file's batch size where fixed, else 2
    onnx_model: Any = field(default=None, repr=False, compare=False)
    reshaped: Mapping[str, Shape] = field(default_factory=dict, kw_only=True)   # initializer → shape on load


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def read(path: str | Path) -> Any:
    """The ModelProto in ``path``; a file that is not ONNX is refused clearly."""
    p = Path(path)
    if p.is_dir():
        raise ImportFailed(f"{path}: is a directory, not an ONNX file")
    if not p.is_file():
        raise ImportFailed(f"{path}: no such file")
    if not onnx_available():
        raise ImportFailed(f"{path}: reading ONNX needs the 'onnx' package, which is not installed here",
                           "hint: pip install 'archviz[onnx]' (or pip install onnx)")
    import onnx

    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeError, ...
        hint = "hint: a Python file is imported as path/to/file.py:Name" if p.suffix == ".py" else ""
        raise ImportFailed(f"{path}: not an ONNX file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'cannot be parsed'})", hint) from None
    if not model.graph.node:
        raise ImportFailed(f"{path}: not an ONNX model (no graph nodes)")
    return model


# --- one node --------------------------------------------------------------------------------------

def _source(n: Any, g: Graph, ins: list[Shape], out: Shape | None, bias: str | None) -> Source:
    """The node as its op sees it: inputs a constant's array, a computed tensor TENSOR, an absent
    optional one None; a MatMul's bias (the Add that follows it) as an input after its weight."""
    args = tuple(None if not i else TENSOR if g.const(i) is None else g.const(i) for i in n.input)
    if bias is not None:
        args += (g.const(bias),)
    used = tuple(bool(o) for o in n.output)
    return Source(n.op_type, attrs(n), args, ins=tuple(ins), out=out, outputs=used)


# --- names -----------------------------------------------------------------------------------------

def node_layer_name(node_name: str, op_type: str) -> str:
    """A node name as a layer name (see the module doc): ``/features/features.0/Conv`` →
    ``features.features.0.Conv``, ``3x`` → ``layer_3x``."""
    parts = [p for p in re.split(r"[/.]", node_name) if p]
    return layer_name(".".join(parts)) if parts else op_type.lower()


def _weight_prefix(names: list[str]) -> str | None:
    """``P`` where every weight initializer is ``P.<something>`` (torch's exporters keep state-dict keys)."""
    prefixes = {n.rpartition(".")[0] for n in names}
    if len(prefixes) == 1 and "" not in prefixes:
        p = prefixes.pop()
        if all(re.fullmatch(r"[A-Za-z0-9_]+", s) for s in p.split(".")):
            return layer_name(p)
    return None


# --- the import ------------------------------------------------------------------------------------

def from_onnx(path: str | Path, input_shape: Shape | None = None, *, name: str | None = None,
              allow_opaque: bool = False, origin: str | None = None,
              source: str | None = None) -> OnnxImported:
    """Read the ONNX file at ``path`` and describe it as a spec (see the module doc); ``origin``:
    the header's first comment (where the graph came from) instead of the file's name."""
    model = read(path)
    g = Graph(model, input_shape)
    patterns, swallowed = find_patterns(g)
    flow = [n for n in model.graph.node if n.op_type in ("If", "Loop", "Scan") and (n.name or n.output[0])
            not in swallowed]
    if flow:
        where = flow[0].name or flow[0].output[0]
        raise ImportFailed(f"node {where!r}: ONNX {flow[0].op_type} is control flow"
                           " decided at run time (torch.cond, a loop over tensor values); a spec is one fixed"
                           " graph", "hint: import the model with the branch it takes fixed (a flag set in"
                           " its constructor), or export that branch alone")
    walk = _Walk(g, patterns, swallowed, allow_opaque)
    for n in model.graph.node:
        walk.node(n)
    layers = walk.layers
    if not layers.entries:
        raise ImportFailed(f"{path}: nothing to import (no layer between the input and the output)")
    outputs = [o.name for o in model.graph.output]
    if len(outputs) != 1 or walk.values.get(outputs[0]) != layers.entries[-1].name:
        raise ImportFailed(f"{path}: only a single output, made by the last layer, can be imported")
    layers.output = g.shapes.get(outputs[0])
    header = Header(name or Path(path).stem, g.shape, source or f"archviz import {Path(path).name}",
                    comments=_comments(Path(path).name, g.shape, walk.renames, origin), input_dtype=g.dtype)
    spec, text = layers.spec(header)
    keys = compiled_keys(walk.name_map, (e.name for e in layers.entries))
    return OnnxImported(spec, text, keys, walk.renames, tuple(layers.opaque), tuple(layers.warnings),
                        tuple(walk.transposed), walk.params, g.batch, model, reshaped=walk.reshaped)


class _Walk:
    """One pass over the graph's nodes: each mapped by its op (archviz.runtime.mapping) and
    written as layers named after its weights or its node name."""

    def __init__(self, g: Graph, patterns: Mapping[str, Pattern], swallowed: set[str],
                 allow_opaque: bool) -> None:
        self.g, self.patterns, self.allow_opaque = g, patterns, allow_opaque
        self.reshaped: dict[str, Shape] = {}
        self.outputs = {o.name for o in g.model.graph.output}
        self.layers = Layers()
        self.values: dict[str, str] = {g.input: INPUT}
        self.name_map: dict[str, str] = {}
        self.renames: dict[str, str] = {}
        self.transposed: list[str] = []
        self.params = 0
        self.skip: set[str] = set(swallowed)
        self.bias_of = self._bias_adds()    # MatMul output → the bias its Add adds
        self.matrices: list[tuple[str, Any]] = []   # (layer, its 2-d weight in torch's layout)

    def _bias_adds(self) -> dict[str, str]:
        """A node of an op that leaves its bias to a following Add (MatMul) of a 1-d constant: the
        Add is folded into it."""
        g, out = self.g, {}
        for n in g.model.graph.node:
            if n.op_type in onnx_bias_add() and g.const(n.input[1]) is not None:
                readers = g.readers.get(n.output[0], [])
                if len(readers) == 1 and readers[0].op_type == "Add":
                    add = readers[0]
                    other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
                    b = g.const(other)
                    if b is not None and b.ndim == 1:
                        out[n.output[0]] = other
                        self.skip.add(add.name or add.output[0])
        return out

    def node(self, n: Any) -> None:
        g = self.g
        outs = [o for o in n.output if o]
        if (n.name or n.output[0]) in self.skip or n.op_type == "Constant" or not outs \
                or not g.is_float(outs[0]):
            return   # folded, a constant, or shape arithmetic (integer tensors): not a layer
        pattern = self.patterns.get(outs[0])   # several nodes read back as one layer (an LRN, a GroupNorm)
        tensor_ins = [pattern.x] if pattern else [i for i in n.input if i in self.values]
        if not tensor_ins:
            return   # computed from constants only
        ins = [g.shapes.get(i) or _shape_of(self.values[i], self.layers.traced, g) for i in tensor_ins]
        out, op, bias = g.shapes.get(outs[0]), onnx_op(n.op_type), self.bias_of.get(outs[0])
        src = _source(n, g, ins, out, bias)
        used = [i for i, o in enumerate(n.output)   # integer outputs (MaxPool's indices) are no layers
                if o and (o in g.readers or o in self.outputs) and g.is_float(o)]
        if len(used) > 1 and pattern is None:
            self._pieces(n, src, used, tensor_ins)
            return
        try:
            mapped = pattern.layers if pattern else map_onnx(src)
        except Unmapped as exc:
            if not self.allow_opaque:
                raise _unmapped(n, exc.reason) from None
            count = sum(int(g.consts[i].size) for i in n.input if i in g.consts and g.is_float(i))
            mapped = (("opaque", {"module": f"onnx {n.op_type}", "traced_shape": out or (),
                                  "traced_params": count}),)
        if mapped == ():
            self._value(outs[0], self.values[tensor_ins[0]])
            return
        made_op = OPS.get(mapped[0][0]) if len(mapped) == 1 else None   # Mul by γ: the scale's weight
        op = made_op if made_op is not None and made_op.onnx_weights else op   # else the node's op's
        weights = [i for i in n.input if i and i in g.consts and g.is_float(i)
                   and i not in tensor_ins] if op is not None and op.onnx_weights else []
        weights = list(pattern.weights) if pattern else weights + ([bias] if bias is not None else [])
        if pattern and not pattern.keys:   # a pattern's γ, β (C, 1, …) for the broadcast: loaded as (C,)
            self.reshaped.update({w: (int(g.consts[w].size),) for w in weights if g.consts[w].ndim > 1})
        base = (pattern.name if pattern else None) or (_weight_prefix(weights) if weights else None) \
            or node_layer_name(n.name, n.op_type)
        matrix = self._matrix(op, src, weights) if not pattern and mapped[0][0] != "opaque" else None
        owner = next((lname for lname, w in self.matrices
                      if matrix is not None and np.array_equal(w, matrix)), None)
        if owner is not None:   # the exporter's copy of a tied weight (GPT-2's lm_head and wte)
            mapped = ((mapped[0][0], {**mapped[0][1], TIE: owner}), *mapped[1:])
        made = self.layers.add(
            mapped, lambda i, op_: self._name(n, base, i, op_), tuple(self.values[s] for s in tensor_ins),
            out, "onnx node kept opaque: not compiled",
            lambda lname: f"{lname}: ONNX {n.op_type} kept as an opaque layer; it cannot be compiled")
        if pattern and pattern.keys:
            self.params += self._name_keys(pattern, made[0])
        elif mapped[0][0] != "opaque" and op is not None:
            count = self._name_weights(op, src, made[0], weights) - (matrix.size if owner else 0)
            self.params += count if _holds_params(mapped, tuple(ins), out) else 0   # else a buffer
        if matrix is not None and owner is None:
            self.matrices.append((made[0], matrix))
        self._value(outs[0], made[-1])

    def _matrix(self, op: OpKind | None, src: Source, weights: list[str]) -> Any:
        """The node's 2-d ``weight`` in torch's layout (None for a constant one, which two layers
        may hold without being tied)."""
        if op is None or "weight" not in op.onnx_weights or op.onnx_weights.index("weight") >= len(weights):
            return None
        w = self.g.consts[weights[op.onnx_weights.index("weight")]]
        if w.ndim != 2 or not w.size or (w == w.flat[0]).all():
            return None
        return w.T if "weight" in op.onnx_transposed(src) else w

    def _pieces(self, n: Any, src: Source, used: list[int], tensor_ins: list[str]) -> None:
        """A node with several outputs read (a Split): each output its own layers, all reading the
        node's inputs (as the torch importer writes ``x.chunk(2, 1)``: one narrow per piece)."""
        base = node_layer_name(n.name, n.op_type)
        for i in used:
            piece = replace(src, piece=i, out=self.g.shapes.get(n.output[i]))
            try:
                mapped = map_onnx(piece)
            except Unmapped as exc:
                raise _unmapped(n, exc.reason) from None
            if mapped == ():
                self._value(n.output[i], self.values[tensor_ins[0]])
                continue
            made = self.layers.add(
                mapped, lambda j, op_: self._name(n, base, j, op_), tuple(self.values[s] for s in tensor_ins),
                piece.out, "", lambda lname: "")
            self._value(n.output[i], made[-1])

    def _name(self, n: Any, base: str, i: int, op: str) -> str:
        lname = self.layers.names.unique(base if i == 0 else f"{base}.{op}")
        if i == 0 and n.name and lname != n.name:
            self.renames[n.name] = lname
        return lname

    def _value(self, out: str, layer: str) -> None:
        """``out`` is read as ``layer`` (and so is its folded bias Add)."""
        self.values[out] = layer
        if out in self.bias_of:
            self.values[_bias_add(self.g, out).output[0]] = layer

    def _name_keys(self, pattern: Pattern, lname: str) -> int:
        """A pattern's weights named by its own keys; their elements."""
        assert pattern.keys is not None
        for init, key in pattern.keys.items():
            self.name_map[init] = f"{lname}.{key}"
        self.transposed.extend(pattern.transposed)
        return sum(int(self.g.consts[init].size) for init in pattern.keys)

    def _name_weights(self, op: OpKind, src: Source, lname: str, weights: list[str]) -> int:
        """Record where each weight initializer goes; the parameter elements (BN statistics apart)."""
        count, transposed = 0, op.onnx_transposed(src)
        for key, init in zip(op.onnx_weights, weights, strict=False):
            self.name_map[init] = f"{lname}.{key}"
            if key in ("weight", "bias"):
                count += int(self.g.consts[init].size)
            if key in transposed:
                self.transposed.append(init)
        return count


def _holds_params(mapped: Mapped, ins: tuple[Shape, ...], out: Shape | None) -> bool:
    """False where the one layer made holds no parameters, its weights being a buffer (a
    sinusoidal position table, read from the file like a learned one)."""
    if len(mapped) != 1 or mapped[0][0] not in OPS or out is None:
        return True
    kind = OPS[mapped[0][0]]
    given = {k: v for k, v in mapped[0][1].items() if k not in (LOWERING, TIE)}
    return kind.params(kind.make(given), ins, out) > 0


def _bias_add(g: Graph, matmul_out: str) -> Any:
    return g.readers[matmul_out][0]


def _shape_of(layer: str, traced: Mapping[str, Shape], g: Graph) -> Shape:
    return g.shape if layer == INPUT else traced.get(layer, ())


def _comments(file: str, shape: Shape, renames: Mapping[str, str],
              origin: str | None = None) -> tuple[str, ...]:
    lines = [origin or f"Imported by `archviz import` from {file} (ONNX), input {'x'.join(map(str, shape))}.",
             "Layer names: a node's weight prefix (P of P.weight), else its node name with / as ."
             f" and other characters as _ (a leading digit prefixed {PREFIX!r})."]
    if renames:
        shown = ", ".join(f"{a} → {b}" for a, b in list(renames.items())[:3])
        more = f" and {len(renames) - 3} more" if len(renames) > 3 else ""
        lines.append(f"Renamed nodes: {shown}{more}.")
    return tuple(lines)


def _unmapped(n: Any, reason: str) -> ImportFailed:
    detail = f": {reason}" if reason else ""
    return ImportFailed(f"node {n.name or n.output[0]!r}: archviz has no op for ONNX {n.op_type}{detail}",
                        f"supported ONNX nodes: {supported_onnx()}\n"
                        "hint: --allow-opaque keeps it as an `opaque` layer (not compiled)")


# --- weights and the round trip --------------------------------------------------------------------

def state_dict(imported: OnnxImported) -> dict[str, Any]:
    """The compiled spec's state dict from the file's initializers (through the name map)."""
    import torch
    from onnx import numpy_helper

    inits = {t.name: t for t in imported.onnx_model.graph.initializer}
    consts = {n.output[0]: attrs(n)["value"] for n in imported.onnx_model.graph.node
              if n.op_type == "Constant" and "value" in attrs(n)}
    out: dict[str, Any] = {}
    for src, dst in imported.name_map.items():
        array = numpy_helper.to_array(inits[src] if src in inits else consts[src]).copy()
        t = torch.from_numpy(array)
        t = t.reshape(imported.reshaped[src]) if src in imported.reshaped else t
        out[dst] = t.T.contiguous() if src in imported.transposed else t
        if dst.endswith(".running_var"):
            out[dst.rpartition(".")[0] + ".num_batches_tracked"] = torch.tensor(0)
    return out


@record
class OnnxRoundTrip:
    """The ONNX file run by ``runtime`` against the compiled spec with the file's weights."""

    max_abs_diff: float
    params: int               # weight initializers in the file
    spec_params: int          # compiled spec
    analysis_params: int
    spec_flops: int           # torch.utils.flop_counter on the compiled spec, per image
    analysis_macs: int
    runtime: str              # "onnxruntime 1.x" or "onnx.reference"
    tolerance: float = 1e-5

    @property
    def ok(self) -> bool:
        return (self.max_abs_diff <= self.tolerance
                and self.params == self.spec_params == self.analysis_params
                and self.spec_flops == 2 * self.analysis_macs)


def run_onnx(model: Any, x: Any) -> tuple[Any, str]:
    """The model's output on ``x`` (numpy): onnxruntime where installed, else onnx's reference evaluator."""
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        outs: list[Any] = list(sess.run(None, {name: x}))
        return outs[0], f"onnxruntime {ort.__version__}"
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(model)
    results: list[Any] = list(ref.run(None, {ref.input_names[0]: x}))
    return results[0], "onnx.reference"


def round_trip(imported: OnnxImported, seed: int = 0) -> OnnxRoundTrip:
    """Compile the spec, load the file's initializers through the name map, and compare with the
    ONNX file run by onnxruntime on the same random input."""
    import torch

    from ..core.analysis import analyze
    from .compile import to_module
    from .inputs import example_input, id_bound

    if imported.opaque:
        raise ImportFailed(f"cannot verify: opaque layers ({', '.join(imported.opaque)}) cannot be compiled")
    compiled = to_module(imported.spec)
    compiled.load_state_dict(state_dict(imported), strict=True)
    compiled.eval()
    analysis = analyze(imported.spec)
    x = example_input(analysis.input, analysis.input_dtype, batch=imported.batch, random=True,
                      vocab=id_bound(analysis), generator=torch.Generator().manual_seed(seed))
    got, flops = count_flops(compiled, x)
    want, runtime = run_onnx(imported.onnx_model, x.numpy())
    diff = float((got - torch.from_numpy(want)).abs().max())
    return OnnxRoundTrip(diff, imported.initializer_params, sum(p.numel() for p in compiled.parameters()),
                         analysis.totals.params, flops, analysis.totals.macs, runtime)
