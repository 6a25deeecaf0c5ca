"""``archviz view``: one self-contained, offline HTML file to explore a network (or two compared).

graphviz is imported inside the command body only (through archviz.render.html).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ArchvizError
from ..limits import MAX_LANES
from ..render.text import safe
from . import common
from .common import DEFAULT_SPEC, SpecArg, console, guarded


def html_target(spec: str, output: Optional[str], tag: str = "") -> Path:
    """``-o`` (must end in .html or .htm), else ``<spec-stem><tag>.html`` here; its folder must exist."""
    from ..spec.bundled import resolve

    if output is None:
        return Path(f"{resolve(spec).stem}{tag}.html")
    path = Path(output)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ArchvizError(f"{output}: archviz view writes HTML: use a .html file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ArchvizError(f"-o {output}: folder {folder} does not exist")
    return path


def write_view(path: Path, text: str, open_it: bool) -> None:
    from ..io import write_atomic

    write_atomic(path, text)
    console(stderr=True).print(f"wrote {safe(path)} ({len(text.encode('utf-8')):,} bytes)")
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@guarded
def view(
    spec: SpecArg = DEFAULT_SPEC,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="The .html file to write. Default: <spec>.html "
                               "(<spec>-vs-<other>.html with --vs) in the current directory.")] = None,
    vs: Annotated[Optional[str], typer.Option(
        "--vs", help="A second spec: both side by side, layers paired as `archviz diff` pairs "
                     "them, added/removed/changed layers coloured.")] = None,
    split_gpus: Annotated[bool, typer.Option(
        "--split-gpus", help="Open on the one-lane-per-GPU view (the spec's gpus, 2 when absent).")] = False,
    times: Annotated[Optional[str], typer.Option(
        "--times", help="Per-layer times measured by `archviz bench --layers --format json -o FILE`:"
                        " the view can colour each layer by its share of the time.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the file in the web browser.")] = False,
) -> None:
    """Write one self-contained HTML file to explore a network: works offline, from file://.

    The page shows the diagram of `archviz draw` (same layout) with pan and zoom. Click a
    layer for its settings, shape arithmetic, counts, receptive field, GPU lane and check
    claims; `/` searches by name or op, `f` fits, `Esc` closes the panel. Buttons toggle the
    shapes on edges, the GPU lanes (specs with gpus:) and folded block uses (specs with blocks:).
    Needs Graphviz's `dot`, as `archviz draw` does.

    Examples:

      archviz view                                   # alexnet.html in the current directory

      archviz view resnet50 -o resnet50.html --open

      archviz view alexnet --vs alexnet-torchvision  # the two compared, side by side
    """
    from ..render import html

    # read through the module, as every command does (one load_spec, also for tests that replace it)
    sp = common.load_spec(spec)   # both specs protected: -o cannot replace either
    other = common.load_spec(vs) if vs is not None else None
    tag = ""
    if vs is not None:
        from ..spec.bundled import resolve

        tag = f"-vs-{resolve(vs).stem}"
    path = html_target(spec, output, tag)
    page = html.view(sp, other, split=split_gpus, times=times).html
    write_view(path, page, open_)
    if other is None and sp.gpus and sp.gpus > MAX_LANES:
        console(stderr=True).print(f"note: {sp.gpus} GPUs: the page has no lane view (lanes are drawn"
                                   f" for {MAX_LANES} GPUs or fewer); each layer's panel lists every"
                                   " GPU's share")
