"""`archviz schema`: checked with the real ``jsonschema`` validator (draft 2020-12). Every bundled
spec validates; the bad specs the loader refuses at load are refused by the schema too, except
what a JSON Schema cannot say (listed below with the reason); and in paired cases the schema and
the loader accept and refuse the same values (numbers written as text included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, SPECS, bundled_specs
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.ops import OPS
from archviz.spec.schema import DRAFT, spec_schema

SCHEMA = spec_schema()
V = jsonschema.Draft202012Validator(SCHEMA)


def _errors(doc: Any) -> list[str]:
    return [e.message for e in V.iter_errors(doc)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


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
    ("{name: c, op: lrn, size: 5, lowering: cudnn}", "a lowering LRN does not have"),
    ("{name: c, op: conv, out: 4, kernel: 3, lowering: torch}", "lowering on an op without a choice"),
    ("{name: c, op: relu, expect: [3, 32, 0]}", "a zero size"),
    ("{name: c, op: relu, expect: [1, 1, 1, 1, 1, 1, 1, 1, 1]}", "nine dimensions"),
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


# ------------------------------------------------------------------ schema and loader agree
BAD = ROOT / "tests" / "bad_specs"
# refused by the loader while loading, accepted by the schema: what a JSON Schema cannot say
SCHEMA_CANNOT = {
    "duplicate-layer-name": "names unique across the list",
    "duplicate-yaml-key": "a YAML-level fault: the parsed document has one key",
    "not-utf8": "an encoding fault: there is no document",
}


def _loader_refuses(text: str | Path) -> bool:
    try:
        archviz.load(text) if isinstance(text, Path) else archviz.loads(text, "t.yaml")
    except archviz.SpecError:
        return True
    return False


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_specs_refused_at_load_are_refused_by_the_schema(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "replace")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return                           # not YAML at all: there is nothing to validate
    refused = _loader_refuses(path)
    if path.stem in SCHEMA_CANNOT:
        assert refused and not _errors(doc), path.stem
    elif refused:
        assert _errors(doc), f"{path.stem}: the loader refuses it, the schema accepts it"
    else:                                # refused later (shapes, graph): valid for the schema
        assert not _errors(doc), path.stem


SPEC = "name: t\ninput: [8, 8, 8]\nlayers:\n  - {name: a, op: relu}\n"


@pytest.mark.parametrize("layer", [
    "{name: d, op: dropout, p: 0.5}",
    "{name: d, op: dropout, p: 1}",
    "{name: n, op: lrn, size: 5, alpha: 1e-4}",           # YAML 1.1 reads 1e-4 as text
    "{name: n, op: lrn, size: 5, alpha: '-1.5e-4', beta: ' 0.75 '}",
    "{name: b, op: batchnorm, eps: 1e-5}",
    "{name: b, op: batchnorm, eps: '+.5E2', momentum: 0}",
    "{name: r, op: relu, from: a}",
    "{name: r, op: relu, from: [input]}",
    "{name: s, op: add, from: [a, input]}",
])
def test_schema_and_loader_accept_the_same(layer: str) -> None:
    text = SPEC + f"  - {layer}\n"
    assert not _loader_refuses(text) and not _errors(yaml.safe_load(text)), layer


@pytest.mark.parametrize("layer", [
    "{name: d, op: dropout, p: '2.0'}",                    # text on a field bounded above
    "{name: d, op: dropout, p: '0.5'}",
    "{name: d, op: dropout, p: 5e-1}",                     # YAML 1.1 text again
    "{name: d, op: dropout, p: -0.1}",
    "{name: b, op: batchnorm, eps: '-1e-5'}",              # a sign on a field that is >= 0
    "{name: b, op: batchnorm, eps: -1.0}",
    "{name: n, op: lrn, size: 5, alpha: 'inf'}",
    "{name: n, op: lrn, size: 5, alpha: '1_0'}",
    "{name: n, op: lrn, size: 5, alpha: 'small'}",
    "{name: r, op: relu, from: [a, input]}",               # one input only
    "{name: r, op: relu, from: []}",
    "{name: s, op: add, from: [a]}",                       # a merge needs two
    "{name: s, op: add, from: a}",
    "{name: input, op: relu}",
])
def test_schema_and_loader_refuse_the_same(layer: str) -> None:
    text = SPEC + f"  - {layer}\n"
    assert _loader_refuses(text) and _errors(yaml.safe_load(text)), layer


@pytest.mark.parametrize("claims, ok", [
    ("{params: 60M ±5%}", True),
    ("{params: 60m +- 5.5 %, neurons: 650_000}", True),
    ("{params: {value: 60M, tol: 5%, source: Section 1}}", True),
    ("{layer_kernels: {a: 5x5x48}}", True),
    ("{layer_kernels: {a: [5, 5, 48]}}", True),
    ("{params: about 60M}", False),
    ("{params: -5}", False),
    ("{params: 60M ±1.2.3%}", False),
    ("{params: {tol: 5%}}", False),
    ("{params: {value: 60M, tol: lots}}", False),
    ("{layer_kernels: {a: 5x5}}", False),
    ("{layer_kernels: {a: 0x5x48}}", False),
    ("{layer_kernels: {a: ['5', 5, 48]}}", False),
    ("{layer_neurons: {a: 5x5x48}}", False),
])
def test_schema_and_loader_agree_on_claims(claims: str, ok: bool) -> None:
    text = SPEC + f"claims: {claims}\n"
    assert _loader_refuses(text) is not ok and (not _errors(yaml.safe_load(text))) is ok, claims


@pytest.mark.parametrize("lowering, ok", [("torch", True), ("fast", True), ("Torch", False),
                                          ("cudnn", False)])
def test_a_layers_lowering_is_accepted_and_refused_alike(lowering: str, ok: bool) -> None:
    text = BASE + f"  - {{name: n, op: lrn, size: 5, lowering: {lowering}}}\n"
    assert (not _errors(yaml.safe_load(text))) is ok
    try:
        archviz.loads(text)
        loaded = True
    except archviz.SpecError:
        loaded = False
    assert loaded is ok
