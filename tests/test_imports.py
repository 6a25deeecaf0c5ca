"""`archviz shapes` must start fast: the CLI module pulls in none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

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
