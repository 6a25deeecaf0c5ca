"""``archviz plot --kind memory``: memory per layer (stacked bars) and the peak against the batch
with the device's capacity line. :func:`memory_data` says exactly what is plotted (tested);
:func:`draw_memory` draws it (matplotlib imported inside)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.cost import Cost
from ..record import record
from .text import mpl

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..core.analysis import Analysis
    from ..core.cost import Target
    from ..ops.lowering import Lowering

MIB = 2**20


PARTS = (("params", "#08519c"), ("grads", "#3182bd"), ("optimizer", "#9ecae1"),
         ("buffers + input", "#bdbdbd"), ("saved (activations)", "#fd8d3c"),
         ("transient (temporaries)", "#fdd0a2"))


@record
class MemoryData:
    title: str
    names: tuple[str, ...]                              # one bar per GPU
    stacks: tuple[tuple[str, tuple[float, ...]], ...]   # (part, MiB per GPU), bottom first; sums to the peak
    batches: tuple[int, ...]
    peaks: tuple[float, ...]                            # MiB on the busiest GPU, per batch
    capacity: float | None                              # MiB
    device: str
    largest_batch: int | None


def memory_data(c: Cost, curve: list[tuple[int, int]]) -> MemoryData:
    """Per GPU, the breakdown of its peak (the table's and the JSON's words: params, grads,
    optimizer, buffers and input, saved, transient); ``curve``: (batch, peak bytes) pairs."""
    s, p = c.settings, c.parallel
    gpus = c.per_gpu if p.tp > 1 else (c.memory,)
    names = tuple(f"GPU {i}" for i in range(len(gpus))) if p.tp > 1 else ("each GPU",)
    values = {"params": [m.params for m in gpus], "grads": [m.grads for m in gpus],
              "optimizer": [m.optimizer for m in gpus],
              "buffers + input": [m.buffers + m.input + m.kv_cache for m in gpus],
              "saved (activations)": [m.saved + m.recompute for m in gpus],
              "transient (temporaries)": [m.transient for m in gpus]}
    stacks = tuple((label, tuple(v / MIB for v in values[label])) for label, _ in PARTS)
    title = (f"{c.name}: {s.mode.value}, batch {s.batch}, {s.precision.value} {s.dtype.value},"
             f" {s.optimizer.value}; tp {p.tp} · dp {p.dp} · pp {p.pp}"
             + (f", ZeRO-{s.zero}" if s.zero else ""))
    return MemoryData(title, names, stacks, tuple(b for b, _ in curve),
                      tuple(x / MIB for _, x in curve), c.capacity / MIB if c.capacity else None,
                      c.target.name, c.largest_batch)


def draw_memory(d: MemoryData) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    bottom = [0.0] * len(d.names)
    for (label, values), (_, colour) in zip(d.stacks, PARTS, strict=True):
        left.bar(range(len(d.names)), values, bottom=bottom, color=colour, label=label, width=0.6)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    left.set_xticks(range(len(d.names)), [mpl(n) for n in d.names])
    if d.capacity:
        left.axhline(d.capacity, color="#de2d26", ls="--")
    left.set(ylabel="MiB at the peak", title=mpl(d.title))
    left.title.set_fontsize(9)
    left.legend(fontsize=8)
    right.plot(d.batches, d.peaks, marker="o", color="#3182bd", label="predicted peak")
    if d.capacity:
        right.axhline(d.capacity, color="#de2d26", ls="--",
                      label=mpl(f"{d.device}: {d.capacity / 1024:.0f} GiB"))
    if d.largest_batch:
        right.axvline(d.largest_batch, color="grey", ls=":", label=f"largest batch {d.largest_batch}")
    right.set(xscale="log", xlabel="batch", ylabel="MiB per GPU", title="peak memory against the batch")
    right.legend(fontsize=8)
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def curve_batches(largest: int | None, batch: int) -> list[int]:
    """Batches 1, 2, 4, … up to twice the largest that fits (or the batch asked), for the curve."""
    top = max(batch, 2 * (largest or batch), 2)
    out, b = [], 1
    while b <= top:
        out.append(b)
        b *= 2
    return out




def memory_figure(a: Analysis, where: Target, batch: int, gpus: int | None, lower: Lowering) -> Figure:
    """``archviz plot --kind memory``: archviz cost's estimate at ``batch`` on ``where`` (a device of
    the table, or this machine's from :func:`archviz.runtime.probe.device_target`) and its peak
    against the batch, drawn."""
    from dataclasses import replace

    from ..core.analysis import analyze
    from ..core.cost import Settings, estimate

    settings = Settings(batch=batch, torch_device="cpu" if where.key == "cpu" else "cuda", lowering=lower)
    if gpus is not None:
        a = analyze(a.graph, a.input, gpus, a.input_dtype)
    c = estimate(a, settings, where, gpus)
    curve = [(b, estimate(a, replace(settings, batch=b), where, gpus).peak)
             for b in curve_batches(c.largest_batch, batch)]
    return draw_memory(memory_data(c, curve))
