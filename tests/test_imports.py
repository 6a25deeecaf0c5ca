"""`archviz shapes` must start fast: the CLI module pulls in none of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "graphviz", "matplotlib", "numpy")
# what `archviz shapes` never needs: the heavy libraries, and archviz's bench, cost, import,
# drawing and checking modules (the commands that use them import them in their bodies)
NOT_FOR_SHAPES = (*HEAVY, "torchinfo", "onnx", "archviz.runtime", "archviz.api", "archviz.cli.bench",
                  "archviz.cli.cost", "archviz.cli.importer", "archviz.cli.render", "archviz.cli.view",
                  "archviz.cli.model", "archviz.cli.compare", "archviz.cli.reference", "archviz.cli.choices",
                  "archviz.core.cost",
                  "archviz.core.devices",
                  "archviz.core.flops", "archviz.core.check", "archviz.core.diff", "archviz.render.cost_",
                  "archviz.render.bench_", "archviz.render.dot", "archviz.render.plots",
                  "archviz.render.html", "archviz.render.views", "archviz.results", "archviz.spec.write",
                  "archviz.spec.schema",
                  "fractions")   # loaded when a receptive field or an inexact division needs a Fraction


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_cli_leaves_heavy_libraries_out() -> None:
    loaded = _loaded_after("import archviz.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_shapes_and_check_run_without_heavy_libraries() -> None:
    run = ("from typer.testing import CliRunner; from archviz.cli import app; "
           "r = CliRunner().invoke(app, ['shapes', 'alexnet', '-f', 'json']); assert r.exit_code == 0; "
           "r = CliRunner().invoke(app, ['check', 'lenet5']); assert r.exit_code == 1")
    loaded = _loaded_after(run)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# ---- issue 26: a spec's error is reported before torch is imported, on every command -------------
BROKEN = {
    "yaml": "name: broken\ninput: [3, 8, 8\nlayers: [{name: a, op: relu}]\n",
    "field": "name: broken\ninput: [3, 8, oops]\nlayers: [{name: a, op: relu}]\n",
    "shape": "name: broken\ninput: [3, 8, 8]\nlayers:\n  - {name: a, op: conv, out: 4, kernel: 100}\n",
}
COMMANDS = [["shapes", "F"], ["check", "F"], ["cost", "F"], ["cost", "F", "--device", "cpu"],
            ["draw", "F"], ["draw", "F", "-o", "OUT.html"], ["plot", "F"], ["plot", "F", "--kind", "memory"],
            ["plot", "F", "--kind", "blocks"], ["view", "F"], ["view", "lenet5", "--vs", "F"],
            ["verify", "F"], ["export", "F"], ["export", "F", "-o", "OUT.onnx"],
            ["export", "F", "-o", "OUT.pt"], ["export", "F", "--split-gpus"], ["bench", "F"],
            ["bench", "F", "--device", "cpu", "--mode", "train"], ["bench", "F", "--ddp", "2"],
            ["diff", "F", "lenet5"], ["diff", "lenet5", "F"]]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_spec_error_is_reported_before_torch_is_imported(tmp_path: Path, kind: str) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN[kind])
    runs = [[str(spec) if a == "F" else a.replace("OUT", str(tmp_path / "out")) for a in c]
            for c in COMMANDS]
    code = f"""
import json, sys
from typer.testing import CliRunner
from archviz.cli import app
seen = []
for args in {runs!r}:
    r = CliRunner().invoke(app, args)
    seen.append([" ".join(args[:1] + args[2:]), r.exit_code, "torch" in sys.modules, r.output[-300:]])
print(json.dumps(seen))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command, exit_code, torch_loaded, output in json.loads(out.stdout):
        assert exit_code == 2, (command, output)
        assert "broken.yaml:" in output and ("line 2" in output or ":2:" in output or ":4:" in output), \
            (command, output)
        assert not torch_loaded, f"`archviz {command}` imported torch before reporting the spec's error"
def test_archviz_shapes_process_imports_only_what_it_needs() -> None:
    """The whole `archviz shapes` process, as the console script runs it (archviz.cli.app.main):
    no heavy library, none of the bench, cost, import or drawing modules (issue 26), and of the
    command modules only its own."""
    code = ("import sys, atexit; atexit.register(lambda: sys.stderr.write('MODULES '"
            " + ' '.join(sorted(sys.modules)))); sys.argv = ['archviz', 'shapes', 'alexnet'];"
            " from archviz.cli.app import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "conv1" in out.stdout
    loaded = set(out.stderr.rsplit("MODULES ", 1)[1].split())
    assert "archviz.cli.inspect" in loaded  # the one command module: the one that runs
    bad = sorted(m for m in loaded if any(m == p or m.startswith(p if p.endswith("_") else p + ".")
                                           for p in NOT_FOR_SHAPES))
    assert not bad, bad


def test_one_command_app_has_that_command_only() -> None:
    """main() hands typer the one command it runs (typer converts each registered command's
    signature at start-up, and each command's module is imported when registered); help and
    unknown names get the whole app, whose command list is the table's."""
    code = ("import sys; from archviz.cli.app import COMMANDS, NAMES, _app_for, app; "
            "one = _app_for(['--debug', 'shapes', 'alexnet']); "
            "print([c.name for c in one.registered_commands], one.registered_callback.callback is "
            "app.registered_callback.callback, 'archviz.cli.bench' in sys.modules, "
            "[c.name for c in app.registered_commands] == list(NAMES), 'archviz.cli.bench' in sys.modules, "
            "all(_app_for(a) is app for a in ([], ['--help'], ['-h', 'shapes'], ['shpes'], ['--version'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['shapes']", "True", "False", "True", "True", "True"], out.stdout
    from archviz.cli.app import COMMANDS, NAMES

    assert len(NAMES) == len(set(NAMES)) == len(COMMANDS) == 13


def test_help_lists_every_command_with_its_summary() -> None:
    """`archviz --help` imports every command module and lists each with its docstring's summary."""
    from typer.testing import CliRunner

    from archviz.cli.app import NAMES, app, command, summary

    out = CliRunner().invoke(app, ["--help"], terminal_width=100).output
    for name in NAMES:
        first = summary(name, command(name)[0])
        assert f" {name} " in out and first[:40] in out.replace("\n", " "), (name, first)


def test_the_1d_and_3d_params_are_made_on_first_use() -> None:
    """Importing the conv and pool families makes none of their 1-d/3-d Params dataclasses
    (ParamsOnUse); reading one makes it once, shared by max and avg, with its fields parsed."""
    code = ("from dataclasses import fields, is_dataclass; from archviz.ops import OPS, conv, pool;"
            " made = lambda: [f.cache_info().currsize for f in"
            " (conv._conv_nd_params, pool._pool_nd_params, pool._adaptive_params)];"
            " print(made(), 'maxpool1d' in OPS and 'conv3d' in OPS, made());"
            " P = OPS['maxpool1d'].Params;"
            " print(made(), P is OPS['avgpool1d'].Params is OPS['maxpool1d'].Params,"
            " is_dataclass(P), P.__name__, list(OPS['maxpool1d'].fields) == [f.name for f in fields(P)],"
            " OPS['conv3d'].make({'out': 4, 'kernel': (3, 3, 3)}).kernel, made())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[0, 0, 0] True [0, 0, 0]",
                                          "[0, 1, 0] True True Pool1dParams True (3, 3, 3) [1, 1, 0]"]


def test_archviz_shapes_makes_the_params_classes_of_its_ops_only() -> None:
    """The families AlexNet's ops live in define 20 params classes; `archviz shapes` makes the
    dataclasses of the six its layers use (Settings: made on first use)."""
    code = ("import sys, atexit; from archviz.ops.fields import Settings;"
            " atexit.register(lambda: sys.stderr.write('MADE ' + ' '.join(sorted(c.__name__ for c in"
            " Settings.__subclasses__() if '__dataclass_fields__' in c.__dict__))));"
            " sys.argv = ['archviz', 'shapes', 'alexnet']; from archviz.cli.app import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    made = out.stderr.rsplit("MADE ", 1)[1].split()
    assert made == ["ConvParams", "DropoutParams", "FlattenParams", "LRNParams", "LinearParams", "PoolParams"]


def test_a_settings_class_is_a_frozen_keyword_only_dataclass() -> None:
    import dataclasses

    from archviz.ops.fields import FloatField, Settings, param

    class Made(Settings):
        """Two settings."""
        a: float = param(FloatField())
        b: float = param(FloatField(), 2.0)

    assert "__dataclass_fields__" not in Made.__dict__   # not yet: made on first use
    assert dataclasses.is_dataclass(Made) and [f.name for f in dataclasses.fields(Made)] == ["a", "b"]
    x = Made(a=1.0)
    assert x == Made(a=1.0, b=2.0) != Made(a=1.0, b=3.0) and hash(x) == hash(Made(a=1.0))
    assert repr(x) == "test_a_settings_class_is_a_frozen_keyword_only_dataclass.<locals>.Made(a=1.0, b=2.0)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.a = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Made(1.0)  # keyword-only

    class More(Made):
        """A subclass: made at once, with its base's fields and its own."""
        c: float = param(FloatField(), 0.0)

    assert [f.name for f in dataclasses.fields(More)] == ["a", "b", "c"] and More(a=1.0).c == 0.0
