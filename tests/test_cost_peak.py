"""The training peak against PyTorch's MemTracker (tests/memtracker_oracle.py, under
FakeTensorMode: nothing allocated, a full-size step in about a second).

The default run checks a representative subset (LRN in bf16, residual adds, concat, a
fully-connected head, the Adam update); the full sweep, every bundled spec × batch {32, 128} ×
{fp32, bf16}, is one command: ``pytest -m slow tests/test_cost_peak.py`` (and
``python benchmarks/cost_vs_memtracker.py`` prints the table).
"""

from __future__ import annotations

import pytest
from memtracker_oracle import peak

from archviz.core.analysis import analyze
from archviz.core.cost import Optimizer, Settings, estimate, target
from archviz.core.devices import Dtype
from archviz.spec import bundled, load

TOLERANCE = 0.05     # issue 23's target; measured: within 0.4 % everywhere (docs/cost.md)

QUICK = [("alexnet", 32, "bf16", "momentum"), ("lenet5", 32, "fp32", "sgd"),
         ("squeezenet1_0", 32, "fp32", "momentum"), ("alexnet-torchvision", 32, "fp32", "adam")]
FULL = [pytest.param(n, b, dt, "momentum", marks=pytest.mark.slow)
        for n in bundled.names() for b in (32, 128) for dt in ("fp32", "bf16")]


def predicted(name: str, batch: int, dtype: str, optimizer: str) -> int:
    sp = load(name)
    a = analyze(sp, gpus=1)
    s = Settings(batch=batch, dtype=Dtype(dtype), optimizer=Optimizer(optimizer), torch_device="cpu")
    return estimate(a, s, target("h100"), 1).peak


@pytest.mark.parametrize(("name", "batch", "dtype", "optimizer"), QUICK + FULL)
def test_peak_within_5_percent_of_memtracker(name: str, batch: int, dtype: str, optimizer: str) -> None:
    got = peak(name, batch, dtype, optimizer)
    ratio = predicted(name, batch, dtype, optimizer) / got.total
    assert abs(ratio - 1) <= TOLERANCE, (ratio, got.parts)


def test_the_peak_moment_is_named() -> None:
    """AlexNet's peak, fp32: in norm2's backward, the gradients of all but conv1 and conv2 made;
    equal to MemTracker's but for the loss's two 4-byte scalars."""
    sp = load("alexnet")
    c = estimate(analyze(sp, gpus=1), Settings(batch=32, torch_device="cpu"), target("h100"), 1)
    assert (c.memory.phase, c.memory.at) == ("backward", "norm2")
    got = peak("alexnet", 32, "fp32")
    assert 0 <= got.total - c.peak <= 8
    assert c.memory.grads == got.parts["Gradient"]
    assert c.memory.params == got.parts["Parameter"] and c.memory.optimizer == got.parts["Optstate"]


# the imported references (tests/reference_import.py): the user's module under MemTracker against
# archviz's cost of the spec `archviz import` wrote for it (issue 23: "and the imported references")
IMPORTED = [("mobilenet_v2", "fp32"),
            pytest.param("mobilenet_v2", "bf16", marks=pytest.mark.slow),
            pytest.param("densenet121", "fp32", marks=pytest.mark.slow),
            pytest.param("densenet121", "bf16", marks=pytest.mark.slow),
            pytest.param("efficientnet_b0", "fp32", marks=pytest.mark.slow),
            pytest.param("efficientnet_b0", "bf16", marks=pytest.mark.slow)]


@pytest.mark.parametrize(("name", "dtype"), IMPORTED)
def test_imported_reference_peak_within_5_percent_of_memtracker(name: str, dtype: str) -> None:
    import reference_import as ri
    import torch
    from memtracker_oracle import track
    from torch._subclasses.fake_tensor import FakeTensorMode

    from archviz.runtime.importer import from_module

    build, shape = getattr(ri, name), (3, 96, 96)
    a = analyze(from_module(build(), shape).spec, gpus=1)
    s = Settings(batch=32, dtype=Dtype(dtype), optimizer=Optimizer.momentum, torch_device="cpu")
    with FakeTensorMode():
        torch.manual_seed(0)
        got = track(build().train(), shape, a.layers[-1].output[0], 32, dtype, "momentum")
    assert abs(estimate(a, s, target("h100"), 1).peak / got.total - 1) <= TOLERANCE, got.parts
