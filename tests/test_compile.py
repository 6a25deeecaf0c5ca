"""Spec → torch.nn.Module: names, settings, graph forward passes, the memory guard; torch and
hand-written modules are the oracle."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import fx, nn

import archviz
from archviz.ops import OPS
from archviz.runtime.compile import (
    Made,
    ModelTooLarge,
    bytes_needed,
    class_name,
    compile_graph,
    prepare,
    to_module,
)
from tests.conftest import SPECS
from tests.reference_models import REFERENCES


def test_every_op_describes_its_torch_layer() -> None:
    """Each op's torch description names a real torch.nn class (or archviz's merge modules);
    `opaque` has none by design (tests/test_ops.py checks its refusal)."""
    for name, kind in OPS.items():
        if name == "opaque":
            continue
        ins = ((4,),) if name == "linear" else ((8, 12, 12),) * (2 if kind.multi_input else 1)
        if kind.example_input is not None:   # the input its example reads ((S, D) for a sequence op)
            ins = (kind.example_input[0],)
        params = kind.make({k: f.parse(kind.example[k]) for k, f in kind.fields.items() if k in kind.example})
        made = Made.of(kind.torch(params, ins))
        assert issubclass(made.cls, torch.nn.Module), name


def test_every_op_example_builds_and_runs() -> None:
    """Each op's own spec example, fed a suitable input, compiles and runs with the analysed shape
    (but `opaque`, which refuses to compile: tests/test_ops.py)."""
    for name, kind in OPS.items():
        if name == "opaque" or kind.example_input is not None or (kind.ranks and 3 not in kind.ranks):
            continue   # no (C, H, W) op: tests/test_ops.py runs its example on the input it reads
        body = " ".join(f"{k}: {v}," for k, v in kind.example.items() if k not in ("name", "op", "from"))
        layers = ["{name: a, op: conv, out: 8, kernel: 1}",
                  "{name: b, op: conv, out: 8, kernel: 1, from: input}"]
        if kind.family == "linear":
            layers.append("{name: f, op: flatten, from: a}")
        src = "[a, b]" if kind.multi_input else "f" if kind.family == "linear" else "a"
        layers.append(f"{{name: z, op: {name}, {body} from: {src}}}")
        text = "name: t\ninput: [4, 12, 12]\nlayers:\n" + "".join(f"  - {la}\n" for la in layers)
        spec = archviz.loads(text)
        model = to_module(spec).eval()
        out = model(torch.randn(2, 4, 12, 12))
        out = out[-1] if isinstance(out, tuple) else out
        assert tuple(out.shape[1:]) == archviz.analyze(spec).layer("z").output, name


@pytest.mark.parametrize("stem", sorted(REFERENCES))
def test_same_state_dict_and_function_as_the_reference(stem: str) -> None:
    """Keys, shapes (grouped convs keep C/groups), and outputs equal the hand-written model's."""
    build, shape = REFERENCES[stem]
    torch.manual_seed(0)
    ref = build().eval()
    model = to_module(stem).eval()
    ours = model.state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    model.load_state_dict(ref.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5, rtol=0)


def test_settings_are_kept() -> None:
    paper = to_module("alexnet")
    assert paper.conv2.groups == 2 and paper.conv3.groups == 1 and paper.conv2.weight.shape == (256, 48, 5, 5)
    lrn = paper.norm1
    # torch divides alpha by size: the paper's α = 1e-4 is given as 1e-4 · 5 (docs/spec-format.md)
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, pytest.approx(5e-4), 0.75, 2.0)
    assert paper.drop6.p == 0.5 and paper.pool1.stride == (2, 2) and paper.pool1.kernel_size == (3, 3)
    keras = to_module("alexnet-keras")
    assert type(keras.bn1) is nn.BatchNorm2d and type(keras.bn6) is nn.BatchNorm1d
    assert (keras.bn1.eps, keras.bn1.momentum, keras.bn6.num_features) == (1e-3, 0.01, 4096)
    assert keras.drop7.p == 0.4 and keras.prob.dim == 1 and keras.fc8.out_features == 17
    assert to_module("lenet5").s2.stride == (2, 2)  # avgpool without stride: stride = kernel


def test_padding_same_and_valid_as_torch() -> None:
    spec = archviz.loads("name: p\ninput: [2, 9, 7]\nlayers:\n"
                         "  - {name: s, op: conv, out: 3, kernel: [3, 5], padding: same}\n"
                         "  - {name: v, op: conv, out: 3, kernel: 3, padding: valid}\n")
    model = to_module(spec)
    assert model.s.padding == "same" and model.v.padding == (0, 0)  # torch's 'valid' is no padding
    assert model(torch.randn(1, 2, 9, 7)).shape == (1, 3, 7, 5)


GRAPH = """
name: Tiny ResNet-ish
input: [3, 8, 8]
layers:
  - {name: stem, op: conv, out: 4, kernel: 3, padding: 1}
  - {name: layer2.0.conv1, op: conv, out: 4, kernel: 3, padding: 1}
  - {name: layer2.0.bn1, op: batchnorm}
  - {name: layer2.0.add, op: add, from: [stem, layer2.0.bn1]}
  - {name: branch, op: conv, out: 2, kernel: 1, from: stem}
  - {name: cat, op: concat, from: [layer2.0.add, branch]}
  - {name: side, op: sigmoid, from: branch}
  - {name: flatten, op: flatten, from: cat}
  - {name: fc, op: linear, out: 5}
"""


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)


class _HandGraph(nn.Module):
    """The GRAPH spec written by hand, names nested the way torch models nest them."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer2 = nn.Sequential(OrderedDict([("0", _Block())]))
        self.branch = nn.Conv2d(4, 2, 1)
        self.fc = nn.Linear(6 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stem = self.stem(x)
        block = self.layer2[0]
        added = stem + block.bn1(block.conv1(stem))
        branch = self.branch(stem)
        cat = torch.cat([added, branch], dim=1)
        return torch.sigmoid(branch), self.fc(cat.flatten(1))


def test_graph_spec_gets_a_real_forward() -> None:
    model = to_module(archviz.loads(GRAPH)).eval()
    assert isinstance(model, fx.GraphModule) and type(model).__name__ == "TinyResNetIsh"
    assert "self.stem(x)" in model.code  # generated once, straight-line Python
    hand = _HandGraph().eval()
    assert list(model.state_dict()) == list(hand.state_dict())  # layer2.0.conv1.weight, ...
    model.load_state_dict(hand.state_dict())
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        got, want = model(x), hand(x)
    assert isinstance(got, tuple) and len(got) == 2  # two layers nobody reads: side, fc
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def test_a_chain_is_straight_line_code() -> None:
    code = to_module("lenet5").code
    assert "for " not in code and code.count("self.") == 12


def test_torchvision_alexnet_computes_the_same_function() -> None:
    """Against torchvision's own layout (features / avgpool / classifier), weights copied by position."""
    class TorchvisionAlexNet(nn.Module):
        def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, num_classes),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.avgpool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    torch.manual_seed(1)
    ref = TorchvisionAlexNet().eval()
    model = to_module("alexnet-torchvision").eval()
    theirs, ours = ref.state_dict(), model.state_dict()
    assert [v.shape for v in theirs.values()] == [v.shape for v in ours.values()]
    model.load_state_dict(OrderedDict(zip(ours, theirs.values(), strict=True)))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (model(x) - ref(x)).abs().max().item()
    assert diff <= 1e-5


def test_paper_alexnet_trains() -> None:
    """A few SGD steps on a fixed random batch lower the loss (input 3×67×67: 67→15→7→3→1)."""
    torch.manual_seed(0)
    model = archviz.to_module("alexnet", input_shape=(3, 67, 67))
    model.train()
    x, y = torch.randn(4, 3, 67, 67), torch.tensor([1, 7, 42, 999])
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.fc6.in_features == 256  # the input override reached the classifier
    assert losses[-1] < losses[0], losses


def test_to_module_takes_a_name_a_path_or_a_spec() -> None:
    by_name = archviz.to_module("lenet5")
    by_path = archviz.to_module(SPECS / "lenet5.yaml")
    by_spec = archviz.to_module(archviz.load("lenet5"))
    shapes = [[(k, v.shape) for k, v in m.state_dict().items()] for m in (by_name, by_path, by_spec)]
    assert shapes[0] == shapes[1] == shapes[2]


HUGE = """
name: Too big
input: [100000]
layers:
  - {name: fc1, op: linear, out: 100000000}
"""


def test_memory_guard_refuses_before_allocating() -> None:
    spec = archviz.loads(HUGE)
    with pytest.raises(ModelTooLarge) as err:
        to_module(spec)  # 10^13 parameters: would be 36 TiB; refused at once
    text = str(err.value)
    assert "10,000,100,000,000 parameters" in text and "36.4 TiB" in text  # 4 bytes × 1.00001e13


def test_memory_guard_limit_is_exact() -> None:
    graph, analysis = prepare("lenet5")
    # parameters + the activations of a one-image forward pass, float32 (hand arithmetic):
    # input 1·32·32 = 1024; c1 6·28·28 = 4704 and its tanh, s2 6·14·14 = 1176, c3 16·10·10
    # = 1600 and its tanh, s4 16·5·5 = 400, c5 120 and its tanh, flatten 120, f6 84 and its
    # tanh, output 10
    acts = 1024 + 2 * 4704 + 1176 + 2 * 1600 + 400 + 2 * 120 + 120 + 2 * 84 + 10
    assert acts == 15_746
    need = (61_706 + acts) * 4
    compile_graph(graph, analysis, max_bytes=need)
    with pytest.raises(ModelTooLarge, match="more than the --max-memory limit"):
        compile_graph(graph, analysis, max_bytes=need - 1)
    # at batch 8 for training: the activations 8 times, then twice
    assert bytes_needed(analysis, 8, training=True) == (61_706 + 2 * 8 * acts) * 4


def test_meta_device_allocates_nothing() -> None:
    graph, analysis = prepare(archviz.loads(HUGE))
    model = compile_graph(graph, analysis, device="meta")
    assert model.fc1.weight.is_meta and model.fc1.weight.shape == (100_000_000, 100_000)


def test_class_names() -> None:
    assert class_name("AlexNet (one GPU)") == "AlexNetOneGPU"
    assert class_name("3-layer net") == "Net3LayerNet"
