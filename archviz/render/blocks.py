"""Analysis → the paper-style figure: one 3-D box per feature map, kernels marked on them.

As in Figure 2 of the AlexNet paper, each box's thickness stands for the channels C, its
height for H and its oblique depth for W; the kernel of the layer that reads a box is drawn
on the box's H×W face. Sizes grow sub-linearly (square roots) so that a 6×6 map stays
visible next to a 227×227 one. With ``split`` there is one row per GPU, holding each GPU's
share of the channels, and red lines mark the layers that read every GPU.

:func:`blocks_data` (pure) decides what is drawn; :func:`draw_blocks` draws it.
"""

from __future__ import annotations

from math import sqrt
from typing import TYPE_CHECKING

from ..core.analysis import Analysis, LayerStats
from ..errors import ArchvizError
from ..ops import fmt_dims as dims
from ..ops import fmt_shape
from ..record import record
from ..spec import INPUT
from .dot import CROSS_COLOUR, STYLE, check_lanes, lane_op_text, lane_shape
from .plots import new_figure
from .tables import human
from .text import mpl

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Shape = tuple[int, ...]
BOX_FAMILIES = frozenset({"conv", "pool", "linear", "merge"})  # layers drawn as boxes
C_SCALE = 0.3       # thickness per √channel
HW_SCALE = 1.0      # height and depth per √pixel
VEC_SCALE = 0.2     # height per √feature of a vector (F,)
VEC_THICK = 0.8
SLANT = 0.45        # the oblique (W) axis: x and y offset per unit of depth
GAP = 2.5           # space between boxes, for kernel lines
SLOT = 8.5          # least room per box, for its labels
LINE = 1.5          # height of one line of label text
CHANNEL = 6.0       # between the rows of the split view, for the crossing arrows
WRAP = 18           # characters per line of the op text


@record
class Box:
    name: str
    family: str
    text: str                          # op and key settings, e.g. "conv 11×11 /4, 96"
    shape: Shape                       # as drawn: per GPU in the split view
    size: tuple[float, float, float]   # drawn (thickness ← C, height ← H, depth ← W)
    kernel: tuple[int, int] | None     # kernel of the next box's layer, marked on this box
    crossing: bool = False             # this layer reads every GPU


@record
class BlocksData:
    title: str
    rows: tuple[tuple[Box, ...], ...]   # one row, or one per GPU
    row_titles: tuple[str, ...]


def box_size(shape: Shape) -> tuple[float, float, float]:
    """Sub-linear drawn size: (C, H, W) → (0.3√C, √H, √W); a vector (F,) is a thin 0.2√F column."""
    if len(shape) == 3:
        c, h, w = shape
        return (C_SCALE * sqrt(c), HW_SCALE * sqrt(h), HW_SCALE * sqrt(w))
    return (VEC_THICK, VEC_SCALE * sqrt(shape[0]), VEC_THICK)


def _box_layers(a: Analysis) -> list[LayerStats]:
    return [s for s in a.layers if s.family in BOX_FAMILIES]


def _kernel(s: LayerStats) -> tuple[int, int] | None:
    k = getattr(s.op_params, "kernel", None)
    return tuple(k) if k is not None else None  # type: ignore[return-value]


def _row(a: Analysis, gpus: int, gpu: int) -> tuple[Box, ...]:
    boxes = _box_layers(a)
    crossing = set(a.split.crossing) if a.split and gpus > 1 else set()

    def shape(s: Shape) -> Shape:
        return lane_shape(s, gpus, gpu) if gpus > 1 else s

    kernels = [_kernel(s) for s in boxes]
    out = [Box(INPUT, "input", "input", a.input, box_size(a.input), kernels[0] if kernels else None)]
    for i, s in enumerate(boxes):
        nxt = kernels[i + 1] if i + 1 < len(boxes) else None
        text = lane_op_text(s, gpus, gpu) if gpus > 1 else f"{s.op} {s.label}".strip()
        out.append(Box(s.name, s.family, text, shape(s.output),
                         box_size(shape(s.output)), nxt, s.name in crossing))
    return tuple(out)


def box_inputs(a: Analysis) -> dict[str, frozenset[str]]:
    """Each layer drawn as a box → the boxes (or the input) it reads, through layers that are not
    drawn (activations, normalisation, dropout, flatten)."""
    by_name = {s.name: s for s in a.layers}
    reach: dict[str, frozenset[str]] = {INPUT: frozenset({INPUT})}
    reads: dict[str, frozenset[str]] = {}
    for layer in a.graph.order:
        got = frozenset().union(*(reach[i] for i in layer.inputs))
        if by_name[layer.name].family in BOX_FAMILIES:
            reads[layer.name] = got
            reach[layer.name] = frozenset({layer.name})
        else:
            reach[layer.name] = got
    return reads


def check_chain(a: Analysis, spec: str = "") -> None:
    """The figure draws a chain, each box reading the one before: refuse a network that branches."""
    reads = box_inputs(a)
    previous = INPUT
    for s in _box_layers(a):
        if reads[s.name] != {previous}:
            what = ", ".join(sorted(reads[s.name]))
            raise ArchvizError(
                f"{a.name}: the block figure draws a chain of layers, and this network branches:"
                f" {s.name} reads {what}" + ("" if len(reads[s.name]) > 1 else f", not {previous}")
                + f"\nhint: `archviz draw {spec or 'SPEC'}` draws branches and merges as they are")
        previous = s.name


def check_images(a: Analysis, spec: str = "") -> None:
    """The figure draws (C, H, W) feature maps as boxes and (F,) vectors as columns: refuse a
    network whose input or any drawn layer has another rank (a sequence, a video clip)."""
    drawn = [(INPUT, a.input), *((s.name, s.output) for s in _box_layers(a))]
    for name, shape in drawn:
        if len(shape) not in (1, 3):
            raise ArchvizError(
                f"{a.name}: the block figure draws images (C, H, W) and vectors (F,); {name} is"
                f" {fmt_shape(shape)}"
                + f"\nhint: `archviz draw {spec or 'SPEC'}` draws a network of any rank")


def blocks_data(a: Analysis, split: bool = False, spec: str = "") -> BlocksData:
    """Boxes for the input and every conv, pool, linear and merge layer, in spec order.

    Raises ArchvizError for a network that is not a chain of boxes (ResNet, GoogLeNet, ...):
    the figure would join layers that are not connected.
    """
    check_chain(a, spec)
    check_images(a, spec)
    if not split:
        return BlocksData(f"{a.name}: feature maps as boxes (sizes ∝ √C, √H, √W)",
                          (_row(a, 1, 0),), ("",))
    check_lanes(a)   # a row per GPU: 2 to MAX_LANES of them
    sp = a.split
    assert sp is not None
    titles = tuple(f"GPU {ln.gpu}: {human(ln.params)} params, {human(ln.macs)} MACs per image"
                   for ln in sp.lanes)
    return BlocksData(f"{a.name} split over {sp.gpus} GPUs: each row holds one GPU's share of the channels",
                      tuple(_row(a, sp.gpus, g) for g in range(sp.gpus)), titles)


# ---------------------------------------------------------------------------- drawing


def _shade(colour: str, factor: float) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(min(1.0, c * factor) for c in to_rgb(colour))  # type: ignore[return-value]


def _box(ax: Axes, x: float, y: float, b: Box) -> None:
    """Front face (C×H), top face and the H×W side face, in oblique projection."""
    from matplotlib.patches import Polygon

    t, h, w = b.size
    dx, dy = SLANT * w, SLANT * w
    fill = STYLE[b.family].fill
    faces = (
        ([(x, y), (x + t, y), (x + t, y + h), (x, y + h)], 1.0),
        ([(x, y + h), (x + t, y + h), (x + t + dx, y + h + dy), (x + dx, y + h + dy)], 1.08),
        ([(x + t, y), (x + t + dx, y + dy), (x + t + dx, y + h + dy), (x + t, y + h)], 0.88),
    )
    for pts, f in faces:
        ax.add_patch(Polygon(pts, closed=True, facecolor=_shade(fill, f), edgecolor="#333333",
                             linewidth=0.7, zorder=2))


def _kernel_mark(ax: Axes, x: float, y: float, b: Box, target: tuple[float, float]) -> None:
    """The reader's kernel as a small parallelogram on the H×W face, with lines to the next box."""
    from matplotlib.patches import Polygon

    if b.kernel is None or len(b.shape) != 3:
        return
    t, h, w = b.size
    kh, kw = (min(HW_SCALE * sqrt(k), s * 0.8) for k, s in zip(b.kernel, (h, w), strict=True))
    x0 = x + t + SLANT * (w - kw) * 0.5
    y0 = y + SLANT * (w - kw) * 0.5 + (h - kh) * 0.6
    slant = SLANT * kw
    pts = [(x0, y0), (x0 + slant, y0 + slant), (x0 + slant, y0 + slant + kh), (x0, y0 + kh)]
    ax.add_patch(Polygon(pts, closed=True, facecolor="#ffffff", edgecolor="#222222", linewidth=0.8,
                         alpha=0.9, zorder=3))
    for px, py in (pts[1], pts[3]):
        ax.plot([px, target[0]], [py, target[1]], color="#555555", linewidth=0.6, linestyle="--", zorder=1)
    # the kernel's size, just right of the box, above the lines to the next box
    ax.text(x + t + SLANT * w + 0.2, y0 + kh + slant, f"{b.kernel[0]}×{b.kernel[1]}", ha="left",
            va="bottom", fontsize=7.5, zorder=4)


def wrap(text: str, width: int = WRAP) -> str:
    """Break an op text at its commas into lines of at most ``width`` characters (where possible)."""
    lines: list[str] = []
    for part in text.split(", "):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return ",\n".join(lines)


def _layout(row: tuple[Box, ...]) -> list[float]:
    xs, x = [], 0.0
    for b in row:
        xs.append(x)
        t, _, w = b.size
        x += max(t + SLANT * w + GAP, SLOT)
    return xs


def _labels(ax: Axes, b: Box, cx: float, y: float, above: bool) -> None:
    """Name, shape and op text under the box (bottom at ``y``) or over it (top at ``y``)."""
    text = wrap(b.text) if b.family != "input" else ""
    lines = [(b.name, 9, "bold", "#000000"), (dims(b.shape), 8.5, "normal", "#000000")]
    if text:
        lines.append((text, 7.5, "normal", "#444444"))
    step = LINE
    if above:
        y += 0.6
        for content, size, weight, colour in reversed(lines):
            ax.text(cx, y, mpl(content), ha="center", va="bottom", fontsize=size, fontweight=weight,
                    color=colour, linespacing=1.1, zorder=4)
            y += step * (content.count("\n") + 1)
        return
    y -= 0.6
    for content, size, weight, colour in lines:
        ax.text(cx, y, mpl(content), ha="center", va="top", fontsize=size, fontweight=weight, color=colour,
                linespacing=1.1, zorder=4)
        y -= step * (content.count("\n") + 1)


def _draw_row(ax: Axes, row: tuple[Box, ...], xs: list[float], base: float,
              above: bool) -> list[tuple[float, float, float, float]]:
    """Draw one row centred on ``base``; return each box's (x, y, right, top) on the page."""
    boxes = []
    for b, x in zip(row, xs, strict=True):
        t, h, w = b.size
        y = base - (h + SLANT * w) / 2
        boxes.append((x, y, x + t + SLANT * w, y + h + SLANT * w))
    for i, (b, (x, y, right, top)) in enumerate(zip(row, boxes, strict=True)):
        t, h, w = b.size
        nx, ny, _, ntop = boxes[i + 1] if i + 1 < len(row) else (x, y, right, top)
        _box(ax, x, y, b)
        target = (nx, ny + (ntop - ny) * 0.4)
        if b.kernel is not None and len(b.shape) == 3:
            _kernel_mark(ax, x, y, b, target)
        elif i + 1 < len(row):  # the next layer (fully connected) reads this box: a plain link
            ax.annotate("", xy=target, xytext=(right, y + (top - y) * 0.4),
                        arrowprops={"arrowstyle": "-|>", "color": "#555555", "linewidth": 0.9,
                                    "shrinkA": 1, "shrinkB": 1}, zorder=1)
        _labels(ax, b, (x + right) / 2, top if above else y, above)
    return boxes


def _crossings(ax: Axes, data: BlocksData, boxes: list[list[tuple[float, float, float, float]]]) -> None:
    """For a box that reads every GPU, a red arrow from the previous box of every other row."""
    for r, row in enumerate(data.rows):
        for i, b in enumerate(row):
            if not b.crossing or i == 0:
                continue
            x1, y1, _, top1 = boxes[r][i]
            for other in (o for o in range(len(data.rows)) if o != r):
                x0, y0, right0, top0 = boxes[other][i - 1]
                down = other < r  # the source row is above
                ax.annotate("", xy=(x1, top1 if down else y1), xytext=(right0, y0 if down else top0),
                            arrowprops={"arrowstyle": "-|>", "color": CROSS_COLOUR, "linewidth": 1.2,
                                        "linestyle": "--", "shrinkA": 1, "shrinkB": 1}, zorder=5)


def _label_room(row: tuple[Box, ...], height: float) -> float:
    """How far the labels reach beyond the row's tallest box (boxes are centred on one line)."""
    def reach(b: Box) -> float:
        lines = 2 + (wrap(b.text).count("\n") + 1 if b.family != "input" else 0)
        return 0.6 + LINE * lines - (height - b.size[1] - SLANT * b.size[2]) / 2

    return max(reach(b) for b in row) + 0.5


def draw_blocks(data: BlocksData) -> Figure:
    """Rows of boxes; in the split view, red arrows into each layer that reads every GPU.

    With two rows, the top row's labels go above it and the bottom row's below, as in the
    paper, leaving the channel between the rows to the arrows that cross between GPUs.
    """
    heights = [max(b.size[1] + SLANT * b.size[2] for b in row) for row in data.rows]
    drops = [_label_room(row, h) for row, h in zip(data.rows, heights, strict=True)]
    xs = _layout(data.rows[0])
    last = data.rows[0][-1].size
    span = xs[-1] + max(last[0] + SLANT * last[2], SLOT) + 1.0
    n = len(data.rows)
    above = [n == 2 and r == 0 for r in range(n)]
    rows_h = sum(heights) + sum(drops) + sum(3.0 if t else 0.5 for t in data.row_titles)
    rows_h += CHANNEL * (n - 1)
    scale = 0.13  # inches per unit
    fig = new_figure(span * scale, rows_h * scale + 0.5)
    ax = fig.add_axes((0.0, 0.0, 1.0, rows_h * scale / (rows_h * scale + 0.5)))
    boxes, y = [], 0.0
    for r, (row, title, height, drop) in enumerate(zip(data.rows, data.row_titles, heights, drops,
                                                       strict=True)):
        if title:
            y -= 3.0
            ax.text(-0.5, y + 1.0, mpl(title), fontsize=9.5, fontweight="bold", va="bottom")
        y -= (drop if above[r] else 0.5) + height / 2
        boxes.append(_draw_row(ax, row, xs, y, above[r]))
        y -= height / 2 + (CHANNEL if r + 1 < n else 0.0) + (0.0 if above[r] else drop)
    _crossings(ax, data, boxes)
    ax.set_xlim(-1.0, span)
    ax.set_ylim(y, 0.0)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(mpl(data.title), fontsize=11, fontweight="bold")
    return fig
