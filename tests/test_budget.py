"""The line budget and the import graph (issue 20): no module over ~600 lines, no function over ~80
(``python scripts/budget.py`` prints the table), and no import circle among archviz's modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "archviz"


def test_the_line_budget_holds() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "budget.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "modules over 600 lines: 0" in r.stdout and "functions over 80 lines: 0" in r.stdout


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """The archviz modules ``path`` imports, at module level or inside its functions (a lazy import
    is still a dependency), leaving out imports under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                out |= {a.name for a in sub.names if a.name.startswith("archviz")}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    parent = package.split(".")[: len(package.split(".")) - sub.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                if base.startswith("archviz"):
                    out.add(base)
                    out |= {f"{base}.{a.name}" for a in sub.names}
    return out


def test_no_import_circles() -> None:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    # a package's __init__ is imported before its modules: an edge from a submodule to its own
    # package is not a circle of the code's making, so it is left out
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n] if n in path else [m, n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles[:5]
