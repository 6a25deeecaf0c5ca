"""archviz/core is pure (docs/development.md): no torch, no subprocess, no NVML, no environment,
no /proc. Asking the machine what it has is archviz/runtime/probe.py's work. Read from the
source's syntax tree, so an import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

CORE = sorted((ROOT / "archviz" / "core").glob("*.py"))
FORBIDDEN = {"torch", "subprocess", "pynvml", "shutil", "ctypes", "platform", "resource"}


def _imports(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read the environment: ``os.environ``, ``os.getenv``, ``from os import environ``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {a.name for a in node.names} & {"environ", "getenv", "environb"}:
            lines.append(node.lineno)
    return lines


def _proc_paths(tree: ast.AST) -> list[int]:
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith(("/proc/", "/sys/", "/dev/"))]


def test_core_has_modules() -> None:
    assert {p.name for p in CORE} >= {"analysis.py", "check.py", "cost.py", "devices.py", "graph.py"}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    assert not _imports(tree) & FORBIDDEN, f"{path.name} imports {sorted(_imports(tree) & FORBIDDEN)}"
    assert not _environment_reads(tree), f"{path.name} reads os.environ: lines {_environment_reads(tree)}"
    assert not _proc_paths(tree), f"{path.name} reads the machine's files at lines {_proc_paths(tree)}"


def test_the_checker_sees_what_it_forbids() -> None:
    code = ("import os\ndef f():\n    import torch.cuda\n    from subprocess import run\n"
            "    return os.environ.get('X'), open('/proc/meminfo')\n")
    tree = ast.parse(code)
    assert _imports(tree) & FORBIDDEN == {"torch", "subprocess"}
    assert _environment_reads(tree) == [5] and _proc_paths(tree) == [5]
