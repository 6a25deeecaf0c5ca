"""Every op is complete, in its one class: typed params, a shape rule, a receptive-field rule, a torch
description, a drawing style, a documented example that loads, analyses and compiles, and a JSON
Schema branch (DESIGN.md, house style 2)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

import archviz
from archviz.ops import OPS, OpError, OpKind
from archviz.render.dot import STYLE
from archviz.runtime.compile import Made
from archviz.spec.schema import spec_schema

# an input each example can read: merges read two copies of a (8, 12, 12) feature map
_PRELUDE = ["  - {name: a, op: relu}", "  - {name: b, op: relu, from: input}"]


def _example_spec(op: str) -> str:
    example = dict(OPS[op].example)
    layers = []
    if OPS[op].multi_input:
        layers, example["from"] = _PRELUDE, ["a", "b"]
    if op == "linear":
        layers = ["  - {name: flat, op: flatten}"]
    ranks = OPS[op].ranks
    default = [8, 12, 12] if ranks is None or 3 in ranks else {2: [8, 12], 4: [8, 6, 6, 6]}[ranks[0]]
    shape, dtype = OPS[op].example_input or (tuple(default), "float32")
    head = [f"input: {list(shape)}", f"input_dtype: {dtype}"]
    return "\n".join(["name: example", *head, "layers:", *layers,
                      "  - " + yaml.safe_dump(example, default_flow_style=True).strip()])


@pytest.mark.parametrize("op", sorted(OPS))
def test_op_is_complete(op: str) -> None:
    kind = OPS[op]
    assert type(kind).infer is not OpKind.infer or kind.family in ("act", "norm", "regularise"), \
        f"{op}: changes the shape but has no shape rule of its own"
    params = archviz.loads(_example_spec(op)).layers[-1].params
    assert isinstance(params, kind.Params) and dataclasses.is_dataclass(params), f"{op}: untyped params"
    assert set(kind.fields) == {f.name for f in dataclasses.fields(params)}, f"{op}: fields differ"
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.__setattr__("x", 1)
    assert type(kind).torch is not OpKind.torch, f"{op}: no torch description"
    ins = archviz.analyze(archviz.loads(_example_spec(op))).layers[-1].in_shapes
    if op == "opaque":  # traced at import: its torch facet refuses, clearly
        with pytest.raises(OpError, match="cannot compile"):
            kind.torch(params, ins)
    else:
        assert Made.of(kind.torch(params, ins)).cls is not None, f"{op}: its torch class does not resolve"
    assert callable(kind.receptive), f"{op}: no receptive-field rule"
    assert kind.family in STYLE, f"{op}: no drawing style for family {kind.family!r}"
    assert kind.example.get("op") == op and kind.doc, f"{op}: no example or doc"
    assert f"'const': '{op}'" in str(spec_schema()["$defs"]["layer"]), f"{op}: no JSON Schema branch"
    own = kind.schema()
    assert set(own["properties"]) == set(kind.fields) and set(own["required"]) <= set(kind.fields)


@pytest.mark.parametrize("op", sorted(OPS))
def test_op_example_loads_analyses_and_compiles(op: str) -> None:

    spec = archviz.loads(_example_spec(op))
    analysis = archviz.analyze(spec)
    if op == "opaque":
        with pytest.raises(archviz.ShapeError, match="mystery: cannot compile an opaque layer"):
            archviz.to_module(spec)
        return
    from archviz.runtime.inputs import example_input

    out = archviz.to_module(spec).eval()(example_input(analysis.input, analysis.input_dtype, batch=2))
    assert tuple(out.shape[1:]) == analysis.layers[-1].output


@pytest.mark.parametrize("op", sorted(OPS))
def test_op_has_a_saved_for_backward_rule(op: str) -> None:
    """The cost model's facet: what the op's torch lowering saves (tests/test_cost_torch.py keeps
    it equal to autograd's record); an op without one makes `archviz cost` totals lower bounds."""
    if op == "opaque":  # traced at import: what it saves is unknown by design (totals are lower bounds)
        assert type(OPS[op]).saved is OpKind.saved
        return
    assert type(OPS[op]).saved is not OpKind.saved, f"{op}: no saved-for-backward rule (OpKind.saved)"
