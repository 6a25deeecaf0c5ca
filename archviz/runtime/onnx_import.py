"""An ONNX file → a spec (``archviz import model.onnx``), proven against onnxruntime.

The graph is read with the ``onnx`` package (the optional ``onnx`` extra), its value shapes
inferred by ``onnx.shape_inference``, and every node mapped onto an archviz op: ``Conv`` (group,
pads, strides, dilations), ``Gemm`` and ``MatMul`` (+ ``Add`` of a bias) as linear, pooling,
``BatchNormalization``, ``LRN``, activations (``Clip(0, 6)`` as relu6), ``Flatten`` and a
``Reshape`` to (N, -1) as flatten, ``Add``/``Mul``/``Concat`` as merges. Nodes that compute
shapes (integer tensors: ``Shape``, ``Gather``, the ``Concat`` of a reshape target) are not layers.
torch's exporter writes ``F.local_response_norm`` out as eleven nodes (x², a 3-d average pool
over channels, ·α, +k, ^β, x ÷ that); that pattern is recognised and read back as one LRN.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..ops import OPS, OpKind
from ..ops.source import TENSOR, Source, Unmapped
from ..spec import INPUT
from ..spec.write import Header
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

Shape = tuple[int, ...]
Pattern = tuple[str, Any, list[str]]   # several nodes read as layers: (their input, the layers, weights)


@dataclass(frozen=True)
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


def _attrs(node: Any) -> dict[str, Any]:
    """A node's attributes; floats (float32 in the file) rounded to the 7 digits float32 holds."""
    import onnx

    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in out.items()}


class _Graph:
    """The model's values: constants (initializers, Constant nodes), inferred shapes and types."""

    def __init__(self, model: Any, input_shape: Shape | None) -> None:
        import onnx
        from onnx import numpy_helper, shape_inference

        self.model = model
        g = model.graph
        self.consts: dict[str, Any] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and "value" in _attrs(n):
                self.consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ImportFailed(f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)});"
                               " only one image input can be imported")
        self.input = inputs[0].name
        # token ids come in as INT64 / INT32 (TensorProto 7 / 6); every other input is float
        self.dtype = {7: "int64", 6: "int32"}.get(inputs[0].type.tensor_type.elem_type, "float32")
        dims = inputs[0].type.tensor_type.shape.dim
        given = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims)
        self.batch = given[0] if given and given[0] > 0 else 2
        if input_shape is not None:
            self.shape = tuple(input_shape)
        elif len(given) >= 2 and all(given[1:]):
            self.shape = tuple(int(d) for d in given[1:])
        else:
            raise ImportFailed(f"input {self.input}: its size is not fixed in the file ({given});"
                               " give it with --input CxHxW")
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)
        for i in fixed.graph.input:
            if i.name == self.input:
                shape = i.type.tensor_type.shape
                del shape.dim[:]
                for d in (self.batch, *self.shape):
                    shape.dim.add().dim_value = d
        try:
            inferred = shape_inference.infer_shapes(fixed, strict_mode=False)
        except Exception as exc:  # noqa: BLE001 - a broken graph
            raise ImportFailed(f"onnx shape inference fails on this graph: {exc}") from None
        self.shapes: dict[str, Shape | None] = {}
        self.types: dict[str, int] = {}
        for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
            tt = vi.type.tensor_type
            self.types[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                ds = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim]
                self.shapes[vi.name] = tuple(ds[1:]) if ds and all(ds) else None
        self.producer = {o: n for n in g.node for o in n.output}
        self.readers: dict[str, list[Any]] = {}
        for n in g.node:
            for i in n.input:
                self.readers.setdefault(i, []).append(n)

    def const(self, name: str) -> Any:
        return self.consts.get(name)

    def scalar(self, name: str) -> float | None:
        v = self.consts.get(name)
        return float(f"{float(v.reshape(-1)[0]):.7g}") if v is not None and v.size == 1 else None

    def is_float(self, name: str) -> bool:
        from onnx import TensorProto

        return self.types.get(name, TensorProto.FLOAT) in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                                           TensorProto.FLOAT16, TensorProto.BFLOAT16)


# --- torch's written-out LRN ------------------------------------------------------------------------

def _lrn_patterns(g: _Graph) -> tuple[dict[str, tuple[str, dict[str, Any]]], set[str]]:
    """``x / (k + α·avg_pool3d(pad(x²), (size, 1, 1)))^β`` — what torch.onnx writes for
    ``F.local_response_norm`` (x² as Mul(x, x), the channel window as a 3-d AveragePool between
    reshapes, squeezes or an If on the batch size) — as {Div output: (x, lrn settings)} and the
    names of the nodes it swallows: those on a path from Mul(x, x) to the Pow."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    swallowed: set[str] = set()

    def step(name: str, op: str) -> Any:
        n = g.producer.get(name)
        return n if n is not None and n.op_type == op else None

    def split(n: Any) -> tuple[str, float | None]:
        a, b = n.input[0], n.input[1]
        return (a, g.scalar(b)) if g.scalar(b) is not None else (b, g.scalar(a))

    for div in g.model.graph.node:
        if div.op_type != "Div" or len(div.input) != 2:
            continue
        x = div.input[0]
        pw = step(div.input[1], "Pow")
        beta = g.scalar(pw.input[1]) if pw is not None else None
        add = step(pw.input[0], "Add") if pw is not None else None
        below, k = split(add) if add is not None else ("", None)
        mul = step(below, "Mul")
        _, alpha = split(mul) if mul is not None else ("", None)
        sqr = next((n for n in g.readers.get(x, []) if n.op_type == "Mul" and list(n.input) == [x, x]), None)
        if None in (beta, k, alpha, sqr):
            continue
        chain = _between(g, sqr, pw)
        pools = [n for n in chain if n.op_type == "AveragePool"]
        kernel = list(_attrs(pools[0]).get("kernel_shape", [])) if len(pools) == 1 else []
        if len(kernel) != 3 or kernel[1:] != [1, 1]:
            continue
        inside = {o for n in chain for o in n.output}
        if any(r not in chain for o in inside - {pw.output[0]} for r in g.readers.get(o, [])) \
                or g.readers.get(pw.output[0]) != [div]:
            continue   # an intermediate value read elsewhere: not just an LRN
        size = int(kernel[0])
        assert alpha is not None and beta is not None and k is not None
        found[div.output[0]] = (x, {"size": size, "alpha": alpha / size, "beta": beta, "k": k,
                                    "lowering": "torch"})   # torch's F.local_response_norm, written out
        swallowed.update(n.name or n.output[0] for n in chain)
    return found, swallowed


def _groupnorm_patterns(g: _Graph) -> tuple[dict[str, Pattern], set[str]]:
    """``Reshape(x, (N, G, -1)) → InstanceNormalization(1, 0) → Reshape(x's shape)`` (then ``Mul`` by
    γ, ``Add`` of β, each (C, 1, …)) — torch.onnx's ``F.group_norm`` — as {last output: (x, one
    groupnorm, [γ, β])} and the names of the nodes it swallows."""
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()

    def only_reader(value: str, op: str) -> Any:
        rs = g.readers.get(value, [])
        return rs[0] if len(rs) == 1 and rs[0].op_type == op else None

    for inorm in g.model.graph.node:
        pre = g.producer.get(inorm.input[0]) if inorm.op_type == "InstanceNormalization" else None
        target = g.const(pre.input[1]) if pre is not None and pre.op_type == "Reshape" else None
        if target is None or target.size != 3 or int(target.reshape(-1)[2]) != -1 \
                or len(inorm.input) < 3 or g.readers.get(pre.output[0]) != [inorm]:
            continue
        x, scale, b = pre.input[0], g.const(inorm.input[1]), g.const(inorm.input[2])
        post = only_reader(inorm.output[0], "Reshape")
        shape = g.shapes.get(x)
        if scale is None or b is None or (scale != 1).any() or (b != 0).any() or post is None \
                or shape is None or not _back_to(g, post, x, shape):
            continue
        chain, weights, end = [pre, inorm, post], [], post.output[0]
        mul = only_reader(end, "Mul")
        add = only_reader(mul.output[0], "Add") if mul is not None else None
        pairs = ((mul, end), (add, mul.output[0] if mul is not None else ""))
        affine = [_other_const(g, n, v, shape[0]) for n, v in pairs]
        if None not in affine and mul is not None and add is not None:
            chain, weights, end = [*chain, mul, add], affine, add.output[0]
        settings = {"groups": int(scale.size), "eps": float(_attrs(inorm).get("epsilon", 1e-5)),
                    "affine": bool(weights)}
        found[end] = (x, (("groupnorm", settings),), weights)
        swallowed.update(n.name or n.output[0] for n in chain[:-1])
    return found, swallowed


def _back_to(g: _Graph, reshape: Any, x: str, shape: Shape) -> bool:
    """``reshape`` gives its input ``x``'s shape back (inferred, or read off x by a Shape node)."""
    if g.shapes.get(reshape.output[0]) == shape:
        return True
    src = g.producer.get(reshape.input[1])
    return src is not None and src.op_type == "Shape" and list(src.input) == [x] \
        and not {a for a in _attrs(src) if a != "start"} and not _attrs(src).get("start", 0)


def _other_const(g: _Graph, n: Any, value: str, channels: int) -> str | None:
    """The initializer ``n`` (a Mul or Add of ``value``) combines it with, where it is (C, 1, …)."""
    if n is None or len(n.input) != 2:
        return None
    other = n.input[1] if n.input[0] == value else n.input[0]
    c = g.const(other)
    return other if c is not None and c.size == channels and c.shape[0] == channels else None


def _between(g: _Graph, start: Any, end: Any) -> list[Any]:
    """The nodes on a path from ``start`` to ``end`` (both included), following explicit inputs;
    an If node is followed into when its condition is (its branches read the values around it)."""
    ahead: set[int] = set()
    todo = [start]
    while todo:
        n = todo.pop()
        if id(n) in ahead:
            continue
        ahead.add(id(n))
        for o in n.output:
            todo.extend(g.readers.get(o, []))
    chain, todo, seen = [], [end], set()
    while todo:
        n = todo.pop()
        if id(n) in seen or id(n) not in ahead:
            continue
        seen.add(id(n))
        chain.append(n)
        todo.extend(g.producer[i] for i in n.input if i in g.producer)
    return chain


# --- one node --------------------------------------------------------------------------------------

def _source(n: Any, g: _Graph, ins: list[Shape], out: Shape | None, bias: str | None) -> Source:
    """The node as its op sees it: inputs a constant's array, a computed tensor TENSOR, an absent
    optional one None; a MatMul's bias (the Add that follows it) as an input after its weight."""
    args = tuple(None if not i else TENSOR if g.const(i) is None else g.const(i) for i in n.input)
    if bias is not None:
        args += (g.const(bias),)
    used = tuple(bool(o) for o in n.output)
    return Source(n.op_type, _attrs(n), args, ins=tuple(ins), out=out, outputs=used)


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
    g = _Graph(model, input_shape)
    lrns, swallowed = _lrn_patterns(g)
    patterns, also = _groupnorm_patterns(g)
    patterns.update({out: (x, (("lrn", lrn),), []) for out, (x, lrn) in lrns.items()})
    swallowed |= also
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
    return OnnxImported(spec, text, walk.name_map, walk.renames, tuple(layers.opaque), tuple(layers.warnings),
                        tuple(walk.transposed), walk.params, g.batch, model, reshaped=walk.reshaped)


class _Walk:
    """One pass over the graph's nodes: each mapped by its op (archviz.runtime.mapping) and
    written as layers named after its weights or its node name."""

    def __init__(self, g: _Graph, patterns: Mapping[str, Pattern], swallowed: set[str],
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
        tensor_ins = [pattern[0]] if pattern else [i for i in n.input if i in self.values]
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
            mapped = pattern[1] if pattern else map_onnx(src)
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
        weights = list(pattern[2]) if pattern else weights + ([bias] if bias is not None else [])
        if pattern:   # a pattern's γ and β are (C, 1, …) for the broadcast: loaded as (C,)
            self.reshaped.update({w: (int(g.consts[w].size),) for w in weights if g.consts[w].ndim > 1})
        base = (_weight_prefix(weights) if weights else None) or node_layer_name(n.name, n.op_type)
        made = self.layers.add(
            mapped, lambda i, op_: self._name(n, base, i, op_), tuple(self.values[s] for s in tensor_ins),
            out, "onnx node kept opaque: not compiled",
            lambda lname: f"{lname}: ONNX {n.op_type} kept as an opaque layer; it cannot be compiled")
        if mapped[0][0] != "opaque" and op is not None:
            self.params += self._name_weights(op, src, made[0], weights)
        self._value(outs[0], made[-1])

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


def _bias_add(g: _Graph, matmul_out: str) -> Any:
    return g.readers[matmul_out][0]


def _shape_of(layer: str, traced: Mapping[str, Shape], g: _Graph) -> Shape:
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
    consts = {n.output[0]: _attrs(n)["value"] for n in imported.onnx_model.graph.node
              if n.op_type == "Constant" and "value" in _attrs(n)}
    out: dict[str, Any] = {}
    for src, dst in imported.name_map.items():
        array = numpy_helper.to_array(inits[src] if src in inits else consts[src]).copy()
        t = torch.from_numpy(array)
        t = t.reshape(imported.reshaped[src]) if src in imported.reshaped else t
        out[dst] = t.T.contiguous() if src in imported.transposed else t
        if dst.endswith(".running_var"):
            out[dst.rpartition(".")[0] + ".num_batches_tracked"] = torch.tensor(0)
    return out


@dataclass(frozen=True)
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
