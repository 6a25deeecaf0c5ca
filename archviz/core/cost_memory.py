"""The training step's memory as the allocator sees it: a walk over the step's phases (pure).

Persistent state (parameters, buffers, the input batch, optimizer state) is there all step;
on top of it, at every moment of the step, what is alive:

- **forward** (layers in order): each layer's output is allocated and lives until its last
  reader has run, unless a layer saves it for backward; saved tensors (each op's
  :meth:`~archviz.ops.OpKind.saved` rule, by storage) accumulate; each op's forward working
  buffers (:meth:`~archviz.ops.OpKind.temporaries`) live while it runs. The loss (log-softmax of
  the fp32 logits) ends the phase.
- **backward** (layers in reverse): a layer's backward reads its output's gradient, allocates
  its inputs' gradients (none where the gradient passes on as a view: add, concat, flatten),
  its parameters' gradients (fp32; under autocast first in the low dtype, then cast) and its
  working buffers; then the output's gradient, the working buffers and the tensors only this
  layer saved are freed. A second gradient for the same tensor is summed into the first.
- **optimizer**: all gradients, and the update's temporaries: per tensor on the CPU (the
  largest parameter tensor, ×2 for Adam's denominator), for all tensors at once on CUDA (the
  foreach kernels).

Every byte count is affine in the batch, ``(fixed, per image)``: the peak at a batch is the
largest moment, and the largest batch that fits is solved moment by moment (no search).
The oracle is PyTorch's MemTracker (tests/test_cost_peak.py, benchmarks/cost_vs_memtracker.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from math import prod
from typing import Any

from ..ops import OPS
from ..ops.lowering import Lowering
from ..ops.saved import DTYPE_BYTES, Autocast, Saved, SavedTensor, input_saved_dtype
from ..record import record
from ..spec import INPUT
from .analysis import Analysis
from .cost_states import Precision
from .flops import Mode, needs_grad

Aff = tuple[int, int]          # (fixed bytes, bytes per image)
ZERO: Aff = (0, 0)
# a saved tensor's bytes on this device (the layer's stats, the tensor, its whole bytes), None
# where this device does not store it (archviz.core.cost_layout)
Keep = Callable[[Any, SavedTensor, Aff], "Aff | None"]
# a tensor that backward recomputes instead of storing: its unit (a block copy, an attention
# layer) and its bytes on this device while it lives again; None where it is stored or absent
Redo = Callable[[Any, SavedTensor, Aff], "tuple[str, Aff] | None"]


def add(*xs: Aff) -> Aff:
    fixed = per = 0
    for x in xs:
        fixed += x[0]
        per += x[1]
    return (fixed, per)


def at(x: Aff, batch: int) -> int:
    return x[0] + x[1] * batch


@record
class Storage:
    """How a training step stores what it makes: the input's dtype; bytes per parameter gradient
    autograd keeps (fp32 4, bf16 2; 0 where the gradients go to a buffer of their own, as
    Megatron's fp32 main gradients, counted apart); whether a weight's gradient is first made in
    the compute dtype and then cast or accumulated (autocast, Megatron); whether the weights are
    already stored in the compute dtype (``--precision mixed``: no cast copy is saved)."""

    input: str = "fp32"
    grad_bytes: int = 4
    low_grad: bool = True
    low_weights: bool = False
    device: str = "cuda"       # CUDA's layer_norm keeps fp32 statistics of a bf16 input, the CPU bf16


def saved_rule(kind: Any, st: Any, ac: Autocast, low: str, sto: Storage) -> Saved:
    """The op's saved rule as this step runs it. A model stored in bf16 (``--precision mixed``)
    runs without autocast: CUDA autocast's fp32 op list (layer_norm's fp32 input copy) does not
    apply, so the rule is the plain low-precision one (the CPU's, checked against autograd), with
    CUDA's bool dropout masks (``native_dropout``)."""
    if not sto.low_weights or ac.device != "cuda":
        return kind.saved(st.op_params, st.in_shapes, st.output, ac, lowering=low)
    rule = kind.saved(st.op_params, st.in_shapes, st.output, replace(ac, device="cpu"), lowering=low)
    masks = tuple(replace(t, dtype="bool") if t.what.endswith("mask") and t.dtype == ac.compute else t
                  for t in rule.tensors)
    return replace(rule, tensors=masks)


def tensor_bytes(t: SavedTensor, sto: Storage) -> int | None:
    """A saved tensor's bytes as this step stores it; None where it is not made. With the weights
    in the compute dtype (``--precision mixed``) there is no weight copy, and the per-channel
    tensors made beside the weights (BatchNorm's mean and 1/std: fp32 under autocast) take the
    weights' dtype — autograd's record of a ``model.to(torch.bfloat16)`` (tests/test_cost_mixed.py).
    TODO(ops): the op's rule could read the weights' dtype from its Autocast value."""
    if not sto.low_weights:
        return t.bytes
    if not t.per_image and t.dtype != "fp32":
        return None        # a weight's low-precision copy (linear's, attention's W_q, …): none made
    if t.what in ("mean", "rstd") and t.dtype != "fp32":
        return t.bytes
    if t.what in ("mean", "rstd") and sto.device == "cpu":
        return t.elements * DTYPE_BYTES[sto.input]   # CPU layer_norm's statistics: the input's dtype
    if not t.per_image and t.dtype == "fp32":
        return t.elements * DTYPE_BYTES[sto.input]
    return t.bytes


@record
class Moment:
    """What is alive at one point of the step, beyond the persistent state."""

    phase: str                 # forward, backward, optimizer
    layer: str
    acts: Aff                  # activations: outputs still to be read, tensors saved for backward
    temps: Aff                 # activation gradients and ops' working buffers
    grads: Aff                 # parameter gradients made so far
    redo: Aff = ZERO           # activations recomputed in backward, alive again (--recompute)

    def total(self, batch: int) -> int:
        a, t, g, r = self.acts, self.temps, self.grads, self.redo
        return a[0] + t[0] + g[0] + r[0] + (a[1] + t[1] + g[1] + r[1]) * batch


@record
class _Layer:
    name: str
    index: int
    inputs: tuple[str, ...]    # input tensor names
    out: Aff                   # output bytes
    out_key: str               # its storage (a view: its input's)
    new_saved: tuple[tuple[str, Aff], ...]   # storages it creates to save (casts, masks, stats)
    saved_keys: tuple[str, ...]              # every storage it saves
    fwd_temp: Aff
    bwd_temp: Aff
    alias: bool
    grad: bool                 # a gradient flows through its output
    params: Aff                # its parameters' gradient bytes (as autograd keeps them)
    fp32: Aff                  # its parameters in fp32 (what the update works on)
    low_copy: Aff              # under autocast, its weight's low-precision gradient before the cast
    redo: tuple[tuple[str, Aff], ...] = ()   # storages its backward reads recomputed (not stored)
    unit: str | None = None                  # what is recomputed with them (a block copy, a layer)


def _layers(analysis: Analysis, compute: str | None, device: str, train: bool,
            share: Callable[[str, Aff], Aff], lowering: Lowering, sto: Storage,
            keep: Keep | None = None, pshare: Callable[[str, Aff], Aff] | None = None,
            redo: Redo | None = None) -> list[_Layer]:
    pshare = pshare or share
    own = {la.name: la.lowering for la in analysis.spec.layers}
    grad = needs_grad(analysis) if train else set()
    ids = input_saved_dtype(analysis.input_dtype)      # token ids keep their dtype
    dtypes: dict[str, str] = {INPUT: ids if ids != "fp32" else sto.input}
    storage: dict[str, str] = {INPUT: INPUT}
    out = []
    for i, st in enumerate(analysis.layers):
        kind = OPS[st.op]
        p = st.op_params
        ac = Autocast(compute, tuple(dtypes[x] for x in st.inputs), device, st.inputs[0] in grad)
        low = lowering.choice(st.op, own[st.name])   # the layer's own beats the settings'
        rule = saved_rule(kind, st, ac, low, sto)
        tmp = kind.temporaries(p, st.in_shapes, st.output, ac, lowering=low)
        dtypes[st.name] = rule.out_dtype
        storage[st.name] = storage[st.inputs[0]] if rule.view else st.name
        new: list[tuple[str, Aff]] = []
        keys: list[str] = []
        again: list[tuple[str, Aff]] = []
        unit = None
        if st.name in grad:
            for j, t in enumerate(rule.tensors):
                nbytes = tensor_bytes(t, sto)
                if nbytes is None:
                    continue       # the weight is stored in the compute dtype: no cast copy
                whole = (0, nbytes) if t.per_image else (nbytes, 0)
                mine = keep(st, t, whole) if keep else share(st.name, whole)
                key = (storage[st.inputs[t.index]] if t.shares == "input" else
                       storage[st.name] if t.shares == "output" else f"{st.name}#{j}")
                if mine is None:   # recomputed in backward, or held by another pipeline stage
                    back = redo(st, t, whole) if redo else None
                    if back is not None and key != INPUT:
                        unit = back[0]
                        again.append((key, back[1]))
                    continue
                keys.append(key)
                if not t.shares:
                    new.append((key, mine))
        low = 2 * st.params if compute and sto.low_grad and st.macs and st.params and st.name in grad else 0
        out.append(_Layer(
            name=st.name, index=i, inputs=st.inputs,
            out=share(st.name, (0, prod(st.output) * DTYPE_BYTES[rule.out_dtype])),
            out_key=storage[st.name], new_saved=tuple(new), saved_keys=tuple(keys),
            fwd_temp=share(st.name, (0, tmp.forward)), bwd_temp=share(st.name, (0, tmp.backward)),
            alias=tmp.grad_alias or rule.view, grad=st.name in grad,
            params=pshare(st.name, (st.params * sto.grad_bytes, 0)) if st.name in grad else ZERO,
            fp32=pshare(st.name, (st.params * 4, 0)) if st.name in grad else ZERO,
            low_copy=pshare(st.name, (low, 0)), redo=tuple(again), unit=unit))
    return out


def _forward(layers: list[_Layer], logits: Aff, half_logits: bool) -> tuple[list[Moment], dict[str, Aff]]:
    """The forward walk; returns its moments and the storages alive at its end."""
    key = {la.name: la.out_key for la in layers}
    last_read: dict[str, int] = {}      # storage → the last layer that reads it
    for la in layers:
        for x in la.inputs:
            last_read[key.get(x, INPUT)] = la.index
    keep = {k for la in layers for k in la.saved_keys} | {layers[-1].out_key, INPUT}
    live: dict[str, Aff] = {}
    moments = []
    for la in layers:
        if la.out_key == la.name:
            live[la.name] = la.out
        live.update(la.new_saved)
        moments.append(Moment("forward", la.name, add(*live.values()), la.fwd_temp, ZERO))
        for x in la.inputs:
            k = key.get(x, INPUT)
            if last_read.get(k) == la.index and k not in keep:
                live.pop(k, None)
    # the loss: cross-entropy of the fp32 logits (a copy of low-precision ones) saves log-softmax
    live["(log_softmax)"] = logits
    if half_logits:
        live["(logits fp32)"] = logits
    moments.append(Moment("forward", "(loss)", add(*live.values()), ZERO, ZERO))
    return moments, live


def _backward(layers: list[_Layer], live: dict[str, Aff], logits: Aff) -> tuple[list[Moment], Aff]:
    """The backward walk from the loss; returns its moments and all parameter gradients. A
    recomputed unit's tensors (``--recompute``) live again from its first backward node that reads
    one (the checkpoint's re-run forward) until the last that does."""
    first_saver: dict[str, int] = {}
    units: dict[str | None, list[tuple[str, Aff]]] = {}
    for la in layers:
        for k in (*la.saved_keys, *(k for k, _ in la.redo)):
            first_saver.setdefault(k, la.index)
        units.setdefault(la.unit, []).extend(la.redo)
    again: dict[str, Aff] = {}       # storages recomputed and alive again
    by_name = {la.name: la for la in layers}
    gbuf: dict[str, str] = {}        # tensor → gradient storage
    gsize: dict[str, Aff] = {}
    grefs: dict[str, int] = {}
    grads = ZERO
    moments = [Moment("backward", "(loss)", add(*live.values()), add(logits, logits), ZERO)]
    for k in ("(log_softmax)", "(logits fp32)"):
        live.pop(k, None)
    final = layers[-1]
    gbuf[final.name], gsize["g:" + final.name], grefs["g:" + final.name] = "g:" + final.name, final.out, 1

    def temps() -> Aff:
        return add(*gsize.values())

    def release(g: str) -> None:
        grefs[g] -= 1
        if grefs[g] == 0:
            del gsize[g], grefs[g]

    for la in reversed(layers):
        g = gbuf.pop(la.name, None)
        if not la.grad or g is None:
            continue
        for k, x in units.pop(la.unit, []) if la.unit else []:
            if k not in live:
                again.setdefault(k, x)
        extra: list[Aff] = [la.bwd_temp, la.low_copy]
        made: list[tuple[str, str, Aff]] = []          # (input, storage, size)
        for x in la.inputs:
            if x == INPUT or not by_name[x].grad:
                continue
            if la.alias:
                made.append((x, g, gsize[g]))
            else:
                made.append((x, f"g:{la.name}>{x}", by_name[x].out))
        fresh = [m for m in made if m[1] != g]
        # under autocast the weight's gradient is made in the low dtype, then a separate node
        # casts it to fp32, after this node has freed its saved tensors and the output's gradient
        made_now = add(temps(), *extra, *(m[2] for m in fresh))
        moments.append(Moment("backward", la.name, add(*live.values()), made_now,
                              grads if la.low_copy[0] else add(grads, la.params), add(*again.values())))
        grads = add(grads, la.params)
        if la.low_copy[0]:
            _free(la, first_saver, live, again)
            left = add(temps(), (-gsize[g][0], -gsize[g][1]) if grefs[g] == 1 else ZERO,
                       la.low_copy, *(m[2] for m in fresh))
            moments.append(Moment("backward", la.name + " (cast)", add(*live.values()), left, grads,
                                  add(*again.values())))
        for x, s, size in made:
            if x in gbuf:               # a second gradient: summed into the first
                if s == g:
                    continue
                old = gbuf[x]
                if grefs[old] > 1:      # the first is shared: a new sum
                    release(old)
                    gbuf[x], gsize[s], grefs[s] = s, size, 1
            else:
                gbuf[x] = s
                if s == g:
                    grefs[g] += 1
                else:
                    gsize[s], grefs[s] = size, 1
        release(g)
        _free(la, first_saver, live, again)
    return moments, grads


def _free(la: _Layer, first_saver: dict[str, int], *alive: dict[str, Aff]) -> None:
    """The tensors only this layer's backward still reads (stored or recomputed) die with it."""
    for k in (*la.saved_keys, *(k for k, _ in la.redo)):
        if first_saver.get(k) == la.index:
            for d in alive:
                d.pop(k, None)


def timeline(analysis: Analysis, mode: Mode, compute: str | None, device: str,
             optimizer_temp: Callable[[list[Aff]], Aff],
             share: Callable[[str, Aff], Aff] = lambda name, x: x,
             lowering: Lowering = Lowering(), storage: Storage = Storage(),
             keep: Keep | None = None,
             pshare: Callable[[str, Aff], Aff] | None = None,
             redo: Redo | None = None) -> tuple[Moment, ...]:
    """Every moment of one step (see the module's docstring); ``optimizer_temp`` maps the
    parameter tensors' bytes to the update's temporaries."""
    train = mode is Mode.train
    layers = _layers(analysis, compute, device, train, share, lowering, storage, keep, pshare, redo)
    last = layers[-1]
    logits = (0, prod(analysis.layers[-1].output) * 4)
    if keep is not None:        # a layout: the loss is on the last pipeline stage, vocab-parallel
        logits = share(analysis.layers[-1].name, logits)
    moments, live = _forward(layers, logits, bool(compute))
    if not train or not any(la.grad for la in layers):
        return tuple(moments)
    back, grads = _backward(layers, dict(live), logits)
    final = live.get(last.out_key, ZERO)
    opt = Moment("optimizer", "(step)", final, optimizer_temp([la.fp32 for la in layers if la.grad]), grads)
    return tuple(moments + back + [opt])


def demand(moments: tuple[Moment, ...], persistent: Aff) -> tuple[Aff, ...]:
    """Every moment's bytes with the persistent state, affine in the batch."""
    return tuple(add(persistent, m.acts, m.temps, m.grads, m.redo) for m in moments)


def largest_batch(lines: tuple[Aff, ...], capacity: int) -> int | None:
    """The largest batch whose every moment (:func:`demand`) fits in ``capacity`` (memory is
    affine in the batch, moment by moment); 0 when not even one image fits, None when nothing
    grows with the batch."""
    best: int | None = None
    for fixed, per in lines:
        if per <= 0:
            if fixed > capacity:
                return 0
            continue
        b = (capacity - fixed) // per
        best = b if best is None else min(best, b)
    return None if best is None else max(best, 0)


# ---- parallelism over the walk --------------------------------------------------------------

def in_flight(moments: tuple[Moment, ...], pp: int) -> tuple[Moment, ...]:
    """1F1B: the first stage holds the activations of ``pp`` micro-batches (Korthikanti et al.
    Section 4.2.3): the ``pp − 1`` before this one keep what one micro-batch's forward saved."""
    fwd = [m for m in moments if m.phase == "forward"]
    held = fwd[-1].acts if fwd else ZERO
    extra = ((pp - 1) * held[0], (pp - 1) * held[1])
    return tuple(replace(m, acts=add(m.acts, extra)) if m.phase != "optimizer" else m for m in moments)


def zero_moments(moments: tuple[Moment, ...], analysis: Analysis, s: Any,
                  share: Callable[[str, Aff], Aff]) -> tuple[Moment, ...]:
    """ZeRO over dp devices, moment by moment: stage ≥ 2 keeps each device's 1/dp of the
    gradients made so far, beside the running layer's whole gradient (made, then reduce-scattered);
    stage 3 also gathers the whole parameters of the running layer and of the next one (the
    prefetch: FSDP's ``BACKWARD_PRE``, DeepSpeed's prefetch bucket) while they compute; the update
    works on 1/dp of the tensors."""
    held = {st.name: share(st.name, (st.params, 0))[0] for st in analysis.layers
            if st.params}                                   # elements of each layer with parameters
    order = list(held)
    sb = s.states
    gb = 0 if s.precision is Precision.megatron else sb.grads    # megatron's are persistent

    def gathered(layer: str, step: int) -> int:
        if s.zero < 3 or layer not in held:
            return 0
        i = order.index(layer)
        nxt = order[i + step] if 0 <= i + step < len(order) else None
        return math.ceil(sb.params * (held[layer] + (held[nxt] if nxt else 0)))

    out = []
    for m in moments:
        layer = m.layer.removesuffix(" (cast)")
        extra, grads = 0, m.grads
        if m.phase == "forward":
            extra = gathered(layer, 1)
        elif m.phase == "backward":
            extra = gathered(layer, -1)
            if s.zero >= 2:
                grads = (m.grads[0] // s.dp, m.grads[1] // s.dp)
                extra += math.ceil(gb * held.get(layer, 0)) if not m.layer.endswith("(cast)") else 0
        else:
            grads = (m.grads[0] // s.dp, 0) if s.zero >= 2 else m.grads
            extra = -(m.temps[0] - m.temps[0] // s.dp)        # the update's buffers: 1/dp
        out.append(replace(m, temps=add(m.temps, (extra, 0)), grads=grads))
    return tuple(out)
