"""Serving a decoder (pure): ``archviz cost --mode infer`` on a model with self-attention.

The **KV cache** holds, for each of ``--batch`` sequences and each of ``--context`` tokens, every
self-attention layer's keys and values: ``2 · kv_heads · head_dim`` elements a token a layer
(grouped-query attention keeps ``kv_heads`` < heads), in ``--dtype`` — the op's
``kv_bytes_per_token``. It is preallocated for the whole context (a static cache). Under
``--tp`` each device holds its ``kv_heads / tp`` heads (all of them when ``tp`` does not divide
``kv_heads``); under ``--pp`` its stage's layers. The **weights** are stored in ``--dtype``.

The step's activations are the larger of the **prefill**'s (``--seq`` tokens at once) and one
**decode** step's (1 token). The **tokens that fit** on a device: (the capacity less the CUDA
context and the allocator's reserve, less the weights, buffers and that activation peak) over
the cache's bytes a token. The **largest batch** that fits counts the cache, which grows with the
batch (``context`` tokens a sequence), beside every moment of the prefill and of a decode step.

**Time** (lower bounds): the prefill is the forward roofline of the step at ``--seq`` tokens
(compute-bound at any real length); a decode step is memory-bound — every weight and the whole
cache read once for one token of each sequence: ``(weights + KV) / bandwidth`` — or, where
larger, its compute, ``2N + 2 · n_layer · context · d_attn`` FLOPs a token (Kaplan et al. 2020,
"Scaling Laws for Neural Language Models", Table 1) over the peak.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..ops import OPS
from ..ops.saved import DTYPE_BYTES
from ..record import record
from .analysis import Analysis, LayerStats
from .cost_layout import Layout, is_attention
from .cost_memory import add, largest_batch
from .cost_states import usable

if TYPE_CHECKING:
    from .cost import Cost


@record(kw_only=True)
class Serving:
    context: int                  # tokens each sequence holds in the cache
    seq: int                      # tokens the prefill processes at once
    batch: int                    # sequences
    kv_bytes_per_token: int       # one token of one sequence, all of this device's attention layers
    weights: int                  # bytes of parameters on the device, in --dtype
    prefill: int                  # the prefill's activation peak (bytes)
    decode: int                   # one decode step's
    tokens_fit: int | None        # cache tokens (all sequences together) that fit on a device
    prefill_ms: float | None      # lower bounds (None: no time model)
    decode_ms: float | None

    @property
    def kv_cache(self) -> int:
        return self.kv_bytes_per_token * self.context * self.batch

    def as_dict(self) -> dict[str, int | float | None]:
        return {"context": self.context, "seq": self.seq, "kv_bytes_per_token": self.kv_bytes_per_token,
                "kv_cache": self.kv_cache, "weights": self.weights, "prefill_bytes": self.prefill,
                "decode_bytes": self.decode, "tokens_fit": self.tokens_fit,
                "prefill_ms": self.prefill_ms, "decode_ms": self.decode_ms}


def self_attention(st: LayerStats) -> bool:
    """A layer that caches K/V per generated token (cross-attention caches its memory's once)."""
    return is_attention(st) and len(st.in_shapes) == 1


def kv_bytes_per_token(analysis: Analysis, dtype_bytes: int, lay: Layout | None = None) -> int:
    """Σ over self-attention layers of the op's K/V bytes a token, on one device of ``lay``."""
    total = 0
    for st in analysis.layers:
        if not self_attention(st) or (lay is not None and not lay.here(st.name)):
            continue
        n = OPS[st.op].kv_bytes_per_token(st.op_params, st.in_shapes, dtype_bytes)  # type: ignore[attr-defined]
        tp = lay.tp if lay is not None and lay.megatron else 1
        kv = st.op_params.kv_heads or st.op_params.heads
        total += n // tp if kv % tp == 0 else n
    return total


def _decode_flops(analysis: Analysis, params: int, context: int) -> int:
    """Kaplan et al.'s forward FLOPs a token: 2N + 2 · n_layer · n_ctx · d_attn."""
    attn = 0
    for st in analysis.layers:
        if self_attention(st):
            p = st.op_params
            hd = p.head_dim or st.in_shapes[0][-1] // p.heads
            attn += 2 * context * p.heads * hd
    return 2 * params + attn


def serve(prefill: Cost, decode: Cost, analysis: Analysis, lay: Layout, context: int, seq: int) -> Cost:
    """The prefill's Cost (an archviz.core.cost.Cost at ``seq`` tokens) with the cache and the
    decode step (its Cost at 1 token) folded in: ``per_gpu[i].kv_cache`` filled, the transient
    the larger of the two, ``serving`` set."""
    pre, dec = prefill, decode
    s, target = pre.settings, pre.target
    nbytes = DTYPE_BYTES[s.dtype.stored]
    per_token = kv_bytes_per_token(analysis, nbytes, lay)
    kv = per_token * context * s.batch
    gpus = []
    for p, d in zip(pre.per_gpu, dec.per_gpu, strict=True):
        worse = p if p.transient >= d.transient else d
        gpus.append(replace(p, transient=worse.transient, kv_cache=kv,
                            phase="prefill" if worse is p else "decode", at=worse.at))
    busiest = max(gpus, key=lambda m: m.total)
    tokens = None
    if target.memory_gib and per_token:
        free = usable(int(target.memory_gib * (1 << 30)), target.key != "cpu") - (busiest.total - kv)
        tokens = max(free, 0) // per_token
    prefill_ms = decode_ms = None
    tflops = target.tflops(s.dtype)
    if pre.time is not None and tflops and target.bandwidth_gbs:
        prefill_ms = pre.time.step_ms
        memory_ms = (busiest.params + kv) / (target.bandwidth_gbs * 1e9) * 1e3
        n = busiest.params // nbytes
        compute_ms = _decode_flops(analysis, n, context) * s.batch / (tflops * 1e12) * 1e3
        decode_ms = max(memory_ms, compute_ms)
    serving = Serving(context=context, seq=seq, batch=s.batch, kv_bytes_per_token=per_token,
                      weights=busiest.params, prefill=max(m.transient for m in pre.per_gpu),
                      decode=max(m.transient for m in dec.per_gpu), tokens_fit=tokens,
                      prefill_ms=prefill_ms, decode_ms=decode_ms)
    whole = kv_bytes_per_token(analysis, nbytes) * context * s.batch     # the model on one device
    memory = gpus[0] if len(gpus) == 1 else replace(pre.memory, kv_cache=whole)
    return replace(pre, per_gpu=tuple(gpus), memory=memory, serving=serving,
                   largest_batch=_largest(pre, dec, per_token * context))


def _largest(pre: Cost, dec: Cost, kv: int) -> int | None:
    """The largest batch whose prefill and decode steps both fit beside their cache (``kv`` bytes
    a sequence), the decode step's moments counted with the prefill's input (as the peak is)."""
    if not pre.target.memory_gib:
        return None
    more = max(pre.memory.input - dec.memory.input, 0) // pre.settings.batch
    lines = (tuple(add(x, (0, kv)) for x in pre.demand)
             + tuple(add(x, (0, kv + more)) for x in dec.demand))
    return largest_batch(lines, usable(int(pre.target.memory_gib * (1 << 30)), pre.target.key != "cpu"))
