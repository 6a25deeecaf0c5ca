"""`archviz shapes` must start fast: the CLI module pulls in none of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "graphviz", "matplotlib", "numpy")


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
