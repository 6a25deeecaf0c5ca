"""LRN as the AlexNet paper writes it (section 3.3): the spec's alpha is the paper's α.

The oracle is the paper's formula, written out here by hand, independently of
``OpKind.reference`` (which `verify` uses):  b_i = a_i / (k + α·Σ_j a_j²)^β, j over the n = size
channels centred on i (clipped at the ends).
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.ops import OPS, TorchLayer
from archviz.runtime.compile import verify
from archviz.runtime.export import to_python

runner = CliRunner()


def paper_lrn(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """The paper's formula over channels, one channel at a time, in float64."""
    a = a.double()
    c = a.shape[1]
    out = torch.empty_like(a)
    for i in range(c):
        window = range(max(0, i - n // 2), min(c, i + n // 2 + 1))  # n odd: n/2 on each side
        total = sum(a[:, j] ** 2 for j in window)
        out[:, i] = a[:, i] / (k + alpha * total) ** beta
    return out


@pytest.mark.parametrize("scale", [1.0, 10.0, 30.0])
def test_compiled_alexnet_lrn_is_the_papers_formula(scale: float) -> None:
    model = archviz.to_module("alexnet").eval()
    norm1 = model.get_submodule("norm1")
    assert isinstance(norm1, torch.nn.LocalResponseNorm)
    assert norm1.alpha == pytest.approx(5e-4)  # torch divides by size: α·n = 1e-4 · 5
    torch.manual_seed(0)
    x = torch.randn(2, 96, 6, 6) * scale
    with torch.no_grad():
        got = norm1(x).double()
    want = paper_lrn(x, n=5, alpha=1e-4, beta=0.75, k=2.0)
    assert ((got - want).abs() / want.abs()).max().item() <= 1e-6


def test_the_old_reading_would_be_far_off() -> None:
    """Passing α to torch unchanged (the old compile) differs by ~50% at activations around 30."""
    torch.manual_seed(0)
    x = torch.randn(2, 96, 6, 6) * 30
    with torch.no_grad():
        old = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(x).double()
    want = paper_lrn(x, n=5, alpha=1e-4, beta=0.75, k=2.0)
    assert ((old - want).abs() / want.abs()).max().item() > 0.3


def test_verify_checks_lrn_numerically_and_catches_the_wrong_convention(monkeypatch) -> None:
    v = verify("alexnet")
    assert [f.name for f in v.formulas] == ["norm1", "norm2"]
    assert all(f.ok and f.max_rel_error < 1e-6 for f in v.formulas) and v.ok
    wrong = lambda self, p, ins, **_: TorchLayer("LocalResponseNorm", (p.size,),  # noqa: E731
                                            (("alpha", p.alpha), ("beta", p.beta), ("k", p.k)))
    monkeypatch.setattr(type(OPS["lrn"]), "torch", wrong)
    v = verify("alexnet")
    assert not v.ok and all(not f.ok for f in v.formulas)
    result = runner.invoke(app, ["verify", "alexnet"])
    assert result.exit_code == 1 and "✗ norm1" in result.output


def test_exports_carry_alpha_times_size_and_say_so() -> None:
    source = to_python("alexnet")
    assert "nn.LocalResponseNorm(5, alpha=0.0005, beta=0.75, k=2.0)" in source
    assert "alpha = the paper's α 0.0001 × size 5" in source


SPEC = "{head}name: n\ninput: [8, 4, 4]\nlayers:\n  - {{name: norm, op: lrn, size: 5, alpha: 1.0e-4, k: 2}}\n"


def test_a_spec_without_format_2_warns_how_alpha_was_read() -> None:
    a = archviz.analyze(archviz.loads(SPEC.format(head="")))
    assert len(a.warnings) == 1 and "alpha read as the α of the paper's formula" in a.warnings[0][1]
    assert "format: 2" in a.warnings[0][1]
    assert archviz.analyze(archviz.loads(SPEC.format(head="format: 2\n"))).warnings == ()
    no_lrn = "name: n\ninput: [8, 4, 4]\nlayers:\n  - {name: r, op: relu}\n"
    assert archviz.analyze(archviz.loads(no_lrn)).warnings == ()


def test_alpha_is_shown_with_its_meaning() -> None:
    assert "α=0.0001" in archviz.analyze(archviz.loads(SPEC.format(head="format: 2\n"))).layers[0].label
    assert "not divided by n" in OPS["lrn"].fields["alpha"].doc


def test_check_alexnet_has_the_lrn_formula_claim_computed_from_the_torch_layer() -> None:
    from archviz.core.check import run_checks

    spec = archviz.load("alexnet")
    (result,) = [r for r in run_checks(archviz.analyze(spec)) if r.what == "LRN formula"]
    assert result.ok and result.computed == "k=2, n=5, alpha=0.0001, beta=0.75"
    # 5e-4 / 5 = 1e-4: the compiled layer computes the paper's α
    assert "alpha 0.0005 / n 5 = 0.0001" in result.how


def test_the_lrn_claim_fails_when_the_compiled_layer_would_not_compute_it(monkeypatch) -> None:
    from archviz.core.check import run_checks

    wrong = lambda self, p, ins, **_: TorchLayer("LocalResponseNorm", (p.size,),  # noqa: E731
                                            (("alpha", p.alpha), ("beta", p.beta), ("k", p.k)))
    monkeypatch.setattr(type(OPS["lrn"]), "torch", wrong)
    spec = archviz.load("alexnet")
    (result,) = [r for r in run_checks(archviz.analyze(spec)) if r.what == "LRN formula"]
    assert not result.ok and "alpha 0.0001 / n 5 = 2e-05" in result.how


@pytest.mark.parametrize("text", ["k=2, n=5", "k=2, n=5.5, alpha=1e-4, beta=0.75",
                                  "k=2, n=5, alpha=x, beta=1"])
def test_a_malformed_lrn_claim_is_a_located_error(text: str) -> None:
    body = SPEC.format(head="format: 2\n") + f"claims:\n  lrn: '{text}'\n"
    with pytest.raises(archviz.SpecError) as err:
        archviz.loads(body)
    assert "claims.lrn: expected the formula's constants" in str(err.value)
