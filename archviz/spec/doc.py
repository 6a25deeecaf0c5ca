"""A composed YAML document (:class:`Doc`), the :class:`Layer` it yields, and the validators
that the loader, blocks and claims share: one each for names (``read_name``), ``from:`` lists
(``read_from``), positive integers (``read_positive_int``) and shapes (``read_shape``).

Every validator takes the document and a node, and returns the value or raises a
:class:`SpecError` located at the node, its message starting with ``what`` (``conv1.expect``).
Nothing here imports the rest of :mod:`archviz.spec`: load → blocks → doc, one way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field
from typing import Any

import yaml

from ..chars import IS_BIDI, find_control
from ..errors import Loc, SpecError
from ..limits import MAX_INT, MAX_RANK
from ..ops.fields import FieldError, PosInt, show
from ..record import record

Shape = tuple[int, ...]

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")  # layer names: dotted identifiers
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")                   # block and parameter names
INPUT = "input"  # the name by which `from:` refers to the network input
STR_TAG = "tag:yaml.org,2002:str"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALARS = _CONSTRUCTOR.yaml_constructors
_POSITIVE = PosInt()
# what `allow:` may accept (on a spec, a block or a layer): warnings shown as accepted, not failing --strict
ALLOWABLE = {"inexact": "a sliding window's division that is not whole (rows or columns never read)"}
_BIG = 2**63 - 1  # the largest integer a spec may write anywhere

__all__ = ["ALLOWABLE", "IDENT_RE", "INPUT", "NAME_RE", "STR_TAG", "Doc", "Layer", "Origin", "Shape",
           "node_kind", "read_allow", "read_from", "read_lowering", "read_name", "read_positive_int",
           "read_shape", "read_word", "show"]


@record
class Origin:
    """Where a layer of a block came from: the top-level use in ``layers:`` and its copy.

    ``- {name: layer2, block: basic, repeat: 2}`` gives ``layer2.1.conv1`` the origin
    ``Origin(use="layer2", block="basic", index=1, count=2)``; without ``repeat:`` the index is
    None and the count 1. A use nested inside a block keeps the top-level use's origin.
    """

    use: str                  # the use's name, e.g. "layer2"
    block: str                # the block it uses, e.g. "basic"
    index: int | None         # the copy this layer belongs to (None without ``repeat:``)
    count: int                # copies the use makes (1 without ``repeat:``)


@record
class Layer:
    """One validated layer: its op's fields normalised (pairs as tuples, defaults filled)."""

    name: str
    op: str
    params: Any                      # the op's typed params (OpKind.Params), defaults filled
    inputs: tuple[str, ...]          # layer names, or INPUT for the network input
    expect: Shape | None
    loc: Loc                          # the layer's `name:` value
    key_locs: Mapping[str, Loc] = field(default_factory=dict)
    note: str = ""
    use_site: Loc | None = None       # inside a block: the `block:` use in `layers:` it came from
    allow: frozenset[str] = frozenset()  # warnings accepted for this layer (`allow: [inexact]`)
    lowering: str = ""                # its own `lowering:` (one of its op's lowerings), "" if none
    origin: Origin | None = None      # inside a block: the use and copy it came from; None at top level
    tie: str = ""                     # `tie: wte`: the layer whose weight this layer's weight is; "" if none

    def loc_of(self, key: str | None) -> Loc:
        return self.key_locs.get(key, self.loc) if key else self.loc


class Doc:
    """A composed YAML document with helpers that turn nodes into values or located errors."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def loc(self, node: yaml.Node) -> Loc:
        line, col = node.start_mark.line, node.start_mark.column
        text = self.lines[line] if line < len(self.lines) else ""
        return Loc(self.path, line + 1, col + 1, text)

    def error(self, node: yaml.Node, message: str, hint: str = "") -> SpecError:
        return SpecError(message, self.loc(node), hint)

    def value(self, node: yaml.Node) -> Any:
        """Plain Python value of a node (safe constructor only)."""
        if isinstance(node, yaml.MappingNode):
            out = {}
            for k, v in node.value:
                key = self.value(k)
                if isinstance(key, (list, dict)):
                    raise self.error(k, f"a key must be a name or a number, got {node_kind(k)}")
                out[key] = self.value(v)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(v) for v in node.value]
        if node.tag == STR_TAG:
            return node.value
        # the tag's constructor directly: construct_object would remember every node it saw
        build = _SCALARS.get(node.tag)
        if build is None:
            raise self.error(node, f"unsupported YAML tag {node.tag}")
        try:
            value = build(_CONSTRUCTOR, node)
        except ValueError:  # Python refuses to read an integer of more than 4300 digits
            raise self.error(node, f"number too large: {_clip(node.value)}",
                             f"hint: integers are at most {_BIG} (sizes at most {MAX_INT})") from None
        # the one check for numbers: every integer fits in 64 bits (so in a float, and in any
        # message), whatever field reads it; fields then apply their own ranges
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _BIG:
            raise self.error(node, f"integer out of range: {_clip(node.value)}",
                             f"hint: integers are at most {_BIG} (sizes at most {MAX_INT})")
        return value

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """key -> (key node, value node); refuses non-mappings, non-string and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what}: expected a mapping (key: value), got {node_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = self.value(k)
            if not isinstance(key, str):
                raise self.error(k, f"{what}: keys must be text, got {key!r}")
            if key in out:
                raise self.error(k, f"{what}: duplicate key '{key}'",
                                 f"first given at line {out[key][0].start_mark.line + 1}")
            out[key] = (k, v)
        return out

    def text(self, node: yaml.Node, what: str, *, lines: bool = True) -> str:
        """Non-empty text. Names (``lines=False``) are one line of printable characters; free text
        (source, description, notes) may also hold newlines and tabs. Other control characters
        (ESC, BEL, NUL, ...) are refused: they would reach terminals and files raw."""
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, f"{what}: expected text, got {show(value)}")
        bad = find_control(value, lines)
        if bad is not None:
            rule = ("free text may hold newlines and tabs, no other control characters" if lines
                    else "a name is one line of printable text")
            kind = "bidirectional control character" if IS_BIDI.match(bad.group()) else "control character"
            if kind != "control character":
                rule += "; bidirectional controls reorder how the text around them is shown"
            raise self.error(node, f"{what}: {kind} {ascii(bad.group())[1:-1]} at character"
                             f" {bad.start() + 1}", f"hint: {rule}")
        return value


def _clip(text: str) -> str:
    """A long number as messages show it: its first digits and how many there are."""
    return text if len(text) <= 30 else f"{text[:20]}… ({len(text)} characters)"


def node_kind(node: yaml.Node) -> str:
    """What a node is, in words, for messages: ``a list``, ``a mapping``, ``'x'``, ``nothing``."""
    if isinstance(node, yaml.SequenceNode):
        return "a list" if node.value else "an empty list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return repr(node.value) if node.value != "" else "nothing"


# ---- the shared validators ------------------------------------------------------------------
def read_name(doc: Doc, node: yaml.Node, what: str, *, dots: bool = True, reserved: str = "") -> str:
    """A name: an identifier (letters, digits and _; dotted when ``dots``), other than ``reserved``.

    Layer names are dotted (``layer1.0.conv1``) and may not be ``input``; block and parameter
    names are plain identifiers (a parameter may not be ``in``: ``$in`` is the block's input).
    """
    value = doc.value(node)
    pattern = NAME_RE if dots else IDENT_RE
    if reserved and value == reserved:
        why = "the network input" if reserved == INPUT else "the block's input, $in"
        raise doc.error(node, f"{what}: '{reserved}' is reserved: it names {why}",
                        f"hint: e.g. {reserved}_1")
    if not isinstance(value, str) or not pattern.fullmatch(value):
        chars = "letters, digits, _ and ." if dots else "letters, digits and _"
        raise doc.error(node, f"{what}: expected an identifier ({chars}), got {show(value)}",
                        _name_hint(value, pattern))
    return value


def _name_hint(value: Any, pattern: re.Pattern[str]) -> str:
    """``conv-1`` → ``hint: e.g. conv_1`` (when the repaired name is valid)."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return ""
    fixed = re.sub(r"[^A-Za-z0-9_.]" if pattern is NAME_RE else r"[^A-Za-z0-9_]", "_", str(value))
    fixed = re.sub(r"\.(?=\.|$)", "", fixed.strip("."))
    if fixed[:1].isdigit():
        fixed = f"_{fixed}"
    return f"hint: e.g. {fixed}" if fixed and pattern.fullmatch(fixed) else ""


def read_word(doc: Doc, node: yaml.Node, what: str) -> str:
    """One word that names something (an op, a block): text, never a list or a mapping. The one
    check before a value is looked up by name (a list there cannot even be looked up)."""
    value = doc.value(node)
    if not isinstance(value, str):
        shown = show(value) if isinstance(value, (int, float)) else node_kind(node)
        raise doc.error(node, f"{what}: expected a name, got {shown}")
    return value


def read_from(doc: Doc, node: yaml.Node, what: str) -> list[str]:
    """A ``from:`` value: one name or a non-empty list of names (whether they exist is the caller's)."""
    value = doc.value(node)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise doc.error(node, f"{what}: expected a layer name or a list of names, got {show(value)}")
    return names


def read_allow(doc: Doc, node: yaml.Node, what: str) -> frozenset[str]:
    """``allow: [inexact]`` (or one word): the kinds of warning a spec, block or layer accepts."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out = set()
    for item in items:
        value = doc.value(item)
        if not isinstance(value, str) or value not in ALLOWABLE:
            raise doc.error(item, f"{what}: expected one of {', '.join(ALLOWABLE)}, got {show(value)}",
                            "allow: [inexact] accepts divisions that are not whole")
        out.add(value)
    return frozenset(out)


def read_lowering(doc: Doc, node: yaml.Node, what: str, op: str, lowerings: tuple[str, ...],
                  others: Mapping[str, tuple[str, ...]]) -> str:
    """A layer's ``lowering: torch``: one of its op's ``lowerings``; an op without a choice refuses
    the key (``others``: the ops that have one, for the hint)."""
    value = doc.value(node)
    if not lowerings:
        menu = "; ".join(f"{o}: {', '.join(ch)}" for o, ch in others.items())
        raise doc.error(node, f"{what}: op {op} has no choice of lowering",
                        f"hint: lowering: applies to the ops with a choice ({menu})")
    if not isinstance(value, str) or value not in lowerings:
        raise doc.error(node, f"{what}: expected one of {', '.join(lowerings)} ({op}'s lowerings,"
                        f" {lowerings[0]} the default), got {show(value)}")
    return value


def read_positive_int(doc: Doc, node: yaml.Node, what: str) -> int:
    """An integer >= 1 (the rule of the ops' positive-integer fields, hints included)."""
    try:
        return _POSITIVE.parse(doc.value(node))
    except FieldError as exc:
        raise doc.error(node, f"{what}: {exc}") from None


def read_shape(doc: Doc, node: yaml.Node, what: str) -> Shape:
    """A shape without the batch, of any rank up to ``MAX_RANK``: ``[F]``, ``[S, D]``,
    ``[C, H, W]``, ``[C, D, H, W]``, ... of positive integers (which ranks a layer takes is its
    op's to say, when the spec is analysed)."""
    value = doc.value(node)
    ok = isinstance(value, list) and 1 <= len(value) <= MAX_RANK and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise doc.error(node, f"{what}: expected a list of 1 to {MAX_RANK} positive integers ([F], [S, D],"
                        f" [C, H, W], ...), got {show(value)}")
    if max(value) > MAX_INT:
        raise doc.error(node, f"{what}: sizes are at most {MAX_INT} (2^31 − 1, torch's limit),"
                        f" got {max(value)}")
    return tuple(value)
