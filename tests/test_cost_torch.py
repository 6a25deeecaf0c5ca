"""The cost model against torch: saved-for-backward bytes against what autograd records
(``saved_tensors_hooks``, deduplicated by storage), parameter / gradient / optimizer-state /
buffer bytes against a real optimizer step.

The default run checks a representative subset (one spec per op family: LRN, BatchNorm,
residual adds, concat, tanh/avgpool); the full sweep, every bundled spec × batch {2, 3} ×
{fp32, bf16}, is one command: ``pytest -m slow tests/test_cost_torch.py``.
"""

from __future__ import annotations

import pytest
import torch
from saved_oracle import assert_saves_equal, measure, saves_as_predicted

from archviz.core.analysis import analyze
from archviz.core.cost import Optimizer, Settings, estimate, saved_bytes, target
from archviz.core.devices import Dtype
from archviz.core.graph import build
from archviz.ops.lowering import Lowering
from archviz.runtime.compile import compile_graph
from archviz.spec import bundled, load

CASES = [pytest.param(name, batch, dt, marks=pytest.mark.slow)
         for name in bundled.names() for batch in (2, 3) for dt in ("fp32", "bf16")]
# the default run: the rules do not depend on the image size, so smaller inputs keep it quick
SMALL = {"alexnet": (3, 99, 99), "resnet18": (3, 32, 32), "squeezenet1_0": (3, 96, 96), "lenet5": None}
QUICK = [(name, 2, dt, shape) for name, shape in SMALL.items() for dt in ("fp32", "bf16")]
QUICK.append(("alexnet-keras", 2, "fp32", None))


def _check(name: str, batch: int, dtype: str, shape: tuple[int, ...] | None) -> None:
    sp = load(name)
    assert_saves_equal(*saves_as_predicted(sp, dtype, batch=batch, input_shape=shape))


@pytest.mark.parametrize(("name", "batch", "dtype", "shape"), QUICK)
def test_saved_bytes_equal_autograd(name: str, batch: int, dtype: str, shape: tuple[int, ...] | None) -> None:
    _check(name, batch, dtype, shape)


@pytest.mark.parametrize(("name", "batch", "dtype"), CASES)
def test_saved_bytes_equal_autograd_full_size(name: str, batch: int, dtype: str) -> None:
    _check(name, batch, dtype, None)


MLP_FIRST = """name: mlp
input: [12, 32]
layers:
  - {name: fc0, op: linear, out: 32}
  - {name: relu, op: relu}
  - {name: fc1, op: linear, out: 16}
"""


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_a_linear_on_the_network_input_keeps_no_weight(dtype: str) -> None:
    """addmm keeps the weight for the input's gradient only: a linear reading the network input
    (which carries none) saves just its input, under autocast too (fc0); fc1 keeps both."""
    from archviz.spec import loads

    sp = loads(MLP_FIRST, "mlp.yaml")
    predicted = saved_bytes(analyze(sp), Settings(batch=3, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure(sp, 3, dtype)
    assert predicted == measured.per_layer, measured.records


def test_rules_scale_with_the_batch() -> None:
    """Per-image tensors scale, weight copies and BatchNorm statistics do not (a second batch)."""
    sp = load("alexnet")
    a = analyze(sp, SMALL["alexnet"])
    one, four = (sum(saved_bytes(a, Settings(batch=b, dtype=Dtype.bf16, torch_device="cpu")).values())
                 for b in (1, 4))
    assert four == measure(sp, 4, "bf16", input_shape=SMALL["alexnet"]).total
    assert 4 * one - four > 0  # the fixed part (weight copies, mean, invstd) counted once


@pytest.mark.parametrize("optimizer", list(Optimizer))
@pytest.mark.parametrize("name", ["resnet18", "lenet5"])
def test_parameter_bytes_equal_an_optimizer_step(name: str, optimizer: Optimizer) -> None:
    sp = load(name)
    graph = build(sp)
    a = analyze(graph, SMALL[name])
    model = compile_graph(graph, a).train()
    params = list(model.parameters())
    opt = {Optimizer.sgd: lambda: torch.optim.SGD(params, lr=0.01),
           Optimizer.momentum: lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4),
           Optimizer.adam: lambda: torch.optim.Adam(params, lr=1e-3),
           Optimizer.adamw: lambda: torch.optim.AdamW(params, lr=1e-3)}[optimizer]()
    out = model(torch.randn(2, *a.input))
    torch.nn.functional.cross_entropy(out, torch.zeros(2, dtype=torch.long)).backward()
    opt.step()
    cost = estimate(a, Settings(batch=2, optimizer=optimizer), target("h100"), gpus=1)
    m = cost.memory
    assert m.params == sum(p.nbytes for p in params)
    # every parameter is trained: its gradient is as large (at the peak, m.grads holds those made so far)
    assert m.params == sum(p.grad.nbytes for p in params if p.grad is not None) >= m.grads
    state = [t for st in opt.state.values() for t in st.values() if isinstance(t, torch.Tensor)]
    # Adam also keeps its step count as a 0-d fp32 tensor per parameter tensor: 4 bytes each,
    # left out of the model (4 bytes per tensor against megabytes of state)
    steps = sum(t.nbytes for st in opt.state.values() for k, t in st.items() if k == "step")
    assert m.optimizer == sum(t.nbytes for t in state) - steps
    assert steps == (4 * len(params) if optimizer.states == 2 else 0)
    assert m.buffers == sum(b.nbytes for b in model.buffers())


# the ops archviz import added (MobileNet, EfficientNet): a squeeze-and-excitation block and
# the other activations, checked against autograd the same way
IMPORTED_OPS = """format: 2
name: imported ops
input: [8, 12, 12]
layers:
  - {name: conv, op: conv, out: 16, kernel: 3, padding: 1}
  - {name: act6, op: relu6}
  - {name: swish, op: silu}
  - {name: squeeze, op: adaptive_avgpool, out: 1}
  - {name: reduce, op: conv, out: 4, kernel: 1}
  - {name: hs, op: hardswish}
  - {name: expand, op: conv, out: 16, kernel: 1}
  - {name: gate, op: hardsigmoid}
  - {name: scale, op: mul, from: [swish, gate]}
  - {name: pool, op: maxpool, kernel: 2}
"""


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_saved_bytes_of_the_imported_ops_equal_autograd(dtype: str) -> None:
    from archviz.spec import loads

    sp = loads(IMPORTED_OPS)
    assert_saves_equal(*saves_as_predicted(sp, dtype, batch=2))


class LRNNet(torch.nn.Module):
    """A user's module with torch's own LRN (the AlexNet recipe in torchvision's style)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 5, stride=2)
        self.relu1 = torch.nn.ReLU()
        self.norm1 = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
        self.pool1 = torch.nn.MaxPool2d(3, 2)
        self.conv2 = torch.nn.Conv2d(16, 8, 3, padding=1)
        self.norm2 = torch.nn.LocalResponseNorm(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.pool1(self.norm1(self.relu1(self.conv1(x))))))


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_an_imported_lrn_costs_what_the_users_module_saves(dtype: str) -> None:
    """Import records `lowering: torch` for nn.LocalResponseNorm, so `archviz cost` of the
    imported spec equals autograd's record for the user's own module, not the fast lowering's."""
    from saved_oracle import measure_module

    from archviz.runtime.importer import from_module
    from archviz.spec import loads

    torch.manual_seed(0)
    net, shape = LRNNet(), (3, 23, 23)
    imported = from_module(net, shape)
    assert "lowering: torch" in imported.text
    sp = loads(imported.text)        # the written spec, as `archviz cost` reads it
    lowered = {la.name: la.lowering for la in sp.layers if la.op == "lrn"}
    assert lowered == {"norm1": "torch", "norm2": "torch"}
    a = analyze(sp)
    predicted = saved_bytes(a, Settings(batch=2, dtype=Dtype(dtype), torch_device="cpu"))
    measured = measure_module(net, [s.name for s in a.layers], torch.randn(2, *shape), dtype)
    assert predicted == measured.per_layer, measured.records
    fast = saved_bytes(a, Settings(batch=2, dtype=Dtype(dtype), torch_device="cpu",
                                       lowering=Lowering.parse("lrn=fast")))
    assert fast == predicted   # the layers' own lowering beats the settings'
