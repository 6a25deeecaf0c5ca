"""archviz's fast LRN (archviz/runtime/lrn.py): the maths of ``nn.LocalResponseNorm``.

Oracles: torch's own ``nn.LocalResponseNorm(n, alpha=α·n, beta, k)`` (outputs and input gradients
to fp32 rounding) and the paper's formula written out by hand in float64 (``paper_lrn`` of
tests/test_lrn.py for odd n; the same sum over torch's window for even n), whose autograd gives
the gradient oracle.
"""

from __future__ import annotations

import pytest
import torch
from saved_oracle import measure
from test_lrn import paper_lrn
from typer.testing import CliRunner

import archviz
from archviz import ArchvizError
from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.core.cost import Settings, saved_bytes
from archviz.core.devices import Dtype
from archviz.ops.lowering import Lowering
from archviz.runtime.lrn import LRN
from archviz.spec import load, loads

ALPHA, BETA, K = 1e-4, 0.75, 2.0


def torch_window_lrn(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """The formula over torch's window for any n: j from i − ⌊n/2⌋ to i + ⌊(n−1)/2⌋, clipped."""
    a = a.double()
    c = a.shape[1]
    out = torch.empty_like(a)
    for i in range(c):
        total = sum(a[:, j] ** 2 for j in range(max(0, i - n // 2), min(c, i + (n - 1) // 2 + 1)))
        out[:, i] = a[:, i] / (k + alpha * total) ** beta
    return out


def rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest error relative to the largest value (gradients cross zero)."""
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


@pytest.mark.parametrize("n", [5, 4, 3])
@pytest.mark.parametrize("channels", [96, 3])
@pytest.mark.parametrize("scale", [1.0, 10.0, 30.0])
def test_equals_torch_and_the_formula(n: int, channels: int, scale: float) -> None:
    torch.manual_seed(n * 100 + channels)
    x = torch.randn(2, channels, 5, 5) * scale
    g = torch.randn(2, channels, 5, 5)
    ours = LRN(n, alpha=ALPHA * n, beta=BETA, k=K)
    theirs = torch.nn.LocalResponseNorm(n, alpha=ALPHA * n, beta=BETA, k=K)

    def run(f, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = t.clone().requires_grad_()
        y = f(t)
        return y.detach(), torch.autograd.grad(y, t, g.to(y.dtype))[0]

    y, dx = run(ours, x)
    y_torch, dx_torch = run(theirs, x)
    formula = paper_lrn if n % 2 else torch_window_lrn
    y_paper, dx_paper = run(lambda t: formula(t, n, ALPHA, BETA, K), x.double())
    assert y.dtype == dx.dtype == torch.float32
    assert rel(y, y_torch) < 1e-6 and rel(dx, dx_torch) < 1e-6
    assert rel(y, y_paper) < 1e-6 and rel(dx, dx_paper) < 1e-6
    assert rel(y_torch, y_paper) < 1e-6 and rel(dx_torch, dx_paper) < 1e-6  # the oracles agree


def test_gradcheck_in_float64() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 3, dtype=torch.float64, requires_grad=True) * 3
    for n in (2, 5, 9):  # 9 > 7 channels: every window clipped
        assert torch.autograd.gradcheck(lambda t, n=n: LRN(n, alpha=0.05, beta=0.75, k=1.0)(t), (x,))


def test_bf16_autocast_on_cpu() -> None:
    """Autocast hands LRN a bf16 activation: computed in fp32 inside, returned in bf16, within
    bf16 rounding of the fp32 result; the gradient is bf16 too."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, 3)
    x = torch.randn(2, 3, 8, 8) * 10
    ours = LRN(5, alpha=ALPHA * 5, beta=BETA, k=K)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = conv(x)
        a.retain_grad()
        y = ours(a)
    assert a.dtype == y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert a.grad is not None and a.grad.dtype == torch.bfloat16
    want = paper_lrn(a.detach().float(), 5, ALPHA, BETA, K)
    assert rel(y.detach(), want) < 8e-3  # bf16 keeps 8 bits: half an ulp is 2⁻⁹


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_on_cpu(backend: str) -> None:
    """The autograd.Function traces under torch.compile (dynamo and AOT autograd; inductor's C++
    build takes ~30 s here, so the slow run); same values and gradients as eager."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), LRN(5, alpha=5e-4, beta=0.75, k=2.0))
    x = torch.randn(2, 3, 10, 10) * 10
    compiled = torch.compile(model, backend=backend)
    y_eager, y_compiled = model(x), compiled(x)
    (g_eager,) = torch.autograd.grad(y_eager.sum(), model[0].weight)
    (g_compiled,) = torch.autograd.grad(y_compiled.sum(), model[0].weight)
    assert rel(y_compiled.detach(), y_eager.detach()) < 1e-5 and rel(g_compiled, g_eager) < 1e-5


TORCH = Lowering.parse("lrn=torch")


def test_to_module_lowers_lrn_fast_unless_told(monkeypatch) -> None:
    norm1 = archviz.to_module("alexnet").get_submodule("norm1")
    assert type(norm1) is LRN and isinstance(norm1, torch.nn.LocalResponseNorm)
    assert (norm1.size, norm1.alpha, norm1.beta, norm1.k) == (5, pytest.approx(5e-4), 0.75, 2.0)
    lowered = archviz.to_module("alexnet", lowering=TORCH).get_submodule("norm1")
    assert type(lowered) is torch.nn.LocalResponseNorm
    assert type(archviz.to_module("alexnet").get_submodule("norm1")) is LRN
    monkeypatch.setenv("ARCHVIZ_LRN", "torch")   # the environment variable is gone: no effect
    assert type(archviz.to_module("alexnet").get_submodule("norm1")) is LRN


NET = """format: 2
name: two norms
input: [8, 6, 6]
layers:
  - {name: conv1, op: conv, out: 8, kernel: 3, padding: 1}
  - {name: norm1, op: lrn, size: 5, lowering: torch}
  - {name: norm2, op: lrn, size: 3}
"""


def test_a_layers_own_lowering_beats_the_settings() -> None:
    sp = loads(NET)
    assert [la.lowering for la in sp.layers] == ["", "torch", ""]
    for given, norm2 in ((Lowering(), LRN), (TORCH, torch.nn.LocalResponseNorm),
                         (Lowering.parse("lrn=fast"), LRN)):
        model = archviz.to_module(sp, lowering=given)
        assert type(model.get_submodule("norm1")) is torch.nn.LocalResponseNorm
        assert type(model.get_submodule("norm2")) is norm2
    settings = Settings(batch=2, torch_device="cpu")
    predicted = saved_bytes(analyze(sp), settings)
    assert predicted == measure(sp, 2).per_layer


def test_a_bad_lowering_is_refused() -> None:
    result = CliRunner().invoke(app, ["verify", "alexnet", "--lowering", "lrn=cudnn"])
    assert result.exit_code == 2 and "lowering lrn=cudnn: expected one of fast, torch" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["cost", "alexnet", "--lowering", "conv=torch"])
    assert result.exit_code == 2 and "op conv has no choice of lowering" in result.output


def test_lowering_parse() -> None:
    assert Lowering.parse("") == Lowering() and str(Lowering()) == ""
    assert Lowering.parse(" LRN=Torch ") == TORCH and str(TORCH) == "lrn=torch"
    assert TORCH.choice("lrn") == "torch" and TORCH.choice("lrn", "fast") == "fast"
    assert Lowering().choice("lrn") == "fast" and Lowering().choice("conv") == ""
    # every op with a choice, its default
    assert Lowering().as_dict() == {"lrn": "fast", "attention": "eager", "gelu": "torch",
                                    "pos_embedding": "slice"}
    for bad, says in (("lrn", "expected op=choice"), ("lrn=tourch", "did you mean 'torch'?"),
                      ("lnr=torch", "unknown op 'lnr'"), ("relu=fast", "op relu has no choice")):
        with pytest.raises(ArchvizError) as info:
            Lowering.parse(bad)
        assert says in info.value.format()


@pytest.mark.parametrize("lower", ["fast", "torch"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_each_lowering_saves_what_its_rule_says(lower: str, dtype: str) -> None:
    """The cost model follows the lowering: autograd's record of saved tensors, per layer."""
    sp, shape = load("alexnet"), (3, 67, 67)
    given = Lowering.of({"lrn": lower})
    settings = Settings(batch=2, dtype=Dtype(dtype), torch_device="cpu", lowering=given)
    predicted = saved_bytes(analyze(sp, shape), settings)
    measured = measure(sp, 2, dtype, input_shape=shape, lowering=given)
    for name in ("norm1", "norm2"):
        assert predicted[name] == measured.per_layer[name], (name, measured.records[name])
    assert sum(predicted.values()) == measured.total


def test_fast_saves_less_than_torch() -> None:
    sp, shape = load("alexnet"), (3, 67, 67)
    got = {}
    for lower in ("fast", "torch"):
        got[lower] = measure(sp, 2, "fp32", input_shape=shape,
                             lowering=Lowering.of({"lrn": lower})).per_layer["norm1"]
    assert got["fast"] < got["torch"] / 2


def test_a_layers_bad_lowering_is_a_located_error() -> None:
    with pytest.raises(archviz.SpecError) as info:
        loads(NET.replace("lowering: torch", "lowering: cudnn"), "net.yaml")
    assert info.value.format().startswith("net.yaml:6:")
    assert "norm1.lowering: expected one of fast, torch (lrn's lowerings, fast the default), got 'cudnn'" \
        in info.value.format()
    with pytest.raises(archviz.SpecError) as info:
        loads(NET.replace("padding: 1}", "padding: 1, lowering: torch}"), "net.yaml")
    assert info.value.format().startswith("net.yaml:5:")
    assert "conv1.lowering: op conv has no choice of lowering" in info.value.format()
