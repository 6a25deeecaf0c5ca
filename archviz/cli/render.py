"""``archviz draw`` (Graphviz diagrams) and ``archviz plot`` (matplotlib charts).

graphviz and matplotlib are imported inside the command bodies only (through archviz.render).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from ..render.text import safe
from .choices import (
    DrawFormat,
    LoweringOpt,
    Optimizer,
    PlotFormat,
    PlotKind,
    RankDir,
    StepMode,
    lowering,
)
from .common import (
    DEFAULT_SPEC,
    SpecArg,
    console,
    fail,
    guarded,
)
from .cost import Precision

DRAW_FORMATS = tuple(f.value for f in DrawFormat)
COST = "Cost (--kind memory and fit)"
PLOT_FORMATS = tuple(f.value for f in PlotFormat)


# image formats archviz does not write: with one of these suffixes --format cannot override
IMAGE_SUFFIXES = {"jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "eps", "ps"}


def target(spec_path: Path, output: Optional[str], fmt: Optional[str], tag: str,
           formats: tuple[str, ...], default: str) -> tuple[Path, str]:
    """The output file and its format: ``-o``'s suffix, else ``--format``, else ``default``.

    Without ``-o`` the file is ``<spec-stem><tag>.<format>`` in the current directory.
    """
    if fmt is not None and fmt.lower() not in formats:
        raise ArchvizError(f"--format: expected one of {', '.join(formats)}, got {fmt!r}")
    fmt = fmt.lower() if fmt else None
    if output is None:
        fmt = fmt or default
        return Path(f"{spec_path.stem}{tag}.{fmt}"), fmt
    path = Path(output)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in formats:
        if fmt and fmt != suffix:
            raise ArchvizError(f"--format {fmt} does not match the file name {output} (.{suffix})")
        return path, suffix
    if fmt and suffix in IMAGE_SUFFIXES:  # x.jpg with --format png would be a PNG named .jpg
        raise ArchvizError(f"--format {fmt} does not match the file name {output} (.{suffix}):"
                           f" archviz writes {', '.join(formats)}")
    if fmt:
        return path, fmt
    raise ArchvizError(f"{output}: cannot tell the format from the suffix"
                       f" (use .{', .'.join(formats)} or --format)")


def _load(spec: str, split: bool) -> tuple[Any, Path]:
    """(Analysis, resolved spec path); the split view uses the spec's gpus, 2 when absent."""
    from ..core.analysis import analyze
    from ..spec.bundled import resolve
    from .common import load_spec

    sp = load_spec(spec)
    gpus = (sp.gpus if sp.gpus and sp.gpus > 1 else 2) if split else None
    return analyze(sp, gpus=gpus), resolve(spec)


def _wrote(path: Path, data: bytes) -> None:
    from ..io import write_atomic

    write_atomic(path, data)
    if str(path) != "-":
        console(stderr=True).print(f"wrote {safe(path)} ({len(data):,} bytes)")


@guarded
def draw(
    spec: SpecArg = DEFAULT_SPEC,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Output file; its suffix picks the format. "
                               "Default: <spec>.svg (<spec>-split.svg with --split-gpus).")] = None,
    fmt: Annotated[Optional[DrawFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="svg, png, pdf or dot. Default: from -o's suffix, else svg.")] = None,
    rankdir: Annotated[Optional[RankDir], typer.Option(
        "--rankdir", case_sensitive=False,
        help="auto (the default), TB (top to bottom) or LR (left to right). auto estimates both "
             "drawings' sizes from the labels, the layer ranks and the lanes, and takes the one "
             "closer to square: top to bottom for every bundled spec, the split view included.")] = None,
    split_gpus: Annotated[bool, typer.Option(
        "--split-gpus", help="One lane per GPU (the spec's gpus, 2 when absent), as in the "
                             "AlexNet paper's Figure 2, with the traffic between GPUs.")] = False,
    fold: Annotated[bool, typer.Option(
        "--fold", help="Draw parameter-free activation, normalisation and dropout layers "
                       "inside the node of the layer they follow, and each block use as one "
                       "node labelled with its copy count (\"layer3 ×6 · bottleneck\").")] = False,
) -> None:
    """Draw the layer graph with Graphviz: each layer's name, op and settings, output shape.

    Nodes are coloured by op family (legend under the title); branches and merges are drawn
    as such. Without Graphviz's `dot` program the .dot source is still written (exit 1).

    Examples:

      archviz draw                                   # alexnet.svg in the current directory

      archviz draw alexnet --split-gpus --fold -o alexnet-split.png

      archviz draw specs/lenet5.yaml --rankdir LR -o lenet5.pdf   # a wide strip

      archviz draw alexnet -o alexnet.dot           # Graphviz source only

      archviz draw resnet18 -o resnet18.html        # the interactive view (see archviz view)
    """
    from ..render import dot

    a, spec_path = _load(spec, split_gpus)
    tag = "-split" if split_gpus else ""
    path, kind = target(spec_path, output, fmt and fmt.value, tag, DRAW_FORMATS, "svg")
    direction = rankdir.value.upper() if rankdir else dot.AUTO
    if kind == "html":  # the interactive view (archviz view), this layout first
        from ..render import html

        page = html.page(html.view_data(a, direction, fold, "split" if split_gpus else ""))
        _wrote(path, page.encode("utf-8"))
        return
    graph = dot.diagram(a, split_gpus, direction, fold)
    if fold and not split_gpus:  # each block use one node, "layer3 ×6 · bottleneck" (issue 25)
        from ..render.html import stages

        sts = stages(a)
        if sts:
            graph = dot.stage_graph(a, {n: st.name for st in sts for n in st.layers},
                                    {st.name: st.label() for st in sts}, direction, fold=True)
    try:
        data = dot.render(graph, kind)
    except dot.GraphvizMissing as exc:
        source = path.with_suffix(".dot")
        _wrote(source, dot.render(graph, "dot"))
        fail(f"{exc}: wrote only the DOT source, {source}\n{dot.INSTALL_HINT}\n"
             f"then: dot -T{kind} {source} -o {path}", 1)
    _wrote(path, data)


@guarded
def plot(
    spec: SpecArg = DEFAULT_SPEC,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Output file (.png, .svg or .pdf). "
                               "Default: <spec>-<kind>.png in the current directory.")] = None,
    kind: Annotated[PlotKind, typer.Option(
        "--kind", "-k", case_sensitive=False,
        help="counts: per-layer parameters, MACs and activation memory; "
             "blocks: the paper-style figure of 3-D boxes; "
             "memory: archviz cost's memory per layer and against the batch; "
             "fit: memory per GPU against one swept option, a line per device.")] = PlotKind.counts,
    log: Annotated[bool, typer.Option("--log", help="counts: logarithmic y axes.")] = False,
    split_gpus: Annotated[bool, typer.Option(
        "--split-gpus", help="blocks: one row per GPU (the spec's gpus, 2 when absent).")] = False,
    fmt: Annotated[Optional[PlotFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="png, svg or pdf. Default: from -o's suffix, else png.")] = None,
    device: Annotated[str, typer.Option(
        "--device", "-d", rich_help_panel=COST, help="h100, a100, 24GB, … (fit: a100,h100).")] = "h100",
    batch: Annotated[Optional[str], typer.Option(
        "--batch", "-b", rich_help_panel=COST, help="memory: 128; fit: 1,2,4 or 1..64 (default: to no fit).")
    ] = None,
    gpus: Annotated[Optional[str], typer.Option("--gpus", rich_help_panel=COST, help="tp·dp·pp.")] = None,
    seq: Annotated[Optional[str], typer.Option("--seq", rich_help_panel=COST, help="fit: tokens.")] = None,
    tp: Annotated[Optional[str], typer.Option(
        "--tp", rich_help_panel=COST, help="fit: tensor-parallel.")] = None,
    pp: Annotated[int, typer.Option("--pp", rich_help_panel=COST, help="fit: pipeline stages.")] = 1,
    zero: Annotated[Optional[str], typer.Option(
        "--zero", rich_help_panel=COST, help="fit: ZeRO 0–3.")] = None,
    precision: Annotated[Precision, typer.Option(
        "--precision", case_sensitive=False, rich_help_panel=COST)] = Precision.amp,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", case_sensitive=False, rich_help_panel=COST)] = Optimizer.momentum,
    mode: Annotated[StepMode, typer.Option(
        "--mode", case_sensitive=False, rich_help_panel=COST)] = StepMode.train,
    lowering_text: LoweringOpt = None,
) -> None:
    """Plot the counts per layer, the paper-style block figure, or the memory (matplotlib).

    Examples:

      archviz plot                      # alexnet-counts.png: compute in convs, parameters in FC

      archviz plot alexnet --log -o counts.svg

      archviz plot alexnet --kind blocks --split-gpus -o alexnet-blocks-split.png

      archviz plot alexnet --kind memory --device gtx580 --gpus 1

      archviz plot gpt2 --kind fit --device gtx580,v100,a100,h100 --seq 1024
    """
    from ..render import blocks, plots

    if split_gpus and kind is not PlotKind.blocks:
        raise ArchvizError("--split-gpus applies to --kind blocks")
    if log and kind is not PlotKind.counts:
        raise ArchvizError("--log applies to --kind counts")
    if kind is not PlotKind.fit and (seq or tp or zero or pp != 1 or precision is not Precision.amp
                                     or optimizer is not Optimizer.momentum or mode is not StepMode.train):
        raise ArchvizError("--seq, --tp, --pp, --zero, --precision, --optimizer and --mode apply to"
                           " --kind fit")
    tag = f"-{kind.value}" + ("-split" if split_gpus else "")
    a, spec_path = _load(spec, split_gpus)
    path, fmt_ = target(spec_path, output, fmt and fmt.value, tag, PLOT_FORMATS, "png")
    if kind is PlotKind.fit:
        from ..render.cost_fit import fit_figure
        from ..runtime.costing import parse_list

        lists = {k: parse_list(v, k) for k, v in (("device", device), ("batch", batch), ("seq", seq),
                                                   ("gpus", gpus), ("tp", tp), ("zero", zero))}
        fig, _ = fit_figure(a, lists, pp=pp, precision=precision, optimizer=optimizer, mode=mode,
                            lowering_text=lowering_text)
    elif kind is PlotKind.memory:
        fig = _memory(a, device, batch, gpus, lowering_text)
    elif kind is PlotKind.counts:
        fig = plots.draw_counts(plots.counts_data(a), log)
    else:
        fig = blocks.draw_blocks(blocks.blocks_data(a, split_gpus, spec))
    _wrote(path, plots.figure_bytes(fig, fmt_))


def _memory(a: Any, device: str, batch: Optional[str], gpus: Optional[str],
            lowering_text: Optional[str]) -> Any:
    """``--kind memory``: one device, one batch, one GPU count."""
    from ..render.cost_plot import memory_figure
    from ..runtime.costing import parse_list
    from ..runtime.probe import device_target

    one = {k: parse_list(v, k) for k, v in (("device", device), ("batch", batch or "128"), ("gpus", gpus))}
    if any(len(v) > 1 for v in one.values()):
        raise ArchvizError("--kind memory: one --device, --batch and --gpus (lists: --kind fit)")
    return memory_figure(a, device_target(one["device"][0]), one["batch"][0], one["gpus"][0],
                         lowering(lowering_text))
