"""The classic CNN specs against the same networks written by hand in torch (tests/reference_classic.py):
every layer's output shape and parameter count, the totals, and the published figures."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from reference_classic import MODELS, PUBLISHED_PARAMS, trace  # noqa: E402

import archviz  # noqa: E402
from archviz.core.check import run_checks  # noqa: E402

CLASSIC = sorted(MODELS)


@pytest.fixture(scope="module", params=CLASSIC)
def traced(request: pytest.FixtureRequest) -> tuple[str, archviz.Analysis, dict, int]:
    analysis = archviz.analyze(archviz.load(request.param))
    seen, flops = trace(MODELS[request.param](), analysis.input)
    return request.param, analysis, seen, flops


@pytest.fixture
def pair(traced):
    return traced[:3]


def test_every_spec_layer_is_a_module_of_the_reference(pair) -> None:
    name, analysis, seen = pair
    assert [s.name for s in analysis.layers if s.name not in seen] == []
    assert sorted(set(seen) - {s.name for s in analysis.layers}) == []


def test_shapes_layer_by_layer(pair) -> None:
    _, analysis, seen = pair
    wrong = [(s.name, s.output, seen[s.name][0]) for s in analysis.layers if s.output != seen[s.name][0]]
    assert wrong == []


def test_params_layer_by_layer(pair) -> None:
    _, analysis, seen = pair
    wrong = [(s.name, s.params, seen[s.name][1]) for s in analysis.layers if s.params != seen[s.name][1]]
    assert wrong == []


def test_totals_equal_the_published_figures(pair) -> None:
    name, analysis, seen = pair
    assert sum(own for _, own in seen.values()) == PUBLISHED_PARAMS[name]
    assert analysis.totals.params == PUBLISHED_PARAMS[name]


def test_macs_equal_torch_flop_counter(traced) -> None:
    """MACs = FLOPs / 2 as torch.utils.flop_counter counts them (conv and linear only)."""
    _, analysis, _, flops = traced
    assert 2 * analysis.totals.macs == flops


@pytest.mark.parametrize("name", CLASSIC)
def test_every_expect_and_claim_holds(name: str) -> None:
    spec = archviz.load(name)
    results = run_checks(archviz.analyze(spec))
    assert [r.what for r in results if not r.ok] == []
    assert sum(1 for la in spec.layers if la.expect is not None) >= 5   # each spec pins its shapes
    if name != "zfnet":   # torchvision's published parameter count, as a claim `archviz check` verifies
        assert any(r.what == "params" and r.ok for r in results)
        assert any(r.what == "macs" and r.ok for r in results)


def test_published_macs_within_one_percent_of_torchvision_table() -> None:
    """torchvision's GFLOPS column counts multiply-adds; written out here from its documentation."""
    table = {"vgg16": 15.47e9, "resnet18": 1.81e9, "resnet50": 4.09e9, "googlenet": 1.50e9,
             "squeezenet1_0": 0.82e9}
    for name, gmacs in table.items():
        macs = archviz.analyze(archviz.load(name)).totals.macs
        assert abs(macs - gmacs) / gmacs < 0.01, name


def test_resnet18_names_follow_torchvision_state_dict() -> None:
    names = [la.name for la in archviz.load("resnet18").layers]
    assert names[4:15] == [
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1", "layer1.0.conv2", "layer1.0.bn2",
        "layer1.0.add", "layer1.0.relu2", "layer1.1.conv1", "layer1.1.bn1", "layer1.1.relu1",
        "layer1.1.conv2"]
    assert "layer1.0.downsample.0" not in names
    assert "layer2.0.downsample.0" in names and "layer2.1.downsample.0" not in names
    torch_names = {k.rsplit(".", 1)[0] for k in MODELS["resnet18"]().state_dict()}
    assert {n for n in names if n in torch_names} == torch_names   # every parameterised module
