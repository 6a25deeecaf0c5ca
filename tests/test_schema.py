"""`archviz schema`: every bundled spec validates against it, invalid specs do not.

The validator below implements exactly the JSON Schema keywords the generator emits (and
fails on any other keyword, so the two cannot drift apart silently); ``jsonschema`` is not a
dependency of archviz.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from conftest import SPECS, bundled_specs
from typer.testing import CliRunner

from archviz.cli import app
from archviz.ops import OPS
from archviz.spec.schema import DRAFT, spec_schema

ANNOTATIONS = {"$schema", "$defs", "title", "description", "default"}  # no validation
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[t])


class Validator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def errors(self, value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
        out: list[str] = []
        for key, arg in schema.items():
            if key in ANNOTATIONS:
                continue
            check = getattr(self, "k_" + key.replace("$", ""), None)
            if check is None:
                raise AssertionError(f"the schema uses keyword {key!r}, which this validator lacks")
            out += check(value, arg, schema, path)
        return out

    def ok(self, value: Any, schema: dict[str, Any]) -> bool:
        return not self.errors(value, schema)

    def k_ref(self, v, arg, s, path):
        assert arg.startswith("#/$defs/")
        return self.errors(v, self.root["$defs"][arg.removeprefix("#/$defs/")], path)

    def k_type(self, v, arg, s, path):
        types = arg if isinstance(arg, list) else [arg]
        return [] if any(_is(v, t) for t in types) else [f"{path}: not {arg}: {v!r}"]

    def k_const(self, v, arg, s, path):
        return [] if v == arg else [f"{path}: {v!r} != {arg!r}"]

    def k_enum(self, v, arg, s, path):
        return [] if v in arg else [f"{path}: {v!r} not in {arg}"]

    def k_minimum(self, v, arg, s, path):
        return [f"{path}: {v} < {arg}"] if _is(v, "number") and v < arg else []

    def k_maximum(self, v, arg, s, path):
        return [f"{path}: {v} > {arg}"] if _is(v, "number") and v > arg else []

    def k_minLength(self, v, arg, s, path):
        return [f"{path}: too short"] if isinstance(v, str) and len(v) < arg else []

    def k_pattern(self, v, arg, s, path):
        return [f"{path}: {v!r} !~ {arg}"] if isinstance(v, str) and not re.search(arg, v) else []

    def k_minItems(self, v, arg, s, path):
        return [f"{path}: fewer than {arg} items"] if isinstance(v, list) and len(v) < arg else []

    def k_maxItems(self, v, arg, s, path):
        return [f"{path}: more than {arg} items"] if isinstance(v, list) and len(v) > arg else []

    def k_items(self, v, arg, s, path):
        if not isinstance(v, list):
            return []
        return [e for i, x in enumerate(v) for e in self.errors(x, arg, f"{path}[{i}]")]

    def k_required(self, v, arg, s, path):
        return [f"{path}: missing {k}" for k in arg if isinstance(v, dict) and k not in v]

    def k_properties(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        return [e for k, sub in arg.items() if k in v for e in self.errors(v[k], sub, f"{path}.{k}")]

    def k_additionalProperties(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        extra = [k for k in v if k not in s.get("properties", {})]
        if arg is False:
            return [f"{path}: unknown key {k}" for k in extra]
        return [e for k in extra for e in self.errors(v[k], arg, f"{path}.{k}")]

    def k_anyOf(self, v, arg, s, path):
        return [] if any(self.ok(v, sub) for sub in arg) else [f"{path}: matches none of anyOf"]

    def k_oneOf(self, v, arg, s, path):
        n = sum(self.ok(v, sub) for sub in arg)
        return [] if n == 1 else [f"{path}: matches {n} of oneOf"]


SCHEMA = spec_schema()
V = Validator(SCHEMA)


def _errors(doc: Any) -> list[str]:
    return V.errors(doc, SCHEMA)


@pytest.mark.parametrize("name", bundled_specs())
def test_every_bundled_spec_validates(name: str) -> None:
    doc = yaml.safe_load((SPECS / f"{name}.yaml").read_text(encoding="utf-8"))
    assert _errors(doc) == []


BASE = "name: t\ninput: [3, 32, 32]\nlayers:\n"


@pytest.mark.parametrize("layer, why", [
    ("{name: c, op: convv, out: 4, kernel: 3}", "unknown op"),
    ("{name: c, op: conv, out: 4, kernel: 3, strides: 2}", "unknown key"),
    ("{name: c, op: conv, out: 4, kernel: 0}", "kernel 0"),
    ('{name: c, op: conv, out: 4, kernel: "3"}', "number in quotes"),
    ("{name: c, op: conv, kernel: 3}", "missing out"),
    ("{name: c, op: conv, out: 4, kernel: [3, 3, 3]}", "three kernel sizes"),
    ("{name: c, op: conv, out: 4, kernel: 3, padding: full}", "padding word"),
    ("{name: c, op: dropout, p: 1.5}", "p above 1"),
    ("{name: c, op: add}", "merge without from"),
    ("{name: 2c, op: relu}", "name not an identifier"),
    ("{op: relu}", "no name"),
    ("{name: c, op: relu, expect: [3, 32]}", "two-number shape"),
])
def test_invalid_layers_are_refused(layer: str, why: str) -> None:
    assert _errors(yaml.safe_load(BASE + f"  - {layer}\n")), why


def test_invalid_top_level_is_refused() -> None:
    assert _errors(yaml.safe_load("name: t\ninput: [3, 32, 32]\nlayer: []\n"))      # typo, no layers
    assert _errors(yaml.safe_load(BASE + "  - {name: r, op: relu}\ngpu: 2\n"))       # unknown key
    assert _errors(yaml.safe_load(BASE + "  - {name: r, op: relu}\nclaims: {parms: 1}\n"))
    assert not _errors(yaml.safe_load(BASE + "  - {name: r, op: relu}\nclaims: {params: 60M ±5%}\n"))


def test_one_branch_per_op_with_fields_defaults_and_descriptions() -> None:
    branches = {b["title"]: b for b in SCHEMA["$defs"]["layer"]["oneOf"]}
    assert set(OPS) <= set(branches)
    for op, kind in OPS.items():
        props = branches[op]["properties"]
        assert props["op"]["const"] == op and set(kind.fields) <= set(props)
        assert all("description" in props[k] for k in kind.fields)
    conv = branches["conv"]
    assert conv["required"] == ["name", "op", "out", "kernel"]
    assert conv["properties"]["stride"]["default"] == [1, 1]
    assert conv["properties"]["groups"]["default"] == 1
    assert "two-GPU" in conv["properties"]["groups"]["description"]
    assert SCHEMA["$schema"] == DRAFT


def test_yaml_1_1_number_text_is_accepted_like_the_loader_does() -> None:
    doc = yaml.safe_load(BASE + "  - {name: n, op: lrn, size: 5, alpha: 1e-4}\n")
    assert doc["layers"][0]["alpha"] == "1e-4" and not _errors(doc)


def test_cli_writes_the_schema(tmp_path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["schema"])
    assert r.exit_code == 0 and json.loads(r.stdout) == SCHEMA
    target = tmp_path / "archviz.schema.json"
    r = runner.invoke(app, ["schema", "-o", str(target)])
    assert r.exit_code == 0 and json.loads(target.read_text()) == SCHEMA
    r = runner.invoke(app, ["schema", "-o", str(tmp_path / "missing" / "x.json")])
    assert r.exit_code == 2
