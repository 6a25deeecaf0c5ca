"""``archviz plot --kind fit``: memory per GPU against one swept option (the batch by default),
one line per device, each device's capacity as a horizontal line and the largest batch that fits
(the cost's own ``largest_batch``) marked. :func:`fit_data` says exactly what is plotted (read from
archviz.runtime.costing's sweep, tested); :func:`draw_fit` draws it (matplotlib inside).

The y value is what must fit: the peak plus what the cost keeps beside it (the CUDA context and
the allocator's reserve, archviz.core.cost_states.kept), so a line crosses its capacity where
the cost's verdict turns from fits to does not fit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.cost import GIB, Cost
from ..core.cost_states import CostError
from ..record import record
from ..runtime.costing import SWEPT, Sweep, compute, sweep
from .text import mpl

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..core.analysis import Analysis

COLOURS = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#d6616b", "#8c6d31", "#17becf")
TOP = 2**16                      # the default batches stop at the first that fits no device, or here


@record
class FitLine:
    device: str                                   # the table's name (H100 SXM)
    xs: tuple[int, ...]                           # the swept values where the configuration is valid
    gib: tuple[float, ...]                        # peak + kept, GiB per GPU, at each x
    states_gib: tuple[float, ...]                 # model states (params + grads + optimizer) at each x
    capacity_gib: float | None                    # the device table's memory
    largest_batch: int | None                     # the cost's own (at the first x)
    mark: tuple[float, float] | None              # (x, GiB) of the largest batch (or swept value) that fits


@record
class FitData:
    title: str
    option: str                                   # the swept option: batch, seq, gpus, tp or zero
    lines: tuple[FitLine, ...]


def swept_option(lists: dict[str, list[Any]]) -> str:
    """The one option besides --device that takes a list (batch when none does)."""
    many = [k for k in SWEPT if k != "device" and len(lists.get(k, [None])) > 1]
    if len(many) > 1:
        raise CostError(f"plot --kind fit: one option besides --device takes a list, got "
                        f"{' and '.join('--' + k for k in many)}",
                        "hint: give the others one value each (--batch 8 --seq 512,1024)")
    return many[0] if many else "batch"


def fit_sweep(a: Analysis, lists: dict[str, list[Any]], **fixed: Any) -> tuple[str, Sweep]:
    """The swept option and the sweep to plot. Without a --batch list the batch runs 1, 2, 4, …
    up to the first power of two that fits none of the devices (at most :data:`TOP`)."""
    option = swept_option(lists)
    if option == "batch" and lists.get("batch", [None]) in ([None], ["default"]):
        lists = lists | {"batch": default_batches(a, lists, fixed)}
    return option, sweep(a, lists, detail=False, **fixed)


def default_batches(a: Analysis, lists: dict[str, list[Any]], fixed: dict[str, Any]) -> list[int]:
    one = {k: v[0] for k, v in lists.items() if k not in ("device", "batch") and v[0] is not None}
    largest = []
    for d in lists["device"]:
        c, _ = compute(a, d, batch=1, **(fixed | one))
        largest.append(c.largest_batch or 0)
    top = min(max(max(largest) + 1, 2), TOP)
    out, b = [], 1
    while True:
        out.append(b)
        if b >= top:
            return out
        b *= 2


def _must_fit(c: Cost) -> float:
    return (c.peak + c.kept) / GIB


def fit_data(a: Analysis, option: str, sw: Sweep, **fixed: Any) -> FitData:
    """One line per device: the valid rows' memory per GPU at each swept value; the mark at the
    cost's largest batch (batch swept: its memory computed there), else at the last value that fits."""
    lines = []
    for d in dict.fromkeys(r.get("device") for r in sw.rows):
        rows = [r for r in sw.rows if r.get("device") == d and r.cost is not None]
        if not rows:
            continue
        first = rows[0].cost
        assert first is not None
        xs = tuple(int(r.get(option) if r.get(option) is not None else _default(r.cost, option))
                   for r in rows)
        gib = tuple(_must_fit(r.cost) for r in rows if r.cost is not None)
        states = tuple(max(m.params + m.grads + m.optimizer for m in r.cost.per_gpu) / GIB
                       for r in rows if r.cost is not None)
        mark = None
        if option == "batch" and first.largest_batch:
            values = {k: v for k, v in rows[0].values if k != "batch" and v is not None}
            at, _ = compute(a, batch=first.largest_batch, **(fixed | values))
            mark = (float(first.largest_batch), _must_fit(at))
        elif option != "batch":
            fit = [(x, g) for x, g, r in zip(xs, gib, rows, strict=True) if r.cost and r.cost.fits]
            mark = (float(fit[-1][0]), fit[-1][1]) if fit else None
        cap = first.capacity / GIB if first.capacity else None
        lines.append(FitLine(first.target.name, xs, gib, states, cap, first.largest_batch, mark))
    if not lines:
        raise CostError("plot --kind fit: no valid configuration to plot")
    c0 = next(r.cost for r in sw.rows if r.cost is not None)
    s, p = c0.settings, c0.parallel
    seq = sw.rows[0].get("seq")
    fixed_text = ("" if option == "batch" else f", batch {s.batch}") + \
        ("" if option == "seq" or seq is None else f", seq {seq:,}")
    split = "" if option in ("gpus", "tp") else f"; tp {p.tp} · dp {p.dp} · pp {p.pp}"
    title = (f"{sw.name}: {s.mode.value}, {s.precision.value} {s.dtype.value}, {s.optimizer.value}"
             f"{fixed_text}{split}" + (f", ZeRO-{s.zero}" if s.zero and option != "zero" else ""))
    return FitData(title, option, tuple(lines))


def _default(c: Cost | None, option: str) -> int:
    assert c is not None
    values = {"batch": c.settings.batch, "gpus": c.gpus, "tp": c.parallel.tp, "zero": c.settings.zero}
    return values.get(option, 0)


LABELS = {"batch": "batch per replica (micro-batch)", "seq": "tokens per sequence (--seq)",
          "gpus": "GPUs (tp · dp · pp)", "tp": "tensor-parallel degree (--tp)", "zero": "ZeRO stage"}


def draw_fit(d: FitData) -> Figure:
    """Devices whose memory is the same (every GPU of the table: the model does not depend on the
    card) share one line, named after them all; each device has its capacity line and its mark."""
    from .plots import new_figure

    fig = new_figure(12.5, 6.0)
    ax = fig.subplots(1, 1)
    colour = {line.device: COLOURS[i % len(COLOURS)] for i, line in enumerate(d.lines)}
    curves: dict[tuple[tuple[int, ...], tuple[float, ...]], list[FitLine]] = {}
    for line in d.lines:
        curves.setdefault((line.xs, line.gib), []).append(line)
    for (xs, gib), group in curves.items():
        names = ", ".join(mpl(g.device) for g in group)
        ax.plot(xs, gib, marker="o", ms=4, lw=2,
                color=colour[group[0].device] if len(group) == 1 else "#252525",
                label=f"memory per GPU ({names})" if len(curves) > 1 else "memory per GPU")
    caps: dict[float, list[FitLine]] = {}
    for line in d.lines:
        if line.capacity_gib:
            caps.setdefault(line.capacity_gib, []).append(line)
    for cap, group in caps.items():     # the name at the left, or the right where the curve starts above
        ax.axhline(cap, color=colour[group[0].device], ls="--", lw=1.2)
        left = min(gib[0] for _, gib in curves) < 0.85 * cap
        text = f"{', '.join(mpl(g.device) for g in group)}: {cap:,.{0 if cap == int(cap) else 1}f} GiB"
        ax.annotate(text, (0.0 if left else 1.0, cap),
                    xycoords=("axes fraction", "data"), xytext=(6 if left else -6, 3),
                    textcoords="offset points", ha="left" if left else "right", fontsize=8,
                    color=colour[group[0].device])
    for i, line in enumerate(d.lines):     # each smaller than the one before: equal marks show nested
        what = "largest batch" if d.option == "batch" else f"largest {d.option}"
        at = f"none ({line.xs[0]:,} does not fit)" if line.mark is None else f"{line.mark[0]:,.0f}"
        ax.plot(*(line.mark or (float("nan"), float("nan"))), marker="*", ms=max(20 - 3 * i, 6),
                color=colour[line.device], markeredgecolor="black", ls="none",
                label=f"{mpl(line.device)}: {what} {at}")
    first = d.lines[0]
    if all(line.states_gib == first.states_gib for line in d.lines):
        ax.plot(first.xs, first.states_gib, color="grey", ls=":",
                label="model states (params + grads + optimizer)")
    ax.set(xlabel=LABELS[d.option], ylabel="GiB per GPU: peak + CUDA context and allocator reserve")
    if d.option in ("batch", "seq", "gpus", "tp") and max(max(line.xs) for line in d.lines) >= 8:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_IntFormatter())
    ax.set_ylim(bottom=0)
    note = ("the largest batch that fits (the cost's own)" if d.option == "batch"
            else "the largest value that fits")
    ax.set_title(f"{mpl(d.title)}\n★ {note}", fontsize=10)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _IntFormatter() -> Any:  # noqa: N802 - a matplotlib formatter, built when matplotlib is loaded
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def fit_figure(a: Analysis, lists: dict[str, list[Any]], **fixed: Any) -> tuple[Figure, FitData]:
    """``archviz plot --kind fit``: the sweep, its data and the figure."""
    option, sw = fit_sweep(a, lists, **fixed)
    d = fit_data(a, option, sw, **fixed)
    return draw_fit(d), d
