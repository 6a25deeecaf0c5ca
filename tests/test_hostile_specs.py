"""A hostile spec cannot hurt (issue 15): bounded work with located errors, loops replaced by
arithmetic (checked against the loops they replace), internal errors reported as bugs (exit 3),
outputs that escape user text for their own syntax, and a memory guard that counts activations.
"""

from __future__ import annotations

import ast
import os
import random
import re
import time
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.errors import ArchvizError, SpecError
from archviz.limits import MAX_GPUS, MAX_INT
from archviz.ops.arith import Window, exact_padding
from archviz.ops.receptive import Axis, _adaptive_axis
from archviz.spec import load, loads

runner = CliRunner()
HEAD = "name: x\ninput: [3, 8, 8]\n"


def refused(text: str, *words: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, "h.yaml")
    exc = info.value
    assert exc.loc is not None and exc.loc.file == "h.yaml", exc.format()   # located
    for w in words:
        assert w in exc.format(), exc.format()
    return exc


# ---- limits ------------------------------------------------------------------------------------
def test_gpus_at_most_64() -> None:
    loads(HEAD + f"gpus: {MAX_GPUS}\nlayers: [{{name: a, op: relu}}]\n")
    e = refused(HEAD + "gpus: 1000000000\nlayers: [{name: a, op: relu}]\n", "gpus: at most 64")
    assert e.loc is not None and e.loc.line == 3


def test_sizes_at_most_int32() -> None:
    refused(HEAD + f"layers: [{{name: a, op: conv, out: {MAX_INT + 1}, kernel: 1}}]\n",
            "a.out", str(MAX_INT))
    refused(f"name: x\ninput: [3, {MAX_INT + 1}, 8]\nlayers: [{{name: a, op: relu}}]\n",
            "input: sizes are at most")
    refused(HEAD + "layers: [{name: a, op: adaptive_avgpool, out: 1000000000000}]\n", "a.out")


@pytest.mark.parametrize("value", ["1" + "0" * 400, "1" + "0" * 5000, "-" + "9" * 30])
def test_integers_beyond_64_bits_are_refused_wherever_they_are(value: str) -> None:
    for where in (f"layers: [{{name: a, op: dropout, p: {value}}}]\n",
                  f"layers: [{{name: a, op: relu}}]\nclaims: {{params: {value}}}\n",
                  f"layers: [{{name: a, op: relu, note: [{value}]}}]\n"):
        refused(HEAD + where, "hint: integers are at most")


def test_huge_claim_text_is_refused_not_infinite() -> None:
    refused(HEAD + "layers: [{name: a, op: relu}]\nclaims: {params: '" + "9" * 400 + "M'}\n",
            "claims.params: expected a number")


@pytest.mark.parametrize("bad", ["[conv]", "{a: 1}", "3", "null"])
def test_op_and_block_must_be_names(bad: str) -> None:
    refused(HEAD + f"layers: [{{name: a, op: {bad}}}]\n", "a.op:")
    blocks = "blocks: {b: {layers: [{name: r, op: relu}]}}\n"
    refused(HEAD + blocks + f"layers: [{{name: u, block: {bad}}}]\n", "u.block:")


def test_a_list_as_a_mapping_key_is_located() -> None:
    refused(HEAD + "layers: [{name: a, op: relu, note: {? [1, 2] : x}}]\n", "a key must be")


def test_layer_cap_and_repeat_by_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = "blocks: {b: {layers: [{name: r, op: relu}]}}\n"
    t = time.perf_counter()
    refused(HEAD + blocks + "layers: [{name: u, block: b, repeat: 1000000000000}]\n",
            "u.repeat: expected a positive integer of at most 2147483647")
    refused(HEAD + blocks + "layers: [{name: u, block: b, repeat: 2000000000}]\n",
            "u.repeat: 2,000,000,000 copies exceed the limit", "ARCHVIZ_MAX_LAYERS")
    assert time.perf_counter() - t < 1.0   # refused before any copy is made (a loose bound)
    monkeypatch.setenv("ARCHVIZ_MAX_LAYERS", "10")
    assert len(loads(HEAD + blocks + "layers: [{name: u, block: b, repeat: 10}]\n").layers) == 10
    refused(HEAD + blocks + "layers: [{name: u, block: b, repeat: 11}]\n", "exceed the limit of 10")
    layers = "".join(f"  - {{name: l{i}, op: relu}}\n" for i in range(11))
    refused(HEAD + "layers:\n" + layers, "more than 10 layers")


def _bomb(use: str) -> str:
    """Billion laughs: nine levels of nine aliases (9^9 strings once expanded), then ``use``."""
    anchors = "".join(f"  - &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * 9) + "]\n"
                      for i in range(9))
    return "description:\n" + anchors + use


@pytest.mark.parametrize("use", [
    "name: *a8\ninput: [3, 8, 8]\nlayers: [{name: a, op: relu}]\n",
    "name: x\ninput: *a8\nlayers: [{name: a, op: relu}]\n",
    "name: x\ninput: [3, 8, 8]\nlayers: [{name: a, op: relu, note: *a8}]\n",
    "name: x\ninput: [3, 8, 8]\nlayers: [{name: a, op: relu}]\nclaims: {params: *a8}\n",
    "name: x\ninput: [3, 8, 8]\nblocks: {b: {params: {n: 1}, layers: [{name: r, op: relu}]}}\n"
    "layers: [{name: u, block: b, args: {n: *a8}}]\n",
])
def test_alias_bombs_are_refused_quickly(use: str) -> None:
    t = time.perf_counter()
    refused(_bomb(use), "aliases expand this to", "ARCHVIZ_MAX_ALIAS_NODES")
    assert time.perf_counter() - t < 2.0   # a loose bound: expanded, it would never finish


def test_a_few_aliases_stay_allowed() -> None:
    spec = loads(HEAD + "layers:\n  - {name: a, op: conv, out: 2, kernel: &k [3, 3]}\n"
                 "  - {name: b, op: conv, out: 2, kernel: *k}\n")
    assert spec.layers[1].params.kernel == (3, 3)


def test_a_document_that_is_one_scalar_is_not_a_spec() -> None:
    for text in ("hello\n", "&a hello\n", "42\n"):
        refused(text, "spec: expected a mapping")


def test_deep_and_cyclic_nesting_are_located_errors() -> None:
    deep = "[" * 200 + "]" * 200
    refused(HEAD + f"layers: [{{name: a, op: relu, note: {deep}}}]\n", "nested more than")
    chain = "".join(f"k{i}: &k{i} [*k{i - 1}]\n" if i else "k0: &k0 [1]\n" for i in range(100))
    refused(chain + HEAD + "layers: [{name: a, op: relu, note: *k99}]\n", "nested more than")
    refused(HEAD + "layers: [{name: a, op: relu, note: &c [1, *c]}]\n", "contains it")


def test_only_regular_files_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file \\(a FIFO\\)"):
        load(fifo)                          # returns at once: nothing waits for a writer
    with pytest.raises(SpecError, match="is a directory"):
        load(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_text(HEAD + "layers: [{name: a, op: relu}]\n" + "#" * 200 + "\n")
    monkeypatch.setenv("ARCHVIZ_MAX_SPEC_BYTES", "100")
    with pytest.raises(SpecError, match="a spec file is at most 100"):
        load(big)


# ---- loops replaced by arithmetic: checked against the loops ---------------------------------
def _old_pads(w: Window) -> int | None:
    pads = [p for p in range(0, w.k + 1) if (w.n + 2 * p - w.span) % w.s == 0 and p != w.p]
    return min(pads, key=lambda p: (abs(p - w.p), p)) if pads else None


def test_exact_padding_equals_the_search_it_replaces() -> None:
    rng = random.Random(15)
    for _ in range(20000):
        w = Window(n=rng.randint(1, 60), k=rng.randint(1, 12), s=rng.randint(1, 9), p=rng.randint(0, 14),
                   d=rng.randint(1, 3))
        assert exact_padding(w) == _old_pads(w), w
    t = time.perf_counter()
    exact_padding(Window(n=10, k=10**12, s=7, p=5 * 10**11))   # the loop took hours
    assert time.perf_counter() - t < 0.1


def _old_adaptive(ax: Axis, n: int, o: int) -> Axis:
    starts = [i * n // o for i in range(o)]
    ends = [-(-(i + 1) * n // o) for i in range(o)]
    k = max(e - s for s, e in zip(starts, ends, strict=True))
    mean = Fraction(starts[-1] - starts[0], o - 1) if o > 1 else Fraction(n)
    spacing = int(mean) if mean.denominator == 1 else mean
    first = ends[0] - starts[0]
    return Axis(ax.size + (k - 1) * ax.jump, ax.jump * spacing, ax.start2 + (first - 1) * ax.jump)


def test_adaptive_receptive_field_equals_the_loop_it_replaces() -> None:
    ax = Axis(11, 4, 11)
    for n in range(1, 70):
        for o in range(1, 70):
            assert _adaptive_axis(ax, n, o) == _old_adaptive(ax, n, o), (n, o)
    t = time.perf_counter()
    _adaptive_axis(ax, 6, MAX_INT)
    assert time.perf_counter() - t < 0.1


# ---- internal errors: exit 3, a bug, the traceback on request -----------------------------------
def _crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from archviz.cli import common

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(common, "load_spec", boom)


def test_an_internal_error_exits_3_and_names_the_traceback_file(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    _crash(monkeypatch)
    monkeypatch.delenv("ARCHVIZ_DEBUG", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = runner.invoke(app, ["shapes", "lenet5"])
    assert r.exit_code == 3, r.output
    assert "internal error (a bug in archviz" in r.output and "ZeroDivisionError: planted" in r.output
    assert "Traceback" not in r.output
    path = re.search(r"the traceback is in (\S+);", r.output)
    assert path is not None and "Traceback" in Path(path.group(1)).read_text()


@pytest.mark.parametrize("module,code", [("matplotlib.patches", 2), ("graphviz", 2), ("torch", 2),
                                         ("nosuch_module_of_ours", 3)])
def test_a_missing_dependency_is_a_set_up_message_not_a_bug(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path, module: str, code: int) -> None:
    """A declared dependency missing from the Python that runs archviz (a venv made by hand, a
    checkout on PYTHONPATH) is exit 2 with the pip line; any other missing module is still a bug."""
    from archviz.cli import common

    def missing(*args: object, **kwargs: object) -> None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(common, "load_spec", missing)
    monkeypatch.delenv("ARCHVIZ_DEBUG", raising=False)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = runner.invoke(app, ["shapes", "lenet5"])
    assert r.exit_code == code, r.output
    if code == 2:
        top = module.partition(".")[0]
        assert f"needs the '{top}' package" in r.output and f"pip install '{top}'" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    _crash(monkeypatch)
    args = ["shapes", "lenet5"]
    if how == "flag":
        args = ["--debug", *args]
    else:
        monkeypatch.setenv("ARCHVIZ_DEBUG", "1")
    r = runner.invoke(app, args)
    assert r.exit_code == 3 and "Traceback" in r.output and "planted" in r.output
    from archviz.cli.common import set_debug
    set_debug(False)


# ---- outputs that cannot be injected -----------------------------------------------------------
HOSTILE_SOURCE = 'line one\nline two """ \\ end\\ | <script>alert(1)</script> [x](javascript:y) `z`'
HOSTILE_SPEC = """name: 'Net | <img src=x> """ + '"""' + """ \\\\ [a](javascript:b) #h'
source: {src}
input: [3, 16, 16]
layers:
  - {{name: conv1, op: conv, out: 4, kernel: 3, note: {src}}}
  - {{name: flat, op: flatten}}
  - {{name: fc, op: linear, out: 5}}
"""


@pytest.fixture()
def hostile(tmp_path: Path) -> str:
    import json

    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE_SPEC.format(src=json.dumps(HOSTILE_SOURCE)), encoding="utf-8")
    return str(path)


def test_markdown_escapes_names_and_sources(hostile: str) -> None:
    r = runner.invoke(app, ["shapes", hostile, "-f", "markdown"])
    assert r.exit_code == 0, r.output
    md = r.stdout
    assert "<script>" not in md and "<img" not in md and "](javascript" not in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 9 for line in table), table  # no extra columns
    assert md.splitlines()[2].startswith("Input (3, 16, 16). line one line two")  # one line


@pytest.mark.parametrize("command", ["cost", "diff"])
def test_cost_and_diff_markdown_escape_the_spec_name(tmp_path: Path, command: str) -> None:
    path = tmp_path / "<i>[p](javascript:q).yaml"   # the diff header shows the path too
    path.write_text("name: '<script>alert(1)</script> [x](javascript:alert(2)) *b* | c'\n"
                    "input: [3, 8, 8]\nlayers:\n  - {name: conv1, op: conv, out: 4, kernel: 3}\n"
                    "  - {name: flat, op: flatten}\n  - {name: fc, op: linear, out: 5}\n")
    args = [command, str(path)] + ([str(path)] if command == "diff" else []) + ["--format", "markdown"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    md = r.stdout
    assert "<script>" not in md and "<i>" not in md and "](javascript" not in md and "*b*" not in md, md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "\\*b\\* \\| c" in md, md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1, table   # no cell split


def test_dot_comment_and_labels_stay_inert(hostile: str) -> None:
    from archviz.core.analysis import analyze
    from archviz.render import dot

    a = analyze(load(hostile))
    src = dot.render(dot.diagram(a, False, "TB", False), "dot").decode()
    comment = src.splitlines()[0]
    assert comment.startswith("// Net") and "drawn by archviz" in comment
    # a name holding a newline (the Python API can build one) stays in its comment line
    from dataclasses import replace
    evil = replace(a, name="x\ndigraph evil { a -> b }\n//")
    src = dot.render(dot.diagram(evil, False, "TB", False), "dot").decode()
    assert src.splitlines()[0] == "// x\\ndigraph evil { a -> b }\\n//: drawn by archviz from hostile.yaml"
    import shutil
    import subprocess
    if shutil.which("dot"):   # Graphviz reads it as one graph whose nodes are the layers only
        canon = subprocess.run(["dot", "-Tcanon"], input=src, capture_output=True, text=True, check=True)
        assert "evil" not in canon.stdout.split("{", 1)[0] and " -> b" not in canon.stdout


def test_exported_python_compiles_for_hostile_text(hostile: str) -> None:
    from archviz.runtime.export import to_python

    source = to_python(hostile)
    tree = ast.parse(source)                       # valid Python
    doc = ast.get_docstring(tree)
    assert doc is not None and HOSTILE_SOURCE.replace("\n", "\n") in doc   # the text, inert
    compile(source, "exported.py", "exec")


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "dot", "py"])
def test_the_same_hostile_text_through_every_format(hostile: str, tmp_path: Path, fmt: str) -> None:
    import csv
    import io
    import json
    import shutil
    import subprocess

    out = tmp_path / f"out.{fmt}"
    args = {"dot": ["draw", hostile, "-f", "dot"], "py": ["export", hostile]}.get(
        fmt, ["shapes", hostile, "-f", fmt])
    r = runner.invoke(app, [*args, "-o", str(out)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    text = out.read_text(encoding="utf-8")
    assert "\x1b" not in text
    if fmt == "json":
        assert json.loads(text)["name"].startswith("Net | <img")      # the text, as data
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert len({len(row) for row in rows}) == 1                     # no row broken open
    elif fmt == "markdown":
        assert "<img" not in text and "<script>" not in text
    elif fmt == "dot" and shutil.which("dot"):
        subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, check=True)
    elif fmt == "py":
        compile(text, "exported.py", "exec")


def test_gpus_override_is_bounded_too() -> None:
    from archviz.core.analysis import analyze

    with pytest.raises(ArchvizError, match="1 to 64 GPUs"):
        analyze(load("lenet5"), gpus=65)


BIG_USE = ("blocks:\n  b: {layers: [{name: r, op: relu}, {name: s, op: relu}, {name: t, op: relu}]}\n"
           "  outer: {layers: [{name: i, block: b, repeat: 100000}, {name: late, op: BAD}]}\n")


@pytest.mark.parametrize("mistake, words, line", [
    ("  - {name: bad, op: conv, out: 4, kernel: 0}\n", "bad.kernel: expected a positive integer", 8),
    ("  - {name: bad, op: relu, kernal: 3}\n", "bad: unknown key 'kernal'", 8),
    ("  - {name: v, block: b, repeat: 2, args: {x: 1}}\n", "unknown argument 'x'", 8),
    ("", "late.op: unknown op 'BAD'", 5),                     # a block's own layer, after a use
])
def test_a_mistake_after_a_large_use_is_found_before_expanding(
        monkeypatch: pytest.MonkeyPatch, mistake: str, words: str, line: int) -> None:
    from archviz.spec.blocks import Expander

    expanded: list[str] = []
    real = Expander._expand
    monkeypatch.setattr(Expander, "_expand", lambda self, *a: expanded.append("x") or real(self, *a))
    blocks = BIG_USE if not mistake else BIG_USE.replace(", {name: late, op: BAD}", "")
    text = HEAD + blocks + "layers:\n  - {name: u, block: b, repeat: 100000}\n" + mistake
    t = time.perf_counter()
    e = refused(text, words)
    assert time.perf_counter() - t < 1.0                     # 100,000 copies: 3 to 20 s before
    assert e.loc is not None and e.loc.line == line and expanded == []   # not one copy made


def test_a_mistake_after_a_large_use_exits_2_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + BIG_USE.replace(", {name: late, op: BAD}", "")
                    + "layers:\n  - {name: u, block: b, repeat: 100000}\n"
                    "  - {name: bad, op: conv, out: 4, kernel: 0}\n")
    t = time.perf_counter()
    r = runner.invoke(app, ["shapes", str(path)])
    assert r.exit_code == 2 and "big.yaml:8:" in r.output and "bad.kernel" in r.output, r.output
    assert time.perf_counter() - t < 1.0


STATIONARY = ("  b: {layers: [{name: fc, op: linear, out: 64}, {name: act, op: relu}]}\n"
              "  grow: {params: {out: null}, layers: [{name: fc, op: linear, out: $out}]}\n"
              "  shrink: {layers: [{name: c, op: conv, out: 4, kernel: 3}]}\n")


def test_a_shape_error_after_a_large_use_is_found_from_two_copies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 26: a layer whose shape does not fit, after `repeat: 100000` of a block that keeps
    its input's shape, is reported without expanding the copies: the first and the last are
    analysed, and every copy between computes what the last one does."""
    from archviz.spec.blocks import Expander

    expanded: list[str] = []
    real = Expander._expand
    monkeypatch.setattr(Expander, "_expand", lambda self, *a: expanded.append(a[2]) or real(self, *a))
    path = tmp_path / "big.yaml"
    path.write_text("name: x\ninput: [64]\nblocks:\n" + STATIONARY
                    + "layers:\n  - {name: u, block: b, repeat: 100000}\n"
                    "  - {name: bad, op: conv, out: 8, kernel: 3}\n")
    t = time.perf_counter()
    r = runner.invoke(app, ["shapes", str(path)])
    assert r.exit_code == 2 and "big.yaml:9:" in r.output, r.output
    assert "bad: conv needs a (C, H, W) input, got (64,)" in r.output, r.output
    assert expanded == ["u.0.", "u.99999."]          # 200,000 layers before: ~5 s
    assert time.perf_counter() - t < 2.0              # a loose bound
    expanded.clear()                                  # the Python API reads the file the same way
    with pytest.raises(archviz.ShapeError, match="conv needs a"):
        archviz.analyze(str(path))
    assert expanded == ["u.0.", "u.99999."]


@pytest.mark.parametrize("layers", [
    "  - {name: u, block: b, repeat: 5}\n  - {name: bad, op: conv, out: 8, kernel: 3}\n",   # after
    "  - {name: u, block: shrink, repeat: 5}\n",                                # in the first copy
    "  - {name: u, block: b, repeat: 4}\n  - {name: v, block: b, repeat: 3}\n"
    "  - {name: w, op: conv, out: 8, kernel: 3, from: u.2.fc}\n",               # reads a copy left out
    "  - {name: up, op: reshape, shape: [1, 8, 8]}\n  - {name: u, block: shrink, repeat: 5}\n",  # shrinks
    "  - {name: u, block: grow, repeat: 5, args: {out: 32}}\n  - {name: bad, op: conv, out: 8, kernel: 3}\n",
])
def test_the_preview_reports_what_the_whole_network_reports(
        monkeypatch: pytest.MonkeyPatch, layers: str) -> None:
    """The error found from the first and last copies is the whole network's, word for word; where
    that is not certain (a use that changes the shape, a layer reading a copy between) the whole
    network is expanded, as without the preview."""
    from importlib import import_module

    from archviz.core.analysis import analyze, preflight

    text = "name: x\ninput: [64]\nblocks:\n" + STATIONARY + "layers:\n" + layers

    def error(check: object) -> str:
        with pytest.raises(ArchvizError) as info:
            analyze(loads(text, "h.yaml", preflight=check))  # type: ignore[arg-type]
        return info.value.format()

    whole = error(None)
    monkeypatch.setattr(import_module("archviz.spec.load"), "PREVIEW_LAYERS", 0)   # preview every use
    assert error(preflight()) == whole


def test_nested_repeats_are_refused_before_expanding() -> None:
    blocks = ("blocks:\n  inner: {layers: [{name: r, op: relu}, {name: s, op: relu, if: false}]}\n"
              "  outer: {layers: [{name: i, block: inner, repeat: 100000}]}\n")
    t = time.perf_counter()
    refused(HEAD + blocks + "layers: [{name: u, block: outer, repeat: 100000}]\n",
            "block outer expands to at least 10,000,000,000 layers, more than the limit of 1,000,000")
    assert time.perf_counter() - t < 1.0
    spec = loads(HEAD + blocks.replace("100000", "3") + "layers: [{name: u, block: outer, repeat: 2}]\n")
    assert len(spec.layers) == 6   # the `if: false` layer is left out, as the lower bound assumed


# ---- the memory guard through the CLI, and on a GPU --------------------------------------------
def test_bench_takes_max_memory_and_refuses_rows_before_allocating(tmp_path: Path) -> None:
    import json

    def rows(limit: str, code: int) -> list[tuple[int, str, str]]:
        out = tmp_path / f"{limit}.json"
        r = runner.invoke(app, ["bench", "lenet5", "--device", "cpu", "--batch", "1,4", "--mode", "infer",
                                "--warmup", "0", "--iters", "1", "--max-memory", limit, "--json", str(out)])
        assert r.exit_code == code, r.output
        return [(x["batch"], x["status"], x.get("note") or "") for x in json.loads(out.read_text())["rows"]]

    # lenet5 needs (61,706 + 15,746 × batch) × 4 bytes: 302.5 KiB at batch 1, 488.5 KiB at 4
    refused = rows("300K", 1)   # no row ran: exit 1
    assert [(b, s) for b, s, _ in refused] == [(1, "oom"), (4, "oom")]
    assert refused[0][2] == ("out of memory at batch 1: needs 302.5 KiB, more than --max-memory"
                             " (300.0 KiB); refused before allocating")
    some = rows("400K", 0)
    assert [(b, s) for b, s, _ in some] == [(1, "ok"), (4, "oom")]


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_the_guard_reads_gpu_memory_for_cuda_runs() -> None:
    import torch

    from archviz.core.analysis import analyze
    from archviz.runtime.compile import ModelTooLarge, available_memory, check_memory

    free, total = torch.cuda.mem_get_info()
    assert 0 < available_memory("cuda") <= total and abs(available_memory("cuda") - free) < total // 10
    a = analyze(load("alexnet"))
    check_memory(a, batch=128, device="cuda")          # AlexNet at batch 128 fits any recent GPU
    with pytest.raises(ModelTooLarge, match="80% of the available GPU memory"):
        check_memory(a, batch=10**7, device="cuda")


@pytest.mark.parametrize("text,may", [
    ("source: Krizhevsky, Sutskever & Hinton\n", False), ("a: 1 &\nb: 2\n", False), ("x: [&, 1]\n", False),
    ("k: &k [3, 3]\n", True), ("[&a 1, *a]\n", True), ("{a: 1,&b c: 2}\n", True), ("R&D\n", True),
])
def test_an_anchor_is_an_ampersand_before_an_anchor_character(text: str, may: bool) -> None:
    """Only a text that may hold an anchor gets the alias walk; prose's `&` does not (AlexNet's
    source line), and every real anchor does (YAML: `&` then a non-space, non-flow character)."""
    from archviz.spec.load import _may_anchor

    assert _may_anchor(text) is may
    if may and text != "R&D\n":
        assert "&" in text and yaml.compose(text) is not None   # it is YAML with an anchor
