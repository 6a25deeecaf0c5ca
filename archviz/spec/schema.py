"""The spec format as a JSON Schema (draft 2020-12), generated from the op registry.

Each op of :data:`archviz.ops.OPS` becomes one ``oneOf`` branch of ``$defs/layer``: ``op`` fixed
to its name, its fields with their types, defaults and descriptions, the required ones
required, nothing else allowed. Editors that speak JSON Schema (VS Code's YAML extension and
every yaml-language-server client) then validate and complete specs:

    # yaml-language-server: $schema=archviz.schema.json

The loader stays the authority (it checks what a schema cannot: names that exist, shapes,
``groups`` dividing ``out``); every bundled spec validates, which a test checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ops import OPS, OpKind
from ..ops.fields import BoolField, Field, FloatField, PaddingField, PairField, PosInt
from .claims import COST_SETTINGS
from .claims import LAYER_KEYS as CLAIM_LAYER_KEYS
from .claims import TOTAL_KEYS as CLAIM_TOTAL_KEYS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# a number that YAML 1.1 (PyYAML) reads as text, such as 1e-4; the loader accepts it
NUMBER_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"

Json = dict[str, Any]


def _int(lo: int) -> Json:
    return {"type": "integer", "minimum": lo}


def _pair(lo: int) -> Json:
    return {"anyOf": [_int(lo), {"type": "array", "items": _int(lo), "minItems": 2, "maxItems": 2}]}


def _float(f: FloatField) -> Json:
    number: Json = {"type": "number"}
    if f.lo != float("-inf"):
        number["minimum"] = f.lo
    if f.hi != float("inf"):
        number["maximum"] = f.hi
    return {"anyOf": [number, {"type": "string", "pattern": NUMBER_TEXT}]}


# by field class: the JSON Schema of the values it accepts
FIELD_SCHEMAS: dict[type[Field], Callable[[Any], Json]] = {
    PosInt: lambda f: _int(1),
    PairField: lambda f: _pair(f.lo),
    PaddingField: lambda f: {"anyOf": [*_pair(0)["anyOf"], {"enum": ["same", "valid"]}]},
    BoolField: lambda f: {"type": "boolean"},
    FloatField: _float,
}


def _default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def field_schema(f: Field) -> Json:
    """The schema of one field, with its description and default (an unknown field class: any value)."""
    build = next((b for cls, b in FIELD_SCHEMAS.items() if isinstance(f, cls)), None)
    out: Json = dict(build(f)) if build else {}
    out["description"] = f"{f.doc}: {f.describe()}" if f.doc else f.describe()
    if f.default is not None:
        out["default"] = _default(f.default)
    return out


COMMON: Json = {
    "name": {"type": "string", "pattern": NAME,
             "description": "layer name (letters, digits, _ and .); 'input' is the network input"},
    "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
             "description": "the layer(s) it reads; default: the previous layer"},
    "expect": {"$ref": "#/$defs/shape", "description": "the output shape this layer must have"},
    "note": {"type": "string", "description": "free text shown in reports"},
}


def op_schema(kind: OpKind) -> Json:
    """One ``oneOf`` branch: a layer of this op."""
    props: Json = {"op": {"const": kind.name, "description": kind.doc}, **COMMON}
    props.update({key: field_schema(f) for key, f in kind.fields.items()})
    required = ["name", "op", *(k for k, f in kind.fields.items() if f.required)]
    if kind.multi_input:
        required.append("from")
    return {"title": kind.name, "description": kind.doc, "type": "object", "properties": props,
            "required": required, "additionalProperties": False}


def _block_use() -> Json:
    return {"title": "block use", "description": "a use of a block defined under blocks:",
            "type": "object", "required": ["name", "block"], "additionalProperties": False,
            "properties": {
                "name": COMMON["name"], "from": COMMON["from"], "expect": COMMON["expect"],
                "block": {"type": "string", "description": "the block's name under blocks:"},
                "repeat": {**_int(1), "description": "chain this many copies (use.0, use.1, ...)"},
                "args": {"type": "object", "description": "the block's params"},
                "first": {"type": "object", "description": "args for copy 0 only"}}}


def _claim() -> Json:
    value = {"anyOf": [{"type": "number"}, {"type": "string"},
                       {"type": "array", "items": {"type": "integer"}}]}
    full = {"type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {"value": value, "tol": {"type": ["number", "string"]},
                           "source": {"type": "string"}}}
    return {"anyOf": [*value["anyOf"], full],
            "description": "a figure such as 60M, 650K ±5%, 253440, or {value, tol, source}"}


def _claims() -> Json:
    props: Json = {k: {"$ref": "#/$defs/claim"} for k in CLAIM_TOTAL_KEYS}
    props.update({k: {"type": "object", "additionalProperties": {"$ref": "#/$defs/claim"}}
                  for k in CLAIM_LAYER_KEYS})
    cost: Json = {"type": "object", "required": ["value"], "additionalProperties": False,
                  "properties": {"value": {"type": "string"}, "source": {"type": "string"},
                                 **{k: {"type": ["string", "number"]} for k in COST_SETTINGS}}}
    props["memory"] = {"type": "object", "additionalProperties": cost,
                       "description": "per GPU at the settings given, e.g. {value: 3 GiB, device: gtx580}"}
    props["train_time"] = {**cost, "description": "a run's time, e.g. {value: 5-6 days, epochs: 90}"}
    return {"type": "object", "properties": props, "additionalProperties": False,
            "description": "what the source states; `archviz check` compares each with the computation"}


def _blocks() -> Json:
    # inside a block any value may be a $param, so its layers are checked by the loader only
    loose_layer = {"type": "object", "required": ["name"],
                   "properties": {"name": {"type": "string"}, "op": {"enum": sorted(OPS)},
                                  "block": {"type": "string"}, "if": {"type": "string"}}}
    block = {"type": "object", "required": ["layers"], "additionalProperties": False,
             "properties": {"params": {"type": "object", "description": "parameters; null = required"},
                            "layers": {"type": "array", "items": loose_layer, "minItems": 1},
                            "note": {"type": "string"}}}
    return {"type": "object", "additionalProperties": block,
            "description": "named, parameterised sub-graphs used in layers: with block:"}


def spec_schema() -> Json:
    """The whole schema: top-level keys, one branch per op, block uses, claims."""
    return {
        "$schema": DRAFT,
        "title": "archviz spec",
        "description": "A CNN as a list of layers; see `archviz shapes --help`.",
        "type": "object",
        "required": ["name", "input", "layers"],
        "additionalProperties": False,
        "properties": {
            "format": {"enum": [1, 2], "description": "spec format version; 2: an LRN's alpha is the"
                                                      " paper's α (torch's alpha is α·size)"},
            "name": {"type": "string", "minLength": 1},
            "source": {"type": "string", "description": "where the architecture comes from"},
            "description": {"type": "string"},
            "input": {"$ref": "#/$defs/shape", "description": "[C, H, W] or [F], per image"},
            "gpus": {**_int(1), "description": "split every layer's channels over this many GPUs"},
            "blocks": _blocks(),
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
            "claims": _claims(),
        },
        "$defs": {
            "shape": {"anyOf": [{"type": "array", "items": _int(1), "minItems": n, "maxItems": n}
                                for n in (3, 1)], "description": "[C, H, W] or [F]"},
            "layer": {"oneOf": [op_schema(OPS[op]) for op in sorted(OPS)] + [_block_use()]},
            "claim": _claim(),
        },
    }
