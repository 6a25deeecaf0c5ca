"""`archviz import model.onnx`: an ONNX graph → a spec, proven by running the file in onnxruntime
(or onnx's reference evaluator) against the compiled spec holding the file's initializers."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.runtime.export import onnx_available, to_onnx
from archviz.runtime.importer import ImportFailed

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from archviz.runtime.onnx_import import from_onnx, round_trip, run_onnx, state_dict  # noqa: E402

needs_exporter = pytest.mark.skipif(not onnx_available(), reason="torch.onnx needs onnx and onnxscript")


def _check(path: Path, shape: tuple[int, ...] | None = None) -> archviz.Spec:
    imported = from_onnx(path, shape)
    rt = round_trip(imported)
    assert rt.max_abs_diff <= 1e-5, rt
    assert rt.params == rt.spec_params == rt.analysis_params > 0, rt
    assert rt.spec_flops == 2 * rt.analysis_macs > 0, rt
    assert rt.ok
    return imported.spec


# --- archviz's own export, imported back -----------------------------------------------------------

@pytest.fixture(scope="module")
def alexnet_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "alexnet.onnx"
    path.write_bytes(to_onnx("alexnet"))
    return path


@needs_exporter
def test_own_export_alexnet_round_trips(alexnet_onnx: Path) -> None:
    _own(alexnet_onnx, "alexnet", None)


@needs_exporter
@pytest.mark.slow   # ~10 s each, most of it torch.onnx: pytest -m slow tests/test_import_onnx.py
@pytest.mark.parametrize(("name", "shape"), [("lenet5", None), ("resnet18", (3, 64, 64)),
                                             ("squeezenet1_0", (3, 96, 96)), ("googlenet", (3, 96, 96))])
def test_own_export_round_trips(tmp_path: Path, name: str, shape: tuple[int, ...] | None) -> None:
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(to_onnx(name, shape))
    _own(path, name, shape)


def _own(path: Path, name: str, shape: tuple[int, ...] | None) -> None:
    spec = _check(path)
    original = archviz.analyze(archviz.load(name), input_shape=shape)
    imported = archviz.analyze(spec)
    assert imported.totals.macs == original.totals.macs
    if name in ("lenet5", "alexnet", "squeezenet1_0"):   # no BatchNorm for the exporter to fold
        assert imported.totals.params == original.totals.params
        kept = [s.output for s in original.layers if s.op != "dropout"]   # eval export drops dropout
        assert [s.output for s in imported.layers] == kept


@needs_exporter
def test_alexnet_lrn_and_groups_come_back(alexnet_onnx: Path) -> None:
    """torch writes F.local_response_norm as eleven nodes: read back as one LRN with the paper's α
    (torch's α / size: 1e-4 · 5 / 5), and conv2's two groups as groups: 2."""
    spec = from_onnx(alexnet_onnx).spec
    layers = {la.name: la for la in spec.layers}
    lrn = [la for la in spec.layers if la.op == "lrn"]
    assert len(lrn) == 2
    assert (lrn[0].params.size, lrn[0].params.alpha, lrn[0].params.beta, lrn[0].params.k) == \
        (5, pytest.approx(1e-4), pytest.approx(0.75), pytest.approx(2.0))
    assert layers["conv2"].params.groups == 2 and layers["conv3"].params.groups == 1
    assert layers["fc6"].op == "linear" and layers["fc6"].params.out == 4096


# --- hand-written torch models through torch.onnx ---------------------------------------------------

class Mobile(nn.Module):
    """Depthwise conv, ReLU6 (Clip 0..6), squeeze-excitation (global pool, sigmoid, multiply),
    a concat, dropout, a softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.act = nn.ReLU6()
        self.se_fc = nn.Conv2d(8, 8, 1)
        self.side = nn.Conv2d(8, 4, 1, bias=False)
        self.pool = nn.AvgPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(12 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        y = self.act(self.dw(x))
        s = torch.sigmoid(self.se_fc(nn.functional.adaptive_avg_pool2d(y, 1)))
        y = y * s
        x = torch.cat([y, self.side(x)], 1)
        x = torch.flatten(self.pool(x), 1)
        return torch.softmax(self.fc(self.drop(x)), dim=1)


class WithBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.lrn = nn.LocalResponseNorm(3, alpha=3e-4, beta=0.75, k=1.0)
        self.fc = nn.Linear(6 * 17 * 17, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lrn(self.pool(torch.relu(self.bn(self.conv(x)))))
        return self.fc(x.view(x.size(0), -1))


def _export(model: nn.Module, path: Path, shape: tuple[int, ...], dynamo: bool) -> None:
    torch.manual_seed(1)
    for m in model.modules():   # BatchNorm statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(1, *shape),), str(path), dynamo=dynamo,
                          external_data=False, input_names=["x"], verbose=False)


@needs_exporter
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript-exporter"])
@pytest.mark.parametrize("make", [Mobile, WithBN])
def test_hand_written_models_round_trip(tmp_path: Path, make: type[nn.Module], dynamo: bool) -> None:
    model = make()
    path = tmp_path / "m.onnx"
    _export(model, path, (3, 32, 32), dynamo)
    spec = _check(path)
    ops = {la.op for la in spec.layers}
    if make is Mobile:
        assert {"relu6", "concat", "mul", "sigmoid", "softmax", "adaptive_avgpool", "avgpool"} <= ops
        dw = next(la for la in spec.layers if la.op == "conv" and la.params.groups == 8)
        assert dw.params.dilation == (2, 2) and dw.params.padding == (2, 2)
    else:
        assert "lrn" in ops
        lrn = next(la for la in spec.layers if la.op == "lrn")
        assert lrn.params.alpha == pytest.approx(3e-4 / 3)    # the spec's α = torch's alpha / size
    # the same output as the torch model itself (not only as the file)
    imported = from_onnx(path)
    compiled = archviz.to_module(imported.spec)
    compiled.load_state_dict(state_dict(imported))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (compiled.eval()(x) - model.eval()(x)).abs().max() <= 1e-5


# --- graphs written with onnx.helper: LRN, MatMul + Add, BatchNormalization, Clip, Gemm(transB=0) ---

def _graph(nodes: list, inits: dict[str, np.ndarray], out: tuple[int, ...], opset: int = 17) -> Any:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])
    g = helper.make_graph(nodes, "handmade", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, *out])],
                          [numpy_helper.from_array(v.astype(np.float32) if v.dtype == np.float64 else v, k)
                           for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _hand_made(lrn: bool = True) -> Any:
    rng = np.random.default_rng(0)
    inits = {"c.w": rng.normal(size=(6, 4, 3, 3)), "c.b": rng.normal(size=6),
             "bn.s": rng.uniform(0.5, 1.5, 6), "bn.b": rng.normal(size=6), "bn.m": rng.normal(size=6),
             "bn.v": rng.uniform(0.5, 2, 6), "lo": np.array(0.0), "hi": np.array(6.0),
             "mm.w": rng.normal(size=(6 * 6 * 6, 7)) * 0.1, "mm.b": rng.normal(size=7),
             "g.w": rng.normal(size=(7, 3)), "g.b": rng.normal(size=3)}
    nodes = [helper.make_node("Conv", ["x", "c.w", "c.b"], ["c"], "stem/conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], "stem/bn",
                              epsilon=1e-3),
             helper.make_node("Clip", ["bn", "lo", "hi"], ["r"], "stem/relu6"),
             helper.make_node("LRN", ["r"], ["n"], "0norm", size=5, alpha=5e-3, beta=0.75, bias=2.0) if lrn
             else helper.make_node("Identity", ["r"], ["n"], "0norm"),
             helper.make_node("Flatten", ["n"], ["f"], "flat", axis=1),
             helper.make_node("MatMul", ["f", "mm.w"], ["m"], "fc/MatMul"),
             helper.make_node("Add", ["m", "mm.b"], ["fc"], "fc/Add"),
             helper.make_node("Relu", ["fc"], ["fr"], ""),
             helper.make_node("Gemm", ["fr", "g.w", "g.b"], ["y"], "head", transB=0)]
    return _graph(nodes, inits, (3,))


def test_hand_made_graph_round_trips_with_names_and_transposes(tmp_path: Path) -> None:
    path = tmp_path / "hand.onnx"
    onnx.save(_hand_made(), str(path))
    imported = from_onnx(path)
    names = [la.name for la in imported.spec.layers]
    # weights P.w → layer P; else the node name with / as ., a leading digit prefixed layer_,
    # no name → the op type in lower case
    assert names == ["c", "bn", "stem.relu6", "layer_0norm", "flat", "mm", "relu", "g"]
    assert imported.renames["0norm"] == "layer_0norm" and imported.renames["stem/conv"] == "c"
    assert imported.name_map["mm.w"] == "mm.weight" and imported.name_map["mm.b"] == "mm.bias"
    assert imported.name_map["bn.v"] == "bn.running_var" and "mm.w" in imported.transposed
    assert imported.name_map["g.w"] == "g.weight" and "g.w" in imported.transposed
    lrn = imported.spec.layers[3].params
    assert lrn.alpha == pytest.approx(5e-3 / 5) and lrn.k == 2.0     # ONNX divides alpha by size
    bn = imported.spec.layers[1].params
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.1)
    # parameters by hand: conv 6·4·9 + 6, BN 6 + 6, MatMul 216·7 + 7, Gemm 7·3 + 3
    assert imported.initializer_params == 6 * 4 * 9 + 6 + 12 + 216 * 7 + 7 + 7 * 3 + 3
    rt = round_trip(imported)
    assert rt.ok and rt.max_abs_diff <= 1e-5, rt


def test_reference_evaluator_agrees_with_onnxruntime_except_lrn() -> None:
    """The fallback where onnxruntime is not installed gives the same answer, except for LRN:
    onnx.reference's LRN (onnx 1.23) disagrees with onnxruntime and with torch, which agree with
    each other (docs/import.md says so; --verify prefers onnxruntime)."""
    pytest.importorskip("onnxruntime")
    from onnx.reference import ReferenceEvaluator

    x = np.random.default_rng(1).normal(size=(1, 4, 6, 6)).astype(np.float32)
    for lrn in (False, True):
        model = _hand_made(lrn)
        got, runtime = run_onnx(model, x)
        assert runtime.startswith("onnxruntime")
        ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
        assert (np.abs(got - ref).max() <= 1e-4) is not lrn


def test_unmappable_node_is_named(tmp_path: Path) -> None:
    nodes = [helper.make_node("Sin", ["x"], ["s"], "weird"), helper.make_node("Relu", ["s"], ["y"], "r")]
    path = tmp_path / "sin.onnx"
    onnx.save(_graph(nodes, {}, (4, 6, 6)), str(path))
    with pytest.raises(ImportFailed) as err:
        from_onnx(path)
    text = err.value.format()
    assert "node 'weird': archviz has no op for ONNX Sin" in text and "supported ONNX nodes: Conv" in text
    imported = from_onnx(path, allow_opaque=True)
    assert imported.opaque == ("weird",) and imported.spec.layers[0].op == "opaque"
    assert imported.spec.layers[0].params.traced_shape == (4, 6, 6)


def test_cli_onnx_verify_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "hand.onnx"
    onnx.save(_hand_made(), str(path))
    out = tmp_path / "hand.yaml"
    r = CliRunner().invoke(app, ["import", str(path), "-o", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "round trip ok against onnxruntime" in r.output.replace("\n", " ")
    by_hand = 6 * 4 * 9 + 6 + 12 + 216 * 7 + 7 + 7 * 3 + 3
    assert archviz.analyze(archviz.load(str(out))).totals.params == by_hand
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf \xff\xff\xff")
    for target, message in [(bad, "bad.onnx: not an ONNX file"), (tmp_path / "none.onnx", "no such file")]:
        r = CliRunner().invoke(app, ["import", str(target), "-o", str(tmp_path / "x.yaml")])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "x.yaml").exists()
    sin = tmp_path / "sin.onnx"
    onnx.save(_graph([helper.make_node("Sin", ["x"], ["y"], "weird")], {}, (4, 6, 6)), str(sin))
    r = CliRunner().invoke(app, ["import", str(sin)])
    assert r.exit_code == 2 and "no op for ONNX Sin" in r.output


# --- the torch.export fallback where torch.fx cannot trace ------------------------------------------

class ShapeCheck(nn.Module):
    """A Python-level shape check: fx cannot trace it (the shape is a proxy), torch.export decides it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            x = self.bn(self.conv(x))
        return self.fc(torch.relu(x).flatten(1))


class Branchy(ShapeCheck):
    """torch.cond on a tensor's value: exported as an ONNX If, which no fixed spec can describe."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cond(x.sum() > 0, lambda t: t * 2, lambda t: -t, (x,))
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


@needs_exporter
def test_torch_export_fallback_round_trips() -> None:
    from archviz.runtime.importer import round_trip as torch_round_trip

    model = ShapeCheck()
    with pytest.raises(Exception, match="symbolically traced variables"):
        torch.fx.symbolic_trace(model)            # fx really cannot
    imported = archviz.runtime.importer.from_module(model, (3, 8, 8))
    assert [(la.name, la.op) for la in imported.spec.layers if la.op in ("conv", "batchnorm", "linear")] == \
        [("conv", "conv"), ("bn", "batchnorm"), ("fc", "linear")]
    assert "captured with torch.export" in imported.text
    assert imported.spec.layers[1].params.eps == 1e-5 and imported.spec.layers[1].params.momentum == 0.1
    rt = torch_round_trip(model, imported)        # the source model's own state dict, through the map
    assert rt.ok and rt.params == 3 * 4 * 9 + 4 + 8 + 144 * 2 + 2, rt


@needs_exporter
def test_torch_cond_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="ONNX If is control flow decided at run time"):
        archviz.runtime.importer.from_module(Branchy(), (3, 8, 8))
    src = tmp_path / "branchy.py"
    here = str(Path(__file__).parent)
    src.write_text(f"import sys\nsys.path.insert(0, {here!r})\nfrom test_import_onnx import Branchy\n")
    r = CliRunner().invoke(app, ["import", f"{src}:Branchy", "--input", "3x8x8"])
    assert r.exit_code == 2 and "torch.fx cannot trace it" in r.output, r.output
    assert "Traceback" not in r.output
