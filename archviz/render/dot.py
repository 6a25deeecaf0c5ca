"""Analysis → Graphviz diagrams: the layer graph, and the paper's two-GPU split view (Figure 2).

Renderers only read an :class:`~archviz.core.analysis.Analysis`: every number drawn comes from
its ``LayerStats`` and ``GpuSplit``. The DOT source is deterministic (layers in spec order,
no timestamps), so it is golden-tested. ``graphviz`` is imported inside functions only.

Colours come from :data:`STYLE`, a registry keyed by op family; a test checks that every
op in :data:`archviz.ops.OPS` finds its style there.
"""

from __future__ import annotations

import re
from html import escape
from math import prod
from pathlib import PurePath
from typing import TYPE_CHECKING

from ..core.analysis import Analysis, LayerStats, channel_share
from ..errors import ArchvizError
from ..limits import MAX_LANES
from ..ops import OPS
from ..ops import fmt_dims as dims
from ..ops.dtypes import note as dtype_note
from ..record import record
from ..spec import INPUT
from . import aspect
from .tables import human
from .text import one_line

if TYPE_CHECKING:  # pragma: no cover
    import graphviz

Shape = tuple[int, ...]
FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR")
AUTO = "AUTO"  # --rankdir auto: the direction whose drawing is closer to square (aspect.py)
FONT = "Helvetica"
PNG_DPI = 150
CROSS_COLOUR = "#c0392b"
STAGE_FILL = "#e8eef7"   # a folded block use in the overview


@record
class Style:
    fill: str           # node fill colour
    title: str          # what the legend calls the family
    shape: str = "box"


STYLE: dict[str, Style] = {
    "input": Style("#ffffff", "input", "box"),
    "conv": Style("#a6cee3", "convolution"),
    "pool": Style("#fdbf6f", "pooling"),
    "resample": Style("#ffd8b1", "resampling (upsample, pixel shuffle)"),
    "norm": Style("#cab2d6", "normalisation"),
    "act": Style("#b2df8a", "activation"),
    "linear": Style("#fbe38e", "fully connected"),
    "embedding": Style("#8dd3c7", "embedding (a table row per id)"),
    "reshape": Style("#d9d9d9", "reshape"),
    "merge": Style("#fb9a99", "merge (add, concat)", "ellipse"),
    "regularise": Style("#e5d8bd", "regularisation"),
    "attention": Style("#80b1d3", "attention"),
    # imported layers archviz cannot describe: traced shape and parameters only, never compiled
    "opaque": Style("#eeeeee", "opaque (traced at import, not compiled)", "octagon"),
}

# families whose parameter-free layers `--fold` draws inside the node of their producer
FOLDABLE = frozenset({"act", "regularise", "norm"})

INSTALL_HINT = (
    "install Graphviz, then run this again:\n"
    "  Debian/Ubuntu:  sudo apt install graphviz\n"
    "  macOS:          brew install graphviz\n"
    "  conda:          conda install -c conda-forge graphviz\n"
    "  Windows:        winget install graphviz"
)


class GraphvizMissing(ArchvizError):
    """Graphviz's ``dot`` program is not on PATH."""

    def format(self) -> str:
        return f"{self}\n{INSTALL_HINT}"


class RenderError(ArchvizError):
    """``dot`` ran but failed."""


def style_of(op: str) -> Style:
    """The drawing style of an op, looked up by its family."""
    return STYLE[OPS[op].family]


share = channel_share  # the split rule of analysis.gpu_split


def lane_shape(shape: Shape, gpus: int, gpu: int) -> Shape:
    """A per-image shape as one GPU holds it: channels (axis 0) divided."""  # (C/G, H, W)
    return (share(shape[0], gpus, gpu), *shape[1:])


# ---------------------------------------------------------------------------- folding


def fold_map(a: Analysis, fold: bool = True) -> dict[str, str]:
    """Each layer → the layer whose node draws it (itself, or the producer it is folded into).

    A layer folds when its family is in FOLDABLE, it has no parameters, it reads one layer
    that nobody else reads, and (under a GPU split) it keeps to its own GPU.
    """
    by_name = {s.name: s for s in a.layers}
    readers: dict[str, int] = {}
    for s in a.layers:
        for src in s.inputs:
            readers[src] = readers.get(src, 0) + 1
    crossing = set(a.split.crossing) if a.split else set()
    rep: dict[str, str] = {}

    def node(name: str) -> str:
        if name not in rep:
            s = by_name[name]
            src = s.inputs[0]
            folds = (fold and len(s.inputs) == 1 and src != INPUT and readers[src] == 1
                     and s.family in FOLDABLE and s.params == 0 and name not in crossing)
            rep[name] = node(src) if folds else name
        return rep[name]

    for s in a.layers:
        node(s.name)
    return rep


def groups(a: Analysis, fold: bool) -> dict[str, list[LayerStats]]:
    """Node name → the layers it draws (the producer first), in spec order."""
    rep = fold_map(a, fold)
    out: dict[str, list[LayerStats]] = {}
    for s in a.layers:
        out.setdefault(rep[s.name], []).append(s)
    return out


# ---------------------------------------------------------------------------- labels


def _op_text(s: LayerStats) -> str:
    return f"{s.op} {s.label}".strip()


def lane_op_text(s: LayerStats, gpus: int, gpu: int) -> str:
    """The op text as one GPU runs it: its output channel count as that GPU's share ("48 of 96")."""
    text = _op_text(s)
    c = s.output[0]
    mine = share(c, gpus, gpu)
    if mine == c:
        return text
    return re.sub(rf"(?<![\d×/.]){c}(?![\d×.])", f"{mine} of {c}", text, count=1)


def node_label(layers: list[LayerStats], shape: Shape | None = None, note: str = "",
               op_text: str | None = None) -> str:
    """HTML label: bold name, op with key settings, folded layers, output shape."""
    head = layers[0]
    rows = [f'<font point-size="13"><b>{escape(head.name)}</b></font>',
            escape(op_text if op_text is not None else _op_text(head))]
    if len(layers) > 1:
        rows.append('<font point-size="10">+ ' + escape(" · ".join(_op_text(s) for s in layers[1:]))
                    + "</font>")
    out = shape if shape is not None else layers[-1].output
    rows.append(f'<font color="#333333">{dims(out)}{dtype_note(layers[-1].dtype)}</font>')
    if note:
        rows.append(f'<font point-size="10" color="{CROSS_COLOUR}">{escape(note)}</font>')
    return "<" + "<br/>".join(rows) + ">"


def _legend(families: list[str], per_row: int) -> str:
    """A table of colour swatches, ``per_row`` families to a row."""
    cells = [f'<td bgcolor="{STYLE[f].fill}" width="16" border="1"> </td>'
             f'<td align="left">{escape(STYLE[f].title)}   </td>'
             for f in STYLE if f in families]
    rows = "".join("<tr>" + "".join(cells[i:i + per_row]) + "</tr>" for i in range(0, len(cells), per_row))
    return f'<table border="0" cellborder="0" cellspacing="4" cellpadding="1">{rows}</table>'


def _title(a: Analysis, families: list[str], per_row: int, footer: str = "") -> str:
    """Graph label: the network and its totals, the colour legend, then ``footer``."""
    t = a.totals
    line = (f"{a.name} · input {dims(a.input)}{dtype_note(a.input_dtype)} · {t.params:,} params"
            f" · {t.macs:,} MACs per image")
    return (f'<<table border="0" cellspacing="2"><tr><td><font point-size="16"><b>{escape(line)}</b></font>'
            f'</td></tr><tr><td>{_legend(families, per_row)}</td></tr>{footer}</table>>')


def _digraph(a: Analysis, rankdir: str, name: str) -> graphviz.Digraph:
    import graphviz

    if rankdir not in RANKDIRS:
        raise ArchvizError(f"--rankdir: expected one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    # a // comment ends at a newline: the name goes in on one line, control characters escaped
    comment = one_line(f"{a.name}: drawn by archviz from {PurePath(a.path).name}")
    g = graphviz.Digraph(name=name, comment=comment)
    g.attr("graph", rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.35",
           labelloc="t", labeljust="c")
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11", margin="0.12,0.05")
    g.attr("edge", fontname=FONT, fontsize="10", color="#555555", arrowsize="0.7")
    return g


def _input_node(g: graphviz.Digraph, a: Analysis) -> None:
    g.node(INPUT, f'<<b>input</b><br/>{dims(a.input)}{dtype_note(a.input_dtype)}>',
           fillcolor=STYLE["input"].fill, style="rounded,filled,dashed")


def _families(nodes: dict[str, list[LayerStats]]) -> list[str]:
    """The families that colour a node (a folded layer shows as text only)."""
    return ["input", *sorted({layers[0].family for layers in nodes.values()})]


# ---------------------------------------------------------------------------- the layer graph


def layer_graph(a: Analysis, rankdir: str = "TB", fold: bool = False) -> graphviz.Digraph:
    """One node per layer (or per folded run), edges along ``from:``; merges as ellipses.

    ``rankdir`` "AUTO" picks TB or LR, whichever draws closer to square (:mod:`.aspect`).
    """
    rep = fold_map(a, fold)
    nodes = groups(a, fold)
    labels = {name: node_label(layers) for name, layers in nodes.items()}
    links = _links(a, rep)
    rankdir = resolve_rankdir(rankdir, a, labels, links)
    g = _digraph(a, rankdir, "layers")
    g.attr(label=_title(a, _families(nodes), 5 if rankdir == "TB" else 9))
    _input_node(g, a)
    for name, layers in nodes.items():
        st = STYLE[layers[0].family]
        g.node(name, labels[name], fillcolor=st.fill, shape=st.shape)
    for tail, head in links:
        g.edge(tail, head)
    return g


def _links(a: Analysis, rep: dict[str, str], once: bool = False) -> list[tuple[str, str]]:
    """The drawn edges (tail node, head node) between the nodes ``rep`` draws (``once``: no repeats)."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for s in a.layers:
        for src in s.inputs:
            head, tail = rep[s.name], (INPUT if src == INPUT else rep[src])
            if head != tail and not (once and (tail, head) in seen):
                seen.add((tail, head))
                out.append((tail, head))
    return out


def resolve_rankdir(rankdir: str, a: Analysis, labels: dict[str, str], links: list[tuple[str, str]],
                    lanes: int = 1, lane_header: str = "", footer: str = "") -> str:
    """``rankdir`` itself, or for "AUTO" the direction whose expected drawing is closer to square."""
    if rankdir.upper() != AUTO:
        return rankdir
    sizes = {INPUT: aspect.label_size(f"<input<br/>{dims(a.input)}>")}
    sizes.update({n: aspect.label_size(lab) for n, lab in labels.items()})
    rank = aspect.ranks([INPUT, *labels], links)
    t = a.totals
    title = f"{a.name} · input {dims(a.input)} · {t.params:,} params · {t.macs:,} MACs per image"
    widest = max([aspect.title_width(title)]
                 + [aspect.label_size(line).w * 13 / 11 for line in footer.split("<br/>") if footer])
    lane_min = aspect.label_size(lane_header).w * 13 / 11 if lane_header else 0.0
    extra = aspect.LEGEND_H + (2 * aspect.LINE_PT if footer else 0)
    return aspect.choose(sizes, rank, lanes, widest, lane_min, extra)


def stage_graph(a: Analysis, stage_of: dict[str, str], labels: dict[str, str],
                rankdir: str = "TB", fold: bool = False) -> graphviz.Digraph:
    """The folded overview: each block use (``stage_of`` layer → stage) drawn as one box.

    ``labels`` gives each stage's text ("layer3 · basic × 2"); the stage's output shape follows.
    Layers outside any stage are drawn as in :func:`layer_graph` (``fold``: parameter-free ones
    inside their producer's node).
    """
    folded = fold_map(a, fold)
    rep = {s.name: stage_of.get(s.name) or stage_of.get(folded[s.name]) or folded[s.name] for s in a.layers}
    last: dict[str, LayerStats] = {}
    members: dict[str, list[LayerStats]] = {}
    for s in a.layers:
        last[rep[s.name]] = s
        members.setdefault(rep[s.name], []).append(s)
    texts = {node: (f'<<font point-size="13"><b>{escape(labels[node])}</b></font><br/>'
                    f'<font color="#333333">{dims(s.output)}</font>>') if node in labels
             else node_label(members[node]) for node, s in last.items()}
    links = _links(a, rep, once=True)
    rankdir = resolve_rankdir(rankdir, a, texts, links)
    g = _digraph(a, rankdir, "stages")
    g.attr(label=_title(a, _families(groups(a, False)), 5 if rankdir == "TB" else 9))
    _input_node(g, a)
    for node, text in texts.items():
        if node in labels:
            g.node(node, text, fillcolor=STAGE_FILL, shape="box", peripheries="2")
        else:
            st = STYLE[members[node][0].family]
            g.node(node, text, fillcolor=st.fill, shape=st.shape)
    for tail, head in links:
        g.edge(tail, head)
    return g


# ---------------------------------------------------------------------------- the split view


def lane_id(gpu: int, name: str) -> str:
    return f"gpu{gpu}.{name}"


def check_lanes(a: Analysis) -> None:
    """A lane view (this split diagram, the split block figure) draws one lane per GPU and, for
    each layer that reads every GPU, an edge from each lane to each other: refused above
    :data:`archviz.limits.MAX_LANES` GPUs (64 lanes made Graphviz work for minutes on 2 layers)."""
    if a.split is None:
        raise ArchvizError(f"{a.name}: the split view needs an analysis over 2 or more GPUs")
    if a.split.gpus > MAX_LANES:
        raise ArchvizError(
            f"{a.name}: the split view draws one lane per GPU, at most {MAX_LANES};"
            f" this analysis is over {a.split.gpus} GPUs\nhint: `archviz shapes` lists every GPU's"
            f" share (JSON: gpus.lanes), as does each layer's panel in `archviz view`"
            f" (docs/limits.md)")


def split_graph(a: Analysis, rankdir: str = "LR", fold: bool = False) -> graphviz.Digraph:
    """One lane (cluster) per GPU holding its share of every layer; crossing edges between lanes."""
    check_lanes(a)
    split = a.split
    rep = fold_map(a, fold)
    nodes = groups(a, fold)
    head0 = max(split.lanes, key=lambda lane: len(_lane_header(lane.gpu, lane.params, lane.macs)))
    rankdir = resolve_rankdir(
        rankdir, a, {n: node_label(ls, lane_shape(ls[-1].output, split.gpus, 0), "note",
                                   lane_op_text(ls[0], split.gpus, 0)) for n, ls in nodes.items()},
        _links(a, rep), split.gpus, _lane_header(head0.gpu, head0.params, head0.macs), _footer(a))
    g = _digraph(a, rankdir, "split")
    g.attr(label=_title(a, _families(nodes), 9, _footer(a)), labelloc="b")
    _input_node(g, a)
    # top to bottom, the input's edges come in from above: the lane headers go below the lanes
    header_at = "b" if rankdir == "TB" else "t"
    for lane in split.lanes:
        with g.subgraph(name=f"cluster_gpu{lane.gpu}") as c:
            c.attr(label=_lane_header(lane.gpu, lane.params, lane.macs), style="rounded,filled",
                   fillcolor="#f7f7f7" if lane.gpu % 2 == 0 else "#eef3f8", color="#888888",
                   fontsize="13", labelloc=header_at, labeljust="l")
            for name, layers in nodes.items():
                st = STYLE[layers[0].family]
                note = "reads every GPU" if name in split.crossing else ""
                shape = lane_shape(layers[-1].output, split.gpus, lane.gpu)
                op_text = lane_op_text(layers[0], split.gpus, lane.gpu)
                c.node(lane_id(lane.gpu, name), node_label(layers, shape, note, op_text),
                       fillcolor=st.fill, shape=st.shape)
    for s in a.layers:
        for src in s.inputs:
            _split_edges(g, a, s, src, rep)
    return g


def _lane_header(gpu: int, params: int, macs: int) -> str:
    return (f'<<b>GPU {gpu}</b>  ·  {params:,} params ({human(params)})'
            f'  ·  {macs:,} MACs ({human(macs)}) per image>')


def _split_edges(g: graphviz.Digraph, a: Analysis, s: LayerStats, src: str,
                 rep: dict[str, str]) -> None:
    assert a.split is not None
    gpus = a.split.gpus
    head = rep[s.name]
    if src == INPUT:  # the image is replicated on every GPU
        for i in range(gpus):
            g.edge(INPUT, lane_id(i, head))
        return
    tail = rep[src]
    if head == tail:
        return
    if s.name not in a.split.crossing:
        for i in range(gpus):
            g.edge(lane_id(i, tail), lane_id(i, head))
        return
    src_shape = a.layer(src).output
    for i in range(gpus):
        for j in range(gpus):
            if i == j:
                g.edge(lane_id(j, tail), lane_id(i, head))
            else:
                sent = prod(lane_shape(src_shape, gpus, j))
                g.edge(lane_id(j, tail), lane_id(i, head), label=f"{sent:,}", color=CROSS_COLOUR,
                       fontcolor=CROSS_COLOUR, penwidth="1.6")


def _footer(a: Analysis) -> str:
    assert a.split is not None
    sp = a.split
    parts = " + ".join(f"{name} {n:,}" for name, n in sp.cross_elements.items()) or "none"
    return (f'<tr><td><font point-size="13" color="{CROSS_COLOUR}">traffic between GPUs (red edges,'
            f" elements per image): {parts} = {sp.cross_elements_total:,} elements"
            f" = {sp.cross_bytes(1, 4):,} bytes per image (float32)"
            f"<br/>= {sp.cross_bytes(128, 4):,} bytes ({human(sp.cross_bytes(128, 4))}B)"
            " per batch of 128</font></td></tr>")


# ---------------------------------------------------------------------------- output


def diagram(a: Analysis, split_gpus: bool, rankdir: str, fold: bool) -> graphviz.Digraph:
    """The layer graph, or with ``split_gpus`` the one-lane-per-GPU view."""
    return (split_graph if split_gpus else layer_graph)(a, rankdir, fold)


def render(g: graphviz.Digraph, fmt: str) -> bytes:
    """The diagram as ``fmt`` bytes (DOT source for 'dot'); raises GraphvizMissing without ``dot``."""
    import graphviz

    if fmt not in FORMATS:
        raise ArchvizError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "dot":
        return g.source.encode("utf-8")
    if fmt == "png":
        g = g.copy()
        g.attr(dpi=str(PNG_DPI))
    try:
        return g.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing("Graphviz's `dot` program was not found on PATH") from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise RenderError(f"dot failed to render {fmt}: {detail}") from None
