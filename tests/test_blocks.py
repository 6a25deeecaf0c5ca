"""Spec blocks (archviz/spec/blocks.py): names, repeat, first-copy arguments, $in, optional layers,
nested blocks, located errors with the use site; and docs/spec-format.md against the op registry."""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import ROOT

import archviz
from archviz.core.check import run_checks
from archviz.ops import OPS
from archviz.spec import LAYER_KEYS, TOP_KEYS, Origin

BASIC = """\
name: t
input: [8, 16, 16]
blocks:
  basic:
    params: {out: null, stride: 1, down: false}
    layers:
      - {name: conv1, op: conv, out: $out, kernel: 3, stride: $stride, padding: 1}
      - {name: conv2, op: conv, out: $out, kernel: 3, padding: 1}
      - {name: downsample.0, op: conv, from: $in, out: $out, kernel: 1, stride: $stride, if: $down}
      - {name: add, op: add, from: [conv2, downsample.0]}
layers:
"""


def load(layers: str, head: str = BASIC) -> archviz.Spec:
    return archviz.loads(head + textwrap.indent(textwrap.dedent(layers), "  "), "t.yaml")


def error(layers: str, head: str = BASIC) -> str:
    with pytest.raises(archviz.SpecError) as info:
        archviz.analyze(load(layers, head))
    return info.value.format()


# ---- expansion ------------------------------------------------------------------------------

def test_repeat_numbers_the_copies_and_chains_them() -> None:
    spec = load("""\
      - {name: stem, op: relu}
      - {name: layer1, block: basic, repeat: 3, args: {out: 8}}
      - {name: head, op: relu}
    """)
    assert [la.name for la in spec.layers] == [
        "stem",
        "layer1.0.conv1", "layer1.0.conv2", "layer1.0.add",
        "layer1.1.conv1", "layer1.1.conv2", "layer1.1.add",
        "layer1.2.conv1", "layer1.2.conv2", "layer1.2.add",
        "head"]
    inputs = {la.name: la.inputs for la in spec.layers}
    assert inputs["layer1.0.conv1"] == ("stem",)
    assert inputs["layer1.0.add"] == ("layer1.0.conv2", "stem")      # left-out downsample = $in
    assert inputs["layer1.1.conv1"] == ("layer1.0.add",)              # copies chain
    assert inputs["layer1.2.add"] == ("layer1.2.conv2", "layer1.1.add")
    assert inputs["head"] == ("layer1.2.add",)


def test_without_repeat_names_have_no_copy_number() -> None:
    spec = load("- {name: b, block: basic, args: {out: 8}}\n")
    assert [la.name for la in spec.layers] == ["b.conv1", "b.conv2", "b.add"]
    assert spec.layers[0].inputs == ("input",)


def test_first_arguments_apply_to_copy_zero_only() -> None:
    spec = load("- {name: layer2, block: basic, repeat: 2, args: {out: 16},"
                " first: {stride: 2, down: true}}\n")
    names = [la.name for la in spec.layers]
    assert names == ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0", "layer2.0.add",
                     "layer2.1.conv1", "layer2.1.conv2", "layer2.1.add"]
    assert spec.layer("layer2.0.conv1").params.stride == (2, 2)
    assert spec.layer("layer2.1.conv1").params.stride == (1, 1)
    assert spec.layer("layer2.0.downsample.0").inputs == ("input",)
    assert spec.layer("layer2.0.add").inputs == ("layer2.0.conv2", "layer2.0.downsample.0")
    assert spec.layer("layer2.1.add").inputs == ("layer2.1.conv2", "layer2.0.add")
    a = archviz.analyze(spec)
    assert a.layer("layer2.0.add").output == (16, 8, 8)
    assert a.layer("layer2.1.add").output == (16, 8, 8)
    # 1×1 projection: 16·8 + 16; 3×3 convs: 16·8·9 + 16, then 16·16·9 + 16 (three times)
    assert a.totals.params == (16 * 8 + 16) + (16 * 8 * 9 + 16) + 3 * (16 * 16 * 9 + 16)


def test_block_layers_keep_their_block_line_and_know_the_use_site() -> None:
    spec = load("- {name: b, block: basic, args: {out: 8}}\n")
    conv1 = spec.layer("b.conv1")
    assert (conv1.loc.line, conv1.loc.col) == (7, 16)            # `conv1` in the block
    assert conv1.key_locs["out"].line == 7
    assert conv1.use_site is not None and (conv1.use_site.line, conv1.use_site.col) == (12, 12)
    assert load("- {name: r, op: relu}\n").layers[0].use_site is None


def test_from_a_use_and_expect_on_a_use() -> None:
    spec = load("""\
      - {name: a, block: basic, args: {out: 8}, expect: [8, 16, 16]}
      - {name: b, block: basic, args: {out: 16, stride: 2, down: true}, expect: [16, 9, 9]}
      - {name: c, op: conv, from: a, out: 4, kernel: 1}
    """)
    assert spec.layer("c").inputs == ("a.add",)
    assert spec.layer("b.conv1").inputs == ("a.add",)
    results = {r.what: r.ok for r in run_checks(archviz.analyze(spec))}
    assert results == {"a.add output": True, "b.add output": False}   # 8×8, not 9×9


NESTED = """\
name: t
input: [8, 16, 16]
blocks:
  unit:
    params: {out: null, kernel: 1, padding: 0}
    layers:
      - {name: conv, op: conv, out: $out, kernel: $kernel, padding: $padding, bias: false}
      - {name: bn, op: batchnorm}
  mixed:
    params: {a: null, b: null}
    layers:
      - {name: branch1, block: unit, from: $in, args: {out: $a}}
      - {name: branch2.0, block: unit, from: $in, args: {out: $b}}
      - {name: branch2.1, block: unit, args: {out: $b, kernel: 3, padding: 1}}
      - {name: pool, op: maxpool, from: $in, kernel: 3, stride: 1, padding: 1}
      - {name: cat, op: concat, from: [branch1, branch2.1, pool]}
layers:
"""


def test_nested_blocks() -> None:
    spec = load("- {name: mix, block: mixed, args: {a: 4, b: 6}}\n", NESTED)
    assert [la.name for la in spec.layers] == [
        "mix.branch1.conv", "mix.branch1.bn", "mix.branch2.0.conv", "mix.branch2.0.bn",
        "mix.branch2.1.conv", "mix.branch2.1.bn", "mix.pool", "mix.cat"]
    assert spec.layer("mix.cat").inputs == ("mix.branch1.bn", "mix.branch2.1.bn", "mix.pool")
    assert spec.layer("mix.branch2.1.conv").inputs == ("mix.branch2.0.bn",)
    assert spec.layer("mix.branch2.1.conv").params.kernel == (3, 3)
    assert archviz.analyze(spec).layer("mix.cat").output == (4 + 6 + 8, 16, 16)


def test_each_layer_knows_its_use_block_and_copy() -> None:
    spec = load("""\
      - {name: stem, op: relu}
      - {name: layer1, block: basic, repeat: 2, args: {out: 8}}
      - {name: b, block: basic, args: {out: 8}}
    """)
    assert spec.layer("stem").origin is None
    assert spec.layer("layer1.1.conv2").origin == Origin("layer1", "basic", 1, 2)
    assert spec.layer("b.add").origin == Origin("b", "basic", None, 1)
    nested = load("- {name: mix, block: mixed, repeat: 2, args: {a: 4, b: 6}}\n", NESTED)
    # a use inside a block keeps the top-level use's origin
    assert {la.origin for la in nested.layers if la.name.startswith("mix.1.")} == {
        Origin("mix", "mixed", 1, 2)}
    # the analysis carries them, with each layer's typed params, into the JSON
    a = archviz.analyze(spec)
    s = a.layer("layer1.1.conv2")
    assert s.origin == Origin("layer1", "basic", 1, 2) and s.op_params == spec.layer(s.name).params
    assert a.graph.spec is spec and a.spec is spec
    layers = {la["name"]: la for la in a.to_dict()["layers"]}
    assert layers["layer1.1.conv2"]["block"] == {"use": "layer1", "name": "basic", "copy": 1, "copies": 2}
    assert layers["b.add"]["block"]["copy"] is None and "block" not in layers["stem"]


def test_a_large_spec_of_blocks_expands_to_every_layer() -> None:
    spec = load("- {name: deep, block: basic, repeat: 2500, args: {out: 8}}\n")
    assert len(spec.layers) == 7500
    assert spec.layers[-1].name == "deep.2499.add"
    assert archviz.analyze(spec).totals.params == 2500 * 2 * (8 * 8 * 9 + 8)


# ---- errors: exact messages -------------------------------------------------------------------

def test_unknown_block() -> None:
    assert error("- {name: layer1, block: basci, args: {out: 8}}\n") == """\
t.yaml:12:27: layer1.block: unknown block 'basci'
      - {name: layer1, block: basci, args: {out: 8}}
                              ^
did you mean 'basic'?"""


def test_missing_argument() -> None:
    assert error("- {name: layer1, block: basic, repeat: 2}\n") == """\
t.yaml:12:27: layer1.0: block basic needs argument 'out'
      - {name: layer1, block: basic, repeat: 2}
                              ^
params of block basic: out (required), stride = 1, down = false"""


def test_argument_given_for_the_first_copy_only() -> None:
    assert error("- {name: layer1, block: basic, repeat: 2, first: {out: 8}}\n") == """\
t.yaml:12:27: layer1.1: block basic needs argument 'out'
      - {name: layer1, block: basic, repeat: 2, first: {out: 8}}
                              ^
'first:' applies to the first copy only; give 'out' in 'args:'"""


def test_unknown_argument() -> None:
    assert error("- {name: layer1, block: basic, args: {out: 8, strid: 2}}\n") == """\
t.yaml:12:49: layer1.args: unknown argument 'strid' for block basic
      - {name: layer1, block: basic, args: {out: 8, strid: 2}}
                                                    ^
did you mean 'stride'?"""


@pytest.mark.parametrize("count, shown",
                         [(0, "0"), (-1, "-1"), ("two", "'two'"), ("true", "true"), ("[2]", "[2]")])
def test_bad_repeat(count: object, shown: str) -> None:
    text = error(f"- {{name: layer1, block: basic, repeat: {count}, args: {{out: 8}}}}\n")
    assert text.splitlines()[0] == f"t.yaml:12:42: layer1.repeat: expected a positive integer, got {shown}"


def test_bad_value_inside_a_block_points_at_the_block_and_the_use() -> None:
    assert error("""\
      - {name: stem, op: relu}
      - {name: layer1, block: basic, repeat: 2, args: {out: 0}}
    """) == """\
t.yaml:7:38: layer1.0.conv1.out: expected a positive integer, got 0
          - {name: conv1, op: conv, out: $out, kernel: 3, stride: $stride, padding: 1}
                                         ^
t.yaml:13:12: note: used here
      - {name: layer1, block: basic, repeat: 2, args: {out: 0}}
               ^"""


def test_error_in_a_nested_block_names_the_use_in_layers() -> None:
    assert error("- {name: mix, block: mixed, args: {a: 4, b: -6}}\n", NESTED) == """\
t.yaml:7:37: mix.branch2.0.conv.out: expected a positive integer, got -6
          - {name: conv, op: conv, out: $out, kernel: $kernel, padding: $padding, bias: false}
                                        ^
t.yaml:18:12: note: used here
      - {name: mix, block: mixed, args: {a: 4, b: -6}}
               ^"""


def test_optional_layer_condition_must_be_a_boolean() -> None:
    text = error("- {name: layer1, block: basic, args: {out: 8, down: 1}}\n")
    assert text.splitlines()[0] == "t.yaml:9:94: layer1.downsample.0.if: expected true or false, got 1"
    assert text.splitlines()[3] == "t.yaml:12:12: note: used here"


def test_unknown_key_of_a_use() -> None:
    assert error("- {name: layer1, block: basic, arg: {out: 8}}\n") == """\
t.yaml:12:34: layer1: unknown key 'arg' for a block use
      - {name: layer1, block: basic, arg: {out: 8}}
                                     ^
did you mean 'args'?"""


def test_use_reads_an_earlier_layer() -> None:
    assert error("- {name: layer1, block: basic, from: stme, args: {out: 8}}\n").splitlines()[0] \
        == "t.yaml:12:40: layer1.from: no earlier layer named 'stme'"


def test_duplicate_name_of_a_use() -> None:
    assert error("""\
      - {name: layer1, op: relu}
      - {name: layer1, block: basic, args: {out: 8}}
    """) == """\
t.yaml:13:12: duplicate layer name 'layer1'
      - {name: layer1, block: basic, args: {out: 8}}
               ^
first defined at line 12"""


def _block(layers: str, params: str = "{out: 8}") -> str:
    return f"name: t\ninput: [8, 16, 16]\nblocks:\n  b:\n    params: {params}\n    layers:\n{layers}" \
        "layers:\n  - {name: u, block: b}\n"


def test_unknown_parameter_in_a_block() -> None:
    head = _block("      - {name: c, op: conv, out: $ot, kernel: 1}\n")
    assert error("", head) == """\
t.yaml:7:34: b.c.out: unknown parameter '$ot' of block b
          - {name: c, op: conv, out: $ot, kernel: 1}
                                     ^
did you mean '$out'?"""


def test_in_outside_from() -> None:
    head = _block("      - {name: c, op: conv, out: $in, kernel: 1}\n")
    assert error("", head).splitlines()[0] == \
        "t.yaml:7:34: b.c.out: '$in' (the block's input) can only be used in 'from:'"


def test_from_names_an_earlier_layer_of_the_block() -> None:
    head = _block("      - {name: c, op: conv, out: 8, kernel: 1}\n"
                  "      - {name: s, op: add, from: [c, d]}\n")
    assert error("", head) == """\
t.yaml:8:34: b.s.from: no earlier layer named 'd' in block b
          - {name: s, op: add, from: [c, d]}
                                     ^
valid: $in, c"""


def test_a_block_cannot_use_itself() -> None:
    head = ("name: t\ninput: [8, 16, 16]\nblocks:\n"
            "  a:\n    layers:\n      - {name: x, block: b}\n"
            "  b:\n    layers:\n      - {name: y, block: a}\n"
            "layers:\n  - {name: u, block: a}\n")
    assert error("", head).splitlines()[0] == "t.yaml:9:26: b.y.block: block 'a' uses itself: a → b → a"


def test_unknown_block_inside_a_block() -> None:
    head = _block("      - {name: c, block: unti}\n")
    assert error("", head).splitlines()[0] == "t.yaml:7:26: b.c.block: unknown block 'unti'"


def test_errors_keep_their_messages_outside_blocks() -> None:
    """Plain layers report as before: no use site."""
    text = error("- {name: conv1, op: conv, out: 0, kernel: 3}\n")
    assert text.splitlines()[0] == "t.yaml:12:34: conv1.out: expected a positive integer, got 0"
    assert "note: used here" not in text


# ---- docs/spec-format.md --------------------------------------------------------------------

DOC = ROOT / "docs" / "spec-format.md"


def op_table() -> str:
    """The op reference table of docs/spec-format.md, generated from the op registry."""
    rows = ["| op | family | key | type | default | meaning |", "|---|---|---|---|---|---|"]
    for name in sorted(OPS):
        kind = OPS[name]
        if not kind.fields:
            rows.append(f"| `{name}` | {kind.family} | – | | | {kind.doc} |")
        for key, fld in kind.fields.items():
            default = "required" if fld.required else _default(fld.default)
            rows.append(f"| `{name}` | {kind.family} | `{key}` | {fld.describe()} | {default} | {fld.doc} |")
    return "\n".join(rows) + "\n"


def _default(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple) and len(set(value)) == 1:
        return f"`{value[0]}`"
    return f"`{value}`"


def test_doc_op_table_is_generated_from_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = op_table()
    assert table in text, "docs/spec-format.md: regenerate the op table:\n" + table


def test_doc_names_every_op_top_level_key_and_layer_key() -> None:
    text = DOC.read_text(encoding="utf-8")
    for key in sorted(TOP_KEYS | LAYER_KEYS | {"block", "repeat", "args", "first", "params", "if", "$in"}):
        assert re.search(rf"`{re.escape(key)}[`:]", text), key
    for name, kind in OPS.items():
        assert f"`{name}`" in text, name
        for key in kind.fields:
            assert f"`{key}`" in text, (name, key)


def test_doc_table_of_bundled_specs_is_computed() -> None:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| [^|]+ \| ([0-9,]+) \| ([0-9,]+) \|$",
                      DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(rows) == 6
    for name, params, macs in rows:
        totals = archviz.analyze(archviz.load(name)).totals
        assert (f"{totals.params:,}", f"{totals.macs:,}") == (params, macs), name


# ---------------------------------------------------------------- how the spec modules import
def _relative_imports(package: str) -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported module, names)] for every relative import, in functions too."""
    import ast

    out: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted((ROOT / "archviz" / package).glob("*.py")):
        found: list[tuple[str, list[str]]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [a.name for a in node.names]
                found += [(node.module, names)] if node.module else [(n, []) for n in names]
        out[path.stem] = found
    return out


def test_spec_modules_import_one_way_and_no_private_names() -> None:
    imports = _relative_imports("spec")
    private = [(m, target, n) for m, found in imports.items() for target, names in found
               for n in names if n.startswith("_")]
    assert not private, private
    edges = {m: {t for t, _ in found if t in imports} for m, found in imports.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t})) for t in edges[start])

    circles = [m for m in edges if reaches(m, m, set())]
    assert not circles, circles
    assert "load" not in edges["blocks"] and "load" not in edges["doc"] and edges["doc"] == set()


@pytest.mark.parametrize("head, first_line", [
    ("blocks:\n  2b: {layers: [{name: r, op: relu}]}\n",
     "t.yaml:4:3: blocks: block name: expected an identifier (letters, digits and _), got '2b'"),
    ("blocks:\n  b.c: {layers: [{name: r, op: relu}]}\n",
     "t.yaml:4:3: blocks: block name: expected an identifier (letters, digits and _), got 'b.c'"),
    ("blocks:\n  b: {params: {in: 1}, layers: [{name: r, op: relu}]}\n",
     "t.yaml:4:16: blocks.b.params: parameter name: 'in' is reserved: it names the block's input, $in"),
    ("blocks:\n  b: {layers: [{name: 2r, op: relu}]}\n",
     "t.yaml:4:23: blocks.b: layer name: expected an identifier (letters, digits, _ and .), got '2r'"),
])
def test_block_names_share_the_name_rule(head: str, first_line: str) -> None:
    text = error("- {name: r, op: relu}\n", "name: t\ninput: [8, 16, 16]\n" + head + "layers:\n")
    assert text.splitlines()[0] == first_line
