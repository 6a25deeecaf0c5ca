"""Where a sequence model's tensors lie over the devices (pure): Megatron-LM's tensor parallelism,
sequence parallelism, pipeline stages and activation recomputation (Shoeybi et al. 2019;
Narayanan et al. 2021; Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", Sections 4.1–5 and Table 2).

**Tensor parallelism** (``--tp t``) on a model with attention: the residual stream is D wide (the
first attention layer's input width). Attention splits by heads (its q, k, v, the S×S scores
and probabilities, the heads' output: each device holds H/t heads); a layer whose input or
output is not D wide (the MLP's first linear, column-parallel; its activation; the second,
row-parallel) splits along that other width; what is D wide on both sides (layernorm, the
dropouts after attention and the MLP, residual adds, the q, k, v projections' shared input) is
replicated. Parameters follow: attention's and those linears' by t, layernorm's replicated.
**Sequence parallelism** (``--sp``) splits the replicated regions along the sequence: every
activation is then 1/t per device.

**Recomputation** (``--recompute``): ``selective`` stores none of attention's S×S tensors (the
probabilities, the dropout mask, the dropped probabilities: recomputed in backward); ``full``
stores only each block copy's input (the layers of a ``repeat:`` block: a transformer layer) and
recomputes the rest. In backward the recomputed tensors live again while their unit's backward
runs (``torch.utils.checkpoint``, non-reentrant: the first unpack re-runs the unit's forward, each
tensor dies with the last backward node that reads it): one block copy's under ``full``, one
attention layer's S×S tensors under ``selective`` — :meth:`Layout.redone` names the unit, and the
step's walk (archviz.core.cost_memory) counts them as ``recompute``.

**Pipeline parallelism** (``--pp p``, 1F1B): layers divide into p stages evenly by count — the
copies of repeated blocks (transformer layers), the layers before them on the first stage, after
them on the last; without repeated blocks, the spec's layers by count. The first stage, the
busiest, holds its activations for p micro-batches in flight (Korthikanti et al. Section 4.2.3).

A model without attention keeps the spec's channel split (``gpus:``, AlexNet's two towers) for
``--tp``: archviz.core.analysis.gpu_split.
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum

from ..ops import OPS
from ..ops.saved import SavedTensor
from ..record import record
from .analysis import Analysis, LayerStats

Aff = tuple[int, int]


class Recompute(str, Enum):
    """What backward recomputes instead of storing."""

    none = "none"
    selective = "selective"
    full = "full"


def is_attention(st: LayerStats) -> bool:
    """The op keeps a KV cache (its facet ``kv_bytes_per_token``): self-attention."""
    return hasattr(OPS[st.op], "kv_bytes_per_token")


def width(analysis: Analysis) -> int | None:
    """The residual stream's width D (the first attention layer's input), None without attention."""
    return next((st.in_shapes[0][-1] for st in analysis.layers if is_attention(st)), None)


def stages(analysis: Analysis, pp: int) -> dict[str, int]:
    """Layer → pipeline stage: repeated block copies evenly by count (layers before them on
    stage 0, after them on the last), else the layers by count."""
    names = [st.name for st in analysis.layers]
    copies: list[tuple[str, int | None]] = []
    for st in analysis.layers:
        o = st.origin
        key = (o.use, o.index) if o is not None and o.count > 1 else None
        if key is not None and key not in copies:
            copies.append(key)
    units = len(copies) or len(names)
    stage_of = {i: min(i * pp // units, pp - 1) for i in range(units)}
    out: dict[str, int] = {}
    seen_any = False
    for i, st in enumerate(analysis.layers):
        o = st.origin
        if not copies:
            out[st.name] = stage_of[i]
        elif o is not None and o.count > 1:
            seen_any = True
            out[st.name] = stage_of[copies.index((o.use, o.index))]
        else:
            out[st.name] = pp - 1 if seen_any else 0
    return out


@record
class Layout:
    """One device's view: tensor-parallel degree, sequence parallelism, pipeline stages (the first
    stage's device is the one counted), what is recomputed."""

    tp: int = 1
    sp: bool = False
    pp: int = 1
    recompute: Recompute = Recompute.none
    width: int | None = None                       # D; None: no Megatron split (a CNN)
    stage: dict[str, int] = field(default_factory=dict)
    block_first: frozenset[str] = frozenset()      # each repeated block copy's first layer

    @property
    def megatron(self) -> bool:
        return self.width is not None

    def here(self, name: str) -> bool:
        return self.stage.get(name, 0) == 0

    def split(self, st: LayerStats) -> int:
        """The divisor of the layer's output, gradients and working buffers on one device."""
        if not self.here(st.name):
            return 0
        if not self.megatron or self.tp == 1:
            return 1
        if self.sp or st.output[-1] != self.width:
            return self.tp
        return 1

    def params_split(self, st: LayerStats) -> int:
        if not self.here(st.name):
            return 0
        if not self.megatron or self.tp == 1 or not st.params:
            return 1
        wide = is_attention(st) or st.output[-1] != self.width or st.in_shapes[0][-1] != self.width
        return self.tp if wide else 1

    def redone(self, st: LayerStats, t: SavedTensor) -> str | None:
        """The unit whose backward recomputes this saved tensor instead of storing it (``full``:
        the block copy; ``selective``: the attention layer), None where it is stored."""
        if self.recompute is Recompute.full and st.origin is not None and st.origin.count > 1:
            if not (st.name in self.block_first and t.shares == "input" and t.index == 0):
                return f"{st.origin.use}#{st.origin.index}"
        if self.recompute is not Recompute.none and is_attention(st) and _square(st, t):
            return st.name
        return None

    def tensor(self, st: LayerStats, t: SavedTensor, stored: bool = True) -> int:
        """The divisor of a saved tensor on one device; 0 where it is not stored (another stage,
        recomputed). ``stored=False``: the divisor it has while backward re-materialises it."""
        if not self.here(st.name):
            return 0
        if stored and self.redone(st, t) is not None:
            return 0
        if not self.megatron or self.tp == 1:
            return 1
        if not t.per_image:                       # a weight's low-precision copy: as the weight
            return self.params_split(st)
        if self.sp:
            return self.tp
        if t.shares == "input":
            return self.tp if st.in_shapes[t.index][-1] != self.width else 1
        if is_attention(st) or st.output[-1] != self.width:
            return self.tp
        return 1


def _square(st: LayerStats, t: SavedTensor) -> bool:
    """One of attention's S×S tensors (scores, probabilities, dropout mask)."""
    x = OPS[st.op].dims(st.op_params, st.in_shapes)   # type: ignore[attr-defined]
    return t.per_image and t.elements == x.b * x.h * x.s * x.s


def layout(analysis: Analysis, tp: int = 1, sp: bool = False, pp: int = 1,
           recompute: Recompute = Recompute.none) -> Layout:
    first: set[str] = set()
    seen: set[tuple[str, int | None]] = set()
    for st in analysis.layers:
        o = st.origin
        if o is not None and o.count > 1 and (o.use, o.index) not in seen:
            seen.add((o.use, o.index))
            first.add(st.name)
    return Layout(tp, sp, pp, recompute, width(analysis), stages(analysis, pp) if pp > 1 else {},
                  frozenset(first))


def divide(x: Aff, d: int) -> Aff:
    """``x`` on one device of ``d`` (0: none of it)."""
    return (0, 0) if d == 0 else (x[0] // d, x[1] // d)
