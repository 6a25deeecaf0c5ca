"""YAML → :class:`Spec`: parse, validate every key, and keep a :class:`Loc` for each field.

The YAML is composed with PyYAML's SafeLoader (``yaml.compose``) so that every node keeps its
line and column; nothing in a spec is ever evaluated. Every problem is a :class:`SpecError`
pointing at the offending value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import Loc, SpecError, did_you_mean
from ..limits import MAX_DEPTH, MAX_GPUS, max_alias_nodes, max_spec_bytes
from ..ops import OPS
from ..ops.dtypes import ALIASES, DTYPES, FLOAT
from ..ops.fields import FieldError
from ..ops.lowering import lowering_ops
from ..ops.registry import OpKind
from ..record import record
from . import bundled
from .blocks import Expander, parse_blocks
from .claims import Claim, parse_claims
from .doc import (
    INPUT,
    NAME_RE,
    Doc,
    Layer,
    Origin,
    Shape,
    node_kind,
    read_allow,
    read_from,
    read_lowering,
    read_name,
    read_positive_int,
    read_shape,
    read_word,
    show,
)

__all__ = ["SPEC_VERSION", "SPEC_VERSIONS", "INPUT", "LAYER_KEYS", "NAME_RE", "TOP_KEYS", "Doc", "Layer",
           "Shape", "Spec", "load", "loads", "parse_layer"]

TOP_KEYS = {"format", "name", "source", "description", "input", "input_dtype", "outputs", "gpus", "allow",
            "blocks", "layers", "claims"}
# spec format versions: 1 (the first; an LRN's alpha ambiguous), 2 (an LRN's alpha is the paper's α),
# 3 (shapes of any rank, `input_dtype:`, a layer's `lowering:`); see docs/spec-format.md. Every
# older spec reads unchanged.
# per sampled use: the first copy's output, the last copy's output, the last copy's first position
Spans = tuple[tuple[str, str, int], ...]
Preflight = Callable[["Spec", Spans], None]
PREVIEW_LAYERS = 10_000   # block uses adding more layers than this are previewed (loads' preflight)
SPEC_VERSIONS = (1, 2, 3)
SPEC_VERSION = 3
LAYER_KEYS = {"name", "op", "from", "expect", "note", "allow", "lowering", "tie"}
# libyaml's safe loader when PyYAML was built with it (2× faster), else the pure-Python one
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_MEMO = 4096  # scalar tags remembered per load (a spec repeats few distinct scalars)


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader with its implicit-tag resolution memoised for one load (specs repeat the
    same scalars); the memo belongs to the loader, so it goes when the load ends, and is bounded.

    SafeLoader has no path resolvers, so a scalar's tag depends only on (kind, value, implicit).
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[Any, str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) < _MEMO:
                self._tags[key] = tag
        return tag  # type: ignore[no-any-return]


@record
class Spec:
    """A loaded spec: its name, input and layers, and what else the file states."""
    name: str
    input: Shape
    layers: tuple[Layer, ...]
    path: str = "<spec>"
    source: str = ""
    description: str = ""
    gpus: int | None = None
    claims: tuple[Claim, ...] = ()
    input_loc: Loc | None = None
    format: int = 1                  # the spec format version (the `format:` key; 1 when absent)
    allow: frozenset[str] = frozenset()  # warnings every layer accepts (`allow: [inexact]`)
    input_dtype: str = FLOAT         # the input's dtype (`input_dtype:`): float32, bf16, fp16, int64, int32
    # `outputs:`, the network's outputs in order (a use's name resolved to its output layer); ()
    # where not given: the layers nobody reads
    outputs: tuple[str, ...] = ()
    outputs_loc: Loc | None = None

    def layer(self, name: str) -> Layer:
        return next(la for la in self.layers if la.name == name)


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """A plain-words hint for the YAML mistakes people make most."""
    problem = exc.problem or ""
    ctx = exc.context_mark
    if "tab" in problem:
        return "hint: YAML indents with spaces only; replace the tab with spaces"
    if "mapping values are not allowed" in problem:
        return ("hint: this line is indented differently from the keys above it,"
                " or a value contains ': ' and needs quotes")
    if "expected ',' or" in problem and ctx is not None:
        bracket = "[" if "]" in problem else "{"
        return f"hint: the '{bracket}' opened at line {ctx.line + 1}, column {ctx.column + 1} is not closed"
    return ""


def load(spec: str | Path, *, preflight: Preflight | None = None) -> Spec:
    """Load a spec from a path, or a bundled spec by its stem (``alexnet``, ``lenet5``, ...);
    ``preflight``: as :func:`loads`."""
    path = bundled.resolve(spec)
    shown = bundled.display(spec, path)
    raw = read_spec_file(path, str(spec))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(shown, raw, exc) from None
    return loads(text, shown, preflight=preflight)


def read_spec_file(path: Path, spec: str) -> bytes:
    """The bytes of a regular file of at most ``max_spec_bytes()``; anything else is refused before
    a byte is read (a FIFO would block, /dev/zero never ends, a directory is not a spec)."""
    limit = max_spec_bytes()
    try:
        # O_NONBLOCK: opening a FIFO to find out what it is must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if path.is_dir():
            raise SpecError(f"{spec}: is a directory, not a spec file") from None
        raise SpecError(f"{spec}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(f"{spec}: is a directory, not a spec file")
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{spec}: is not a regular file ({_kind(st.st_mode)}); a spec is read"
                            " from a file", hint="hint: save the spec to a file first")
        if st.st_size > limit:
            raise SpecError(f"{spec}: {st.st_size:,} bytes; a spec file is at most {limit:,}",
                            hint=_LIMIT_HINT.format("ARCHVIZ_MAX_SPEC_BYTES"))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        try:
            raw = fh.read(limit + 1)   # the file may grow after fstat: never read past the limit
        except OSError as exc:
            raise SpecError(f"{spec}: cannot read: {exc.strerror}") from None
    if len(raw) > limit:
        raise SpecError(f"{spec}: more than {limit:,} bytes; a spec file is at most {limit:,}",
                        hint=_LIMIT_HINT.format("ARCHVIZ_MAX_SPEC_BYTES"))
    return raw


_LIMIT_HINT = "hint: the limit is set by the environment variable {} (docs/limits.md)"


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a plain file"


def _not_utf8(shown: str, raw: bytes, exc: UnicodeDecodeError) -> SpecError:
    """Point at the first byte that is not UTF-8."""
    before = raw[: exc.start]
    line = before.count(b"\n")
    start = before.rfind(b"\n") + 1
    col = len(raw[start: exc.start].decode("utf-8", "replace")) + 1
    text = raw[start:].split(b"\n", 1)[0].decode("utf-8", "replace")
    return SpecError(f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
                     Loc(shown, line + 1, col, text), "save the file as UTF-8")


def loads(text: str, path: str = "<spec>", *, preflight: Preflight | None = None) -> Spec:
    """Parse and validate spec text; ``path`` is used in error locations only. ``preflight``
    (:func:`archviz.core.analysis.preflight`): called, before block uses that add more than
    :data:`PREVIEW_LAYERS` layers are expanded, with the spec whose ``repeat: n`` uses keep only
    their first and last copies and those copies' :data:`Spans`; it may raise the error the
    whole network would."""
    doc = Doc(text, path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line if mark else 0
        col = mark.column if mark else 0
        src = doc.lines[line] if line < len(doc.lines) else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"YAML syntax error: {problem}", Loc(path, line + 1, col + 1, src),
                        _yaml_hint(exc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", Loc(path, 1, 1, "")) from None
    if root is None:
        raise SpecError("empty spec: expected a mapping with name, input and layers",
                        Loc(path, 1, 1, doc.lines[0] if doc.lines else ""))
    if _may_anchor(text):   # perhaps aliases: measure what they expand to
        _bounded(doc, root)
    else:
        _shallow(doc, root)
    return _spec(doc, root, preflight)


def _may_anchor(text: str) -> bool:
    """Whether ``text`` may hold a YAML anchor: an ``&`` followed by an anchor's character (not
    a space or a flow indicator). An ``&`` in prose (``Sutskever & Hinton``) is not one; ``R&D``
    answers yes, which only costs the slower walk."""
    at = text.find("&")
    while at != -1:
        after = text[at + 1: at + 2]
        if after and not after.isspace() and after not in "[]{},":
            return True
        at = text.find("&", at + 1)
    return False


_DEEP = "nested more than {} levels deep (lists and mappings inside one another, aliases followed)"


def _shallow(doc: Doc, root: yaml.Node) -> None:
    """Refuse lists and mappings nested more than ``MAX_DEPTH`` deep, in a document without
    anchors (so every node is met once): one level at a time, no recursion, and only lists and
    mappings are kept for the next level (about 2% of the time of composing the YAML)."""
    scalar, mapping = yaml.ScalarNode, yaml.MappingNode
    level: list[yaml.Node] = [] if type(root) is scalar else [root]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise doc.error(level[0], _DEEP.format(MAX_DEPTH), "hint: specs nest a few levels")
        deeper: list[yaml.Node] = []
        add = deeper.append
        for node in level:
            if type(node) is mapping:
                for k, v in node.value:
                    if type(v) is not scalar:
                        add(v)
                    if type(k) is not scalar:
                        add(k)
            else:
                for v in node.value:
                    if type(v) is not scalar:
                        add(v)
        level = deeper
        depth += 1


def _bounded(doc: Doc, root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it by more than ``max_alias_nodes()`` nodes (a
    "billion laughs") or that nests deeper than ``MAX_DEPTH``, aliases followed.

    One pass over the distinct nodes (an alias is the same node object met again), without
    recursion: each node's expanded size and depth (lists and mappings on the longest path) are
    computed from its children's.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_: set[int] = set()   # nodes whose children are being measured
    written = 0
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids = _children(node)
        if not ready:
            if key in open_:
                raise doc.error(node, "a YAML alias refers to a node that contains it")
            open_.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        written += 1
        size[key] = 1 + sum(size[id(k)] for k in kids)
        depth[key] = 1 + max((depth[id(k)] for k in kids), default=0) if kids or \
            not isinstance(node, yaml.ScalarNode) else 0
        if depth[key] > MAX_DEPTH:
            raise doc.error(node, _DEEP.format(MAX_DEPTH), "hint: specs nest a few levels")
    budget = max_alias_nodes()
    if size[id(root)] - written > budget:
        node = root   # walk down to the smallest node that alone exceeds the budget
        while True:
            big = [k for k in _children(node) if size[id(k)] > budget]
            if not big:
                break
            node = big[0]
        raise doc.error(node, f"YAML aliases expand this to {size[id(node)]:,} nodes; aliases may add"
                        f" at most {budget:,} to a spec", _LIMIT_HINT.format("ARCHVIZ_MAX_ALIAS_NODES"))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _spec(doc: Doc, root: yaml.Node, preflight: Preflight | None = None) -> Spec:
    top = doc.mapping(root, "spec")
    for key, (knode, _) in top.items():
        if key not in TOP_KEYS:
            raise doc.error(knode, f"unknown top-level key '{key}'", did_you_mean(key, TOP_KEYS))
    for required in ("name", "input", "layers"):
        if required not in top:
            raise doc.error(root, f"spec: missing required key '{required}'")
    shape = _input(doc, top["input"][1])
    version = 1
    if "format" in top:
        version = doc.value(top["format"][1])
        if isinstance(version, bool) or version not in SPEC_VERSIONS:
            raise doc.error(top["format"][1], f"format: expected one of {', '.join(map(str, SPEC_VERSIONS))},"
                            f" got {show(version)}", f"this archviz reads spec formats up to {SPEC_VERSION}")
    gpus = read_positive_int(doc, top["gpus"][1], "gpus") if "gpus" in top else None
    if gpus is not None and gpus > MAX_GPUS:
        raise doc.error(top["gpus"][1], f"gpus: at most {MAX_GPUS}, got {gpus}",
                        "hint: the split view makes a column per GPU (docs/limits.md)")
    blocks = top["blocks"][1] if "blocks" in top else None

    def head() -> dict[str, Any]:
        return {"name": doc.text(top["name"][1], "name", lines=False), "input": shape, "path": doc.path,
                "source": doc.text(top["source"][1], "source") if "source" in top else "",
                "description": doc.text(top["description"][1], "description") if "description" in top else "",
                "gpus": gpus, "format": version, "input_loc": doc.loc(top["input"][1]),
                "allow": read_allow(doc, top["allow"][1], "allow") if "allow" in top else frozenset(),
                "input_dtype": _input_dtype(doc, top["input_dtype"][1]) if "input_dtype" in top else FLOAT}

    def preview(layers: tuple[Layer, ...], spans: Spans) -> None:
        try:
            sp = Spec(**head(), layers=layers)
        except SpecError:   # the full load reports it, in its order
            return
        preflight(sp, spans)  # type: ignore[misc]

    layers, aliases = _layers(doc, top["layers"][1], blocks, preview if preflight is not None else None)
    outputs = _outputs(doc, top["outputs"][1], aliases) if "outputs" in top else ()
    claims = parse_claims(doc, top["claims"][1]) if "claims" in top else ()
    return Spec(**head(), layers=layers, claims=claims, outputs=outputs,
                outputs_loc=doc.loc(top["outputs"][1]) if "outputs" in top else None)


def _outputs(doc: Doc, node: yaml.Node, aliases: Mapping[str, str]) -> tuple[str, ...]:
    """``outputs: [encoder, pooler]``: layer names (or a use's name: its output layer), each once;
    whether each names a layer is checked with the graph (core/graph.py)."""
    items = node.value if isinstance(node, yaml.SequenceNode) else None
    if not items:
        raise doc.error(node, f"outputs: expected a non-empty list of layer names, got {node_kind(node)}")
    names = [aliases.get(n, n) for n in (read_name(doc, item, "output", reserved=INPUT) for item in items)]
    if len(set(names)) != len(names):
        raise doc.error(node, "outputs: a layer is named twice")
    return tuple(names)


def _input(doc: Doc, node: yaml.Node) -> Shape:
    return read_shape(doc, node, "input")


def _input_dtype(doc: Doc, node: yaml.Node) -> str:
    """``input_dtype: int64``: one of :data:`archviz.ops.dtypes.DTYPES`."""
    value = read_word(doc, node, "input_dtype")
    if value not in DTYPES:
        hint = f"did you mean '{ALIASES[value]}'?" if value in ALIASES else did_you_mean(value, DTYPES)
        raise doc.error(node, f"input_dtype: expected one of {', '.join(DTYPES)}, got {show(value)}", hint)
    return value


def _layers(doc: Doc, node: yaml.Node, blocks_node: yaml.Node | None = None,
            preflight: Callable[[tuple[Layer, ...], Spans], None] | None = None,
            ) -> tuple[tuple[Layer, ...], Mapping[str, str]]:
    """The ``layers:`` list, block uses expanded (see :mod:`archviz.spec.blocks`), and each use's
    name → its output layer. Where the uses add more than :data:`PREVIEW_LAYERS` layers,
    ``preflight`` first sees the network with each ``repeat: n`` cut to its first and last copies
    (and where they are: ``Spans``), so a mistake that only shapes show is found without expanding
    every copy."""
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise doc.error(node, f"layers: expected a non-empty list of layers, got {node_kind(node)}")
    blocks = parse_blocks(doc, blocks_node) if blocks_node is not None else {}
    expander = Expander(doc, blocks, parse_layer)
    parsed = expander.check(node.value)   # every entry as written, before any use is expanded
    if preflight is not None and expander.fewest(node.value) > PREVIEW_LAYERS:
        sample = Expander(doc, blocks, parse_layer, sample=True)
        try:
            for item, layer in zip(node.value, parsed, strict=True):
                sample.top(item, layer)
            layers = sample.finish()
        except SpecError:   # (a `from:` naming a copy left out) the full expansion says what is wrong
            layers = ()
        if layers:
            preflight(layers, tuple(sample.spans))
    for item, layer in zip(node.value, parsed, strict=True):
        expander.top(item, layer)
    return expander.finish(), expander.aliases


def parse_layer(doc: Doc, node: yaml.Node, previous: str, use_site: Loc | None = None,
                origin: Origin | None = None) -> Layer:
    """One layer mapping → :class:`Layer`; it reads ``previous`` unless it says ``from:``.

    ``use_site``, ``origin``: for a layer of a block, where that block is used in ``layers:``
    and which use and copy the layer belongs to."""
    entries = doc.mapping(node, "layer")
    if "name" not in entries:
        raise doc.error(node, "layer: missing required key 'name'")
    name_node = entries["name"][1]
    name = read_name(doc, name_node, "layer name", reserved=INPUT)
    if "op" not in entries:
        for alias in ("type", "kind", "layer", "operation"):
            if alias in entries:
                knode, vnode = entries[alias]
                raise doc.error(knode, f"{name}: unknown key '{alias}'; the layer's op is given with"
                                f" 'op'", f"did you mean 'op: {doc.value(vnode)}'?")
        raise doc.error(node, f"{name}: missing required key 'op'",
                        "valid ops: " + ", ".join(sorted(OPS)))
    op_node = entries["op"][1]
    op_name = read_word(doc, op_node, f"{name}.op")
    if op_name not in OPS:
        raise doc.error(op_node, f"{name}.op: unknown op {show(op_name)}", _op_hint(str(op_name)))
    kind = OPS[op_name]
    fields = kind.fields
    values: dict[str, Any] = {}
    for key, (knode, vnode) in entries.items():
        if key in LAYER_KEYS:
            continue
        if key not in fields:
            valid = set(fields) | LAYER_KEYS
            raise doc.error(knode, f"{name}: unknown key '{key}' for op {op_name}",
                            did_you_mean(key, valid))
        try:
            values[key] = fields[key].parse(doc.value(vnode))
        except FieldError as exc:
            raise doc.error(vnode, f"{name}.{key}: {exc}") from None
    for key, fld in fields.items():
        if fld.required and key not in values:
            raise doc.error(node, f"{name}: op {op_name} needs '{key}'"
                            + (f" ({fld.doc})" if fld.doc else ""))
    params = kind.make(values)  # the op's typed params: defaults filled, derived defaults resolved
    inputs = _inputs(doc, entries, name, previous, kind)
    expect = None
    if "expect" in entries:
        expect = read_shape(doc, entries["expect"][1], f"{name}.expect")
    locs = {k: doc.loc(v) for k, (_, v) in entries.items()}
    note = doc.text(entries["note"][1], f"{name}.note") if "note" in entries else ""
    allow = read_allow(doc, entries["allow"][1], f"{name}.allow") if "allow" in entries else frozenset()
    lowering = read_lowering(doc, entries["lowering"][1], f"{name}.lowering", op_name, kind.lowerings,
                             lowering_ops()) if "lowering" in entries else ""
    tie = read_name(doc, entries["tie"][1], f"{name}.tie", reserved=INPUT) if "tie" in entries else ""
    if tie == name:
        raise doc.error(entries["tie"][1], f"{name}.tie: a layer cannot share its own weight")
    return Layer(name, op_name, params, inputs, expect, doc.loc(name_node), locs, note, use_site, allow,
                 lowering, origin, tie)


def _op_hint(word: str) -> str:
    """``conv2d`` is torch's name for ``conv``: an op whose torch module is called ``word`` first,
    else the closest op name."""
    for op in OPS.values():
        for qualified in op.torch_modules:
            if qualified.rsplit(".", 1)[-1].lower() == word.lower():
                return f"did you mean '{op.name}'? ({qualified} is archviz's {op.name})"
    return did_you_mean(word, OPS)


def _inputs(doc: Doc, entries: dict[str, tuple[yaml.Node, yaml.Node]], name: str,
            previous: str, kind: OpKind) -> tuple[str, ...]:
    """The layer's inputs (``from:``, else the previous layer), as many as the op reads
    (:meth:`OpKind.input_range`)."""
    multi = kind.multi_input
    if "from" not in entries:
        if multi:
            raise doc.error(entries["op"][1], f"{name}: a merge op needs 'from: [a, b, ...]'")
        return (previous,)
    node = entries["from"][1]
    names = read_from(doc, node, f"{name}.from")
    if multi and len(names) < 2:
        raise doc.error(node, f"{name}.from: a merge op needs at least two inputs, got {len(names)}")
    lo, hi = kind.input_range()
    if not multi and hi == 1 and len(names) != 1:
        raise doc.error(node, f"{name}.from: this op takes one input, got {len(names)}")
    if len(names) < lo or (hi is not None and len(names) > hi):
        most = "or more" if hi is None else f"to {_COUNTS.get(hi, hi)}"
        raise doc.error(node, f"{name}.from: {kind.name} takes {_COUNTS.get(lo, lo)} {most} inputs,"
                        f" got {len(names)}")
    return tuple(names)


_COUNTS = {1: "one", 2: "two", 3: "three"}
