"""A layer named like an ``nn.Module`` attribute (``half``, ``train``, ``to``, ``_modules``)
compiles, verifies and exports: its module path gets a trailing ``_`` that the state dict, the
exported source and the importers' name maps all follow (``archviz.runtime.modnames``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from archviz.cli import app
from archviz.runtime.compile import to_module, verify
from archviz.runtime.export import to_python
from archviz.runtime.modnames import module_path
from archviz.spec import loads

TAKEN = ("half", "float", "train", "eval", "forward", "cuda", "to", "parameters", "state_dict",
         "training", "_modules", "graph", "code", "keys", "requires_grad_")


def _spec(name: str) -> str:
    """Three linears under names that collide with each other once underscores are added."""
    return f"""format: 3
name: collide
input: [6]
layers:
  - {{name: {name}, op: linear, out: 5}}
  - {{name: {name}_, op: relu}}
  - {{name: blk.{name}, op: linear, out: 4}}
  - {{name: blk.{name}__, op: linear, out: 3, bias: false}}
"""


def test_module_path_keeps_distinct_names_distinct() -> None:
    names = [n + "_" * k for n in TAKEN for k in range(3)] + ["conv1", "x_", "requires_grad", "0"]
    paths = [module_path(n) for n in names]
    assert len(set(paths)) == len(names)
    assert [module_path(n) for n in ("conv1", "x_", "requires_grad", "layer2.0.conv1")] == \
        ["conv1", "x_", "requires_grad", "layer2.0.conv1"]
    assert module_path("blk.half") == "blk.half_" and module_path("half_") == "half__"


@pytest.mark.parametrize("name", TAKEN)
def test_taken_names_compile_and_compute_the_spec(name: str) -> None:
    spec = loads(_spec(name))
    model = to_module(spec)
    assert isinstance(model.training, bool) and callable(model.half)   # torch's own, not shadowed
    sd = model.state_dict()
    x = torch.randn(2, 6)
    h = torch.relu(x @ sd[f"{module_path(name)}.weight"].T + sd[f"{module_path(name)}.bias"])
    h = h @ sd[f"blk.{module_path(name)}.weight"].T + sd[f"blk.{module_path(name)}.bias"]
    want = h @ sd[f"blk.{module_path(name + '__')}.weight"].T
    torch.testing.assert_close(model(x), want)
    assert sum(p.numel() for p in model.parameters()) == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3
    v = verify(spec)
    assert v.ok and len(v.layers) == 4 and all(c.params == c.real_params for c in v.layers), v


@pytest.mark.parametrize("name", ["half", "to", "_modules", "keys", "forward"])
def test_exported_source_has_the_compiled_state_dict(name: str) -> None:
    spec = loads(_spec(name))
    model = to_module(spec)
    scope: dict[str, object] = {}
    exec(compile(to_python(spec), "<export>", "exec"), scope)   # noqa: S102 - our own output
    exported = scope["Collide"]()   # type: ignore[operator]
    assert isinstance(exported, nn.Module)
    exported.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 6)
    torch.testing.assert_close(exported(x), model(x))


def test_tied_weight_under_a_taken_name() -> None:
    spec = loads("""format: 3
name: tied
input: [4]
input_dtype: int64
layers:
  - {name: to, op: embedding, vocab: 11, dim: 8}
  - {name: eval, op: linear, out: 11, bias: false, tie: to}
""")
    model = to_module(spec)
    assert model.get_submodule("eval_").weight is model.get_submodule("to_").weight
    assert sum(p.numel() for p in model.parameters()) == 11 * 8


@pytest.mark.parametrize("command", [["verify"], ["export", "-o", "out.py"], ["export", "-o", "out.onnx"]])
def test_cli_commands_exit_0(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(_spec("state_dict"), encoding="utf-8")
    args = [command[0], str(path), *[str(tmp_path / a) if a.startswith("out") else a for a in command[1:]]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    if command[0] == "export":
        assert (tmp_path / command[-1]).stat().st_size > 0


def test_gpu_towers_and_their_exported_source_under_taken_names() -> None:
    """The split net (two towers) with conv1 → half, bn1 → train, fc → to: the towers, their
    weights split from the single-device module and the exported towers' source agree."""
    import re
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_export_split import _compare
    from test_parallel import SPLIT_NET

    text = re.sub(r"\bfc\b", "to", re.sub(r"\bbn1\b", "train", re.sub(r"\bconv1\b", "half", SPLIT_NET)))
    single, towers, exported = _compare(loads(text), False, (3, 16, 16))
    assert (exported - single).abs().max() <= 1e-5
    assert (exported - towers).abs().max() <= 1e-6


def test_imports_of_the_compiled_module_load_its_weights(tmp_path: Path) -> None:
    """Importing the compiled module (torch.fx) and its ONNX file gives layers named ``half_``
    (the module paths), compiled in turn as ``half__``: the name maps say so, and each round
    trip loads every weight and computes what the source computes."""
    from archviz.runtime import importer, onnx_import
    from archviz.runtime.export import onnx_available

    spec = loads(_spec("half"))
    model = to_module(spec).eval()
    imported = importer.from_module(model, (6,))
    assert imported.name_map["half_.weight"] == "half__.weight"
    assert importer.round_trip(model, imported).ok
    if onnx_available():
        path = tmp_path / "half.onnx"
        assert CliRunner().invoke(app, ["export", "-o", str(path), _write(tmp_path, "half")]).exit_code == 0
        got = onnx_import.from_onnx(path)
        assert any(v.startswith("half__.") for v in got.name_map.values()), got.name_map
        assert onnx_import.round_trip(got).ok


def _write(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(_spec(name), encoding="utf-8")
    return str(path)
