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
from dataclasses import field, replace
from enum import Enum
from math import prod
from typing import TYPE_CHECKING

from ..errors import did_you_mean
from ..ops import OPS
from ..ops.lowering import Lowering
from ..ops.saved import DTYPE_BYTES, Autocast, Saved, SavedTensor, input_saved_dtype
from ..record import record
from ..spec import INPUT
from . import cost_comm as comm
from .analysis import Analysis, LayerStats, channel_share
from .cost_layers import LayerCost, Part, groups, sums
from .cost_layers import layers as layer_rows
from .cost_layers import parts as layer_parts
from .cost_layout import Layout, Recompute, divide, is_attention, layout
from .cost_memory import (
    ZERO,
    Aff,
    Moment,
    Storage,
    add,
    at,
    demand,
    in_flight,
    largest_batch,
    saved_rule,
    tensor_bytes,
    timeline,
    zero_moments,
)
from .cost_states import CostError, Parallel, Precision, StateBytes, kept, sharded, state_bytes, usable
from .devices import GPU_PEAKS, Dtype, GpuPeak, Link, by_key, link_for, lookup, network_for
from .flops import Mode, needs_grad

if TYPE_CHECKING:
    from .cost_serve import Serving

GIB = 2**30


class Optimizer(str, Enum):
    """The optimizer whose state is counted: fp32 tensors per parameter."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    adamw = "adamw"

    @property
    def states(self) -> int:
        return {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[self.value]

    def temporaries(self, tensors: list[tuple[int, int]], foreach: bool) -> tuple[int, int]:
        """The update's working buffers (fixed bytes): torch's single-tensor loop (the CPU
        default) holds them for one parameter tensor at a time (SGD's weight-decayed gradient,
        Adam's square root and denominator), the foreach kernels (CUDA) for all at once
        (the decayed gradients, Adam's list of square roots)."""
        if foreach:
            return ({"sgd": 0, "momentum": 1, "adam": 1, "adamw": 1}[self.value]
                    * sum(t[0] for t in tensors), 0)
        largest = max((t[0] for t in tensors), default=0)
        return ({"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[self.value] * largest, 0)


@record(kw_only=True)
class Settings:
    mode: Mode = Mode.train
    batch: int = 128
    dtype: Dtype = Dtype.fp32
    optimizer: Optimizer = Optimizer.momentum
    torch_device: str = "cuda"      # whose saved-tensor rules: "cpu" or "cuda" (the dropout mask)
    lowering: Lowering = Lowering()  # how ops with a choice are built (a layer's `lowering:` wins)
    precision: Precision = Precision.amp
    zero: int = 0                   # ZeRO stage over the dp devices (3 = FSDP)
    dp: int = 1                     # data-parallel replicas; ``batch`` is each one's micro-batch
    grad_accum: int = 1             # micro-steps per optimizer step
    tp: int = 1                     # Megatron tensor parallelism of a model with attention
    sp: bool = False                # sequence parallelism (with tp)
    pp: int = 1                     # pipeline stages (1F1B)
    recompute: Recompute = Recompute.none

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise CostError(f"--batch: expected a positive number of images, got {self.batch}")
        if self.zero not in (0, 1, 2, 3):
            raise CostError(f"--zero: expected a ZeRO stage 0, 1, 2 or 3, got {self.zero}")
        if self.dp < 1 or self.grad_accum < 1 or self.tp < 1 or self.pp < 1:
            raise CostError("--grad-accum and the data-parallel degree: expected positive numbers")
        if self.precision is not Precision.amp and self.dtype.autocast is None:
            raise CostError(f"--precision {self.precision.value}: needs a 16-bit --dtype (bf16 or fp16)",
                            "hint: --precision amp keeps fp32 parameters; mixed stores them in --dtype")

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step: batch · grad-accum · dp."""
        return self.batch * self.grad_accum * self.dp

    @property
    def states(self) -> StateBytes:
        """Bytes per parameter before ZeRO: parameters, gradients, optimizer state."""
        return state_bytes(self.precision, self.optimizer.states, DTYPE_BYTES[self.dtype.stored])

    @property
    def storage(self) -> Storage:
        """What the step's walk stores (archviz.core.cost_memory.Storage)."""
        if self.precision is Precision.amp:
            return Storage()
        low = DTYPE_BYTES[self.dtype.stored]
        if self.precision is Precision.megatron:   # bf16 gradients accumulate into fp32 main grads
            return Storage(self.dtype.stored, 0, True, True, self.torch_device)
        return Storage(self.dtype.stored, low, False, True, self.torch_device)


@record
class Target:
    """The hardware: a row of the device table, or the local CPU / GPU."""

    key: str
    name: str
    memory_gib: float | None
    bandwidth_gbs: float | None
    peak: GpuPeak | None
    link: Link | None
    source: str
    network: Link | None = None   # between nodes (InfiniBand), per GPU

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
                      row.source, network_for(row.key))
    size = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(gb|gib)", key)
    if size:   # a capacity alone: memory is answered, time is not (no peak FLOP/s, no bandwidth)
        gib = float(size.group(1))
        return Target(key, f"a {size.group(1)} GB device", gib, None, None, None,
                      "--device: a capacity (GB as the vendors write it: binary, GiB)")
    table = tuple(k for k in device_keys() if k not in LOCAL)
    if key in LOCAL:
        raise CostError(f"device '{key}' is this machine's, which a pure estimate does not probe",
                        "name a device of the table: " + ", ".join(table))
    keys = device_keys()
    near = did_you_mean(key, keys)
    near = near if near.startswith("did you mean") else ""   # the list is printed once, below
    raise CostError(f"--device: unknown device '{name}'",
                    hint=(near + "\n" if near else "") + "known: " + ", ".join(keys)
                    + ", or a capacity such as 24GB")


def local_target(key: str, name: str, memory_gib: float | None, source: str) -> Target:
    """This machine's device as a Target: its table row when ``name`` matches one, else no peaks."""
    row = lookup(name) if key == "cuda" else None
    return Target(row.key if row else key, name, memory_gib, row.bandwidth_gbs if row else None, row,
                  link_for(row.key) if row else None, source, network_for(row.key) if row else None)


@record(kw_only=True)
class Memory:
    params: int
    grads: int
    optimizer: int
    buffers: int
    input: int
    saved: int
    transient: int
    cross: int = 0                # bytes of other GPUs' activations received (a split)
    kv_cache: int = 0             # inference's KV cache (archviz.core.cost_serve)
    recompute: int = 0            # activations recomputed in backward, alive again (--recompute)
    phase: str = ""               # the moment of the peak: forward, backward or optimizer
    at: str = ""                  # and the layer running then

    @property
    def model_states(self) -> int:
        return self.params + self.grads + self.optimizer

    @property
    def total(self) -> int:
        """The peak: every part is taken at the step's worst moment."""
        return (self.model_states + self.buffers + self.input + self.saved + self.recompute
                + self.transient + self.kv_cache)

    @property
    def peak(self) -> int:
        return self.total

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "grads": self.grads, "optimizer": self.optimizer,
                "model_states": self.model_states, "buffers": self.buffers, "input": self.input,
                "saved": self.saved, "recompute": self.recompute, "transient": self.transient,
                "cross": self.cross,
                "kv_cache": self.kv_cache, "total": self.total, "peak": self.peak}


@record(kw_only=True)
class Time:
    step_ms: float                # one step on all the GPUs together
    compute_ms: float
    link_ms: float                # cross-GPU traffic
    update_ms: float              # the optimizer update (memory-bound)
    train_flops_per_image: int    # forward + backward, MACs and other work
    dp_ms: float = 0.0            # the data-parallel traffic (gradients, ZeRO's parameters)
    global_batch: int = 0         # samples per step: batch · grad-accum · dp
    pp_ms: float = 0.0            # the pipeline's sends between stages
    links: dict[str, str] = field(default_factory=dict)   # tp / dp / pp: the link's name

    def run_seconds(self, epochs: float, images: int, batch: int) -> float:
        return epochs * math.ceil(images / batch) * self.step_ms / 1e3


@record(kw_only=True)
class Cost:
    name: str
    settings: Settings
    target: Target
    parallel: Parallel                   # tp (the spec's channel split) · dp · pp
    layers: tuple[LayerCost, ...]
    memory: Memory                       # the whole model on one device
    per_gpu: tuple[Memory, ...]          # under a split, each tp GPU's share; else (memory,)
    lower_bound: bool                    # a layer's saved bytes are unknown
    largest_batch: int | None            # the largest batch per replica that fits (None: no capacity)
    time: Time | None
    serving: Serving | None = None       # --mode infer on a decoder: the KV cache, prefill, decode
    demand: tuple[Aff, ...] = ()         # every device's every moment, affine in the batch

    @property
    def gpus(self) -> int:
        """All the devices: tp · dp · pp."""
        return self.parallel.gpus

    @property
    def peak(self) -> int:
        """Bytes on the busiest device."""
        return max(m.total for m in self.per_gpu)

    @property
    def capacity(self) -> int | None:
        return int(self.target.memory_gib * GIB) if self.target.memory_gib else None

    @property
    def on_gpu(self) -> bool:
        return self.target.key != "cpu"

    @property
    def kept(self) -> int:
        """Bytes kept beside the peak: the CUDA context and the allocator's reserve (GPU only)."""
        return kept(self.peak, self.on_gpu)

    @property
    def fits(self) -> bool | None:
        return None if self.capacity is None else self.peak + self.kept <= self.capacity


# ---- memory ----------------------------------------------------------------------------------

def settings_layout(analysis: Analysis, s: Settings) -> Layout:
    """Where this device's tensors lie (archviz.core.cost_layout)."""
    return layout(analysis, s.tp, s.sp, s.pp, s.recompute)


def _layer_rules(analysis: Analysis, s: Settings) -> list[tuple[LayerStats, Saved, int, int]]:
    """(stats, Saved rule, saved bytes per image, fixed saved bytes) per layer on one device,
    deduplicated by storage: a tensor is counted by the first layer that saves it (execution
    order); tensor parallelism, recomputation and pipeline stages as the layout says."""
    lay = settings_layout(analysis, s)
    own = {la.name: la.lowering for la in analysis.spec.layers}
    grad = needs_grad(analysis)
    dtypes: dict[str, str] = {INPUT: _input_dtype(analysis, s.storage.input)}
    storage: dict[str, str] = {INPUT: INPUT}
    seen: set[str] = set()
    out = []
    for st in analysis.layers:
        kind = OPS[st.op]
        ac = Autocast(s.dtype.autocast, tuple(dtypes[i] for i in st.inputs), s.torch_device,
                      st.inputs[0] in grad)
        lowering = s.lowering.choice(st.op, own[st.name])   # the layer's own beats the settings'
        rule = saved_rule(kind, st, ac, lowering, s.storage)
        dtypes[st.name] = rule.out_dtype
        storage[st.name] = storage[st.inputs[0]] if rule.view else st.name
        per_image = fixed = 0
        if st.name in grad:  # autograd records nothing for a layer no gradient flows through
            for i, t in enumerate(rule.tensors):
                nbytes = tensor_bytes(t, s.storage)
                if nbytes is None:
                    continue       # the weight is stored in the compute dtype: no cast copy
                key = (storage[st.inputs[t.index]] if t.shares == "input" else
                       storage[st.name] if t.shares == "output" else f"{st.name}#{i}") + f":{t.dtype}"
                if key in seen:
                    continue
                seen.add(key)
                d = lay.tensor(st, t)
                if d == 0:
                    continue
                nbytes //= d
                if t.per_image:
                    per_image += nbytes
                else:
                    fixed += nbytes
        out.append((st, rule, per_image, fixed))
    return out


def saved_bytes(analysis: Analysis, settings: Settings) -> dict[str, int]:
    """Layer → bytes it saves for backward at ``settings.batch`` (the autograd oracle's figure)."""
    return {st.name: per * settings.batch + fixed
            for st, _, per, fixed in _layer_rules(analysis, settings)}


def estimate(analysis: Analysis, settings: Settings, device: Target,
             gpus: int | None = None, detail: bool = True) -> Cost:
    """Memory and time of one step (see the module's docstring); ``detail`` False: no per-layer
    rows (``layers`` empty; a sweep's table needs only the totals)."""
    n_gpus = gpus or analysis.gpus or 1
    w = _walk(analysis, settings, n_gpus)     # the batch and the device do not change the walk
    timed = device.tflops(settings.dtype) is not None and bool(device.bandwidth_gbs)
    layers = layer_rows(w.parts, settings, device if timed else None, n_gpus) if detail else []
    if settings.batch not in w.memory:
        infer = settings.mode is Mode.infer
        whole = _memory(w.whole, settings.batch, infer)
        w.memory[settings.batch] = (whole, tuple(_memory(pl, settings.batch, infer) for pl in w.plans)
                                    if n_gpus > 1 else (whole,))
    memory, per_gpu = w.memory[settings.batch]
    time = _time(analysis, settings, device, n_gpus, w) if timed else None
    largest = None
    if device.memory_gib:
        cap = usable(int(device.memory_gib * GIB), device.key != "cpu")
        if cap not in w.largest:
            w.largest[cap] = largest_batch(w.lines, cap)
        largest = w.largest[cap]
    tp = settings.tp if settings.tp > 1 else n_gpus
    return Cost(name=analysis.name, settings=settings, target=device,
                parallel=Parallel(tp, settings.dp, settings.pp),
                layers=tuple(layers), memory=memory, per_gpu=per_gpu, lower_bound=w.unknown,
                largest_batch=largest, time=time, demand=w.lines)


@record
class _Walk:
    """What every batch and device of one analysis and settings share: the layers' saved rules
    and each GPU's plan (memory is affine in the batch), with the parts at each batch and the
    largest batch at each capacity as they are asked (a sweep asks many)."""

    analysis: Analysis          # held, so that its id (the key) stays its own
    rules: list[tuple[LayerStats, Saved, int, int]]
    parts: list[Part]
    groups: tuple[tuple[Part, ...], tuple[int, ...]]
    unknown: bool               # a layer's saved bytes are unknown
    plans: list[_Plan]
    whole: _Plan                # the whole model on one device
    layout: Layout
    attention: int              # attention layers
    params_here: int            # parameters on one GPU (archviz.core.cost._params_here)
    lines: tuple[Aff, ...]      # every device's every moment, affine in the batch (Cost.demand)
    memory: dict[int, tuple[Memory, tuple[Memory, ...]]]
    largest: dict[int, int | None]


_WALKS: dict[tuple[int, Settings, int], _Walk] = {}


def _walk(analysis: Analysis, s: Settings, n: int) -> _Walk:
    key = (id(analysis), replace(s, batch=1), n)
    w = _WALKS.get(key)
    if w is None or w.analysis is not analysis:
        if len(_WALKS) >= 64:
            _WALKS.clear()
        plans = [_plan(analysis, s, n, g) for g in range(n)]
        whole = _plan(analysis, s, 1, 0) if n > 1 else plans[0]
        rules = _layer_rules(analysis, s)
        parts = layer_parts(analysis, s, rules)
        attention = sum(1 for st in analysis.layers if is_attention(st))
        lines = tuple(x for pl in plans for x in demand(pl.moments, add(*pl.persistent.values(), pl.cross)))
        w = _WALKS[key] = _Walk(analysis, rules, parts, groups(parts), any(not x.known for x in parts), plans,
                                whole, settings_layout(analysis, s), attention, _params_here(analysis, s, n),
                                lines, {}, {})
    return w


@record
class _Plan:
    """One device's step: its persistent parts and every moment (affine in the batch)."""

    persistent: dict[str, Aff]      # params, optimizer, buffers, input
    cross: Aff
    moments: tuple[Moment, ...]


def _plan(analysis: Analysis, s: Settings, gpus: int, gpu: int) -> _Plan:
    train = s.mode is Mode.train
    chans = {st.name: st.output[0] for st in analysis.layers}
    stats = {st.name: st for st in analysis.layers}
    lay = settings_layout(analysis, s)
    keep = pshare = redo = None

    def share(name: str, x: Aff) -> Aff:
        c = chans[name]
        return x if gpus == 1 else (_share(x[0], c, gpus, gpu), _share(x[1], c, gpus, gpu))

    if lay.megatron or lay.pp > 1:    # Megatron's split, pipeline stages (archviz.core.cost_layout)
        def share(name: str, x: Aff) -> Aff:  # noqa: F811 - the layout's rule replaces the channels'
            return divide(x, lay.split(stats[name]))

        def pshare(name: str, x: Aff) -> Aff:
            return divide(x, lay.params_split(stats[name]))

        def keep(st: LayerStats, t: object, x: Aff) -> Aff | None:
            d = lay.tensor(st, t)  # type: ignore[arg-type]
            return None if d == 0 else divide(x, d)

        def redo(st: LayerStats, t: SavedTensor, x: Aff) -> tuple[str, Aff] | None:
            unit, d = lay.redone(st, t), lay.tensor(st, t, stored=False)
            return None if unit is None or d == 0 else (unit, divide(x, d))

    n = sum((pshare or share)(st.name, (st.params, 0))[0] for st in analysis.layers)   # parameters here
    b = sharded(s.states, s.zero, s.dp) if train else replace(s.states, grads=0, optimizer=0)
    bufs = {st.name: OPS[st.op].buffer_bytes(st.op_params, st.in_shapes, st.output) for st in analysis.layers}
    cross = 0
    if gpus > 1:
        for st in analysis.layers:
            if not st.gpu_local:  # receives the other GPUs' share of its input and keeps it (train)
                cross += sum(prod(x) for x in st.in_shapes) * DTYPE_BYTES[s.dtype.stored] * (gpus - 1) // gpus
    foreach = s.torch_device == "cuda"
    moments = timeline(analysis, s.mode, s.dtype.autocast, s.torch_device,
                       lambda ts: s.optimizer.temporaries(ts, foreach), share, s.lowering, s.storage,
                       keep, pshare, redo)
    if lay.pp > 1:
        moments = in_flight(moments, lay.pp)
    if train and s.dp > 1 and s.zero:
        moments = zero_moments(moments, analysis, s, share)
    main_grads = s.precision is Precision.megatron and train     # a persistent fp32 buffer
    image = DTYPE_BYTES[_input_dtype(analysis, "fp32" if s.precision is Precision.amp else s.dtype.stored)]
    persistent = {"params": (math.ceil(n * b.params), 0), "optimizer": (math.ceil(n * b.optimizer), 0),
                  "grads": (math.ceil(n * b.grads), 0) if main_grads else ZERO,
                  "buffers": (sum(share(name, (nb, 0))[0] for name, nb in bufs.items()), 0),
                  "input": (0, prod(analysis.input) * image + 8)}    # the inputs, the int64 labels
    return _Plan(persistent, (0, cross), moments)


def _memory(plan: _Plan, batch: int, infer: bool) -> Memory:
    """The parts at the step's worst moment."""
    m = max(plan.moments, key=lambda mo: mo.total(batch))
    p = {k: at(v, batch) for k, v in plan.persistent.items()}
    cross = at(plan.cross, batch)
    acts, temps = at(m.acts, batch) + cross, at(m.temps, batch)
    if infer:
        acts, temps = 0, acts + temps      # inference saves nothing: its live outputs are transient
    return Memory(params=p["params"], grads=p["grads"] + at(m.grads, batch), optimizer=p["optimizer"],
                  buffers=p["buffers"], input=p["input"], saved=acts, recompute=at(m.redo, batch),
                  transient=temps, cross=cross, phase=m.phase, at=m.layer)


def _share(total: int, channels: int, gpus: int, gpu: int) -> int:
    """GPU ``gpu``'s share of ``total``, split like the layer's output channels (remainder on 0)."""
    if gpus == 1:
        return total
    shares = [total * channel_share(channels, gpus, g) // channels for g in range(gpus)]
    shares[0] += total - sum(shares)
    return shares[gpu]


# ---- time ------------------------------------------------------------------------------------

def _time(analysis: Analysis, s: Settings, device: Target, gpus: int, w: _Walk) -> Time:
    """One optimizer step on one GPU, nothing overlapped (Megatron-LM 2021: the tensor-parallel
    all-reduces on the critical path, the data-parallel all-reduce after the pipeline's flush):
    grad-accum micro-steps through pp stages (1F1B: (m + pp − 1) stage-times), each with its
    tensor-parallel and pipeline traffic, the data-parallel traffic once, the update
    (archviz.core.cost_comm)."""
    train = s.mode is Mode.train
    m = s.grad_accum if train else 1
    layers_ms, per_image = sums(w.groups, s, device, gpus)
    stage = layers_ms / (s.tp * s.pp)   # one micro-step, one stage
    compute = (m + s.pp - 1) * stage
    node = device.link or Link("?", "an 8 GB/s link", 8.0, "")
    ln = comm.links(node, device.network, s.tp * gpus, s.dp, s.pp)
    tp = pp = 0.0
    if gpus > 1 and analysis.split is not None:   # the spec's channel split (AlexNet's two GPUs)
        nbytes = analysis.split.cross_bytes(s.batch, DTYPE_BYTES[s.dtype.stored]) * (2 if train else 1)
        tp = nbytes / gpus / (node.gbs * 1e9) * 1e3
    bsh = _bsh(analysis, s)
    if w.layout.megatron and bsh:
        blocks = -(-w.attention // s.pp)
        tp = comm.ms(comm.tp_bytes(bsh, blocks, s.tp, train, s.recompute is Recompute.full), ln.tp)
        pp = comm.ms(comm.pp_bytes(bsh, s.pp, train), ln.pp)
    update = dp_ms = 0.0
    assert device.bandwidth_gbs is not None
    if train:   # read weights and gradients, write weights; read and write each state
        n = w.params_here
        update = n * 4 // (s.dp if s.zero else 1) * (3 + 2 * s.optimizer.states) \
            / (device.bandwidth_gbs * 1e9) * 1e3
        b = s.states
        dp_ms = comm.ms(comm.dp_bytes(n, b.grads, b.params, s.dp, s.zero, m), ln.dp)
    return Time(step_ms=compute + (tp + pp) * m + dp_ms + update, compute_ms=compute,
                link_ms=tp * m, update_ms=update, train_flops_per_image=per_image,
                dp_ms=dp_ms, global_batch=s.global_batch, pp_ms=pp * m,
                links={"tp": ln.tp.name, "dp": ln.dp.name, "pp": ln.pp.name})


def _bsh(analysis: Analysis, s: Settings) -> int:
    """Bytes of one b·s·h activation: an attention layer's input at the batch."""
    st = next((st for st in analysis.layers if is_attention(st)), None)
    return 0 if st is None else prod(st.in_shapes[0]) * s.batch * DTYPE_BYTES[s.dtype.stored]


def _params_here(analysis: Analysis, s: Settings, gpus: int) -> int:
    """Parameters on one GPU: its tp share of the first pipeline stage's."""
    lay = settings_layout(analysis, s)
    if not (lay.megatron or lay.pp > 1):
        return sum(st.params for st in analysis.layers) // gpus
    return sum(st.params // d for st in analysis.layers if (d := lay.params_split(st)))


# ---- formatting helpers shared by the views and check ----------------------------------------

def parse_images(text: str, flag: str = "--images", what: str = "image") -> int:
    """``1.2M`` → 1200000; K, M, G (or B) and T as powers of a thousand."""
    m = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([KMGBT]?)\s*", text, re.IGNORECASE)
    if not m:
        raise CostError(f"{flag}: expected a count such as 1.2M or 50000, got {text!r}")
    scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}[m.group(2).upper()]
    value = float(m.group(1).replace(",", "").replace("_", "")) * scale
    if value < 1:
        raise CostError(f"{flag}: expected at least one {what}, got {text!r}")
    return int(value)


def _input_dtype(analysis: Analysis, floats: str) -> str:
    """The input's dtype as the compiled module takes it: token ids keep theirs; a float input is
    ``floats`` (fp32, or bf16 where the whole model is bf16)."""
    ids = input_saved_dtype(analysis.input_dtype)
    return ids if ids != "fp32" else floats
