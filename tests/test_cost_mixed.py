"""``--precision mixed``: the activations of a model stored in bf16 (``model.to(torch.bfloat16)``,
a bf16 input, no autocast) against what autograd saves (tests/saved_oracle.py), layer by layer."""

from __future__ import annotations

import pytest
import torch
from saved_oracle import assert_saves_equal, measure_module

from archviz.core.analysis import analyze
from archviz.core.cost import Settings, saved_bytes
from archviz.core.cost_states import Precision
from archviz.core.devices import Dtype
from archviz.ops.lowering import Lowering
from archviz.runtime.compile import compile_graph
from archviz.runtime.inputs import example_input
from archviz.spec import load

SMALL = {"lenet5": None, "alexnet": (3, 99, 99), "resnet18": (3, 32, 32), "squeezenet1_0": (3, 96, 96),
         "googlenet": (3, 64, 64)}


@pytest.mark.parametrize(("name", "shape"), list(SMALL.items()))
def test_mixed_saved_bytes_equal_autograd_on_a_bf16_model(name: str, shape: tuple[int, ...] | None) -> None:
    sp = load(name)
    a = analyze(sp, shape)
    torch.manual_seed(0)
    model = compile_graph(a.graph, a, lowering=Lowering()).to(torch.bfloat16)
    x = example_input(a.input, a.input_dtype, batch=2, random=True).to(torch.bfloat16)
    measured = measure_module(model, [s.name for s in a.layers], x, "fp32")
    predicted = saved_bytes(a, Settings(batch=2, dtype=Dtype.bf16, precision=Precision.mixed,
                                        torch_device="cpu"))
    assert_saves_equal(predicted, measured, total=False)
    amp = saved_bytes(a, Settings(batch=2, dtype=Dtype.bf16, torch_device="cpu"))
    assert sum(predicted.values()) <= sum(amp.values())   # no fp32 input, no weight copies
