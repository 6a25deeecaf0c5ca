"""Two analyses → a :class:`Diff`: layers aligned, settings, shapes, parameters and MACs compared.

Alignment, in order:

1. layers with the same name are the same layer (even when their op or place differ);
2. the remaining layers of each side are paired by position among equal ops
   (:class:`difflib.SequenceMatcher` over their op sequences), e.g. ``features.0`` ↔ ``conv1``;
3. what is left is only in A (removed) or only in B (added).

A paired layer is *moved* when it is not on the longest common run of paired names in both
orders (the AlexNet re-tellings that put dropout before fc6 instead of after it).
Settings are compared as the op means them: a pool's absent stride is its kernel, a conv's
``valid`` padding is 0, so spelling a default out is not a difference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any

from ..ops import OPS
from ..ops import fmt_dims as _dims
from ..record import record
from ..spec import INPUT
from .analysis import Analysis, LayerStats

METRICS = ("params", "macs", "neurons", "activations", "buffers")


@record
class Change:
    """One setting that differs: ``key`` (an op field, ``op`` or ``from``), its value in A and in B."""

    key: str
    a: Any
    b: Any


@record
class LayerDiff:
    a: LayerStats | None
    b: LayerStats | None
    changes: tuple[Change, ...] = ()
    moved: bool = False
    move_note: str = ""          # "before fc6 (was before fc7)"

    @property
    def status(self) -> str:
        """``removed``, ``added``, ``changed`` or ``same``."""
        if self.b is None:
            return "removed"
        if self.a is None:
            return "added"
        same = not self.changes and not self.moved and all(
            getattr(self.a, f) == getattr(self.b, f) for f in ("output", "params", "macs"))
        return "same" if same else "changed"

    @property
    def name(self) -> str:
        if self.a is None or self.b is None or self.a.name == self.b.name:
            return (self.a or self.b).name  # type: ignore[union-attr]
        return f"{self.a.name} ↔ {self.b.name}"


@record
class Diff:
    a: Analysis
    b: Analysis
    layers: tuple[LayerDiff, ...]

    def total(self, metric: str) -> tuple[int, int]:
        return getattr(self.a.totals, metric), getattr(self.b.totals, metric)

    def change(self, metric: str) -> float | None:
        """Relative change B vs A (0.0022 = +0.22 %); None when A is 0 and B is not."""
        return relative(*self.total(metric))

    def grouped(self) -> list[tuple[Change, tuple[str, ...]]]:
        """Setting changes other than ``from``, each with the layers it applies to (spec order of B)."""
        groups: dict[tuple[str, str, str], tuple[Change, list[str]]] = {}
        for d in self.layers:
            for c in d.changes:
                if c.key != "from":
                    groups.setdefault((c.key, show(c.a), show(c.b)), (c, []))[1].append(d.name)
        return [(c, tuple(names)) for c, names in groups.values()]


def relative(a: int, b: int) -> float | None:
    if a == 0:
        return 0.0 if b == 0 else None
    return (b - a) / a


def show(v: Any) -> str:
    """A setting as people write it: (11, 11) → 11, (3, 5) → 3×5, None → –."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        if len(v) == 2 and v[0] == v[1]:
            return str(v[0])
        return "×".join(map(show, v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def diff(a: Analysis, b: Analysis) -> Diff:
    """Compare two analysed specs (see the module docstring for the alignment)."""
    la = {x.name: x for x in a.layers}
    lb = {x.name: x for x in b.layers}
    pairs = _align([s.name for s in a.layers], [s.name for s in b.layers],
                   {n: x.op for n, x in la.items()}, {n: x.op for n, x in lb.items()})
    partner = {x: y for x, y in pairs if x is not None and y is not None}
    paired_b = set(partner.values())
    moved = _moved([x for x in (s.name for s in a.layers) if x in partner],
                   [y for y in (s.name for s in b.layers) if y in paired_b], partner)
    skip_a = {x for x, y in pairs if y is None and x is not None} | moved
    skip_b = {y for x, y in pairs if x is None and y is not None} | {partner[x] for x in moved}
    next_a, next_b = _first_readers(a), _first_readers(b)
    rows = []
    for x, y in _display_order(pairs, [s.name for s in a.layers], [s.name for s in b.layers]):
        sa = la[x] if x else None
        sb = lb[y] if y else None
        changes: tuple[Change, ...] = ()
        if x and y:
            changes = _changes(la[x], lb[y], partner)
            if x in moved or _upstream(la[x], la, skip_a, partner) == _upstream(lb[y], lb, skip_b, {}):
                changes = tuple(c for c in changes if c.key != "from")  # explained by a move or removal
        note = _move_note(next_a, next_b, x, y) if x in moved else ""
        rows.append(LayerDiff(sa, sb, changes, x in moved, note))
    return Diff(a, b, tuple(rows))


def _align(names_a: list[str], names_b: list[str], ops_a: Mapping[str, str],
           ops_b: Mapping[str, str]) -> list[tuple[str | None, str | None]]:
    common = set(names_a) & set(names_b)
    pairs: list[tuple[str | None, str | None]] = [(n, n) for n in names_a if n in common]
    rest_a = [n for n in names_a if n not in common]
    rest_b = [n for n in names_b if n not in common]
    sm = SequenceMatcher(None, [ops_a[n] for n in rest_a], [ops_b[n] for n in rest_b], autojunk=False)
    used_a: set[str] = set()
    used_b: set[str] = set()
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            x, y = rest_a[block.a + k], rest_b[block.b + k]
            pairs.append((x, y))
            used_a.add(x)
            used_b.add(y)
    pairs += [(n, None) for n in rest_a if n not in used_a]
    pairs += [(None, n) for n in rest_b if n not in used_b]
    return pairs


def _moved(order_a: list[str], order_b: list[str], partner: Mapping[str, str]) -> set[str]:
    """Paired layers (A names) off the longest common run of both orders."""
    mapped = [partner[x] for x in order_a]
    sm = SequenceMatcher(None, mapped, order_b, autojunk=False)
    kept = {mapped[blk.a + k] for blk in sm.get_matching_blocks() for k in range(blk.size)}
    return {x for x in order_a if partner[x] not in kept}


def _display_order(pairs: list[tuple[str | None, str | None]], names_a: list[str],
                   names_b: list[str]) -> list[tuple[str | None, str | None]]:
    """B's order; a layer only in A goes right after the B place of its nearest paired predecessor."""
    pos_a = {n: i for i, n in enumerate(names_a)}
    pos_b = {n: i for i, n in enumerate(names_b)}
    b_of = {x: y for x, y in pairs if x is not None and y is not None}
    anchor: dict[str, int] = {}
    last = -1
    for n in names_a:
        if n in b_of:
            last = pos_b[b_of[n]]
        anchor[n] = last

    def key(p: tuple[str | None, str | None]) -> tuple[int, int, int]:
        x, y = p
        if y is not None:
            return (pos_b[y], 0, 0)
        return (anchor[x], 1, pos_a[x])  # type: ignore[index]

    return sorted(pairs, key=key)


def _changes(x: LayerStats, y: LayerStats, partner: Mapping[str, str]) -> tuple[Change, ...]:
    out: list[Change] = []
    if x.op != y.op:
        out.append(Change("op", x.op, y.op))
    pa, pb = OPS[x.op].settings(x.op_params), OPS[y.op].settings(y.op_params)  # defaults already resolved
    for key in [*pa, *(k for k in pb if k not in pa)]:
        if pa.get(key) != pb.get(key):
            out.append(Change(key, pa.get(key), pb.get(key)))
    ins_a = tuple(partner.get(n, n) if n != INPUT else INPUT for n in x.inputs)
    if ins_a != tuple(y.inputs):
        out.append(Change("from", ", ".join(x.inputs), ", ".join(y.inputs)))
    return tuple(out)


def _upstream(layer: LayerStats, layers: Mapping[str, LayerStats], skip: set[str],
              partner: Mapping[str, str]) -> tuple[str, ...]:
    """The layer's inputs, looking through single-input layers in ``skip``; A names → B names."""
    out = []
    for name in layer.inputs:
        while name in skip and len(layers[name].inputs) == 1:
            name = layers[name].inputs[0]
        out.append(partner.get(name, name))
    return tuple(out)


def _first_readers(analysis: Analysis) -> dict[str, str]:
    """Layer → the first layer (in spec order) that reads it."""
    out: dict[str, str] = {}
    for s in analysis.layers:
        for src in s.inputs:
            out.setdefault(src, s.name)
    return out


def _move_note(next_a: Mapping[str, str], next_b: Mapping[str, str], x: str | None, y: str | None) -> str:
    """``before fc6, was before fc7``: where a moved layer now sits, by the layer that reads it."""
    if x is None or y is None:
        return ""
    now, was = (f"before {n[k]}" if k in n else "at the end" for n, k in ((next_b, y), (next_a, x)))
    return f"{now}, was {was}" if now != was else ""


def percent(r: float | None) -> str:
    """+0.22%, −33.3%, 'new' when A was 0."""
    if r is None:
        return "new"
    if r == 0:
        return "±0%"
    text = f"{abs(r) * 100:.3g}%"
    return ("+" if r > 0 else "−") + text


def summary(d: Diff) -> list[str]:
    """What a reader of both wants first: input, settings changed (grouped), removed, added, moved."""
    lines = []
    if d.a.input != d.b.input:
        lines.append(f"input {_dims(d.a.input)} → {_dims(d.b.input)}")
    if d.a.gpus != d.b.gpus:
        lines.append(f"gpus {show(d.a.gpus)} → {show(d.b.gpus)}")
    lines += _swaps(d)
    for c, names in d.grouped():
        lines.append(f"{c.key} {show(c.a)} → {show(c.b)}: {_fold(names)}")
    for status, side in (("removed", "a"), ("added", "b")):
        by_op: dict[str, list[str]] = {}
        for row in d.layers:
            if row.status == status:
                s = getattr(row, side)
                by_op.setdefault(s.op, []).append(s.name)
        lines += [f"{status} {op}: {_fold(names)}" for op, names in by_op.items()]
    moves = [f"{row.name} {row.move_note}".strip() for row in d.layers if row.moved]
    if moves:
        lines.append("moved: " + "; ".join(moves))
    return lines


_INDEX = re.compile(r"\.\d+(?=\.)")


def _fold(names: list[str]) -> str:
    """Names that differ only in a repeat's copy number, written once: ``h.*.attn ×12`` (a pattern
    that covers three or more); the others as they are, in order."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(_INDEX.sub(".*", n), []).append(n)
    return ", ".join(f"{k} ×{len(v)}" if len(v) >= 3 else ", ".join(v) for k, v in groups.items())


def _swaps(d: Diff) -> list[str]:
    """In words, per op family, the ops only A has replaced by those only B has: ``norm: layernorm →
    rmsnorm`` (GPT-2 → Llama); an op gone or new without a replacement is in the removed/added lines."""
    ops = {side: {getattr(r, side).op for r in d.layers if getattr(r, side) is not None} for side in "ab"}
    lines = []
    for fam in sorted({OPS[o].family for o in ops["a"] ^ ops["b"]}):
        gone = sorted(o for o in ops["a"] - ops["b"] if OPS[o].family == fam)
        new = sorted(o for o in ops["b"] - ops["a"] if OPS[o].family == fam)
        if gone and new:
            lines.append(f"{fam}: {', '.join(gone)} → {', '.join(new)}")
    return lines


def _stats(s: LayerStats | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"name": s.name, "op": s.op, "output": list(s.output), "params": s.params, "macs": s.macs}


def to_dict(d: Diff, exceeded: list[str] | None = None) -> dict[str, Any]:
    """The JSON layout of ``archviz diff --format json`` (see docs/diff.md)."""
    side = {k: {"name": x.name, "path": x.path, "input": list(x.input), "gpus": x.gpus}
            for k, x in (("a", d.a), ("b", d.b))}
    return {
        "schema_version": 1,   # as every JSON output (archviz.render.tables.SCHEMA_VERSION)
        **side,
        "layers": [{"status": r.status, "a": _stats(r.a), "b": _stats(r.b), "moved": r.moved,
                    "move": r.move_note or None,
                    "changes": [{"key": c.key, "a": _json(c.a), "b": _json(c.b)} for c in r.changes]}
                   for r in d.layers],
        "totals": {m: {"a": d.total(m)[0], "b": d.total(m)[1], "change": d.change(m)} for m in METRICS},
        "summary": summary(d),
        "exceeded": exceeded or [],
    }


def _json(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v
