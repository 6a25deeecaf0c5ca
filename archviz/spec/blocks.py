"""Spec blocks: named, parameterised sub-graphs, expanded into plain layers while a spec loads.

::

    blocks:
      basic:                                          # a ResNet basic block
        params: {out: null, stride: 1, down: false}   # null = a required argument
        layers:
          - {name: conv1, op: conv, out: $out, kernel: 3, stride: $stride, padding: 1, bias: false}
          - ...
          - {name: downsample.0, op: conv, from: $in, out: $out, kernel: 1, stride: $stride,
             bias: false, if: $down}
          - {name: downsample.1, op: batchnorm, if: $down}
          - {name: add, op: add, from: [bn2, downsample.1]}
    layers:
      - {name: layer2, block: basic, repeat: 2, args: {out: 128}, first: {stride: 2, down: true}}

* ``$p`` (a whole YAML value, or an item of a list) is replaced by the argument ``p``;
  ``$in`` in ``from:`` is the block's input. Other ``from:`` names are earlier layers of the block.
* ``repeat: n`` chains n copies named ``use.0.layer`` … ``use.{n-1}.layer`` (torchvision's
  state-dict names); without ``repeat`` the names are ``use.layer``. ``first:`` arguments apply to
  copy 0 only (a stride, a downsample branch).
* ``if: $p`` makes a layer optional. A left-out layer stands for its input: a layer that reads it
  reads what it would have read (so ``add`` above reads ``$in`` when there is no downsample).
* A block's output is its last layer; ``from: use`` elsewhere names it, and ``expect:`` on a use
  checks it. Blocks may use other blocks (not themselves).

Every layer of a block keeps the location of its line in the block, and errors raised while
expanding a use also name that use (``SpecError.use_site``). Expansion does work proportional
to the number of layers it produces, so a large spec loads in linear time. Before any use is
expanded, every entry as written (each top-level layer and use, each block's layers that take no
``$param``) is checked on its own (:meth:`Expander.check`): a mistake written after a use that
expands to 100,000 layers is reported after work bounded by the file's size, not the expansion's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import yaml

from ..errors import Loc, SpecError, did_you_mean
from ..limits import max_layers
from ..record import record
from .doc import (
    INPUT,
    STR_TAG,
    Doc,
    Layer,
    Origin,
    node_kind,
    read_allow,
    read_from,
    read_name,
    read_positive_int,
    read_shape,
    read_word,
    show,
)

BLOCK_KEYS = ("params", "layers", "note", "allow")
_CAP_HINT = "hint: the limit is set by the environment variable ARCHVIZ_MAX_LAYERS (docs/limits.md)"
USE_KEYS = ("name", "block", "repeat", "args", "first", "from", "expect", "allow")
IN = "$in"  # in a block's `from:`, the block's input
_PREVIOUS = "\x00previous"  # the input a layer checked ahead of expansion reads (no name can be it)
Entries = dict[str, tuple[yaml.Node, yaml.Node]]
# the loader's parse_layer(doc, node, previous, use_site, origin): a layer mapping -> Layer
ParseLayer = Callable[[Doc, yaml.Node, str, Loc | None, Origin | None], Layer]


@record
class Template:
    """One entry of a block's ``layers:`` as written: a layer, or a use of another block."""

    local: str                      # its name inside the block (``conv1``, ``downsample.0``)
    node: yaml.Node                 # the entry as written, a mapping (for its location)
    entries: Entries
    refs: frozenset[str]            # keys whose values mention a ``$param``


@record
class Block:
    """A block of the spec's ``blocks:``: its parameters' defaults and its layer templates."""
    name: str
    defaults: Mapping[str, yaml.Node | None]   # parameter -> default value node; None = required
    layers: tuple[Template, ...]
    allow: frozenset[str] = frozenset()         # warnings every layer of the block accepts


def parse_blocks(doc: Doc, node: yaml.Node) -> dict[str, Block]:
    """The top-level ``blocks:`` mapping; checks every ``$param``, ``from:`` name and nested use."""
    blocks: dict[str, Block] = {}
    for name, (knode, vnode) in doc.mapping(node, "blocks").items():
        read_name(doc, knode, "blocks: block name", dots=False)
        blocks[name] = _block(doc, name, vnode)
    for block in blocks.values():
        for t in block.layers:
            if "block" in t.entries:
                _check_block_name(doc, t.entries["block"][1], f"{block.name}.{t.local}", blocks)
    _check_recursion(doc, blocks)
    return blocks


def _block(doc: Doc, name: str, node: yaml.Node) -> Block:
    where = f"blocks.{name}"
    entries = doc.mapping(node, where)
    for key, (knode, _) in entries.items():
        if key not in BLOCK_KEYS:
            raise doc.error(knode, f"{where}: unknown key '{key}'", did_you_mean(key, BLOCK_KEYS))
    if "layers" not in entries:
        raise doc.error(node, f"{where}: missing required key 'layers'")
    defaults: dict[str, yaml.Node | None] = {}
    if "params" in entries:
        for p, (pk, pv) in doc.mapping(entries["params"][1], f"{where}.params").items():
            read_name(doc, pk, f"{where}.params: parameter name", dots=False, reserved="in")
            defaults[p] = None if doc.value(pv) is None else pv
    lnode = entries["layers"][1]
    if not isinstance(lnode, yaml.SequenceNode) or not lnode.value:
        raise doc.error(lnode, f"{where}.layers: expected a non-empty list of layers, got {node_kind(lnode)}")
    templates: list[Template] = []
    for item in lnode.value:
        templates.append(_template(doc, name, item, defaults, {t.local for t in templates}))
    allow = read_allow(doc, entries["allow"][1], f"{where}.allow") if "allow" in entries else frozenset()
    return Block(name, defaults, tuple(templates), allow)


def _template(doc: Doc, block: str, item: yaml.Node, params: Mapping[str, Any],
              earlier: set[str]) -> Template:
    entries = doc.mapping(item, f"blocks.{block}: layer")
    if "name" not in entries:
        raise doc.error(item, f"blocks.{block}: layer: missing required key 'name'")
    name_node = entries["name"][1]
    local = read_name(doc, name_node, f"blocks.{block}: layer name")
    if local in earlier:
        raise doc.error(name_node, f"blocks.{block}: duplicate layer name '{local}'")
    refs = set()
    for key, (_, vnode) in entries.items():
        if key == "from":
            _check_from(doc, vnode, f"{block}.{local}.from", block, earlier)
        elif key not in ("name", "block") and _check_params(doc, vnode, f"{block}.{local}.{key}",
                                                            block, params):
            refs.add(key)
    return Template(local, item, entries, frozenset(refs))


def _check_params(doc: Doc, node: yaml.Node, where: str, block: str, params: Mapping[str, Any]) -> bool:
    """True when ``node`` mentions a ``$param``; refuses unknown ones and ``$in`` outside ``from:``."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag != STR_TAG or not node.value.startswith("$"):
            return False
        ref = node.value[1:]
        if ref == "in":
            raise doc.error(node, f"{where}: '{IN}' (the block's input) can only be used in 'from:'")
        if ref not in params:
            hint = did_you_mean(node.value, [f"${p}" for p in params]) if params else \
                f"block {block} declares no params"
            raise doc.error(node, f"{where}: unknown parameter '{node.value}' of block {block}", hint)
        return True
    children = [v for _, v in node.value] if isinstance(node, yaml.MappingNode) else node.value
    return any([_check_params(doc, c, where, block, params) for c in children])


def _check_from(doc: Doc, node: yaml.Node, where: str, block: str, earlier: set[str]) -> None:
    for n in read_from(doc, node, where):
        if n != IN and n not in earlier:
            raise doc.error(node, f"{where}: no earlier layer named '{n}' in block {block}",
                            did_you_mean(n, [IN, *earlier]))


def _check_block_name(doc: Doc, node: yaml.Node, where: str, blocks: Mapping[str, Block]) -> None:
    name = read_word(doc, node, f"{where}.block")
    if name not in blocks:
        hint = did_you_mean(str(name), blocks) if blocks else \
            "no blocks are defined: add a top-level 'blocks:' mapping"
        raise doc.error(node, f"{where}.block: unknown block {show(name)}", hint)


def _check_recursion(doc: Doc, blocks: Mapping[str, Block]) -> None:
    """Depth-first search over block → the blocks it uses; a back edge is a recursion."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for t in blocks[name].layers:
            if "block" not in t.entries:
                continue
            used = read_word(doc, t.entries["block"][1], f"{name}.{t.local}.block")
            if used in path:
                cycle = " → ".join([*path[path.index(used):], used])
                raise doc.error(t.entries["block"][1], f"{name}.{t.local}.block: block '{used}'"
                                f" uses itself: {cycle}")
            if used not in done:
                visit(used, [*path, used])
        done.add(name)

    for name in blocks:
        if name not in done:
            visit(name, [name])


def _clone(value: yaml.Node, at: yaml.Node) -> yaml.Node:
    """``value`` with the marks of ``at`` (so errors point at the ``$param`` in the block)."""
    if isinstance(value, yaml.ScalarNode):
        return yaml.ScalarNode(value.tag, value.value, at.start_mark, at.end_mark, value.style)
    assert isinstance(value, (yaml.SequenceNode, yaml.MappingNode))
    return type(value)(value.tag, value.value, at.start_mark, at.end_mark, value.flow_style)


def substitute(node: yaml.Node, env: Mapping[str, yaml.Node]) -> yaml.Node:
    """Replace every ``$param`` scalar (checked when the block was parsed) by its argument."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == STR_TAG and node.value.startswith("$"):
            return _clone(env[node.value[1:]], node)
        return node
    if isinstance(node, yaml.SequenceNode):
        items = [substitute(v, env) for v in node.value]
        return yaml.SequenceNode(node.tag, items, node.start_mark, node.end_mark, node.flow_style)
    assert isinstance(node, yaml.MappingNode)
    pairs = [(k, substitute(v, env)) for k, v in node.value]
    return yaml.MappingNode(node.tag, pairs, node.start_mark, node.end_mark, node.flow_style)


def is_use(node: yaml.Node) -> bool:
    return isinstance(node, yaml.MappingNode) and any(
        isinstance(k, yaml.ScalarNode) and k.value == "block" for k, _ in node.value)


class Expander:
    """Collects a spec's layers, expanding block uses; refuses duplicate names."""

    def __init__(self, doc: Doc, blocks: Mapping[str, Block], parse_layer: ParseLayer,
                 sample: bool = False) -> None:
        self.doc = doc
        # sample: each ``repeat: n`` (n > 2) expanded to its first and last copies only, the last
        # reading the first; ``spans`` then holds, per such use, (the first copy's output, the last
        # copy's output) and the position of the last copy's first layer (a preview of the network
        # whose shapes say whether the copies between keep the shape: load.py's preflight)
        self.sample = sample
        self.spans: list[tuple[str, str, int]] = []
        self.blocks = blocks
        self.parse_layer = parse_layer     # the loader's, passed in: load → blocks, one way
        self.layers: list[Layer] = []
        self.index: dict[str, int] = {}         # layer name -> position in self.layers
        self.aliases: dict[str, str] = {}       # top-level use name -> its output layer
        self.alias_locs: dict[str, Loc] = {}
        self.cap = max_layers()                 # layers of the expanded network (docs/limits.md)
        self.least: dict[str, int] = {}         # block name -> fewest layers one copy adds

    # ---- checks before expanding ---------------------------------------------------------
    def check(self, items: list[yaml.Node]) -> list[Layer | None]:
        """Every entry of ``layers:`` and of the blocks, as written, checked before anything is
        expanded (the work grows with the file, not with what its uses expand to). → each
        top-level layer parsed once (reading a placeholder input that :meth:`top` sets), None for
        a use."""
        for block in self.blocks.values():
            for t in block.layers:
                if not t.refs and "block" not in t.entries:   # a $param is known once used
                    entries = [pair for key, pair in t.entries.items() if key != "if"]
                    node = yaml.MappingNode(t.node.tag, entries, t.node.start_mark, t.node.end_mark)
                    self.parse_layer(self.doc, node, _PREVIOUS, None, None)
        parsed: list[Layer | None] = []
        for item in items:
            if is_use(item):
                entries = self.doc.mapping(item, "layer")
                self._check_use(entries, self._use_name(entries, item))
                parsed.append(None)
            else:
                parsed.append(self.parse_layer(self.doc, item, _PREVIOUS, None, None))
        return parsed

    def fewest(self, items: list[yaml.Node]) -> int:
        """The fewest layers the uses among ``items`` add, by arithmetic (after :meth:`check`)."""
        total = 0
        for item in items:
            if is_use(item):
                entries = self.doc.mapping(item, "layer")
                count = self._repeat(entries, self._use_name(entries, item))
                total += (count or 1) * self._least(self.doc.value(entries["block"][1]))
        return total

    # ---- top level --------------------------------------------------------------------------
    def top(self, item: yaml.Node, parsed: Layer | None = None) -> None:
        """One entry of ``layers:``: a layer (``parsed``: as :meth:`check` parsed it), or a use."""
        previous = self.layers[-1].name if self.layers else INPUT
        if not is_use(item):
            layer = parsed or self.parse_layer(self.doc, item, previous, None, None)
            if "from" not in layer.key_locs:   # it reads the layer before it
                layer = replace(layer, inputs=(previous,))
            self.add(layer)
            return
        entries = self.doc.mapping(item, "layer")
        name = self._use_name(entries, item)
        loc = self.doc.loc(entries["name"][1])
        self._claim_name(name, loc)
        source = self._source(entries, name, previous)
        out = self._use(entries, name, source, loc, None)
        self.aliases[name] = out
        self.alias_locs[name] = loc

    def finish(self) -> tuple[Layer, ...]:
        """The layers, with ``from: use`` resolved to the use's output layer."""
        if not self.aliases:
            return tuple(self.layers)
        alias = self.aliases
        return tuple(replace(la, inputs=tuple(alias.get(s, s) for s in la.inputs))
                     if any(s in alias for s in la.inputs) else la for la in self.layers)

    def add(self, layer: Layer) -> None:
        if len(self.layers) >= self.cap:
            raise SpecError(f"{layer.name}: the network has more than {self.cap:,} layers",
                            layer.use_site or layer.loc, _CAP_HINT)
        self._claim_name(layer.name, layer.loc)
        self.index[layer.name] = len(self.layers)
        self.layers.append(layer)

    def _claim_name(self, name: str, loc: Loc) -> None:
        first = self.layers[self.index[name]].loc if name in self.index else self.alias_locs.get(name)
        if first is not None:
            raise SpecError(f"duplicate layer name '{name}'", loc, f"first defined at line {first.line}")

    # ---- uses -------------------------------------------------------------------------------
    def _use_name(self, entries: Entries, node: yaml.Node) -> str:
        if "name" not in entries:
            raise self.doc.error(node, "layer: missing required key 'name'")
        return read_name(self.doc, entries["name"][1], "layer name", reserved=INPUT)

    def _source(self, entries: Entries, name: str, previous: str) -> str:
        if "from" not in entries:
            return previous
        node = entries["from"][1]
        value = self.doc.value(node)
        if not isinstance(value, str):
            raise self.doc.error(node, f"{name}.from: a block reads one input, got {show(value)}")
        if value != INPUT and value not in self.index and value not in self.aliases:
            raise self.doc.error(node, f"{name}.from: no earlier layer named '{value}'",
                                 did_you_mean(value, [INPUT, *self.index, *self.aliases]))
        return value

    def _check_use(self, entries: Entries, name: str) -> Block:
        """What a use says on its own: its keys, block, count, argument names, expect and allow."""
        doc = self.doc
        for key, (knode, _) in entries.items():
            if key not in USE_KEYS:
                raise doc.error(knode, f"{name}: unknown key '{key}' for a block use",
                                did_you_mean(key, USE_KEYS))
        _check_block_name(doc, entries["block"][1], name, self.blocks)
        block = self.blocks[doc.value(entries["block"][1])]
        self._repeat(entries, name)
        self._args(entries, "args", name, block)
        self._args(entries, "first", name, block)
        if "expect" in entries:
            read_shape(doc, entries["expect"][1], f"{name}.expect")
        if "allow" in entries:
            read_allow(doc, entries["allow"][1], f"{name}.allow")
        return block

    def _use(self, entries: Entries, name: str, source: str, use_site: Loc,
             origin: Origin | None) -> str:
        """Expand ``repeat`` copies of a block, each reading the previous one; → the output name.

        ``origin``: None for a use in ``layers:`` (each copy then gets its own), else the
        top-level use's origin, which a nested use's layers keep."""
        doc = self.doc
        block = self._check_use(entries, name)
        count = self._repeat(entries, name)
        least = (count or 1) * self._least(block.name)
        if len(self.layers) + least > self.cap:   # nested repeats: refused before expanding
            raise doc.error(entries["block"][1], f"{name}: block {block.name} expands to at least"
                            f" {least:,} layers, more than the limit of {self.cap:,}", _CAP_HINT)
        args, first = self._args(entries, "args", name, block), self._args(entries, "first", name, block)
        out = source
        start = len(self.layers)
        sampled, mine = self.sample and count > 2, 0
        for i in (0, count - 1) if sampled else range(count or 1):
            env = {**block.defaults, **args, **(first if i == 0 else {})}
            if sampled and i:   # this use's span (nested uses of the last copy add theirs after it)
                mine = len(self.spans)
                self.spans.append((out, "", len(self.layers)))
            label = f"{name}.{i}" if count else name
            self._require(block, env, label, entries, first)
            here = origin or Origin(name, block.name, i if count else None, count or 1)
            try:
                out = self._expand(block, env, f"{label}.", out, use_site, here)
            except SpecError as exc:
                if origin is None and exc.use_site is None:
                    exc.use_site = use_site
                raise
        if sampled:
            self.spans[mine] = (self.spans[mine][0], out, self.spans[mine][2])
        if "allow" in entries:
            self._grant(start, read_allow(doc, entries["allow"][1], f"{name}.allow"))
        if "expect" in entries:
            self._expect(entries["expect"][1], name, out, source)
        return out

    def _least(self, name: str) -> int:
        """The fewest layers one copy of block ``name`` adds, by arithmetic over its templates
        (an entry with ``if:`` may add none; a ``repeat:`` given by a parameter at least one)."""
        if name in self.least:
            return self.least[name]
        total = 0
        for t in self.blocks[name].layers:
            if "if" in t.entries:
                continue
            used = self.doc.value(t.entries["block"][1]) if "block" in t.entries else None
            if not isinstance(used, str) or used not in self.blocks:
                total += 1
                continue
            rep = self.doc.value(t.entries["repeat"][1]) if "repeat" in t.entries else 1
            ok = isinstance(rep, int) and not isinstance(rep, bool) and rep > 0
            total += (rep if ok else 1) * self._least(used)
        self.least[name] = total
        return total

    def _repeat(self, entries: Entries, name: str) -> int:
        """0 when there is no ``repeat:`` (names without a copy number), else the count."""
        if "repeat" not in entries:
            return 0
        node = entries["repeat"][1]
        count = read_positive_int(self.doc, node, f"{name}.repeat")
        if count > self.cap:  # refused by arithmetic, before a single copy is made
            raise self.doc.error(node, f"{name}.repeat: {count:,} copies exceed the limit of"
                                 f" {self.cap:,} layers", _CAP_HINT)
        return count

    def _args(self, entries: Entries, key: str, name: str, block: Block) -> dict[str, yaml.Node]:
        if key not in entries:
            return {}
        out: dict[str, yaml.Node] = {}
        for arg, (knode, vnode) in self.doc.mapping(entries[key][1], f"{name}.{key}").items():
            if arg not in block.defaults:
                hint = did_you_mean(arg, block.defaults) if block.defaults else \
                    f"block {block.name} takes no arguments"
                raise self.doc.error(knode, f"{name}.{key}: unknown argument '{arg}' for block"
                                     f" {block.name}", hint)
            out[arg] = vnode
        return out

    def _require(self, block: Block, env: Mapping[str, yaml.Node | None], label: str,
                 entries: Entries, first: Mapping[str, yaml.Node]) -> None:
        for param, value in env.items():
            if value is None or self.doc.value(value) is None:
                hint = (f"'first:' applies to the first copy only; give '{param}' in 'args:'"
                        if param in first else f"params of block {block.name}: {self._signature(block)}")
                raise self.doc.error(entries["block"][1], f"{label}: block {block.name} needs"
                                     f" argument '{param}'", hint)

    def _signature(self, block: Block) -> str:
        """``out (required), stride = 1, down = false``."""
        def show(node: yaml.Node) -> str:
            return node.value if isinstance(node, yaml.ScalarNode) else str(self.doc.value(node))
        return ", ".join(p + (" (required)" if v is None else f" = {show(v)}")
                         for p, v in block.defaults.items())

    def _expect(self, node: yaml.Node, name: str, out: str, source: str) -> None:
        if out == source or out not in self.index:
            raise self.doc.error(node, f"{name}.expect: every layer of this use is left out,"
                                 " so it has no output of its own")
        i = self.index[out]
        layer = self.layers[i]
        locs = {**layer.key_locs, "expect": self.doc.loc(node)}
        self.layers[i] = replace(layer, expect=read_shape(self.doc, node, f"{name}.expect"), key_locs=locs)

    # ---- inside a block ---------------------------------------------------------------------
    def _expand(self, block: Block, env: Mapping[str, Any], prefix: str, source: str,
                use_site: Loc, origin: Origin) -> str:
        local: dict[str, str] = {}   # local name -> the full name of what it stands for
        previous = source
        first = len(self.layers)
        for t in block.layers:
            previous = self._instance(t, env, prefix, source, previous, local, use_site, origin)
            local[t.local] = previous
        self._grant(first, block.allow)
        return previous

    def _grant(self, first: int, allow: frozenset[str]) -> None:
        """Layers added since position ``first`` also accept ``allow`` (a block's or a use's)."""
        if allow:
            for i in range(first, len(self.layers)):
                self.layers[i] = replace(self.layers[i], allow=self.layers[i].allow | allow)

    def _instance(self, t: Template, env: Mapping[str, Any], prefix: str, source: str,
                  previous: str, local: Mapping[str, str], use_site: Loc, origin: Origin) -> str:
        """One template entry under ``env``: adds its layers; → what later entries read for it."""
        doc = self.doc
        entries = {k: (kn, substitute(vn, env)) if k in t.refs else (kn, vn)
                   for k, (kn, vn) in t.entries.items()}
        full = prefix + t.local
        inputs = self._inputs(entries, source, previous, local)
        if "if" in entries:
            if not self._condition(entries.pop("if")[1], full):
                if len(inputs) != 1:
                    raise doc.error(t.entries["if"][1], f"{full}.if: a layer that may be left out"
                                    f" must read one input, it reads {len(inputs)}")
                return inputs[0]
        name_node = entries["name"][1]
        entries["name"] = (entries["name"][0], yaml.ScalarNode(
            STR_TAG, full, name_node.start_mark, name_node.end_mark))
        if "block" in entries:
            if len(inputs) != 1:
                raise doc.error(entries["from"][1], f"{full}.from: a block reads one input,"
                                f" got {len(inputs)}")
            return self._use(entries, full, inputs[0], use_site, origin)
        if "from" in entries:
            kn, vn = entries["from"]
            entries["from"] = (kn, _names_node(inputs, vn))
        node = yaml.MappingNode(t.node.tag, list(entries.values()), t.node.start_mark, t.node.end_mark)
        self.add(self.parse_layer(doc, node, previous, use_site, origin))
        return full

    def _inputs(self, entries: Entries, source: str, previous: str,
                local: Mapping[str, str]) -> list[str]:
        if "from" not in entries:
            return [previous]
        names = read_from(self.doc, entries["from"][1], "from")   # checked when the block was parsed
        return [source if n == IN else local[n] for n in names]

    def _condition(self, node: yaml.Node, full: str) -> bool:
        value = self.doc.value(node)
        if not isinstance(value, bool):
            raise self.doc.error(node, f"{full}.if: expected true or false, got {show(value)}")
        return value


def _names_node(names: list[str], like: yaml.Node) -> yaml.Node:
    """A ``from:`` node holding resolved layer names, at the place of the original."""
    items = [yaml.ScalarNode(STR_TAG, n, like.start_mark, like.end_mark) for n in names]
    if isinstance(like, yaml.ScalarNode):
        return items[0]
    return yaml.SequenceNode("tag:yaml.org,2002:seq", items, like.start_mark, like.end_mark)
