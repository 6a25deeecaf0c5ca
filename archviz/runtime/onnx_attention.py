"""Self-attention written out as ONNX nodes, read back as one ``attention`` layer.

torch's exporters write multi-head attention as its arithmetic: the q, k and v projections
(``MatMul`` by a weight, ``Add`` of a bias; or one packed projection split by ``Gather``, as
``nn.MultiheadAttention``'s ``in_proj``), heads laid out by ``Reshape``/``Transpose`` (and
``Unsqueeze``/``Expand`` for grouped-query heads), ``MatMul`` of q by kᵀ, a scale (``Mul`` or
``Div`` by a constant, possibly √ of it on q and on k), a mask (``Where`` or ``Add`` of a
constant), ``Softmax`` on the last axis, ``MatMul`` by v, the heads laid back, and the output
projection. Opset 23's ``Attention`` node (q, k, v in, no mask input, ``is_causal`` read) stands
for the part from q·kᵀ to ·v (read with the default lowering: the same values). RoPE on q and
k in Llama's rotate-half layout (``q·cos + cat(−q₂, q₁)·sin``: ``Slice``, ``Neg``, ``Concat``,
``Mul`` by constant cos and sin tables, ``Add``) is read as ``rope: true``, θ read off the
tables and taken only where they are archviz's own for that θ. Found from
each ``Softmax`` or ``Attention`` outwards; read as one layer only where every node between the
input and the output is one of these, nothing between is read elsewhere, the scale is 1/√hd and
the mask (if any) is the causal one. The heads come from the head size (q's last dim after the
layout) and the projections' widths. Anything else (another rotary layout or scaling, another
mask or scale, cross-attention) is left to the nodes' own ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..record import record
from .mapping import layer_name
from .onnx_graph import Graph, Pattern, attrs

_MASKED = -1e30   # a mask value at or below this is −inf for softmax in float32
LAYOUT = frozenset({"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Expand", "Identity", "Dropout"})


class NoMatch(Exception):
    pass


@dataclass
class _Path:
    """A walk back from a value through layout nodes, scalar scales and a scalar ``Gather``."""

    value: str
    nodes: list[Any] = field(default_factory=list)
    scale: float = 1.0
    index: int | None = None


@record
class Proj:
    """A projection ``x·W (+ b)``: its nodes, input, weight (transposed: stored (in, out)), bias."""

    nodes: tuple[Any, ...]
    x: str
    weight: str
    transposed: bool
    bias: str | None


def _scalar_other(g: Graph, n: Any) -> tuple[str, float] | None:
    """(the tensor input, the constant) of a Mul / Div by a scalar constant."""
    a, b = n.input[0], n.input[1]
    if g.scalar(b) is not None and g.const(a) is None:
        return a, g.scalar(b) if n.op_type == "Mul" else 1.0 / g.scalar(b)
    if n.op_type == "Mul" and g.scalar(a) is not None and g.const(b) is None:
        return b, g.scalar(a)
    return None


def _back(g: Graph, value: str) -> _Path:
    path = _Path(value)
    while (n := g.producer.get(path.value)) is not None:
        nxt = n.input[0] if n.input else ""
        if n.op_type in LAYOUT:
            pass
        elif n.op_type == "Gather" and path.index is None and g.const(n.input[1]) is not None \
                and g.const(n.input[1]).ndim == 0:
            path.index = int(g.const(n.input[1]))
        elif n.op_type in ("Mul", "Div") and (s := _scalar_other(g, n)) is not None:
            nxt, path.scale = s[0], path.scale * s[1]
        else:
            break
        path.nodes.append(n)
        path.value = nxt
    return path


@record
class Rotary:
    """RoPE on q or k in the rotate-half layout, ``x·cos + cat(−x[..., hd/2:], x[..., :hd/2])·sin``:
    its input, its nodes and its cos and sin tables."""

    x: str
    nodes: tuple[Any, ...]
    cos: Any
    sin: Any


def _halves(g: Graph, cat: Any) -> tuple[str, list[Any]] | None:
    """(x, the nodes) where ``cat`` is ``Concat(Neg(x[..., h:]), x[..., :h], axis=-1)``, h = hd/2."""
    neg = g.producer.get(cat.input[0]) if len(cat.input) == 2 else None
    hi = g.producer.get(neg.input[0]) if neg is not None and neg.op_type == "Neg" else None
    lo = g.producer.get(cat.input[1])
    shape = g.shapes.get(cat.output[0])
    if hi is None or lo is None or not shape or {hi.op_type, lo.op_type} != {"Slice"} \
            or hi.input[0] != lo.input[0] or attrs(cat).get("axis") not in (-1, len(shape)):
        return None
    half, last = shape[-1] // 2, len(shape)   # the batch dim is not in the shape: the last axis is len

    def span(n: Any) -> tuple[int, ...] | None:
        vals = [g.const(i) for i in n.input[1:]]
        if len(vals) < 3 or any(v is None or v.size != 1 for v in vals):
            return None
        start, end, axis, *step = (int(v.reshape(-1)[0]) for v in vals)
        return (start, min(end, 2 * half), axis % (last + 1), *(step or [1]))

    if span(hi) != (half, 2 * half, last, 1) or span(lo) != (0, half, last, 1):
        return None
    return hi.input[0], [cat, neg, hi, lo]


def rotary(g: Graph, value: str) -> Rotary | None:
    """The RoPE step giving ``value`` (see :class:`Rotary`), or None."""
    add = g.producer.get(value)
    if add is None or add.op_type != "Add":
        return None
    muls = [g.producer.get(i) for i in add.input]
    if any(m is None or m.op_type != "Mul" for m in muls):
        return None
    for a, b in (muls, muls[::-1]):
        ta = [i for i in a.input if g.const(i) is not None]
        tb = [i for i in b.input if g.const(i) is not None]
        if len(ta) != 1 or len(tb) != 1:
            return None
        xa = next(i for i in a.input if i != ta[0])
        cat = g.producer.get(next(i for i in b.input if i != tb[0]))
        found = _halves(g, cat) if cat is not None and cat.op_type == "Concat" else None
        if found is not None and found[0] == xa:
            return Rotary(xa, (add, a, b, *found[1]), g.const(ta[0]), g.const(tb[0]))
    return None


def rope_theta(r: Rotary, seq: int, hd: int) -> float:
    """θ of RoPE's tables: read off the lowest frequency at the last position (θ^(−(hd−2)/hd)
    radians a step), then checked: the tables are archviz's for that θ (to float32 rounding)."""
    c, s = np.asarray(r.cos, dtype=np.float64), np.asarray(r.sin, dtype=np.float64)
    if c.shape != s.shape or c.ndim < 2 or c.shape[-2:] != (seq, hd) or c.size != seq * hd \
            or seq < 2 or hd < 4:
        raise NoMatch
    c, s = c.reshape(seq, hd), s.reshape(seq, hd)
    step = np.arctan2(s[-1, hd // 2 - 1], c[-1, hd // 2 - 1]) / (seq - 1)
    if not step > 0:
        raise NoMatch
    theta = float(f"{step ** (-hd / (hd - 2)):.6g}")
    inv = 1.0 / (np.float32(theta) ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))
    angles = np.outer(np.arange(seq, dtype=np.float32), inv.astype(np.float32))
    emb = np.concatenate((angles, angles), axis=-1).astype(np.float64)
    if not (np.allclose(c, np.cos(emb), rtol=0, atol=1e-6)
            and np.allclose(s, np.sin(emb), rtol=0, atol=1e-6)):
        raise NoMatch   # not archviz's tables (another layout, scaling or θ)
    return theta


def projection(g: Graph, value: str) -> Proj:
    n, nodes, bias = g.producer.get(value), [], None
    if n is not None and n.op_type == "Add":
        a, b = n.input
        bias, other = (b, a) if g.const(b) is not None else (a, b)
        if g.const(bias) is None or g.const(bias).ndim != 1:
            raise NoMatch
        nodes, n = [n], g.producer.get(other)
    if n is None or len(n.input) < 2 or g.const(n.input[1]) is None or g.const(n.input[1]).ndim != 2 \
            or g.const(n.input[0]) is not None:
        raise NoMatch
    if n.op_type == "MatMul":
        return Proj((n, *nodes), n.input[0], n.input[1], True, bias)
    a = attrs(n)
    if n.op_type != "Gemm" or a.get("transA", 0) or a.get("alpha", 1.0) != 1 or a.get("beta", 1.0) != 1 \
            or bias is not None:
        raise NoMatch
    gb = n.input[2] if len(n.input) > 2 and n.input[2] else None
    if gb is not None and (g.const(gb) is None or g.const(gb).ndim != 1):
        raise NoMatch
    return Proj((n,), n.input[0], n.input[1], not a.get("transB", 0), gb)


def _out_width(g: Graph, p: Proj) -> int:
    w = g.const(p.weight)
    return int(w.shape[1] if p.transposed else w.shape[0])


def _causal(g: Graph, n: Any) -> bool:
    """A ``Where(mask, -inf, scores)`` or ``Add(scores, m)``: True where it is the causal mask
    (−inf above the diagonal, or the most negative float32 as Hugging Face writes it: both give
    a probability of exactly 0)."""
    if n.op_type == "Where":
        cond, fill = g.const(n.input[0]), g.scalar(n.input[1])
        if cond is None or fill is None or fill > _MASKED:
            raise NoMatch
        above = np.asarray(cond, dtype=bool)
    else:
        m = g.const(n.input[1]) if g.const(n.input[1]) is not None else g.const(n.input[0])
        if m is None or not np.all((m == 0) | (m <= _MASKED)):
            raise NoMatch
        above = m <= _MASKED
    if above.ndim < 2 or any(d != 1 for d in above.shape[:-2]):
        raise NoMatch
    above = above.reshape(above.shape[-2:])
    if not np.array_equal(above, np.triu(np.ones_like(above), 1)):
        raise NoMatch
    return True


def _scores(g: Graph, softmax: Any) -> tuple[Any, list[Any], float, bool]:
    """Back from the softmax to q·kᵀ: (that MatMul, the nodes between, their scale, causal)."""
    value, nodes, scale, causal = softmax.input[0], [], 1.0, False
    while (n := g.producer.get(value)) is not None:
        if n.op_type == "MatMul" and all(g.const(i) is None for i in n.input):
            return n, nodes, scale, causal
        if n.op_type in ("Where", "Add") and not causal:
            causal = _causal(g, n)
            value = n.input[2] if n.op_type == "Where" else next(i for i in n.input if g.const(i) is None)
        elif n.op_type in ("Mul", "Div") and (s := _scalar_other(g, n)) is not None:
            value, scale = s[0], scale * s[1]
        elif n.op_type in ("Identity", "Dropout"):
            value = n.input[0]
        else:
            raise NoMatch
        nodes.append(n)
    raise NoMatch


def _only_reader(g: Graph, value: str) -> Any:
    rs = g.readers.get(value, [])
    if len(rs) != 1 or value in g.outputs:
        raise NoMatch
    return rs[0]


def _forward(g: Graph, value: str) -> tuple[str, list[Any]]:
    """Forward from ``value`` through layout nodes, each its value's only reader."""
    nodes = []
    while len(g.readers.get(value, [])) == 1 and value not in g.outputs \
            and (n := g.readers[value][0]).op_type in LAYOUT and n.input[0] == value:
        nodes.append(n)
        value = n.output[0]
    return value, nodes


def _region(g: Graph, end: str, x: str) -> list[Any]:
    """The nodes computing ``end`` from ``x`` and constants (any other input: no match)."""
    seen: dict[int, Any] = {}
    todo = [g.producer[end]]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        for i in n.input:
            if not i or i == x or (i in g.consts and i not in g.producer):
                continue
            if i not in g.producer:
                raise NoMatch   # another graph input
            todo.append(g.producer[i])
    return list(seen.values())


def _core(g: Graph, node: Any) -> tuple[list[str], Any, list[Any], float | None, bool]:
    """softmax(q·kᵀ·scale + mask)·v around ``node`` (a ``Softmax``, or opset 23's ``Attention``):
    (the q, k (or kᵀ) and v values, the node giving its output, the nodes in it, the scale (None:
    Attention's default 1/√hd), causal)."""
    if node.op_type == "Attention":
        a = attrs(node)
        if len([i for i in node.input if i]) != 3 or any(node.output[1:]) or a.get("softcap", 0.0) \
                or len(g.shapes.get(node.input[0]) or ()) != 3:
            raise NoMatch   # a mask input, a past K/V cache, softcap, or 3-d inputs with num_heads
        return list(node.input[:3]), node, [node], a.get("scale"), bool(a.get("is_causal", 0))
    axis = attrs(node).get("axis", -1)
    shape = g.shapes.get(node.input[0])
    if axis != -1 and (shape is None or axis != len(shape)):
        raise NoMatch
    qk, between, scale, causal = _scores(g, node)
    after, drop = _forward(g, node.output[0])
    av = _only_reader(g, after)
    if av.op_type != "MatMul" or av.input[0] != after or g.const(av.input[1]) is not None:
        raise NoMatch
    return [qk.input[0], qk.input[1], av.input[1]], av, [qk, node, av, *between, *drop], scale, causal


def _match(g: Graph, node: Any) -> tuple[str, dict[str, Any], dict[str, str], set[str], str, list[Any]]:
    """The attention around ``node`` (see :func:`_core`): (its input, its settings, initializer →
    key, the initializers stored transposed, its output, the nodes it is made of)."""
    values, av, core, scale, causal = _core(g, node)
    paths = [_back(g, v) for v in values]
    ropes = _through_rope(g, paths)
    projs = [projection(g, p.value) for p in paths]
    head = g.shapes.get(values[0])
    if not head or paths[2].scale != 1:
        raise NoMatch
    hd = head[-1]
    thetas = {rope_theta(r, g.shapes.get(r.x)[-2], hd) for r in ropes if g.shapes.get(r.x)}
    if len(thetas) != (1 if ropes else 0):
        raise NoMatch   # q's and k's tables for different θ
    if scale is None:
        scale = 1 / hd ** 0.5
    if abs(scale * paths[0].scale * paths[1].scale * hd ** 0.5 - 1) > 1e-5:
        raise NoMatch
    widths, packed = _widths(g, paths, projs, hd)
    mid, layout = _forward(g, av.output[0])
    o = _only_reader(g, mid)
    proj_out, rs = o.output[0], g.readers.get(o.output[0], [])
    if o.op_type == "MatMul" and len(rs) == 1 and rs[0].op_type == "Add" \
            and any(g.const(i) is not None and g.const(i).ndim == 1 for i in rs[0].input):
        proj_out = rs[0].output[0]
    oproj = projection(g, proj_out)
    x, xs = _input(g, projs[0].x)
    if oproj.x != mid or not g.shapes.get(x):
        raise NoMatch
    end, post = _forward(g, proj_out)
    while post and g.shapes.get(end) != g.shapes.get(x):
        end, post = post[-1].input[0], post[:-1]
    if g.shapes.get(end) != g.shapes.get(x):
        raise NoMatch
    if not post and len(oproj.nodes) == 2 and oproj.nodes[0].op_type == "MatMul":
        end = oproj.nodes[0].output[0]   # the bias Add is folded into the MatMul by the walk
    settings = _settings(g.shapes[x][-1], widths, hd, causal, projs[0].bias is not None,
                         oproj.bias is not None)
    settings.update({"rope": True} if thetas else {})
    settings.update({"rope_theta": theta} if thetas and (theta := thetas.pop()) != 10000.0 else {})
    keys, transposed = _keys(projs, oproj, packed)
    explained = {id(n) for n in [*core, o, *layout, *xs, *post,
                                 *(n for p in paths for n in p.nodes),
                                 *(n for p in [*projs, oproj] for n in p.nodes)]}
    region = _region(g, end, x)
    ids = {id(n) for n in region}
    for n in region:
        if id(n) not in explained and n.op_type != "Constant" and any(g.is_float(o) for o in n.output if o):
            raise NoMatch   # a node attention does not have (rotary embedding, another mask)
        for out in n.output:
            if out != end and (out in g.outputs or any(id(r) not in ids for r in g.readers.get(out, []))):
                raise NoMatch   # a value in between read elsewhere
    return x, settings, keys, transposed, end, region


def _through_rope(g: Graph, paths: list[_Path]) -> list[Rotary]:
    """q's and k's walks continued back through RoPE's step (both or neither; never v's): the
    steps."""
    ropes = [rotary(g, p.value) for p in paths]
    if ropes[2] is not None or (ropes[0] is None) != (ropes[1] is None):
        raise NoMatch
    for p, r in zip(paths, ropes[:2], strict=False):
        if r is None:
            continue
        more = _back(g, r.x)
        if p.index is not None and more.index is not None:
            raise NoMatch
        p.nodes += [*r.nodes, *more.nodes]
        p.value, p.scale = more.value, p.scale * more.scale
        p.index = p.index if p.index is not None else more.index
    return [r for r in ropes if r is not None]


def _widths(g: Graph, paths: list[_Path], projs: list[Proj], hd: int) -> tuple[list[int], bool]:
    """q's, k's and v's widths and whether one packed projection makes all three (split by a
    ``Gather`` of index 0, 1, 2: ``nn.MultiheadAttention``'s ``in_proj``)."""
    packed = projs[0].nodes[0] is projs[1].nodes[0] is projs[2].nodes[0]
    if packed:
        if [p.index for p in paths] != [0, 1, 2]:
            raise NoMatch
        widths = [_out_width(g, projs[0]) // 3] * 3
    elif len({id(p.nodes[0]) for p in projs}) != 3 or any(p.index is not None for p in paths):
        raise NoMatch
    else:
        widths = [_out_width(g, p) for p in projs]
    if len({p.x for p in projs}) != 1 or len({p.bias is None for p in projs}) != 1 or widths[1] != widths[2] \
            or widths[0] % hd or widths[1] % hd:
        raise NoMatch   # cross-attention, or biases on some projections only
    return widths, packed


def _settings(d: int, widths: list[int], hd: int, causal: bool, bias: bool, out_bias: bool) -> dict[str, Any]:
    """The attention layer's settings, the defaults left out."""
    h, kv = widths[0] // hd, widths[1] // hd
    settings: dict[str, Any] = {"heads": h}
    settings.update({"kv_heads": kv} if kv != h else {})
    settings.update({"head_dim": hd} if hd * h != d else {})
    settings.update({"causal": True} if causal else {})
    settings.update({"bias": False} if not bias else {})
    settings.update({"out_bias": out_bias} if out_bias != bias else {})
    return settings


def _keys(projs: list[Proj], oproj: Proj, packed: bool) -> tuple[dict[str, str], set[str]]:
    """Each weight initializer's key in archviz's Attention module (``q_proj.weight``, ...; a
    packed projection as ``in_proj_weight``, which the module splits on load), and those stored
    (in, out)."""
    keys, transposed = {}, set()
    named = [("in_proj", projs[0])] if packed else \
        list(zip(("q_proj", "k_proj", "v_proj"), projs, strict=True))
    for stem, p in [*named, ("o_proj", oproj)]:
        sep = "_" if stem == "in_proj" else "."
        keys[p.weight] = f"{stem}{sep}weight"
        if p.bias is not None:
            keys[p.bias] = f"{stem}{sep}bias"
        if p.transposed:
            transposed.add(p.weight)
    return keys, transposed


def _input(g: Graph, value: str) -> tuple[str, list[Any]]:
    """Back from the projections' input through layout nodes that keep its shape (``x.reshape(-1,
    S, D)``, a batch-first transpose): the attention layer's input."""
    nodes: list[Any] = []
    while (n := g.producer.get(value)) is not None and n.op_type in ("Reshape", "Transpose") \
            and g.shapes.get(n.input[0]) and len(g.shapes[n.input[0]]) == 2:
        nodes.append(n)
        value = n.input[0]
    return value, nodes


def common_name(keys: Iterable[str]) -> str | None:
    """The module path the weights share where torch kept their names (``attn`` of
    ``attn.q_proj.bias`` and ``attn.o_proj.weight``)."""
    parts = [k.split(".")[:-1] for k in keys if "." in k]
    if len(parts) < 2:
        return None
    common: list[str] = []
    for segs in zip(*parts, strict=False):
        if len(set(segs)) != 1:
            break
        common.append(segs[0])
    return ".".join(common) or None


def attention_patterns(g: Graph) -> tuple[dict[str, Any], set[str]]:
    """{the attention's output: its Pattern} and the nodes swallowed."""
    found: dict[str, Any] = {}
    swallowed: set[str] = set()
    for sm in g.model.graph.node:
        if sm.op_type not in ("Softmax", "Attention"):
            continue
        try:
            x, settings, keys, transposed, end, region = _match(g, sm)
        except NoMatch:
            continue
        name = common_name(keys)
        found[end] = Pattern(x, (("attention", settings),), list(keys), keys, frozenset(transposed),
                             layer_name(name) if name else None)
        swallowed.update(n.name or n.output[0] for n in region if end not in n.output)
    return found, swallowed
