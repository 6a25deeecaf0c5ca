"""Will it fit, and how long will it take: memory and a roofline time from the analysis (pure).

Memory (bytes, for one step at ``batch``): parameters (fp32 master weights), their gradients
(train), the optimizer's state (SGD none, momentum one fp32 buffer, Adam two), buffers, the input
batch (fp32), the tensors autograd saves for backward (train: each op's rule in
:meth:`archviz.ops.OpKind.saved`, deduplicated by storage: a ReLU output the next layer saves
counts once) and the transient working set (the largest layer's inputs + output, + its
low-precision weight copy under autocast: the forward's and, as gradients, the backward's).
tests/test_cost_torch.py checks the saved bytes against autograd and the parameter, gradient
and optimizer bytes against a real optimizer step.

Time (a lower bound, the roofline): per layer, forward and backward FLOPs (2·MACs of conv and
linear, plus the other ops' own work in a column apart) over the device's peak for the dtype, and
bytes moved over its memory bandwidth; the larger of the two is the layer's time and says
whether it is compute- or memory-bound. A split over G GPUs divides the work by G and adds the
cross-GPU activations (forward) and their gradients (backward) over the link between them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import Enum
from math import prod

from ..errors import ArchvizError, did_you_mean
from ..ops import OPS
from ..ops.saved import DTYPE_BYTES, Autocast, Saved
from ..spec import INPUT
from .analysis import Analysis, LayerStats, channel_share
from .devices import GPU_PEAKS, Dtype, GpuPeak, Link, by_key, link_for, lookup
from .flops import Mode, needs_grad

GIB = 2**30


class CostError(ArchvizError):
    """Bad settings for the cost model (an unknown device, a batch below 1, ...)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def format(self) -> str:
        return str(self) + (f"\n{self.hint}" if self.hint else "")


class Optimizer(str, Enum):
    """The optimizer whose state is counted: fp32 tensors per parameter."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"

    @property
    def states(self) -> int:
        return {"sgd": 0, "momentum": 1, "adam": 2}[self.value]


@dataclass(frozen=True, kw_only=True)
class Settings:
    mode: Mode = Mode.train
    batch: int = 128
    dtype: Dtype = Dtype.fp32
    optimizer: Optimizer = Optimizer.momentum
    torch_device: str = "cuda"      # whose saved-tensor rules: "cpu" or "cuda" (the dropout mask)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise CostError(f"--batch: expected a positive number of images, got {self.batch}")


@dataclass(frozen=True)
class Target:
    """The hardware: a row of the device table, or the local CPU / GPU."""

    key: str
    name: str
    memory_gib: float | None
    bandwidth_gbs: float | None
    peak: GpuPeak | None
    link: Link | None
    source: str

    def tflops(self, dtype: Dtype) -> float | None:
        """Peak TFLOP/s for ``dtype``; a GPU without a fast half type runs it at its fp32 rate."""
        if self.peak is None:
            return None
        return self.peak.get(dtype.value) or self.peak.fp32


def device_keys() -> tuple[str, ...]:
    return tuple(r.key for r in GPU_PEAKS) + ("cpu", "cuda")


LOCAL = ("cpu", "cuda")   # this machine's hardware: probed by archviz.runtime.probe.device_target


def target(name: str) -> Target:
    """A row of the device table by its key (gtx580, h100, ...). The local ``cpu`` / ``cuda`` of
    ``--device`` are the machine's, which :func:`archviz.runtime.probe.device_target` asks."""
    key = name.strip().lower()
    row = by_key(key)
    if row is not None:
        return Target(row.key, row.name, row.memory_gib, row.bandwidth_gbs, row, link_for(row.key),
                      row.source)
    table = tuple(k for k in device_keys() if k not in LOCAL)
    if key in LOCAL:
        raise CostError(f"device '{key}' is this machine's, which a pure estimate does not probe",
                        "name a device of the table: " + ", ".join(table))
    keys = device_keys()
    raise CostError(f"--device: unknown device '{name}'",
                    hint=(did_you_mean(key, keys) + "\n" if did_you_mean(key, keys) else "")
                    + "known: " + ", ".join(keys))


def local_target(key: str, name: str, memory_gib: float | None, source: str) -> Target:
    """This machine's device as a Target: its table row when ``name`` matches one, else no peaks."""
    row = lookup(name) if key == "cuda" else None
    return Target(row.key if row else key, name, memory_gib, row.bandwidth_gbs if row else None, row,
                  link_for(row.key) if row else None, source)


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Memory:
    params: int
    grads: int
    optimizer: int
    buffers: int
    input: int
    saved: int
    transient: int
    cross: int = 0                # bytes of other GPUs' activations received (a split)

    @property
    def total(self) -> int:
        return (self.params + self.grads + self.optimizer + self.buffers + self.input + self.saved
                + self.transient)

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "grads": self.grads, "optimizer": self.optimizer,
                "buffers": self.buffers, "input": self.input, "saved": self.saved,
                "transient": self.transient, "cross": self.cross, "total": self.total}


@dataclass(frozen=True, kw_only=True)
class Time:
    step_ms: float                # one step on all the GPUs together
    compute_ms: float
    link_ms: float                # cross-GPU traffic
    update_ms: float              # the optimizer update (memory-bound)
    train_flops_per_image: int    # forward + backward, MACs and other work

    def run_seconds(self, epochs: float, images: int, batch: int) -> float:
        return epochs * math.ceil(images / batch) * self.step_ms / 1e3


@dataclass(frozen=True, kw_only=True)
class Cost:
    name: str
    settings: Settings
    target: Target
    gpus: int
    layers: tuple[LayerCost, ...]
    memory: Memory                       # the whole model on one device
    per_gpu: tuple[Memory, ...]          # under a split, each GPU's share; else (memory,)
    lower_bound: bool                    # a layer's saved bytes are unknown
    largest_batch: int | None            # the largest batch that fits per GPU (None: no capacity)
    time: Time | None

    @property
    def peak(self) -> int:
        """Bytes on the busiest device."""
        return max(m.total for m in self.per_gpu)

    @property
    def capacity(self) -> int | None:
        return int(self.target.memory_gib * GIB) if self.target.memory_gib else None

    @property
    def fits(self) -> bool | None:
        return None if self.capacity is None else self.peak <= self.capacity


# ---- memory ----------------------------------------------------------------------------------

def _layer_rules(analysis: Analysis, s: Settings) -> list[tuple[LayerStats, Saved, int, int]]:
    """(stats, Saved rule, saved bytes per image, fixed saved bytes) per layer, deduplicated by
    storage: a tensor is counted by the first layer that saves it (execution order)."""
    grad = needs_grad(analysis)
    dtypes: dict[str, str] = {INPUT: "fp32"}
    storage: dict[str, str] = {INPUT: INPUT}
    seen: set[str] = set()
    out = []
    for st in analysis.layers:
        kind = OPS[st.op]
        ac = Autocast(s.dtype.autocast, tuple(dtypes[i] for i in st.inputs), s.torch_device)
        rule = kind.saved(st.op_params, st.in_shapes, st.output, ac)
        dtypes[st.name] = rule.out_dtype
        storage[st.name] = storage[st.inputs[0]] if rule.view else st.name
        per_image = fixed = 0
        if st.name in grad:  # autograd records nothing for a layer no gradient flows through
            for i, t in enumerate(rule.tensors):
                key = (storage[st.inputs[t.index]] if t.shares == "input" else
                       storage[st.name] if t.shares == "output" else f"{st.name}#{i}") + f":{t.dtype}"
                if key in seen:
                    continue
                seen.add(key)
                if t.per_image:
                    per_image += t.bytes
                else:
                    fixed += t.bytes
        out.append((st, rule, per_image, fixed))
    return out


def saved_bytes(analysis: Analysis, settings: Settings) -> dict[str, int]:
    """Layer → bytes it saves for backward at ``settings.batch`` (the autograd oracle's figure)."""
    return {st.name: per * settings.batch + fixed
            for st, _, per, fixed in _layer_rules(analysis, settings)}


def estimate(analysis: Analysis, settings: Settings, device: Target,
             gpus: int | None = None) -> Cost:
    """Memory and time of one step (see the module's docstring)."""
    n_gpus = gpus or analysis.gpus or 1
    rules = _layer_rules(analysis, settings)   # the batch does not change the rules
    timed = device.tflops(settings.dtype) is not None and bool(device.bandwidth_gbs)
    layers = _layers(analysis, settings, rules, device if timed else None, n_gpus)
    unknown = any(not lc.saved_known for lc in layers)
    memory = _memory(analysis, layers, settings, 1, 0)
    per_gpu = tuple(_memory(analysis, layers, settings, n_gpus, g) for g in range(n_gpus)) \
        if n_gpus > 1 else (memory,)
    time = _time(analysis, layers, settings, device, n_gpus) if timed else None
    cost = Cost(name=analysis.name, settings=settings, target=device, gpus=n_gpus, layers=tuple(layers),
                memory=memory, per_gpu=per_gpu, lower_bound=unknown, largest_batch=None, time=time)
    return replace(cost, largest_batch=_largest_batch(analysis, settings, device, n_gpus, rules))


def _largest_batch(analysis: Analysis, s: Settings, device: Target, gpus: int,
                   rules: list[tuple[LayerStats, Saved, int, int]]) -> int | None:
    """Memory is affine in the batch: solve fixed + b·per_image ≤ capacity on the busiest GPU."""
    if not device.memory_gib:
        return None
    cap = int(device.memory_gib * GIB)

    def peak(b: int) -> int:
        ls = _layers(analysis, replace(s, batch=b), rules)
        return max(_memory(analysis, ls, replace(s, batch=b), gpus, g).total for g in range(gpus))

    one, two = peak(1), peak(2)
    slope, fixed = two - one, 2 * one - two
    if one > cap or slope <= 0:
        return 0 if one > cap else None
    b = (cap - fixed) // slope
    while gpus > 1 and b > 1 and peak(b) > cap:   # rounding in the channel shares
        b -= 1
    return b


def _layers(analysis: Analysis, s: Settings, rules: list[tuple[LayerStats, Saved, int, int]],
            device: Target | None = None, gpus: int = 1) -> list[LayerCost]:
    """Every layer's bytes and FLOPs at the batch; with a ``device``, its roofline time too."""
    grad = needs_grad(analysis)
    act = {INPUT: prod(analysis.input) * 4}
    train = s.mode is Mode.train
    out = []
    for st, rule, per, fixed in rules:
        kind = OPS[st.op]
        p = st.op_params
        size = DTYPE_BYTES[rule.out_dtype]
        act[st.name] = prod(st.output) * size
        ins = sum(act[i] for i in st.inputs) * s.batch
        outb = act[st.name] * s.batch
        pbytes = st.params * 4
        copy = st.params * 2 if s.dtype.autocast and st.macs else 0
        weights_fwd = pbytes + 2 * copy          # read fp32, write and read the low copy
        mac_flops = 2 * st.macs * s.batch
        work = kind.work(p, st.in_shapes, st.output) * s.batch
        input_grad = any(i in grad for i in st.inputs)
        bwd_flops = (mac_flops if st.params and st.macs else 0) + (mac_flops if input_grad else 0) \
            + (work if st.name in grad else 0)
        saved = per * s.batch + fixed
        bytes_bwd = (outb + saved + (copy or pbytes) + (ins if input_grad else 0) + pbytes) \
            if st.name in grad else 0
        fwd_bytes, bwd_bytes, bwd_flops = ins + outb + weights_fwd, bytes_bwd if train else 0, \
            bwd_flops if train else 0
        ms, bound = None, ""
        if device is not None:
            fwd, bound = _roofline(mac_flops + work, fwd_bytes, device, s.dtype)
            ms = (fwd + (_roofline(bwd_flops, bwd_bytes, device, s.dtype)[0] if train else 0.0)) / gpus
        out.append(LayerCost(
            name=st.name, op=st.op, out_dtype=rule.out_dtype,
            saved=saved if train else 0, saved_known=rule.known,
            params=pbytes, buffers=kind.buffer_bytes(p, st.in_shapes, st.output),
            activation=outb, mac_flops_fwd=mac_flops, work_fwd=work,
            flops_bwd=bwd_flops, bytes_fwd=fwd_bytes, bytes_bwd=bwd_bytes, transient=ins + outb + copy,
            gpu_local=st.gpu_local, time_ms=ms, bound=bound))
    return out


def _share(total: int, channels: int, gpus: int, gpu: int) -> int:
    """GPU ``gpu``'s share of ``total``, split like the layer's output channels (remainder on 0)."""
    if gpus == 1:
        return total
    shares = [total * channel_share(channels, gpus, g) // channels for g in range(gpus)]
    shares[0] += total - sum(shares)
    return shares[gpu]


def _memory(analysis: Analysis, layers: list[LayerCost], s: Settings, gpus: int, gpu: int) -> Memory:
    train = s.mode is Mode.train
    stats = {st.name: st for st in analysis.layers}
    params = buffers = saved = cross = 0
    transient = 0
    for lc in layers:
        st = stats[lc.name]
        c = st.output[0]
        params += _share(lc.params, c, gpus, gpu)
        buffers += _share(lc.buffers, c, gpus, gpu)
        layer_saved = _share(lc.saved, c, gpus, gpu)
        if gpus > 1 and not lc.gpu_local:
            # a layer that reads every GPU's share receives the others' activations and keeps them
            got = sum(prod(x) for x in st.in_shapes) * s.batch * DTYPE_BYTES[s.dtype.stored]
            cross += got * (gpus - 1) // gpus
            layer_saved += got * (gpus - 1) // gpus if train else 0
        saved += layer_saved
        transient = max(transient, _share(lc.transient, c, gpus, gpu))
    state = params * s.optimizer.states if train else 0
    return Memory(params=params, grads=params if train else 0, optimizer=state, buffers=buffers,
                  input=prod(analysis.input) * 4 * s.batch, saved=saved if train else 0,
                  transient=transient, cross=cross)


# ---- time ------------------------------------------------------------------------------------

def _roofline(flops: int, nbytes: int, device: Target, dtype: Dtype) -> tuple[float, str]:
    peak = device.tflops(dtype)
    assert peak is not None and device.bandwidth_gbs is not None
    compute, memory = flops / (peak * 1e12), nbytes / (device.bandwidth_gbs * 1e9)
    return max(compute, memory) * 1e3, "compute" if compute >= memory else "memory"


def _time(analysis: Analysis, layers: list[LayerCost], s: Settings, device: Target, gpus: int) -> Time:
    compute = sum(lc.time_ms or 0.0 for lc in layers)
    link = 0.0
    if gpus > 1 and analysis.split is not None:
        link_gbs = device.link.gbs if device.link else 8.0
        passes = 2 if s.mode is Mode.train else 1          # activations forward, gradients back
        nbytes = analysis.split.cross_bytes(s.batch, DTYPE_BYTES[s.dtype.stored]) * passes
        link = nbytes / gpus / (link_gbs * 1e9) * 1e3
    update = 0.0
    assert device.bandwidth_gbs is not None
    if s.mode is Mode.train:   # read weights and gradients, write weights; read and write each state
        p = sum(lc.params for lc in layers) // gpus
        update = p * (3 + 2 * s.optimizer.states) / (device.bandwidth_gbs * 1e9) * 1e3
    per_image = sum(lc.flops_fwd + lc.flops_bwd for lc in layers) // s.batch
    return Time(step_ms=compute + link + update, compute_ms=compute, link_ms=link, update_ms=update,
                train_flops_per_image=per_image)


# ---- formatting helpers shared by the views and check ----------------------------------------

def fmt_gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def parse_images(text: str) -> int:
    """``1.2M`` → 1200000."""
    m = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([KMG]?)\s*", text, re.IGNORECASE)
    if not m:
        raise CostError(f"--images: expected a count such as 1.2M or 50000, got {text!r}")
    value = float(m.group(1).replace(",", "").replace("_", "")) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[
        m.group(2).upper()]
    if value < 1:
        raise CostError(f"--images: expected at least one image, got {text!r}")
    return int(value)

