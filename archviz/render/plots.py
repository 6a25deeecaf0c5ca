"""Analysis → matplotlib charts: per-layer parameters, MACs and activation memory.

Two halves: pure data functions (:func:`counts_data`) that say exactly what is plotted, and
drawing functions that turn that data into a figure. Tests check the data, not pixels.
matplotlib is imported inside the drawing functions only (Agg canvas, no pyplot state).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from ..core.analysis import Analysis, LayerStats
from ..errors import ArchvizError
from ..record import record
from .dot import STYLE
from .text import mpl

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")
BYTES_PER_ELEMENT = 4  # float32
DPI = 150


@record
class Panel:
    key: str                                   # params, macs or act_bytes
    title: str
    values: tuple[int, ...]                    # one per layer, in spec order
    total: int
    shares: tuple[tuple[str, float], ...]      # (family, fraction of the total), largest first


@record
class CountsData:
    title: str
    names: tuple[str, ...]
    families: tuple[str, ...]
    panels: tuple[Panel, ...]


# what each panel plots: (key, title, value of one layer)
PANELS: tuple[tuple[str, str, Any], ...] = (
    ("params", "parameters", lambda s: s.params),
    ("macs", "multiply-accumulates (MACs) per image", lambda s: s.macs),
    ("act_bytes", "activation memory per image (bytes, float32)",
     lambda s: s.activations * BYTES_PER_ELEMENT),
)


def _shares(layers: tuple[LayerStats, ...], values: tuple[int, ...]) -> tuple[tuple[str, float], ...]:
    total = sum(values)
    by_family: dict[str, int] = {}
    for s, v in zip(layers, values, strict=True):
        by_family[s.family] = by_family.get(s.family, 0) + v
    if not total:
        return ()
    ranked = sorted(by_family.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple((f, v / total) for f, v in ranked if v)


MAX_BARS = 60  # more layers than this are summed by block (their names' leading parts)


def bar_groups(layers: tuple[LayerStats, ...],
               max_bars: int = MAX_BARS) -> list[tuple[str, list[LayerStats]]]:
    """Consecutive layers → bars: one per layer, or for a deep net one per block use
    (``layer2.0.conv1``, ``layer2.0.bn1``, … → ``layer2.0``), the finest grouping of at most
    ``max_bars`` bars (names cut after 2 dotted parts, else after 1)."""
    if len(layers) <= max_bars:
        return [(s.name, [s]) for s in layers]
    best: list[tuple[str, list[LayerStats]]] = []
    for parts in (2, 1):
        best = []
        for s in layers:
            key = ".".join(s.name.split(".")[:parts])
            if best and best[-1][0] == key:
                best[-1][1].append(s)
            else:
                best.append((key, [s]))
        if len(best) <= max_bars:
            break
    return best


def counts_data(a: Analysis, max_bars: int = MAX_BARS) -> CountsData:
    """Per layer (per block for a deep net): parameters, MACs and activation bytes, with each
    family's share of the total. A block's bar takes the colour of its layer with the most MACs
    (else parameters)."""
    bars = bar_groups(a.layers, max_bars)
    panels = []
    for key, title, value in PANELS:
        values = tuple(sum(value(s) for s in group) for _, group in bars)
        per_layer = tuple(value(s) for s in a.layers)
        panels.append(Panel(key, title, values, sum(values), _shares(a.layers, per_layer)))
    families = tuple(max(group, key=lambda s: (s.macs, s.params)).family for _, group in bars)
    title = f"{a.name}: where the parameters, the compute and the memory are"
    if len(bars) < len(a.layers):
        title += f" ({len(a.layers)} layers summed into {len(bars)} blocks)"
    return CountsData(title, tuple(name for name, _ in bars), families, tuple(panels))


def panel_heading(p: Panel) -> str:
    """'parameters: 60,965,224 in all — fully connected 96.2%, convolution 3.8%'."""
    parts = ", ".join(f"{STYLE[f].title} {frac:.1%}" for f, frac in p.shares[:3])
    return f"{p.title}: {p.total:,} in all" + (f" — {parts}" if parts else "")


# ---------------------------------------------------------------------------- drawing


def new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure as PNG / SVG / PDF bytes, without timestamps (so reruns give the same file)."""
    import matplotlib

    if fmt not in FORMATS:
        raise ArchvizError(f"expected an output format among {', '.join(FORMATS)}, got {fmt!r}")
    meta: dict[str, Any] = {"png": {"Software": None}, "svg": {"Date": None},
                            "pdf": {"CreationDate": None, "ModDate": None}}[fmt]
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "archviz", "svg.fonttype": "path"}):
        fig.savefig(buf, format=fmt, metadata=meta, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def short(x: float) -> str:
    """Three significant digits: 746496 → '746K', 37752832 → '37.8M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _tick(x: float, _pos: Any = None) -> str:
    return short(x) if x else "0"


def draw_counts(data: CountsData, log: bool = False) -> Figure:
    """Three bar panels sharing the layer axis, bars coloured by op family."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    n = len(data.names)
    fig = new_figure(max(8.0, 0.42 * n + 2.0), 9.0)
    axes = fig.subplots(len(data.panels), 1, sharex=True)
    colours = [STYLE[f].fill for f in data.families]
    xs = range(n)
    for ax, p in zip(axes, data.panels, strict=True):
        bars = ax.bar(xs, p.values, color=colours, edgecolor="#333333", linewidth=0.6)
        top = max(p.values, default=0)
        floor = 0 if log else 0.04 * top  # on a linear axis, tiny bars go unlabelled
        ax.bar_label(bars, [short(v) if v and v >= floor else "" for v in p.values],
                     fontsize=7, padding=2)
        ax.set_title(panel_heading(p), loc="left", fontsize=10.5)
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        if log and top:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.margins(y=0.12)
    axes[-1].set_xticks(list(xs), [mpl(n) for n in data.names], rotation=60, ha="right", fontsize=9)
    families = [f for f in STYLE if f in data.families]
    fig.legend(handles=[Patch(facecolor=STYLE[f].fill, edgecolor="#333333", label=STYLE[f].title)
                        for f in families],
               loc="upper center", ncol=len(families), frameon=False, bbox_to_anchor=(0.5, 0.965),
               fontsize=9)
    fig.suptitle(mpl(data.title + (" (log scale)" if log else "")), fontsize=13, fontweight="bold",
                 y=0.995)
    fig.subplots_adjust(top=0.88, hspace=0.35)
    return fig
