"""Patterns of several ONNX nodes read back as one layer: what torch's exporters write out for an
op ONNX has no node for (or that an older opset lacks). Each recogniser returns {the pattern's
last output: (its input, the layers, its weight initializers)} and the names of the nodes it
swallows; :func:`find` runs them all."""

from __future__ import annotations

from typing import Any

from ..ops.norm import is_f32_eps
from .mapping import layer_name
from .onnx_attention import NoMatch, attention_patterns, common_name, projection
from .onnx_graph import Graph, Pattern, Shape, attrs

__all__ = ["Pattern", "find"]


def find(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """Every pattern in ``g`` and the nodes they swallow."""
    lrns, swallowed = _lrn_patterns(g)
    patterns, also = _groupnorm_patterns(g)
    patterns.update({out: Pattern(x, (("lrn", lrn),), []) for out, (x, lrn) in lrns.items()})
    swallowed |= also
    for recognise in (attention_patterns, _gated_mlp_patterns, _silu_patterns, _rmsnorm_patterns,
                      _cls_token_patterns, _gelu_patterns):
        found, more = recognise(g)
        patterns.update(found)
        swallowed |= more
    return patterns, swallowed


# --- torch's written-out LRN ------------------------------------------------------------------------

def _lrn_patterns(g: Graph) -> tuple[dict[str, tuple[str, dict[str, Any]]], set[str]]:
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
        kernel = list(attrs(pools[0]).get("kernel_shape", [])) if len(pools) == 1 else []
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


def _groupnorm_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
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
        settings = {"groups": int(scale.size), "eps": float(attrs(inorm).get("epsilon", 1e-5)),
                    "affine": bool(weights)}
        found[end] = Pattern(x, (("groupnorm", settings),), weights)
        swallowed.update(n.name or n.output[0] for n in chain[:-1])
    return found, swallowed


def _back_to(g: Graph, reshape: Any, x: str, shape: Shape) -> bool:
    """``reshape`` gives its input ``x``'s shape back (inferred, or read off x by a Shape node)."""
    if g.shapes.get(reshape.output[0]) == shape:
        return True
    src = g.producer.get(reshape.input[1])
    return src is not None and src.op_type == "Shape" and list(src.input) == [x] \
        and not {a for a in attrs(src) if a != "start"} and not attrs(src).get("start", 0)


def _other_const(g: Graph, n: Any, value: str, channels: int) -> str | None:
    """The initializer ``n`` (a Mul or Add of ``value``) combines it with, where it is (C, 1, …)."""
    if n is None or len(n.input) != 2:
        return None
    other = n.input[1] if n.input[0] == value else n.input[0]
    c = g.const(other)
    return other if c is not None and c.size == channels and c.shape[0] == channels else None


def _between(g: Graph, start: Any, end: Any) -> list[Any]:
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


# --- transformer pieces: SiLU, RMSNorm, the class token ---------------------------------------------

def _only(g: Graph, value: str, op: str) -> Any:
    """The node of type ``op`` that is ``value``'s only reader, or None."""
    rs = g.readers.get(value, [])
    return rs[0] if len(rs) == 1 and rs[0].op_type == op and value not in g.outputs else None


def _silu_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """``Mul(x, Sigmoid(x))`` — torch.onnx's ``F.silu`` — as one silu."""
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()
    for sig in g.model.graph.node:
        mul = _only(g, sig.output[0], "Mul") if sig.op_type == "Sigmoid" else None
        if mul is not None and sorted(mul.input) == sorted([sig.input[0], sig.output[0]]):
            found[mul.output[0]] = Pattern(sig.input[0], (("silu", {}),), [])
            swallowed.add(sig.name or sig.output[0])
    return found, swallowed


def _rmsnorm_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """``x · 1/√(mean(x², last dim) + ε)`` (``Pow`` 2, ``ReduceMean``, ``Add`` ε, ``Sqrt``, then
    ``Reciprocal`` and ``Mul`` or a ``Div``), then ``Mul`` by γ (D,) — torch.onnx's ``F.rms_norm`` at
    opsets without RMSNormalization — as one rmsnorm."""
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()
    for pw in g.model.graph.node:
        if pw.op_type != "Pow" or g.scalar(pw.input[1]) != 2.0 or not g.shapes.get(pw.input[0]):
            continue
        x, rank = pw.input[0], len(g.shapes[pw.input[0]]) + 1
        mean = _only(g, pw.output[0], "ReduceMean")
        axes = None if mean is None else (attrs(mean).get("axes") or
                                          (g.const(mean.input[1]) if len(mean.input) > 1 else None))
        if mean is None or axes is None or [int(a) % rank for a in axes] != [rank - 1] \
                or not attrs(mean).get("keepdims", 1):
            continue
        add = _only(g, mean.output[0], "Add")
        eps = g.scalar(add.input[1]) if add is not None else None
        sqrt = _only(g, add.output[0], "Sqrt") if add is not None else None
        if eps is None or sqrt is None:
            continue
        chain = [pw, mean, add, sqrt]
        rec = _only(g, sqrt.output[0], "Reciprocal")
        if rec is not None:
            last = _only(g, rec.output[0], "Mul")
            chain.append(rec)
            ok = last is not None and sorted(last.input) == sorted([x, rec.output[0]])
        else:
            last = _only(g, sqrt.output[0], "Div")
            ok = last is not None and list(last.input) == [x, sqrt.output[0]]
        if not ok:
            continue
        gamma = _only(g, last.output[0], "Mul")
        weight = _other_const(g, gamma, last.output[0], g.shapes[x][-1]) if gamma is not None else None
        if weight is not None and g.const(weight).ndim == 1:
            chain, end, weights = [*chain, last, gamma], gamma.output[0], [weight]
        else:
            chain, end, weights = [*chain, last], last.output[0], []
        settings = {"eps": None if is_f32_eps(eps) else eps, "affine": bool(weights)}
        found[end] = Pattern(x, (("rmsnorm", settings),), weights, dict.fromkeys(weights, "weight"))
        swallowed.update(n.name or n.output[0] for n in chain[:-1])
    return found, swallowed


def _cls_token_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """``Concat(Expand(token (1, 1, D), (N, 1, D)), x, axis=1)`` — a learned class token before
    the sequence (ViT's) — as one cls_token, the token its weight."""
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()
    for cat in g.model.graph.node:
        if cat.op_type != "Concat" or len(cat.input) != 2 or attrs(cat).get("axis") not in (1, -2):
            continue
        exp = g.producer.get(cat.input[0])
        token = g.const(exp.input[0]) if exp is not None and exp.op_type == "Expand" else None
        x = cat.input[1]
        shape = g.shapes.get(x)
        if token is None or not shape or len(shape) != 2 or tuple(token.shape) != (1, 1, shape[1]) \
                or g.readers.get(exp.output[0]) != [cat]:
            continue
        found[cat.output[0]] = Pattern(x, (("cls_token", {}),), [exp.input[0]], {exp.input[0]: "weight"})
        swallowed.add(exp.name or exp.output[0])
    return found, swallowed


# --- GELU written out (opsets below 20): recognised by evaluating it ----------------------------------

_ELEMENTWISE = frozenset({"Mul", "Div", "Add", "Sub", "Pow", "Sqrt", "Erf", "Tanh", "Identity"})


def _eval(g: Graph, nodes: list[Any], x: str, t: Any) -> Any:
    """The nodes (in graph order) evaluated on ``t`` for ``x`` (float64): their last output."""
    import math

    import numpy as np

    fns = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract, "Pow": np.power,
           "Sqrt": np.sqrt, "Tanh": np.tanh, "Erf": np.vectorize(math.erf), "Identity": lambda a: a}
    vals: dict[str, Any] = {x: t}
    for n in nodes:
        args = [vals[i] if i in vals else np.asarray(g.const(i), dtype=np.float64) for i in n.input]
        vals[n.output[0]] = fns[n.op_type](*args)
    return vals[nodes[-1].output[0]]


def _elementwise_region(g: Graph, end: str, x: str) -> list[Any] | None:
    """The elementwise nodes computing ``end`` from ``x`` and scalar constants alone, in graph
    order; None where anything else is read or a value in between is read elsewhere."""
    order = {id(n): i for i, n in enumerate(g.model.graph.node)}
    nodes: dict[int, Any] = {}
    todo = [end]
    while todo:
        v = todo.pop()
        n = g.producer.get(v)
        if v == x or id(n) in nodes:
            continue
        if n is None or n.op_type not in _ELEMENTWISE or len(nodes) > 32:
            return None
        nodes[id(n)] = n
        for i in n.input:
            c = g.const(i)
            if c is None:
                todo.append(i)
            elif c.size != 1:
                return None
    for n in nodes.values():
        for o in n.output:
            if o != end and (o in g.outputs or any(id(r) not in nodes for r in g.readers.get(o, []))):
                return None
    return sorted(nodes.values(), key=lambda n: order[id(n)]) if len(nodes) >= 3 else None


def _inputs_behind(g: Graph, value: str) -> list[str]:
    """The tensors read by the elementwise nodes behind ``value`` (up to 32 nodes), nearest first:
    where the written-out function's input may be."""
    seen, out, todo = set(), [], [value]
    while todo and len(seen) < 32:
        v = todo.pop(0)
        n = g.producer.get(v)
        if n is None or n.op_type not in _ELEMENTWISE or id(n) in seen:
            continue
        seen.add(id(n))
        for i in n.input:
            if g.const(i) is None and i not in out:
                out.append(i)
                todo.append(i)
    return out


def _gelu_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """GELU as nodes — ``x·½·(1 + erf(x/√2))`` (exact) or ``½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``
    (tanh), in any arrangement: from each ``Erf``/``Tanh`` forward through elementwise nodes to the
    last value computed from x and scalar constants alone, read as gelu where that function equals
    GELU's (checked on 201 points in [−6, 6] to 1e-6)."""
    import numpy as np

    t = np.linspace(-6.0, 6.0, 201)
    exact = 0.5 * t * (1 + np.vectorize(__import__("math").erf)(t / np.sqrt(2)))
    tanh = 0.5 * t * (1 + np.tanh(np.sqrt(2 / np.pi) * (t + 0.044715 * t ** 3)))
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()
    for core in g.model.graph.node:
        if core.op_type not in ("Erf", "Tanh"):
            continue
        chain, v = [], core.output[0]
        while len(g.readers.get(v, [])) == 1 and g.readers[v][0].op_type in _ELEMENTWISE \
                and v not in g.outputs:
            v = g.readers[v][0].output[0]
            chain.append(v)
        match = next(((end, x, nodes) for end in reversed(chain) for x in _inputs_behind(g, core.input[0])
                      if (nodes := _elementwise_region(g, end, x)) is not None
                      and _kind(_eval(g, nodes, x, t), exact, tanh) is not None), None)
        if match is not None:
            end, x, nodes = match
            kind = _kind(_eval(g, nodes, x, t), exact, tanh)
            found[end] = Pattern(x, (("gelu", {"approximate": "tanh"} if kind == "tanh" else {}),), [])
            swallowed.update(n.name or n.output[0] for n in nodes if end not in n.output)
    return found, swallowed


def _kind(got: Any, exact: Any, tanh: Any) -> str | None:
    import numpy as np

    return next((k for k, ref in (("none", exact), ("tanh", tanh)) if np.allclose(got, ref, atol=1e-6)), None)


# --- the gated MLP (SwiGLU, GeGLU) ---------------------------------------------------------------------

def _activation(g: Graph, value: str) -> tuple[str, str, list[Any]] | None:
    """(the activation's name in gated_mlp, its input, its nodes) where ``value`` is silu(v)
    (``Mul(v, Sigmoid(v))``) or ONNX's ``Gelu``."""
    n = g.producer.get(value)
    if n is not None and n.op_type == "Gelu":
        a = attrs(n).get("approximate", "none")
        tanh = (a.decode() if isinstance(a, bytes) else a) == "tanh"
        return ("gelu_tanh" if tanh else "gelu"), n.input[0], [n]
    if n is None or n.op_type != "Mul":
        return None
    for v, s in (n.input, reversed(n.input)):
        sig = g.producer.get(s)
        if sig is not None and sig.op_type == "Sigmoid" and sig.input[0] == v:
            return "silu", v, [n, sig]
    return None


def _gated_mlp_patterns(g: Graph) -> tuple[dict[str, Pattern], set[str]]:
    """``down(act(gate(x)) · up(x))`` — three projections (``MatMul`` by a weight, ``Add`` of a
    bias each or none), the activation silu or ``Gelu`` — as one gated_mlp, its weights under
    Llama's names (``gate_proj``, ``up_proj``, ``down_proj``)."""
    found: dict[str, Pattern] = {}
    swallowed: set[str] = set()
    for mul in g.model.graph.node:
        if mul.op_type != "Mul" or len(mul.input) != 2 or any(g.const(i) is not None for i in mul.input):
            continue
        for a, b in (mul.input, list(reversed(mul.input))):
            act = _activation(g, a)
            try:
                if act is None:
                    raise NoMatch
                gate, up = projection(g, act[1]), projection(g, b)
                down_mm = _only(g, mul.output[0], "MatMul")
                rs = g.readers.get(down_mm.output[0], []) if down_mm is not None else []
                end = rs[0].output[0] if len(rs) == 1 and rs[0].op_type == "Add" \
                    and any(g.const(i) is not None and g.const(i).ndim == 1 for i in rs[0].input) \
                    else down_mm.output[0] if down_mm is not None else ""
                down = projection(g, end)
            except NoMatch:
                continue
            nodes = [*gate.nodes, *act[2], *up.nodes, mul]
            inside = {id(n) for n in [*nodes, down.nodes[0]]}
            if gate.x != up.x or down.x != mul.output[0] or not (gate.transposed and up.transposed) \
                    or len({p.bias is None for p in (gate, up, down)}) != 1 \
                    or any(o in g.outputs or any(id(r) not in inside for r in g.readers.get(o, []))
                           for n in nodes for o in n.output if o):
                continue
            hidden = int(g.const(gate.weight).shape[1])
            projs = (("gate_proj", gate), ("up_proj", up), ("down_proj", down))
            keys = {w: f"{stem}.{kind}" for stem, p in projs
                    for kind, w in (("weight", p.weight), ("bias", p.bias)) if w is not None}
            settings = {"hidden": hidden, "act": act[0], **({"bias": True} if gate.bias else {})}
            last = down.nodes[0].output[0]   # a bias Add after it is folded into it by the walk
            name = common_name(keys)
            found[last] = Pattern(gate.x, (("gated_mlp", settings),), list(keys), keys,
                                  frozenset(p.weight for p in (gate, up, down) if p.transposed),
                                  layer_name(name) if name else None)
            swallowed.update(n.name or n.output[0] for n in nodes)
            break
    return found, swallowed
