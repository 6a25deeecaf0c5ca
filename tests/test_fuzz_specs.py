"""Property test (issue 15, point 3): random YAML documents over the spec's keys, with hostile
values where scalars belong (lists and mappings, huge and negative integers, floats, NaN/inf,
unicode, control characters, aliases, deep nesting), either load and analyse — and then render
in every text format, every Markdown writer (shapes, check, diff, cost), the cost estimate, the
figures' data and the HTML view's data — or raise archviz's own error, located where it is a spec
error. Never a traceback: through the Python API, and through the CLI for every command (view,
cost, plot and each --format markdown among them), each command with its own sample.

CI runs a bounded number of examples (derandomised, ~30 s in all). A longer run is one command::

    ARCHVIZ_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_specs.py

(the CLI samples take a tenth of that count, shared among the commands, at least 2 each).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.errors import ArchvizError, SpecError
from archviz.ops import OPS
from archviz.render import tables
from archviz.spec import load, loads

EXAMPLES = int(os.environ.get("ARCHVIZ_FUZZ_EXAMPLES", "250"))
CLI_EXAMPLES = max(4, EXAMPLES // 10)
FIELDS = sorted({f for kind in OPS.values() for f in kind.fields})
OTHER_TOP = ["format", "source", "description", "gpus", "blocks", "claims", "nonsense"]

huge = st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63, 10**12, 10**400, -(10**30)])
scalars = st.one_of(
    st.integers(-3, 12), huge, st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["conv", "relu", "linear", "same", "valid", "input", "a", "[/x]", "\x1b[31m",
                     "a\nb", "60M ±5%", "5x5x48", "$out", "$in"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["a", "b", *FIELDS]), inner, max_size=3),
                      max_leaves=8)


@st.composite
def deep(draw: Any) -> Any:
    """A value wrapped in many lists (the YAML nests as deep as the count)."""
    v = draw(scalars)
    for _ in range(draw(st.integers(30, 120))):
        v = [v]
    return v


def sometimes(usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int) -> Any:
    """``rare`` about one time in ``one_in``, else ``usual`` (so that some documents load)."""
    return st.integers(0, 9999).flatmap(lambda n: rare if n % one_in == one_in - 1 else usual)


hostile = sometimes(values, deep(), 12)
small_ok = st.one_of(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=2, max_size=2))
mostly_ok = sometimes(small_ok, hostile, 4)


@st.composite
def layer(draw: Any, i: int) -> dict[str, Any]:
    op = draw(sometimes(st.sampled_from(sorted(OPS)), hostile, 6))
    out: dict[str, Any] = {"name": draw(sometimes(st.just(f"l{i}"), hostile, 6)), "op": op}
    own = list(OPS[op].fields) if isinstance(op, str) and op in OPS else []
    anything = st.sampled_from([*FIELDS, "from", "expect", "note", "block", "repeat"])
    keys = sometimes(st.sampled_from(own), anything, 4) if own else anything
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        out[key] = draw(mostly_ok)
    return out


@st.composite
def document(draw: Any) -> str:
    doc: dict[str, Any] = {"name": draw(sometimes(st.just("net"), hostile, 4)),
                           "input": draw(sometimes(st.sampled_from([[3, 16, 16], [8]]), hostile, 4)),
                           "layers": [draw(layer(i)) for i in range(draw(st.integers(1, 4)))]}
    extra = draw(sometimes(st.just(0), st.integers(1, 2), 3))
    for key in draw(st.lists(st.sampled_from(OTHER_TOP), min_size=extra, max_size=extra, unique=True)):
        doc[key] = draw(hostile)
    layers = doc["layers"]
    if draw(st.booleans()) and isinstance(layers, list) and layers and isinstance(layers[0], dict):
        shared = draw(values)   # a shared object: safe_dump writes an anchor and aliases to it
        layers[0]["note"] = shared
        doc.setdefault("claims", {"params": shared})
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans()))


LENET = load("lenet5")


def _every_writer(sp: Any, a: Any) -> None:
    """Every pure writer of what the commands show: text formats, Markdown, cost, figure data."""
    from archviz.core.check import run_checks
    from archviz.core.cost import Settings, estimate, target
    from archviz.core.diff import diff
    from archviz.render import blocks, cost_view, html, plots, views

    for write in tables.SHAPES_WRITERS.values():
        write(a)
    tables.plain_text(tables.ShapesView(a), width=160)
    tables.checks_markdown(run_checks(a))
    d = diff(a, analyze(LENET))
    views.diff_markdown(d)
    views.diff_rows(d)
    c = estimate(a, Settings(batch=2), target("h100"))
    for write in cost_view.WRITERS.values():
        write(c)
    plots.counts_data(a)
    try:
        blocks.blocks_data(a)
    except ArchvizError:
        pass   # a branching network has no block figure: refused as such
    html.network_data(a)


# documents that load (1 in 30 of the hostile ones does), with hostile names and text: the paths
# that render reach every writer with them
texts = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=16),
    st.sampled_from(["cost $5 and $6", "$\\frac$", "<script>alert(1)</script>", "[x](javascript:y)",
                     "a | b", "Net [/x] [bold]", "*b* _i_ `c` #h", "a\u202eb"]))


@st.composite
def loadable(draw: Any) -> str:
    conv = {"name": "conv1", "op": "conv", "out": draw(st.integers(1, 8)), "kernel": draw(st.integers(1, 3))}
    layers = [conv, {"name": "relu1", "op": "relu"}, {"name": "flat", "op": "flatten"},
              {"name": "fc", "op": "linear", "out": draw(st.integers(1, 10))}]
    doc: dict[str, Any] = {"name": draw(texts), "input": [3, 8, 8], "layers": layers}
    if draw(st.booleans()):
        doc["gpus"] = draw(st.sampled_from([2, 4, 9]))   # 9: more GPUs than lanes are drawn
    if draw(st.booleans()):
        doc["source"] = draw(texts)
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))


def _survives(text: str) -> None:
    try:
        sp = loads(text, "fuzz.yaml")
        _every_writer(sp, analyze(sp))
    except ArchvizError as exc:
        message = exc.format()
        assert message
        if isinstance(exc, SpecError) and not message.startswith("input"):
            assert exc.loc is not None or "fuzz.yaml" in message or exc.message, message


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(document())
def test_load_and_analyse_never_raise_anything_else(text: str) -> None:
    _survives(text)


@settings(SETTINGS, max_examples=max(10, EXAMPLES // 5))
@given(loadable())
def test_hostile_text_in_loadable_specs_reaches_every_writer(text: str) -> None:
    _survives(text)


COMMANDS: list[list[str]] = [["shapes"], ["shapes", "-f", "markdown"], ["check"],
                             ["check", "-f", "markdown"], ["draw", "-f", "dot", "-o", "{out}.dot"],
                             ["diff", "lenet5"], ["diff", "lenet5", "-f", "markdown"],
                             ["verify"], ["verify", "-f", "markdown"], ["export", "-o", "{out}.py"],
                             ["cost"], ["cost", "-f", "markdown"], ["view", "-o", "{out}.html"],
                             ["plot", "-o", "{out}.png"], ["plot", "--kind", "blocks", "-o", "{out}.png"],
                             ["plot", "--kind", "memory", "-o", "{out}.png"],
                             ["bench", "--device", "cpu", "--batch", "1", "--mode", "infer",
                              "--warmup", "0", "--iters", "1"]]
PER_COMMAND = max(3, CLI_EXAMPLES // len(COMMANDS))


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[" ".join(c[:3]) for c in COMMANDS])
@settings(SETTINGS, max_examples=PER_COMMAND)
@given(data=st.data())
def test_every_command_exits_0_1_or_2_without_a_traceback(tmp_path_factory: Any, index: int,
                                                          data: st.DataObject) -> None:
    data.draw(st.binary(min_size=index, max_size=index))   # each command its own documents
    text = data.draw(sometimes(loadable(), document(), 2))
    folder: Path = tmp_path_factory.mktemp("fuzz")
    spec = folder / "fuzz.yaml"
    spec.write_text(text, encoding="utf-8")
    args = [a.format(out=folder / "out") for a in COMMANDS[index]]
    args = [args[0], str(spec), *args[1:]]          # diff: the fuzzed spec against lenet5
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
