"""Layer records → spec YAML text (``archviz import`` writes with it; no torch here).

:func:`write` gives a flat spec: one flow-style line per layer, settings equal to their defaults
left out, ``from:`` only where a layer does not read the one before it. :func:`fold` then turns
containers whose numbered children repeat (``layer1.0``, ``layer1.1``, ... of a ResNet stage)
into one ``blocks:`` entry used with ``repeat:`` (and ``first:`` where the first child differs,
e.g. a stride-2 block with a projection shortcut), and keeps a fold only when the folded text
loads to exactly the layers of the flat one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, field, fields, replace
from typing import Any

import yaml

from ..ops import OPS
from ..ops.fields import PairField
from ..record import record
from .load import INPUT, SPEC_VERSION, Spec, loads

IN = "$in"


LOWERING = "lowering"   # the general layer keys an importer may add to an entry's settings
TIE = "tie"             # a module whose weight is another's (tied embeddings): `tie: wte`


@record
class Entry:
    """One layer to write: its op's settings as typed values (all fields), its inputs by name.
    ``settings`` may also hold the layer keys ``lowering`` (an importer records that the source
    module uses torch's implementation: ``lowering: torch``) and ``tie`` (its weight is another
    layer's); they are written as they are."""

    name: str
    op: str
    settings: Mapping[str, Any]
    inputs: tuple[str, ...]
    note: str = ""
    allow: tuple[str, ...] = ()      # warnings this layer accepts (``allow: [inexact]``)


@record
class Header:
    name: str
    input: tuple[int, ...]
    source: str = ""
    description: str = ""
    comments: tuple[str, ...] = field(default_factory=tuple)
    input_dtype: str = "float32"     # written only where it is not float32 (token ids)
    outputs: tuple[str, ...] = ()    # `outputs:`, written where given (a model's several outputs)


def yaml_value(v: Any, op: str = "", key: str = "") -> Any:
    """A typed setting as YAML reads it back: a pair (3, 3) → 3, (3, 1) → [3, 1], tuples → lists;
    given the op and key, only a pair field's value is shortened (roll's shifts [-3, -3] stay a list)."""
    if isinstance(v, tuple):
        pair = not op or isinstance(OPS[op].fields.get(key), PairField)
        return v[0] if pair and len(v) == 2 and v[0] == v[1] else list(v)
    return v


def _defaults(op: str) -> dict[str, Any]:
    return {f.name: f.default for f in fields(OPS[op].Params) if f.default is not MISSING}


def given(op: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that differ from the op's defaults, as YAML values."""
    defaults = _defaults(op)
    return {k: yaml_value(v, op, k) for k, v in settings.items() if k not in defaults or defaults[k] != v}


def flow(mapping: Mapping[str, Any]) -> str:
    """``{name: conv1, op: conv, out: 64}`` on one line."""
    text: str = yaml.safe_dump(dict(mapping), default_flow_style=True, sort_keys=False, width=1 << 30)
    return text.strip()


def _line(e: Entry, previous: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": e.name, "op": e.op, **given(e.op, e.settings)}
    if e.allow:
        d["allow"] = list(e.allow)
    if OPS[e.op].multi_input or e.inputs != (previous,):
        d["from"] = e.inputs[0] if len(e.inputs) == 1 else list(e.inputs)
    if e.note:
        d["note"] = e.note
    return d


def write(header: Header, entries: Sequence[Entry], blocks: str = "",
          items: Sequence[str] | None = None) -> str:
    """The spec text; ``items``: the ``layers:`` lines when folded (else one per entry)."""
    out = [f"# {c}" if c else "#" for c in header.comments]
    out.append(f"format: {SPEC_VERSION}")
    out.append(flow({"name": header.name})[1:-1])
    if header.source:
        out.append(flow({"source": header.source})[1:-1])
    if header.description:
        out.append(flow({"description": header.description})[1:-1])
    out.append(f"input: {flow({'i': list(header.input)})[4:-1]}")
    if header.input_dtype != "float32":
        out.append(f"input_dtype: {header.input_dtype}")
    if header.outputs:
        out.append(f"outputs: {flow({'o': list(header.outputs)})[4:-1]}")
    if blocks:
        out.append("blocks:")
        out.append(blocks.rstrip("\n"))
    out.append("layers:")
    if items is None:
        items = []
        previous = INPUT
        for e in entries:
            items.append(f"  - {flow(_line(e, previous))}")
            previous = e.name
    out.extend(items)
    return "\n".join(out) + "\n"


# --- folding ------------------------------------------------------------------------------------

@record
class _Fold:
    start: int                # index of the first entry of the container
    stop: int                 # one past its last
    bname: str                # the block it uses
    params: Mapping[str, Any]  # the block's params (None: an argument every use gives)
    body: tuple[dict[str, Any], ...]   # the block's layers as written
    use: Mapping[str, Any]    # the use's entry under layers:
    defines: bool = True      # False: a use of a block another fold defines (stages merged)

    @property
    def block(self) -> str:
        """The block's text, indented under ``blocks:``."""
        lines = [f"  {self.bname}:"]
        if self.params:
            lines.append(f"    params: {flow(self.params)}")
        lines.append("    layers:")
        return "\n".join(lines + [f"      - {flow(d)}" for d in self.body])


def _children(entries: Sequence[Entry], prefix: str) -> list[tuple[int, int]] | None:
    """The [start, stop) ranges of children 0, 1, ... of container ``prefix``; None when its
    entries are not contiguous or its children are not numbered 0..N-1 in order."""
    idx = [i for i, e in enumerate(entries) if e.name.startswith(prefix + ".")]
    if not idx or idx[-1] - idx[0] + 1 != len(idx):
        return None
    ranges: list[tuple[int, int]] = []
    current, start = None, idx[0]
    for i in idx:
        child = entries[i].name[len(prefix) + 1:].split(".", 1)[0]
        if child != current:
            if current is not None:
                ranges.append((start, i))
            if child != str(len(ranges)):
                return None
            current, start = child, i
    ranges.append((start, idx[-1] + 1))
    return ranges if len(ranges) >= 2 else None


def _template(entries: Sequence[Entry], lo: int, hi: int, prefix: str,
              source: str) -> list[tuple[str, str, dict[str, Any], tuple[str, ...]]] | None:
    """Child entries as (local name, op, settings, inputs with $in / local names); None when the
    child reads anything but its one source from outside."""
    own = {entries[i].name for i in range(lo, hi)}
    out = []
    for i in range(lo, hi):
        e = entries[i]
        ins = []
        for s in e.inputs:
            if s in own:
                ins.append(s[len(prefix):])
            elif s == source:
                ins.append(IN)
            else:
                return None
        out.append((e.name[len(prefix):], e.op, dict(e.settings), tuple(ins)))
    return out


def _fold(entries: Sequence[Entry], container: str, bname: str) -> _Fold | None:
    ranges = _children(entries, container)
    if ranges is None:
        return None
    start, stop = ranges[0][0], ranges[-1][1]
    source = entries[start - 1].name if start else INPUT
    temps = []
    for k, (lo, hi) in enumerate(ranges):
        src = source if k == 0 else entries[lo - 1].name
        t = _template(entries, lo, hi, f"{container}.{k}.", src)
        if t is None:
            return None
        temps.append(t)
    first, rest = temps[0], temps[1:]
    if any(t != rest[0] for t in rest[1:]):
        return None
    body, params, first_args = _unify(first, rest[0])
    if body is None:
        return None
    # a reader outside the container must read its last layer only
    inside = {entries[i].name for i in range(start, stop)}
    last = entries[stop - 1].name
    for e in entries[stop:]:
        if any(s in inside and s != last for s in e.inputs):
            return None
    use: dict[str, Any] = {"name": container, "block": bname, "repeat": len(ranges)}
    if first_args:
        use["first"] = first_args
    allow = sorted({a for e in entries[start:stop] for a in e.allow})
    if allow:      # what a layer of the copies accepts, the use accepts (as the bundled specs write it)
        use["allow"] = allow
    if source != (entries[start - 1].name if start else INPUT):  # pragma: no cover - by construction
        use["from"] = source
    return _Fold(start, stop, bname, params, tuple(body), use)


# the keys of a block body's layer that are not the op's settings
_STRUCTURE = ("name", "op", "from", "if")


def _full(d: Mapping[str, Any]) -> dict[str, Any]:
    """A body layer's settings with the defaults it leaves out, as YAML values, in the op's order."""
    given_ = {**{k: yaml_value(v, d["op"], k) for k, v in _defaults(d["op"]).items()},
              **{k: v for k, v in d.items() if k not in _STRUCTURE}}
    order = [f.name for f in fields(OPS[d["op"]].Params)]
    return dict(sorted(given_.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _signature(f: _Fold) -> tuple[Any, ...]:
    return tuple((repr([d.get(k) for k in _STRUCTURE]), tuple(sorted(_full(d)))) for d in f.body)


def merge_stages(folds: Sequence[_Fold]) -> list[_Fold]:
    """Folds whose blocks have the same layers, wired alike, and differ only in settings (a
    ResNet's four stages: channels, a stride) share the first one's block: each setting that
    differs becomes a param that every use gives in ``args:``."""
    out = list(folds)
    taken = {f.bname for f in folds}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(folds):
        groups.setdefault(_signature(f), []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        group = [folds[i] for i in idx]
        body, args = [], [dict(f.use.get("args", {})) for f in group]
        params = dict(group[0].params)
        for n, d in enumerate(group[0].body):
            merged = {"name": d["name"], "op": d["op"]}
            values = [_full(f.body[n]) for f in group]
            for key, v in values[0].items():
                if all(vs[key] == v for vs in values):
                    if d.get(key, v) == v and key in d:
                        merged[key] = v
                    continue
                p = _param_name(d["name"], key)
                merged[key] = f"${p}"
                for f, a, vs in zip(group, args, values, strict=True):
                    a[p] = f.params.get(p) if vs[key] == f"${p}" else vs[key]
                params[p] = None
            body.append(merged | {k: d[k] for k in ("from", "if") if k in d})
        for k in {p for f in group for p in f.params if params.get(p, 0) is not None}:
            if any(f.params.get(k, params.get(k)) != params.get(k) for f in group):
                return list(folds)   # a param whose default differs between the stages: not merged
        base = re.sub(r"_?\d+$", "", group[0].bname) or group[0].bname
        shared, n = base, 1
        while shared in taken - {group[0].bname}:
            n += 1
            shared = f"{base}_{chr(ord('a') + n - 2)}" if n < 28 else f"{base}_{n}"
        taken.add(shared)
        for j, (i, f, a) in enumerate(zip(idx, group, args, strict=True)):
            kept = {k: v for k, v in f.use.items() if k in ("first", "allow")}
            use = {"name": f.use["name"], "block": shared, **{k: f.use[k] for k in ("repeat",) if k in f.use},
                   **({"args": a} if a else {}), **kept}
            out[i] = _Fold(f.start, f.stop, shared, params, tuple(body), use, j == 0)
    return out


def _param_name(local: str, key: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{local}_{key}")
    return f"p{name}" if name[0].isdigit() else name


def _unify(first: list[Any], rest: list[Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any],
                                                        dict[str, Any]]:
    """A block body that gives ``rest`` by default and ``first`` under ``first:`` arguments:
    differing settings become params, layers only the first child has get ``if: $first_only``."""
    rest_by = {t[0]: t for t in rest}
    order = [t[0] for t in first]
    if [n for n in order if n in rest_by] != [t[0] for t in rest]:
        return None, {}, {}
    params: dict[str, Any] = {}
    first_args: dict[str, Any] = {}
    body = []
    previous = IN
    for local, op, settings, ins in first:
        d: dict[str, Any] = {"name": local, "op": op}
        other = rest_by.get(local)
        if other is not None and other[1] != op:
            return None, {}, {}
        shown = given(op, settings) if other is None else given(op, settings) | given(op, other[2])
        for key in shown:
            v1 = yaml_value(settings[key], op, key)
            v2 = yaml_value(other[2].get(key), op, key) if other else None
            if other is None or v1 == v2:
                d[key] = v1
            else:
                p = _param_name(local, key)
                params[p], first_args[p], d[key] = v2, v1, f"${p}"
        if OPS[op].multi_input or ins != (previous,):
            d["from"] = ins[0] if len(ins) == 1 else list(ins)
        if other is None:
            if len(ins) != 1:
                return None, {}, {}
            params["first_only"], first_args["first_only"], d["if"] = False, True, "$first_only"
        body.append(d)
        previous = local
    return body, params, first_args


def _same(a: Spec, b: Spec) -> bool:
    if a.outputs != b.outputs or not set(a.outputs) <= {la.name for la in a.layers}:
        return False
    return [(la.name, la.op, la.params, la.inputs, la.lowering, la.tie) for la in a.layers] == \
        [(la.name, la.op, la.params, la.inputs, la.lowering, la.tie) for la in b.layers]


def fold(header: Header, entries: Sequence[Entry]) -> str:
    """The spec text with repeated numbered children folded into blocks (each fold checked by
    loading: the folded spec must expand to the flat spec's layers, else that fold is dropped)."""
    flat = loads(write(header, entries))
    containers: list[str] = []
    for e in entries:
        parts = e.name.split(".")
        for i in range(1, len(parts)):
            if parts[i].isdigit():
                c = ".".join(parts[:i])
                if c not in containers:
                    containers.append(c)
    containers.sort(key=lambda c: c.count("."))      # outermost first
    folds: list[_Fold] = []
    used: set[str] = set()
    for c in containers:
        bname = re.sub(r"[^A-Za-z0-9_]", "_", c)
        while bname in used:
            bname += "_"
        f = _fold(entries, c, bname)
        if f is None or any(f.start < g.stop and g.start < f.stop for g in folds):
            continue
        trial = [*folds, f]
        text = _render(header, entries, trial)
        try:
            ok = _same(loads(text), flat)
        except Exception:  # noqa: BLE001 - a fold that does not load is simply not taken
            ok = False
        if ok:
            folds, used = trial, used | {bname}
    for trial in (merge_stages(folds), _shared_children(entries, containers, folds)):
        if trial == folds:
            continue
        try:
            if _same(loads(_render(header, entries, trial)), flat):
                folds = trial
        except Exception:  # noqa: BLE001 - a merge that does not load is simply not taken
            pass
    return _render(header, entries, folds)


def _shared_children(entries: Sequence[Entry], containers: Sequence[str],
                     folds: Sequence[_Fold]) -> list[_Fold]:
    """``folds`` and, where numbered children of a container that did not fold have the same
    layers and differ only in settings (MobileNet's inverted residuals: channels, a stride), each
    such child written as one use of a block they share, the settings as its ``args:``."""
    singles: list[_Fold] = []
    for c in containers:
        for f in _singles(entries, c):
            if not any(f.start < g.stop and g.start < f.stop for g in [*folds, *singles]):
                singles.append(f)
    merged = merge_stages([*folds, *singles])
    uses: dict[str, int] = {}
    for f in merged:
        uses[f.bname] = uses.get(f.bname, 0) + 1
    return [f for f in merged if "repeat" in f.use or uses[f.bname] > 1]


def _singles(entries: Sequence[Entry], container: str) -> list[_Fold]:
    """Each numbered child of ``container`` as a block of its own used once (for merging)."""
    out: list[_Fold] = []
    bname = re.sub(r"[^A-Za-z0-9_]", "_", container)
    for k, (lo, hi) in enumerate(_children(entries, container) or ()):
        prefix = f"{container}.{k}."
        if not all(e.name.startswith(prefix) for e in entries[lo:hi]):
            continue
        t = _template(entries, lo, hi, prefix, entries[lo - 1].name if lo else INPUT)
        inside, last = {e.name for e in entries[lo:hi]}, entries[hi - 1].name
        if t is None or any(local[0].isdigit() for local, *_ in t) \
                or any(s in inside and s != last for e in entries[hi:] for s in e.inputs):
            continue   # a block's layer name starts with a letter; readers outside read its last
        body, _, _ = _unify(t, t)
        if body is not None:
            use = {"name": f"{container}.{k}", "block": ""}
            out.append(_Fold(lo, hi, f"{bname}_{k}", {}, tuple(body), use))
    return out


def _render(header: Header, entries: Sequence[Entry], folds: Sequence[_Fold]) -> str:
    if not folds:
        return write(header, entries)
    by_start = {f.start: f for f in sorted(folds, key=lambda f: f.start)}
    items, previous, i = [], INPUT, 0
    while i < len(entries):
        f = by_start.get(i)
        if f is not None:
            items.append(f"  - {flow(f.use)}")
            previous, i = entries[f.stop - 1].name, f.stop
            continue
        items.append(f"  - {flow(_line(entries[i], previous))}")
        previous, i = entries[i].name, i + 1
    blocks = "\n".join(f.block for f in sorted(folds, key=lambda f: f.start) if f.defines)
    return write(header, entries, blocks, items)


def entry_of(layer: Any) -> Entry:
    """A loaded :class:`~archviz.spec.Layer` as an :class:`Entry` (all its typed settings, and its
    own ``lowering`` and ``tie`` where it states them)."""
    own = {k: v for k, v in ((LOWERING, layer.lowering), (TIE, layer.tie)) if v}
    return Entry(layer.name, layer.op, {**OPS[layer.op].settings(layer.params), **own}, layer.inputs,
                 layer.note, tuple(sorted(layer.allow)))


__all__ = ["LOWERING", "TIE", "Entry", "Header", "fold", "write", "entry_of", "replace"]
