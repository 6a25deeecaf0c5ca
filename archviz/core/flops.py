"""FLOPs per image for inference and for one training step, counted from the analysis (pure).

Forward FLOPs are the analysis's: 2 × MACs of the conv and linear layers (bias adds not
counted), equal to ``torch.utils.flop_counter`` on the same model. A training step adds, for
each such layer, the gradient of its weight and the gradient of its input, each as costly as
its forward (:data:`TRAIN_FLOPS_FORMULA`). tests/test_bench.py checks both against torch's
counter, and the grouped AlexNet by hand (torch's counter overcounts a grouped backward).
"""

from __future__ import annotations

from enum import Enum

from ..record import record
from ..spec import INPUT
from .analysis import Analysis

TRAIN_FLOPS_FORMULA = (
    "train FLOPs per image = Σ forward FLOPs (2·MACs of every conv / linear layer)"
    " + Σ weight-gradient FLOPs (2·MACs of every conv / linear layer with parameters)"
    " + Σ input-gradient FLOPs (2·MACs of every conv / linear layer that has a parameterised"
    " layer upstream: not the first layer, whose input needs no gradient)")


class Mode(str, Enum):
    """What one step does: a forward pass, or forward + backward + an optimizer update."""

    infer = "infer"
    train = "train"


@record(kw_only=True)
class Flops:
    """Per image: one forward pass (``infer``) and one training step (``train``)."""

    infer: int
    train: int

    @classmethod
    def of(cls, analysis: Analysis) -> Flops:
        return cls(infer=analysis.totals.flops, train=train_flops(analysis))

    def per_image(self, mode: Mode) -> int:
        return self.train if mode is Mode.train else self.infer


def train_flops(analysis: Analysis) -> int:
    """Per image, forward + backward, counted analytically (:data:`TRAIN_FLOPS_FORMULA`).

    For a conv or linear layer the gradient of its input costs the same MACs as the forward
    (a transposed convolution / a matmul with the weight transposed), and so does the
    gradient of its weight (input ⊛ output gradient). The input gradient is skipped where no
    layer upstream has parameters, as autograd skips it; bias gradients (a sum) are not counted,
    as in forward FLOPs.
    """
    grad = needs_grad(analysis)
    total = 0
    for s in analysis.layers:
        total += s.flops                                   # forward: 2·MACs
        if s.macs and s.params:
            total += s.flops                               # weight gradient
        if s.macs and any(i in grad for i in s.inputs):
            total += s.flops                               # input gradient
    return total


def needs_grad(analysis: Analysis) -> set[str]:
    """Layers whose output carries a gradient: they or a layer upstream have parameters."""
    grad: set[str] = set()
    changed = True
    while changed:
        changed = False
        for s in analysis.layers:
            if s.name not in grad and (s.params or any(i in grad for i in s.inputs if i != INPUT)):
                grad.add(s.name)
                changed = True
    return grad
