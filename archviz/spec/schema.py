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

from typing import Any

from ..limits import MAX_RANK
from ..ops import OPS, OpKind
from ..ops.dtypes import DTYPES
from ..ops.fields import NUMBER_TEXT
from .claims import COST_SETTINGS, DAYS_SETTINGS, KERNEL_TEXT, LRN_TEXT
from .claims import LAYER_KEYS as CLAIM_LAYER_KEYS
from .claims import NUMBER_TEXT as CLAIM_TEXT
from .claims import TOTAL_KEYS as CLAIM_TOTAL_KEYS
from .doc import ALLOWABLE, INPUT, NAME_RE

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME = NAME_RE.pattern
__all__ = ["DRAFT", "NAME", "NUMBER_TEXT", "op_schema", "spec_schema"]

Json = dict[str, Any]


def _int(lo: int) -> Json:
    return {"type": "integer", "minimum": lo}


COMMON: Json = {
    "name": {"type": "string", "pattern": NAME, "not": {"const": INPUT},
             "description": "layer name (letters, digits, _ and .); 'input' is the network input"},
    "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                              "maxItems": 1}],
             "description": "the layer it reads; default: the previous layer"},
    "expect": {"$ref": "#/$defs/shape", "description": "the output shape this layer must have"},
    "note": {"type": "string", "description": "free text shown in reports"},
    "allow": {"$ref": "#/$defs/allow"},
}


def op_schema(kind: OpKind) -> Json:
    """One ``oneOf`` branch: a layer of this op."""
    own = kind.schema()
    props: Json = {"op": {"const": kind.name, "description": kind.doc}, **COMMON, **own["properties"]}
    required = ["name", "op", *own["required"]]
    if kind.lowerings:  # the general layer key, only where the op has a choice
        props["lowering"] = {"enum": list(kind.lowerings),
                             "description": f"how this layer is built in torch ({kind.lowerings[0]} by"
                                            " default); beats archviz's --lowering"}
    if type(kind).tied_weight is not OpKind.tied_weight:   # an op with a weight another layer may hold
        props["tie"] = {"type": "string", "pattern": NAME,
                        "description": "the layer whose weight this layer's weight is (tied weights,"
                                       " GPT-2's lm_head and wte): the shapes must be equal; counted once"}
    if kind.multi_input:
        required.append("from")
        props["from"] = {"type": "array", "items": {"type": "string"}, "minItems": 2,
                         "description": "the layers it merges (two or more)"}
    elif kind.input_range()[1] != 1:   # one input or more (attention: a second is the memory)
        lo, hi = kind.input_range()
        props["from"] = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                        "minItems": lo, "maxItems": hi}],
                         "description": "the layers it reads; default: the previous layer"}
    return {"title": kind.name, "description": kind.doc, "type": "object", "properties": props,
            "required": required, "additionalProperties": False}


def _block_use() -> Json:
    return {"title": "block use", "description": "a use of a block defined under blocks:",
            "type": "object", "required": ["name", "block"], "additionalProperties": False,
            "properties": {
                "name": COMMON["name"], "expect": COMMON["expect"], "allow": COMMON["allow"],
                "from": {"type": "string", "description": "the layer the block reads"},
                "block": {"type": "string", "description": "the block's name under blocks:"},
                "repeat": {**_int(1), "description": "chain this many copies (use.0, use.1, ...)"},
                "args": {"type": "object", "description": "the block's params"},
                "first": {"type": "object", "description": "args for copy 0 only"}}}


def _claim(value: Json, what: str) -> Json:
    tol = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\s*[0-9.]+\s*%*$"}]}
    full = {"type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {"value": value, "tol": tol, "source": {"type": "string"}}}
    return {"anyOf": [*value["anyOf"], full], "description": f"{what}, or {{value, tol, source}}"}


def _number_claim() -> Json:
    value = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": CLAIM_TEXT}]}
    return _claim(value, "a figure such as 60M, 650K ±5% or 253440")


def _kernel_claim() -> Json:
    value = {"anyOf": [{"type": "string", "pattern": KERNEL_TEXT},
                       {"type": "array", "items": _int(1), "minItems": 3, "maxItems": 3}]}
    return _claim(value, "one kernel's size: kh × kw × input channels, such as 5x5x48")


def _lrn_claim() -> Json:
    return _claim({"anyOf": [{"type": "string", "pattern": LRN_TEXT}]},
                  "the LRN formula's constants, e.g. 'k=2, n=5, alpha=1e-4, beta=0.75' (the paper's α)")


def _claims() -> Json:
    props: Json = {k: {"$ref": "#/$defs/lrn_claim" if k == "lrn" else "#/$defs/claim"}
                   for k in CLAIM_TOTAL_KEYS}
    props.update({k: {"type": "object", "additionalProperties": {
        "$ref": "#/$defs/kernel_claim" if k == "layer_kernels" else "#/$defs/claim"}}
        for k in CLAIM_LAYER_KEYS})
    cost: Json = {"type": "object", "required": ["value"], "additionalProperties": False,
                  "properties": {"value": {"type": "string"}, "source": {"type": "string"},
                                 **{k: {"type": ["string", "number"]} for k in COST_SETTINGS}}}
    props["memory"] = {"type": "object", "additionalProperties": cost,
                       "description": "per GPU at the settings given, e.g. {value: 3 GiB, device: gtx580}"}
    props["train_time"] = {**cost, "description": "a run's time, e.g. {value: 5-6 days, epochs: 90}"}
    num: Json = {"type": ["string", "number"]}
    props["train_days"] = {"type": "object", "additionalProperties": False,
                           "required": ["value", *DAYS_SETTINGS],
                           "properties": {"value": num, "tol": num, "source": {"type": "string"},
                                          **{k: num for k in DAYS_SETTINGS}},
                           "description": "Narayanan et al.'s 8TP/(nX) days, e.g. {value: 34, tol: 5%,"
                                          " tokens: 300G, gpus: 1024, flops_per_gpu: 140T}"}
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
                            "note": {"type": "string"}, "allow": {"$ref": "#/$defs/allow"}}}
    return {"type": "object", "additionalProperties": block,
            "description": "named, parameterised sub-graphs used in layers: with block:"}


def spec_schema() -> Json:
    """The whole schema: top-level keys, one branch per op, block uses, claims."""
    return {
        "$schema": DRAFT,
        "title": "archviz spec",
        "description": "A network as a list of layers; see `archviz shapes --help`.",
        "type": "object",
        "required": ["name", "input", "layers"],
        "additionalProperties": False,
        "properties": {
            "format": {"enum": [1, 2, 3], "description": "spec format version; 2: an LRN's alpha is the"
                                                         " paper's α (torch's alpha is α·size); 3: shapes"
                                                         " of any rank, input_dtype"},
            "name": {"type": "string", "minLength": 1},
            "source": {"type": "string", "description": "where the architecture comes from"},
            "description": {"type": "string"},
            "input": {"$ref": "#/$defs/shape", "description": "per example, the batch apart: [F], [S, D],"
                                                              " [C, L], [C, H, W], [C, D, H, W], [S] ids"},
            "input_dtype": {"enum": list(DTYPES), "default": "float32",
                            "description": "the input's dtype; int64 / int32 for token ids"},
            "outputs": {"type": "array", "minItems": 1, "items": {"type": "string"},
                        "description": "the network's outputs, in order (default: the layers nobody reads)"},
            "gpus": {**_int(1), "description": "split every layer's channels over this many GPUs"},
            "allow": {"$ref": "#/$defs/allow"},
            "blocks": _blocks(),
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
            "claims": _claims(),
        },
        "$defs": {
            "shape": {"type": "array", "items": _int(1), "minItems": 1, "maxItems": MAX_RANK,
                      "description": "a shape per example, any rank: [F], [S, D], [C, H, W], ..."},
            "layer": {"oneOf": [op_schema(OPS[op]) for op in sorted(OPS)] + [_block_use()]},
            "claim": _number_claim(),
            "kernel_claim": _kernel_claim(),
            "lrn_claim": _lrn_claim(),
            "allow": {"anyOf": [{"enum": sorted(ALLOWABLE)},
                                {"type": "array", "items": {"enum": sorted(ALLOWABLE)}, "minItems": 1}],
                      "description": "warnings accepted (shown as accepted, not failing --strict):"
                                     " inexact = a sliding window's division that is not whole"},
        },
    }
