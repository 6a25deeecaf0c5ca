"""Regenerate the figures the README and docs/ show, from the repository root:

    python docs/make_figures.py            # draw and plot figures, then the view screenshots
    python docs/make_figures.py --no-view  # draw and plot figures only

Each figure is made by the very command the docs print above it (COMMANDS), through the CLI,
and the "wrote docs/img/NAME (N bytes)" lines of docs/*.md are rewritten to the new sizes.
The `archviz view` screenshots (docs/view_screenshots.py) follow when playwright and a chromium
are installed; without them the script says so and leaves those images as they are.
tests/test_figures_layout.py checks that the README's figures fit a page and that every
command here is one the docs show.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from typer.testing import CliRunner

from archviz.cli import app

ROOT = Path(__file__).resolve().parent.parent
# the commands as README.md and docs/*.md print them (run from the repository root)
COMMANDS = (
    "archviz draw alexnet --fold -o docs/img/alexnet.png",
    "archviz draw alexnet --fold -o docs/img/alexnet.svg",
    "archviz draw alexnet --split-gpus --fold -o docs/img/alexnet-split.png",
    "archviz draw alexnet --split-gpus --fold -o docs/img/alexnet-split.svg",
    "archviz plot alexnet -o docs/img/alexnet-counts.png",
    "archviz plot alexnet --kind blocks -o docs/img/alexnet-blocks.png",
    "archviz plot alexnet --kind blocks --split-gpus -o docs/img/alexnet-blocks-split.png",
    "archviz plot alexnet --kind memory --device gtx580 --gpus 1 -o docs/img/alexnet-memory.png",
    "archviz plot gpt2 --kind fit --device gtx580,v100,a100,h100 --seq 1024 -o docs/img/gpt2-fit.png",
)
WROTE = re.compile(r"^wrote (docs/img/[\w.-]+) \([\d,]+ bytes\)$", re.MULTILINE)


def run(command: str) -> None:
    args = shlex.split(command)[1:]
    r = CliRunner().invoke(app, args)
    if r.exit_code != 0:
        raise SystemExit(f"{command}: exit {r.exit_code}\n{r.output}")
    print(r.output.strip().splitlines()[-1])


def rewrite_sizes() -> None:
    """Each "wrote docs/img/X (N bytes)" line in docs/*.md and README.md: X's size now."""
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = md.read_text(encoding="utf-8")
        new = WROTE.sub(lambda m: f"wrote {m[1]} ({(ROOT / m[1]).stat().st_size:,} bytes)", text)
        if new != text:
            md.write_text(new, encoding="utf-8")
            print(f"updated the file sizes quoted in {md.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    import os

    os.chdir(ROOT)
    for command in COMMANDS:
        run(command)
    rewrite_sizes()
    if "--no-view" in argv:
        return 0
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("playwright is not installed: the view screenshots were left as they are")
        return 0
    if not any(map(shutil.which, (os.environ.get("ARCHVIZ_CHROMIUM") or "chromium", "chromium-browser"))):
        print("no chromium found: the view screenshots were left as they are")
        return 0
    sys.path.insert(0, str(ROOT / "docs"))
    import view_screenshots

    view_screenshots.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
