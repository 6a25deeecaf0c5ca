"""Communication in a training step, as a lower bound: bytes each GPU sends over the link it uses,
divided by the link's bandwidth per direction (no latency, the link at its peak, ring collectives).

- **Tensor-parallel** (Megatron, Shoeybi et al. 2019): per transformer layer, 2 all-reduces of the
  b·s·h activations in forward and 2 in backward (sequence parallelism: 4 reduce-scatter /
  all-gather pairs, the same volume); full recomputation runs forward's 2 once more. A ring
  all-reduce of B bytes over t GPUs sends 2·(t−1)/t·B per GPU. Within a node (NVLink).
- **Pipeline**: each stage boundary sends b·s·h activations forward and their gradient back per
  micro-step (the whole tensor on each tp rank: no scatter/gather optimization).
- **Data-parallel**: an all-reduce of this GPU's gradients (their dtype: bf16 under ``mixed``,
  fp32 under ``amp`` and ``megatron``'s main gradients); ZeRO-1/2 a reduce-scatter of the gradients
  and an all-gather of the parameters (the same volume); ZeRO-3 all-gathers the parameters in
  forward and backward every micro-step (Rajbhandari et al. 2020, Section 7).

Placement (Megatron's order: tp fastest, then dp, then pp, ``GPUS_PER_NODE`` per node): a group
is within a node, on NVLink, when its span fits in one (tp: tp; dp: tp · dp; pp: tp · dp · pp),
else on the node's InfiniBand, one port per GPU.
"""

from __future__ import annotations

from ..record import record
from .devices import GPUS_PER_NODE, Link


@record
class Links:
    """The link each group talks over."""

    tp: Link
    dp: Link
    pp: Link


def links(node: Link, network: Link | None, tp: int, dp: int, pp: int,
          per_node: int = GPUS_PER_NODE) -> Links:
    def pick(span: int) -> Link:
        return node if span <= per_node or network is None else network
    return Links(pick(tp), pick(tp * dp), pick(tp * dp * pp))


def ring(nbytes: float, n: int) -> float:
    """Bytes each of ``n`` GPUs sends in a ring all-reduce of ``nbytes``: 2·(n−1)/n · nbytes."""
    return 2 * (n - 1) / n * nbytes if n > 1 else 0.0


def tp_bytes(bsh: float, layers: int, tp: int, train: bool, full_recompute: bool = False) -> float:
    """Megatron's tensor-parallel traffic per GPU in one micro-step: ``bsh`` bytes of b·s·h
    activations, ``layers`` transformer layers on this stage."""
    passes = (2 + 2 + (2 if full_recompute else 0)) if train else 2
    return layers * passes * ring(bsh, tp)


def pp_bytes(bsh: float, pp: int, train: bool) -> float:
    """Bytes one stage sends per micro-step: the activations forward, their gradient back."""
    return 0.0 if pp == 1 else bsh * (2 if train else 1)


def dp_bytes(params: int, g: float, param_bytes: float, dp: int, zero: int, grad_accum: int) -> float:
    """Bytes each GPU sends per optimizer step over ``dp`` replicas for ``params`` parameters,
    ``g`` bytes per gradient (``megatron``: its fp32 main gradients are reduced)."""
    if dp == 1:
        return 0.0
    f = (dp - 1) / dp
    if zero < 3:
        return params * (g + param_bytes) * f if zero else ring(params * g, dp)
    return params * (g + 2 * param_bytes * grad_accum) * f


def ms(nbytes: float, link: Link) -> float:
    return nbytes / (link.gbs * 1e9) * 1e3
