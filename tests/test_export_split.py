"""`archviz export --split-gpus`: the paper's towers as readable source. Executed with the weights
split from the single-device module, it gives the single-device output (with --halo) on CPU."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.runtime import parallel
from archviz.runtime.export import ExportError, to_python_split

sys.path.insert(0, str(Path(__file__).parent))
from test_parallel import SPLIT_NET, _perturb_bn  # noqa: E402

CPUS = ("cpu", "cpu")


def _load(source: str, name: str) -> type[torch.nn.Module]:
    mod = types.ModuleType(f"exported_{name}")
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)  # noqa: S102 - our own generated code
    return next(v for k, v in mod.__dict__.items() if k.endswith("Towers") and isinstance(v, type))


Three = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _compare(spec: object, halo: bool, shape: tuple[int, ...]) -> Three:
    torch.manual_seed(0)
    single = archviz.to_module(spec).eval()
    _perturb_bn(single)
    towers = archviz.to_module(spec, devices=list(CPUS), halo=halo).eval()
    parallel.split_weights(towers, single)
    cls = _load(to_python_split(spec, halo=halo), "net")
    exported = cls(devices=CPUS).eval()
    exported.load_state_dict(towers.state_dict(), strict=True)   # the Towers' keys
    x = torch.randn(2, *shape)
    with torch.no_grad():
        return single(x), towers(x), exported(x)


def test_alexnet_towers_source_equals_single_device_with_halo() -> None:
    single, towers, exported = _compare("alexnet", True, (3, 227, 227))
    assert (exported - single).abs().max() <= 1e-5
    assert (exported - towers).abs().max() <= 1e-6


def test_alexnet_towers_source_without_halo_is_the_papers_per_gpu_lrn() -> None:
    single, towers, exported = _compare("alexnet", False, (3, 227, 227))
    assert (exported - towers).abs().max() <= 1e-6      # the Towers module (paper's LRN per GPU), exactly


def test_split_net_with_batchnorm_and_add() -> None:
    spec = archviz.loads(SPLIT_NET)
    single, _, exported = _compare(spec, False, (3, 16, 16))
    assert (exported - single).abs().max() <= 1e-5


def test_transfers_only_where_the_split_view_says() -> None:
    source = to_python_split("alexnet")
    crossing = re.findall(r"# (\w+) reads every device", source)
    assert crossing == ["conv3", "fc6", "fc7", "fc8"]
    analysis = archviz.analyze(archviz.load("alexnet"))
    assert crossing == [s.name for s in analysis.layers if not s.gpu_local and s.inputs != ("input",)]
    forward = source.split("def forward", 1)[1]
    moved = {m for m in re.findall(r"(\w+)_\d\.to\(d\d\)", forward)}
    assert moved == {"pool2", "flatten", "drop6", "drop7", "fc8"}   # fc8: the output gathered
    assert ".to(d" not in source.split("def forward", 1)[1].split("norm1_0")[0].replace("x.to(d", "")
    halo = to_python_split("alexnet", halo=True).split("def forward", 1)[1]
    assert {m for m in re.findall(r"(\w+)_\d\[:, [-:\d]+\]\.to\(d\d\)", halo)} == {"relu1", "relu2"}


def test_cli_split_gpus(tmp_path: Path) -> None:
    out = tmp_path / "towers.py"
    r = CliRunner().invoke(app, ["export", "alexnet", "--split-gpus", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "class AlexNetTowers(nn.Module):" in out.read_text()
    for args, message in [(["lenet5", "--split-gpus"], "needs a spec split over GPUs"),
                          (["alexnet", "--split-gpus", "-f", "onnx", "-o", str(tmp_path / "x.onnx")],
                           "--split-gpus writes PyTorch source"),
                          (["alexnet", "--halo"], "--halo applies to --split-gpus only")]:
        r = CliRunner().invoke(app, ["export", *args])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    with pytest.raises(ExportError):
        to_python_split("lenet5")
