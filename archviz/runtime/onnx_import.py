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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec import INPUT, loads
from ..spec.write import Entry, Header, fold, write
from .importer import PREFIX, Imported, ImportFailed, _check, _Names, _settings, layer_name

Shape = tuple[int, ...]

SUPPORTED = ("Conv, Gemm, MatMul (+ Add bias), Relu, Clip(0, 6), Sigmoid, Tanh, LeakyRelu, HardSigmoid,"
             " HardSwish, Gelu, Softmax(axis 1), LRN, MaxPool, AveragePool, GlobalAveragePool,"
             " ReduceMean(axes 2, 3), BatchNormalization, Dropout, Flatten(axis 1), Reshape to (N, -1),"
             " Identity, Add, Mul, Concat(axis 1), and torch's written-out local_response_norm")


@dataclass(frozen=True)
class OnnxImported(Imported):
    """An imported ONNX graph: the spec, and where each weight initializer goes."""

    transposed: tuple[str, ...] = ()             # initializers stored (in, out): transposed on load
    initializer_params: int = 0                  # elements of the weight initializers (BN stats apart)
    batch: int = 2                               # the file's batch size where fixed, else 2
    onnx_model: Any = field(default=None, repr=False, compare=False)


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


class _Unmapped(Exception):
    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def _attrs(node: Any) -> dict[str, Any]:
    """A node's attributes; floats (float32 in the file) rounded to the 7 digits float32 holds."""
    import onnx

    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in out.items()}


def _sym_pads(pads: list[int] | None, n: int = 2) -> tuple[int, int]:
    pads = list(pads or [0] * 2 * n)
    if pads[:n] != pads[n:]:
        raise _Unmapped(f"asymmetric pads {pads}")
    return int(pads[0]), int(pads[1])


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
        found[div.output[0]] = (x, {"size": size, "alpha": alpha / size, "beta": beta, "k": k})
        swallowed.update(n.name or n.output[0] for n in chain)
    return found, swallowed


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

Mapped = list[tuple[str, dict[str, Any]]]


def _conv(n: Any, g: _Graph) -> Mapped:
    a = _attrs(n)
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise _Unmapped(f"auto_pad={a['auto_pad']!r} (only explicit pads)")
    w = g.const(n.input[1])
    if w is None or w.ndim != 4:
        raise _Unmapped("a 2-d convolution whose weight is an initializer")
    return [("conv", {"out": int(w.shape[0]), "kernel": (int(w.shape[2]), int(w.shape[3])),
                      "stride": tuple(a.get("strides", [1, 1])), "padding": _sym_pads(a.get("pads")),
                      "dilation": tuple(a.get("dilations", [1, 1])), "groups": int(a.get("group", 1)),
                      "bias": len(n.input) > 2 and bool(n.input[2])})]


def _pool(op: str) -> Any:
    def make(n: Any, g: _Graph) -> Mapped:
        a = _attrs(n)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Unmapped(f"auto_pad={a['auto_pad']!r}")
        k = tuple(a["kernel_shape"])
        if len(k) != 2:
            raise _Unmapped(f"a {len(k)}-d window (only 2-d)")
        if op == "maxpool" and (list(a.get("dilations", [1, 1])) != [1, 1] or len(n.output) > 1):
            raise _Unmapped("dilations or indices")
        pads = _sym_pads(a.get("pads"))
        if op == "avgpool" and not a.get("count_include_pad", 0) and pads != (0, 0):
            raise _Unmapped("count_include_pad=0 with padding (only torch's default)")
        return [(op, {"kernel": k, "stride": tuple(a.get("strides", k)), "padding": pads,
                      "ceil_mode": bool(a.get("ceil_mode", 0))})]
    return make


def _clip(n: Any, g: _Graph) -> Mapped:
    a = _attrs(n)
    lo = g.scalar(n.input[1]) if len(n.input) > 1 and n.input[1] else a.get("min")
    hi = g.scalar(n.input[2]) if len(n.input) > 2 and n.input[2] else a.get("max")
    if lo == 0 and hi == 6:
        return [("relu6", {})]
    raise _Unmapped(f"Clip({lo}, {hi}) (only Clip(0, 6), relu6)")


def _softmax(n: Any, g: _Graph, ins: list[Shape]) -> Mapped:
    axis = int(_attrs(n).get("axis", -1))
    if axis % (len(ins[0]) + 1) != 1:
        raise _Unmapped(f"axis={axis} (only the channels, 1)")
    return [("softmax", {})]


def _reshape(n: Any, g: _Graph, ins: list[Shape], out: Shape | None) -> Mapped:
    if out is not None and len(ins) == 1 and out == (_prod(ins[0]),):
        return [("flatten", {})] if len(ins[0]) > 1 else []
    raise _Unmapped(f"reshape {ins[0] if ins else ''} → {out} (only flattening to (N, -1))")


def _prod(s: Shape) -> int:
    out = 1
    for d in s:
        out *= d
    return out


def _mean(n: Any, g: _Graph, ins: list[Shape]) -> Mapped:
    a = _attrs(n)
    axes = a.get("axes")
    if axes is None and len(n.input) > 1:
        c = g.const(n.input[1])
        axes = list(c.reshape(-1)) if c is not None else None
    if axes is None or sorted(int(x) % 4 for x in axes) != [2, 3] or len(ins[0]) != 3:
        raise _Unmapped("mean over anything but (H, W)")
    pool = ("adaptive_avgpool", {"out": (1, 1)})
    return [pool] if a.get("keepdims", 1) else [pool, ("flatten", {})]


def _node(n: Any, g: _Graph, ins: list[Shape], out: Shape | None, weights: list[str]) -> Mapped:
    """One node → (op, settings) list; [] = an identity."""
    t, a = n.op_type, _attrs(n)
    plain = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}
    if t in plain:
        return [(plain[t], {})]
    if t == "Conv":
        return _conv(n, g)
    if t == "Gemm":
        w = g.const(n.input[1])
        if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise _Unmapped("Gemm(x, W, b) with W an initializer, alpha = beta = 1, transA = 0")
        return [("linear", {"out": int(w.shape[0] if a.get("transB", 0) else w.shape[1]),
                            "bias": len(n.input) > 2 and bool(n.input[2])})]
    if t == "MatMul":
        w = g.const(n.input[1])
        if w is None or w.ndim != 2 or len(ins[0]) != 1:
            raise _Unmapped("MatMul of (N, F) by an initializer")
        return [("linear", {"out": int(w.shape[1]), "bias": len(weights) > 1})]
    if t == "MaxPool":
        return _pool("maxpool")(n, g)
    if t == "AveragePool":
        return _pool("avgpool")(n, g)
    if t == "GlobalAveragePool":
        return [("adaptive_avgpool", {"out": (1, 1)})]
    if t == "ReduceMean":
        return _mean(n, g, ins)
    if t == "BatchNormalization":
        if len(n.output) > 1 and any(n.output[1:]):
            raise _Unmapped("training mode (running statistics as outputs)")
        return [("batchnorm", {"eps": float(a.get("epsilon", 1e-5)),
                               "momentum": round(1.0 - float(a.get("momentum", 0.9)), 12), "affine": True})]
    if t == "LRN":
        size = int(a["size"])
        return [("lrn", {"size": size, "alpha": float(a.get("alpha", 1e-4)) / size,
                         "beta": float(a.get("beta", 0.75)), "k": float(a.get("bias", 1.0))})]
    if t == "Clip":
        return _clip(n, g)
    if t == "LeakyRelu":
        return [("leaky_relu", {"negative_slope": float(a.get("alpha", 0.01))})]
    if t == "HardSigmoid":
        if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or a.get("beta", 0.5) != 0.5:
            raise _Unmapped("HardSigmoid other than torch's (alpha 1/6, beta 0.5)")
        return [("hardsigmoid", {})]
    if t == "Gelu":
        if a.get("approximate", b"none") not in (b"none", "none"):
            raise _Unmapped("approximate gelu")
        return [("gelu", {})]
    if t == "Softmax":
        return _softmax(n, g, ins)
    if t == "Dropout":
        p = g.scalar(n.input[1]) if len(n.input) > 1 and n.input[1] else a.get("ratio", 0.5)
        return [("dropout", {"p": float(p if p is not None else 0.5)})]
    if t == "Identity":
        return []
    if t == "Flatten":
        if int(a.get("axis", 1)) != 1:
            raise _Unmapped(f"axis={a['axis']} (only 1)")
        return [("flatten", {})] if len(ins[0]) > 1 else []
    if t == "Reshape":
        return _reshape(n, g, ins, out)
    if t == "Add":
        if len(ins) == 2 and ins[0] == ins[1]:
            return [("add", {})]
        raise _Unmapped("Add of two tensors of one shape (no constants, no broadcast)")
    if t == "Mul":
        if len(ins) == 2:
            return [("mul", {})]
        raise _Unmapped("Mul by a constant")
    if t == "Concat":
        if int(a.get("axis", 0)) % 4 != 1:
            raise _Unmapped(f"axis={a.get('axis')} (only the channels, 1)")
        return [("concat", {})] if len(ins) > 1 else []
    raise _Unmapped()


# --- names -----------------------------------------------------------------------------------------

_PARAM_KEYS = {"Conv": ("weight", "bias"), "Gemm": ("weight", "bias"), "MatMul": ("weight", "bias"),
               "BatchNormalization": ("weight", "bias", "running_mean", "running_var")}


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
    flow = [n for n in model.graph.node if n.op_type in ("If", "Loop", "Scan") and (n.name or n.output[0])
            not in swallowed]
    if flow:
        where = flow[0].name or flow[0].output[0]
        raise ImportFailed(f"node {where!r}: ONNX {flow[0].op_type} is control flow"
                           " decided at run time (torch.cond, a loop over tensor values); a spec is one fixed"
                           " graph", "hint: import the model with the branch it takes fixed (a flag set in"
                           " its constructor), or export that branch alone")
    values: dict[str, str] = {g.input: INPUT}
    names = _Names()
    entries: list[Entry] = []
    name_map: dict[str, str] = {}
    renames: dict[str, str] = {}
    transposed: list[str] = []
    opaque: list[str] = []
    warnings: list[str] = []
    traced: dict[str, Shape] = {}
    bias_of: dict[str, str] = {}        # MatMul output → the Add that adds its bias
    skip: set[str] = set(swallowed)
    for n in model.graph.node:
        if n.op_type == "MatMul" and g.const(n.input[1]) is not None:
            readers = g.readers.get(n.output[0], [])
            if len(readers) == 1 and readers[0].op_type == "Add":
                add = readers[0]
                other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
                b = g.const(other)
                if b is not None and b.ndim == 1:
                    bias_of[n.output[0]] = other
                    skip.add(add.name or add.output[0])
    params = 0
    for n in model.graph.node:
        key = n.name or n.output[0]
        if key in skip or n.op_type == "Constant":
            continue
        outs = [o for o in n.output if o]
        if not outs or not all(g.is_float(o) for o in outs[:1]):
            continue   # shape arithmetic (integer tensors): not a layer
        tensor_ins = [i for i in n.input if i in values]
        if not tensor_ins:
            continue   # computed from constants only
        ins = [g.shapes.get(i) or _shape_of(values[i], traced, g) for i in tensor_ins]
        out = g.shapes.get(outs[0])
        weights = [i for i in n.input[1:] if i and i in g.consts and g.is_float(i)
                   and i not in tensor_ins] if n.op_type in _PARAM_KEYS else []
        if n.op_type == "MatMul" and outs[0] in bias_of:
            weights.append(bias_of[outs[0]])
        try:
            if outs[0] in lrns:
                x, lrn = lrns[outs[0]]
                tensor_ins, mapped = [x], [("lrn", lrn)]
            else:
                mapped = _node(n, g, ins, out, weights)
        except _Unmapped as exc:
            if not allow_opaque:
                raise _unmapped(n, exc.reason) from None
            mapped = None
        if mapped == []:
            values[outs[0]] = values[tensor_ins[0]]
            if n.op_type == "MatMul" and outs[0] in bias_of:
                values[_bias_add(g, outs[0]).output[0]] = values[outs[0]]
            continue
        if mapped is None:
            count = sum(int(g.consts[i].size) for i in n.input if i in g.consts and g.is_float(i))
            mapped = [("opaque", {"module": f"onnx {n.op_type}", "traced_shape": out or (),
                                  "traced_params": count})]
        base = (_weight_prefix(weights) if weights else None) or node_layer_name(n.name, n.op_type)
        for i, (op, settings) in enumerate(mapped):
            lname = names.unique(base if i == 0 else f"{base}.{op}")
            if i == 0 and n.name and lname != n.name:
                renames[n.name] = lname
            inputs = tuple(values[s] for s in tensor_ins) if i == 0 else (entries[-1].name,)
            entries.append(Entry(lname, op, _settings(op, settings), inputs,
                                 "onnx node kept opaque: not compiled" if op == "opaque" else ""))
            if out is not None:
                traced[lname] = out if i == len(mapped) - 1 else (out[0], 1, 1)
            if op == "opaque":
                opaque.append(lname)
                warnings.append(f"{lname}: ONNX {n.op_type} kept as an opaque layer; it cannot be compiled")
            if i == 0 and op != "opaque":
                params += _name_weights(n, op, lname, weights, g, name_map, transposed)
        values[outs[0]] = entries[-1].name
        if n.op_type == "MatMul" and outs[0] in bias_of:
            values[_bias_add(g, outs[0]).output[0]] = entries[-1].name
    if not entries:
        raise ImportFailed(f"{path}: nothing to import (no layer between the input and the output)")
    outputs = [o.name for o in model.graph.output]
    if len(outputs) != 1 or values.get(outputs[0]) != entries[-1].name:
        raise ImportFailed(f"{path}: only a single output, made by the last layer, can be imported")
    header = Header(name or Path(path).stem, g.shape, source or f"archviz import {Path(path).name}",
                    comments=_comments(Path(path).name, g.shape, renames, origin))
    spec = loads(write(header, entries), f"<imported {header.name}>")
    _check(spec, traced)
    text = fold(header, entries)
    return OnnxImported(loads(text, f"<imported {header.name}>"), text, name_map, renames, tuple(opaque),
                        tuple(warnings), tuple(transposed), params, g.batch, model)


def _bias_add(g: _Graph, matmul_out: str) -> Any:
    return g.readers[matmul_out][0]


def _shape_of(layer: str, traced: Mapping[str, Shape], g: _Graph) -> Shape:
    return g.shape if layer == INPUT else traced.get(layer, ())


def _name_weights(n: Any, op: str, lname: str, weights: list[str], g: _Graph, name_map: dict[str, str],
                  transposed: list[str]) -> int:
    """Record where each weight initializer goes; the parameter elements (BN statistics apart)."""
    keys = _PARAM_KEYS.get(n.op_type, ())
    count = 0
    for key, init in zip(keys, weights, strict=False):
        name_map[init] = f"{lname}.{key}"
        if key in ("weight", "bias"):
            count += int(g.consts[init].size)
        a = _attrs(n)
        if key == "weight" and (n.op_type == "MatMul" or (n.op_type == "Gemm" and not a.get("transB", 0))):
            transposed.append(init)
    return count


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
                        f"supported ONNX nodes: {SUPPORTED}\n"
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
    from .importer import _flops

    if imported.opaque:
        raise ImportFailed(f"cannot verify: opaque layers ({', '.join(imported.opaque)}) cannot be compiled")
    compiled = to_module(imported.spec)
    compiled.load_state_dict(state_dict(imported), strict=True)
    compiled.eval()
    x = torch.randn(imported.batch, *imported.spec.input, generator=torch.Generator().manual_seed(seed))
    got, flops = _flops(compiled, x)
    want, runtime = run_onnx(imported.onnx_model, x.numpy())
    analysis = analyze(imported.spec)
    diff = float((got - torch.from_numpy(want)).abs().max())
    return OnnxRoundTrip(diff, imported.initializer_params, sum(p.numel() for p in compiled.parameters()),
                         analysis.totals.params, flops, analysis.totals.macs, runtime)
