"""`archviz verify`: the analysis against the compiled module on every bundled spec, and proof
that it fails when the two disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from archviz.cli import app
from archviz.ops import OPS, TorchLayer
from archviz.runtime.compile import verify
from tests.conftest import bundled_specs
from tests.reference_models import REFERENCES

runner = CliRunner()


@pytest.mark.parametrize("stem", bundled_specs())
def test_verify_passes_for_every_bundled_spec(stem: str) -> None:
    result = runner.invoke(app, ["verify", stem])
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output and "layers match torch" in result.output
    assert "torch.utils.flop_counter" in result.output


def test_verify_json_against_an_independent_flop_count() -> None:
    result = runner.invoke(app, ["verify", "alexnet", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and data["device"] == "meta" and len(data["layers"]) == 23
    conv1 = data["layers"][0]
    assert conv1 == {"name": "conv1", "op": "conv", "shape": [96, 55, 55], "torch_shape": [96, 55, 55],
                     "params": 34944, "torch_params": 34944, "ok": True}
    build, shape = REFERENCES["alexnet"]  # hand-written, real CPU run
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        build().eval()(torch.zeros(1, *shape))
    assert data["torch_flops"] == counter.get_total_flops() == 2 * data["macs"]


def test_verify_with_another_input() -> None:
    v = verify("alexnet-torchvision", (3, 128, 128))
    assert v.ok and v.layers[0].real_shape == (64, 31, 31)  # ⌊(128 + 4 − 11)/4⌋ + 1


def test_verify_catches_a_wrong_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A maxpool built with stride 1 disagrees with the analysis from pool1 on: exit 1, ✗."""
    wrong = lambda self, p, ins, **_: TorchLayer("MaxPool2d", (p.kernel,), (("stride", 1),))  # noqa: E731
    monkeypatch.setattr(type(OPS["maxpool"]), "torch", wrong)
    result = runner.invoke(app, ["verify", "lenet5"])
    assert result.exit_code == 0  # lenet5 has no maxpool
    result = runner.invoke(app, ["verify", "alexnet-1gpu"])
    assert result.exit_code == 1
    assert "✗" in result.output and "differ: pool1" in result.output


def test_verify_catches_a_wrong_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """An analysis that miscounts conv parameters and MACs (no bias, one MAC short) is caught."""
    conv = OPS["conv"]
    monkeypatch.setattr(type(conv), "params", lambda self, p, ins, out: p.out * ins[0][0])
    monkeypatch.setattr(type(conv), "macs", lambda self, p, ins, out: 0)
    v = verify("lenet5")
    assert not v.ok and not v.macs_ok
    assert [c.name for c in v.layers if not c.ok] == ["c1", "c3", "c5"]
    assert v.macs == 120 * 84 + 84 * 10  # what the broken analysis still counts: the linear layers
    assert v.torch_flops == 2 * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 120 * 400 + 120 * 84 + 84 * 10)


def test_verify_reports_a_refused_forward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A builder torch refuses at run time: no traceback, a failed verification on the CPU."""
    wrong = lambda self, p, ins, **_: TorchLayer("Linear", (ins[0][0] + 1, p.out))  # noqa: E731
    monkeypatch.setattr(type(OPS["linear"]), "torch", wrong)
    result = runner.invoke(app, ["verify", "lenet5"])
    assert result.exit_code == 1
    assert "torch refused the forward pass" in result.output and "cpu" in result.output


def test_huge_spec_verifies_on_meta(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text("name: Huge\ninput: [3, 32, 32]\nlayers:\n  - {name: flatten, op: flatten}\n"
                    "  - {name: fc, op: linear, out: 200000000}\n")
    result = runner.invoke(app, ["verify", str(spec)])
    assert result.exit_code == 0, result.output
    assert "meta" in result.output and "614,600,000,000" in result.output  # 3072 × 2e8 + 2e8
    result = runner.invoke(app, ["export", str(spec), "-f", "torchscript", "-o", str(tmp_path / "h.pt")])
    assert result.exit_code == 2 and "refused before allocating" in result.output
    assert not (tmp_path / "h.pt").exists()


def test_max_memory_option() -> None:
    result = runner.invoke(app, ["verify", "lenet5", "--max-memory", "lots"])
    assert result.exit_code == 2 and "--max-memory" in result.output


def test_bad_spec_is_exit_2_without_traceback() -> None:
    result = runner.invoke(app, ["verify", "no-such-spec"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_verify_of_a_model_torch_cannot_build_is_a_located_error(tmp_path) -> None:
    from typer.testing import CliRunner

    from archviz.cli import app

    spec = tmp_path / "huge.yaml"
    spec.write_text("name: huge\ninput: [3, 100000, 100000]\nlayers:\n"
                    "  - {name: c, op: conv, out: 100000, kernel: 3}\n  - {name: f, op: flatten}\n"
                    "  - {name: fc, op: linear, out: 100000}\n")
    r = CliRunner().invoke(app, ["verify", str(spec)])
    assert r.exit_code == 2 and f"{spec}:6:12: fc: torch cannot build this layer" in r.output
