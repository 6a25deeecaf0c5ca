"""Each layer's bytes, FLOPs and roofline time at a batch (archviz.core.cost's per-layer rows):
:class:`Part` holds a layer's figures per image, computed once for an analysis and settings
(archviz.core.cost's walk); :func:`layers` makes the rows at a batch and :func:`sums` only the
totals a step's time needs (a sweep's thousand rows), one term per group of equal layers."""

from __future__ import annotations

from collections.abc import Iterator
from math import prod
from typing import TYPE_CHECKING, Any

from ..ops import OPS
from ..ops.saved import DTYPE_BYTES, Saved, input_saved_dtype
from ..record import record
from ..spec import INPUT
from .analysis import Analysis, LayerStats
from .flops import Mode, needs_grad

if TYPE_CHECKING:  # pragma: no cover
    from .cost import Settings, Target


@record(kw_only=True)
class LayerCost:
    """One layer at the settings' batch: bytes and FLOPs for the whole batch."""

    name: str
    op: str
    out_dtype: str
    saved: int                    # new storages this layer saves for backward (train)
    saved_known: bool
    params: int                   # bytes of fp32 parameters
    buffers: int                  # bytes of buffers (BatchNorm's running statistics)
    activation: int               # bytes of its output
    mac_flops_fwd: int            # 2·MACs (conv, linear)
    work_fwd: int                 # the other ops' FLOPs (LRN, pooling, norms, activations)
    flops_bwd: int
    bytes_fwd: int
    bytes_bwd: int
    transient: int                # its working set: inputs + output (+ low-precision weight copy)
    gpu_local: bool
    time_ms: float | None = None  # forward (+ backward in train) lower bound
    bound: str = ""               # "compute" / "memory"

    @property
    def flops_fwd(self) -> int:
        return self.mac_flops_fwd + self.work_fwd



@record
class Part:
    """One layer's figures per image (bytes, FLOPs) and fixed bytes: a row of LayerCost at any batch."""

    st: LayerStats
    out_dtype: str
    known: bool
    per: int                      # saved bytes per image, and fixed
    fixed: int
    ins: int                      # input and output bytes per image
    outb: int
    pbytes: int
    copy: int
    macs: int                     # 2·MACs per image, and the other ops' FLOPs
    work: int
    bwd_flops: int                # per image (train)
    input_grad: bool
    in_grad: bool
    buffers: int


def parts(analysis: Analysis, s: Settings, rules: list[tuple[LayerStats, Saved, int, int]]) -> list[Part]:
    grad = needs_grad(analysis)
    act = {INPUT: prod(analysis.input) * DTYPE_BYTES[input_saved_dtype(analysis.input_dtype)]}
    out = []
    for st, rule, per, fixed in rules:
        kind = OPS[st.op]
        p = st.op_params
        act[st.name] = prod(st.output) * DTYPE_BYTES[rule.out_dtype]
        mac_flops = 2 * st.macs
        work = kind.work(p, st.in_shapes, st.output)
        input_grad = any(i in grad for i in st.inputs)
        bwd = (mac_flops if st.params and st.macs else 0) + (mac_flops if input_grad else 0) \
            + (work if st.name in grad else 0)
        out.append(Part(st, rule.out_dtype, rule.known, per, fixed, sum(act[i] for i in st.inputs),
                         act[st.name], st.params * 4, st.params * 2 if s.dtype.autocast and st.macs else 0,
                         mac_flops, work, bwd, input_grad, st.name in grad,
                         kind.buffer_bytes(p, st.in_shapes, st.output)))
    return out


def figures(parts: list[Part], s: Settings) -> Iterator[tuple[Part, int, int, int, int, int, int, int]]:
    """Per layer at the batch: (part, inputs + output bytes, output bytes, forward FLOPs, saved
    bytes, forward bytes, backward bytes, backward FLOPs)."""
    train, b = s.mode is Mode.train, s.batch
    for x in parts:
        ins, outb = x.ins * b, x.outb * b
        saved = x.per * b + x.fixed
        bytes_bwd = (outb + saved + (x.copy or x.pbytes) + (ins if x.input_grad else 0) + x.pbytes) \
            if x.in_grad and train else 0
        yield (x, ins, outb, (x.macs + x.work) * b, saved, ins + outb + x.pbytes + 2 * x.copy, bytes_bwd,
               x.bwd_flops * b if train else 0)      # forward: read fp32, write and read the low copy


def _ms(fwd_flops: int, fwd_bytes: int, bwd_flops: int, bwd_bytes: int, train: bool, device: Target,
        peak: float | None, gpus: int) -> tuple[float, str]:
    fwd, bound = roofline(fwd_flops, fwd_bytes, device, peak)
    return (fwd + (roofline(bwd_flops, bwd_bytes, device, peak)[0] if train else 0.0)) / gpus, bound


def layers(parts: list[Part], s: Settings, device: Target | None = None, gpus: int = 1) -> list[LayerCost]:
    """Every layer's bytes and FLOPs at the batch; with a ``device``, its roofline time too."""
    train, b = s.mode is Mode.train, s.batch
    peak = device.tflops(s.dtype) if device is not None else None
    out = []
    for x, ins, outb, fwd_flops, saved, fwd_bytes, bwd_bytes, bwd_flops in figures(parts, s):
        ms, bound = None if device is None else _ms(fwd_flops, fwd_bytes, bwd_flops, bwd_bytes, train,
                                                    device, peak, gpus), ""
        if ms is not None:
            ms, bound = ms
        out.append(LayerCost(
            name=x.st.name, op=x.st.op, out_dtype=x.out_dtype, saved=saved if train else 0,
            saved_known=x.known, params=x.pbytes, buffers=x.buffers, activation=outb,
            mac_flops_fwd=x.macs * b, work_fwd=x.work * b, flops_bwd=bwd_flops, bytes_fwd=fwd_bytes,
            bytes_bwd=bwd_bytes, transient=ins + outb + x.copy, gpu_local=x.st.gpu_local, time_ms=ms,
            bound=bound))
    return out


def sums(groups: tuple[tuple[Part, ...], tuple[int, ...]], s: Settings, device: Target,
          gpus: int) -> tuple[float, int]:
    """The layers' roofline milliseconds and FLOPs per image, summed (as :func:`_layers`' rows);
    ``groups``: one part for each set of layers with equal figures (a block's copies), and how many."""
    train, peak, bw = s.mode is Mode.train, device.tflops(s.dtype), device.bandwidth_gbs
    assert peak is not None and bw is not None
    ms, flops, f, m = 0.0, 0, peak * 1e12, bw * 1e9
    rows = figures(list(groups[0]), s)
    for n, (_, _, _, fwd_flops, _, fwd_bytes, bwd_bytes, bwd_flops) in zip(groups[1], rows, strict=True):
        fwd = max(fwd_flops / f, fwd_bytes / m) * 1e3                         # _ms, inline
        ms += n * (fwd + (max(bwd_flops / f, bwd_bytes / m) * 1e3 if train else 0.0)) / gpus
        flops += n * (fwd_flops + bwd_flops)
    return ms, flops // s.batch


def groups(parts: list[Part]) -> tuple[tuple[Part, ...], tuple[int, ...]]:
    count: dict[tuple[int | bool, ...], list[Any]] = {}
    for x in parts:
        key = (x.ins, x.outb, x.per, x.fixed, x.pbytes, x.copy, x.macs, x.work, x.bwd_flops, x.input_grad,
               x.in_grad)
        count.setdefault(key, [x, 0])[1] += 1
    return tuple(x for x, _ in count.values()), tuple(n for _, n in count.values())


def roofline(flops: int, nbytes: int, device: Target, peak: float | None) -> tuple[float, str]:
    assert peak is not None and device.bandwidth_gbs is not None
    compute, memory = flops / (peak * 1e12), nbytes / (device.bandwidth_gbs * 1e9)
    return max(compute, memory) * 1e3, "compute" if compute >= memory else "memory"
