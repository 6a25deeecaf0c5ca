"""The line budget (issue 20; tinygrad's sz.py is the model): code lines per module and per folder
of the archviz package, the modules over budget and the longest functions.

    python scripts/budget.py            # the table; exit 1 when a module or function is over budget
    python scripts/budget.py --top 20   # the 20 longest functions
    python scripts/budget.py --root path/to/archviz

A code line is a line that is neither blank nor only a comment; docstrings count (they are the
docs). Budgets: a module at most MODULE_LINES lines in all, a function at most FUNCTION_LINES.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

MODULE_LINES = 600      # a module's physical lines
FUNCTION_LINES = 80     # a function's physical lines, decorators and docstring included
ROOT = Path(__file__).resolve().parent.parent / "archviz"


def code_lines(path: Path) -> int:
    """Lines that hold a token other than a comment (blank and comment-only lines left out)."""
    lines: set[int] = set()
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING,
                            tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
                continue
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines)


def functions(path: Path) -> list[tuple[int, str, int]]:
    """(physical lines, qualified name, first line) of every function and method in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                out.append((child.end_lineno - first + 1, f"{prefix}{child.name}", child.lineno))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
    walk(tree, "")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--top", type=int, default=10, help="how many of the longest functions to list")
    args = ap.parse_args(argv)
    root: Path = args.root
    files = sorted(root.rglob("*.py"))
    folders: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    over_modules, funcs = [], []
    print(f"{'module':44} {'lines':>6} {'code':>6}")
    for path in files:
        rel = path.relative_to(root.parent)
        total = len(path.read_text(encoding="utf-8").splitlines())
        code = code_lines(path)
        folder = folders[str(rel.parent)]
        folder[0] += 1
        folder[1] += total
        folder[2] += code
        mark = "  over" if total > MODULE_LINES else ""
        if mark:
            over_modules.append(str(rel))
        print(f"{str(rel):44} {total:6} {code:6}{mark}")
        funcs += [(n, f"{rel}:{line} {name}") for n, name, line in functions(path)]
    print(f"\n{'folder':24} {'modules':>8} {'lines':>7} {'code':>7}")
    for name, (count, total, code) in sorted(folders.items()):
        print(f"{name:24} {count:8} {total:7} {code:7}")
    print(f"{'all':24} {len(files):8} {sum(f[1] for f in folders.values()):7}"
          f" {sum(f[2] for f in folders.values()):7}")
    funcs.sort(reverse=True)
    over_functions = [f for f in funcs if f[0] > FUNCTION_LINES]
    print(f"\nlongest functions (budget {FUNCTION_LINES} lines):")
    for n, where in funcs[:args.top]:
        print(f"  {n:4}  {where}{'  over' if n > FUNCTION_LINES else ''}")
    print(f"\nmodules over {MODULE_LINES} lines: {len(over_modules)}"
          + (f" ({', '.join(over_modules)})" if over_modules else ""))
    print(f"functions over {FUNCTION_LINES} lines: {len(over_functions)}")
    return 1 if over_modules or over_functions else 0


if __name__ == "__main__":
    sys.exit(main())
