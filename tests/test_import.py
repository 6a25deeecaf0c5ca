"""`archviz import`: a torch.nn.Module → a spec, proven by a round trip against the source model
(its own weights loaded through the name map: identical outputs, parameters and flop_counter MACs)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.core.diff import diff
from archviz.runtime.importer import ImportFailed, from_module, load_weights, round_trip

sys.path.insert(0, str(Path(__file__).parent))
import reference_classic as rc  # noqa: E402
import reference_import as ri  # noqa: E402
import reference_models as rm  # noqa: E402

SMALL = (3, 64, 64)
MODELS: dict[str, Callable[[], nn.Module]] = {
    "alexnet": rm.alexnet_torchvision, "vgg16": rc.vgg16, "resnet18": rc.resnet18, "resnet50": rc.resnet50,
    "googlenet": rc.googlenet, "squeezenet1_0": rc.squeezenet1_0, "mobilenet_v2": ri.mobilenet_v2,
    "densenet121": ri.densenet121, "efficientnet_b0": ri.efficientnet_b0,
}
PUBLISHED = {**rc.PUBLISHED_PARAMS, **ri.PUBLISHED_PARAMS, "alexnet": 61_100_840}


def _round_trip(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    imported = from_module(model, shape)
    rt = round_trip(model, imported)
    assert rt.max_abs_diff <= 1e-5, rt
    assert rt.params == rt.spec_params == rt.analysis_params == PUBLISHED[name]
    assert rt.flops == rt.spec_flops == 2 * rt.analysis_macs > 0
    assert rt.ok


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_small_input(name: str) -> None:
    _round_trip(name, SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_full_size(name: str) -> None:
    _round_trip(name, (3, 224, 224))


@pytest.mark.parametrize(("name", "bundled"), [("alexnet", "alexnet-torchvision"), ("resnet50", "resnet50"),
                                                ("vgg16", "vgg16")])
def test_imported_equals_bundled(name: str, bundled: str) -> None:
    imported = archviz.from_module(MODELS[name](), (3, 224, 224))
    spec = archviz.load(bundled)
    d = diff(archviz.analyze(spec), archviz.analyze(imported))
    for metric in ("params", "macs", "neurons", "activations", "buffers"):
        assert d.total(metric)[0] == d.total(metric)[1], metric
    for layer in d.layers:
        if layer.a is None or layer.b is None:  # only parameter-free identities may differ in count
            only = layer.a or layer.b
            assert only is not None and only.params == 0 and only.macs == 0, layer.name
            continue
        a, b = layer.a, layer.b
        assert (a.output, a.params, a.macs) == (b.output, b.params, b.macs), layer.name


def test_resnet_stages_fold_into_blocks() -> None:
    imported = from_module(rc.resnet50(), SMALL)
    text = imported.text
    assert "blocks:" in text and "repeat: 6" in text and "first: {conv1_stride: 1," not in text
    # the four stages share one block, their channels and strides passed as args
    assert ("{name: layer3, block: layer, repeat: 6, args: {conv1_out: 256, conv2_out: 256, conv2_stride: 1,"
            " conv3_out: 1024, downsample_0_out: 1024, downsample_0_stride: 2}, first: {conv2_stride: 2,"
            " first_only: true}, allow: [inexact]}") in text
    assert len(text.splitlines()) < 100      # flat: one line per layer, 170 and more
    assert len(imported.spec.layers) == len(archviz.load("resnet50").layers)
    assert text.startswith("# Imported by `archviz import`") and "\nformat: 3\n" in text


def test_bare_sequential_children_are_prefixed_and_mapped() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    imported = from_module(model, (3, 8, 8))
    assert [la.name for la in imported.spec.layers] == ["layer_0", "layer_1", "layer_2", "layer_3"]
    assert imported.renames["0"] == "layer_0"
    assert imported.name_map == {"0.weight": "layer_0.weight", "0.bias": "layer_0.bias",
                                 "3.weight": "layer_3.weight", "3.bias": "layer_3.bias"}
    compiled = load_weights(archviz.to_module(imported.spec), model.state_dict(), imported.name_map)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(compiled(x), model(x))


def test_lrn_alpha_is_the_papers() -> None:
    imported = from_module(rm.alexnet(), (3, 227, 227))   # torch's alpha 1e-4 over size 5
    assert imported.spec.layer("norm1").params.alpha == pytest.approx(1e-4 / 5)
    assert round_trip(rm.alexnet(), imported).ok


class Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ChannelShuffle(2)   # no op of archviz's (PixelShuffle was one until issue 21)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.conv(x)))


def test_unmappable_layer_is_a_clear_error() -> None:
    with pytest.raises(ImportFailed) as exc:
        from_module(Odd(), (3, 8, 8))
    text = exc.value.format()
    assert text.startswith("up: archviz has no op for torch.nn.modules.channelshuffle.ChannelShuffle")
    assert "nn.Conv2d" in text and "torch.cat(dim=1)" in text and "--allow-opaque" in text


def test_allow_opaque_keeps_traced_shape_and_params_and_refuses_to_compile() -> None:
    imported = from_module(Odd(), (3, 8, 8), allow_opaque=True)
    layer = imported.spec.layer("up")
    assert layer.op == "opaque" and layer.params.traced_shape == (8, 8, 8) and imported.opaque == ("up",)
    analysis = archviz.analyze(imported.spec)
    assert analysis.totals.params == sum(p.numel() for p in Odd().parameters())
    assert analysis.layer("head").output == (4, 8, 8)
    assert imported.warnings and "opaque" in imported.warnings[0]
    with pytest.raises(archviz.ShapeError, match="up: cannot compile an opaque layer"):
        archviz.to_module(imported.spec)


def test_public_api_analyze_dispatches() -> None:
    model = rm.lenet5()
    a = archviz.analyze(model, input_shape=(1, 32, 32))
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert archviz.analyze("alexnet").totals.params == archviz.analyze(archviz.load("alexnet")).totals.params
    with pytest.raises(archviz.ArchvizError, match="input_shape"):
        archviz.analyze(model)


MYNET = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))

class Dyn(Net):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x

def needs(depth, width):
    return Net()

class Odd(Net):
    def __init__(self):
        super().__init__()
        self.up = nn.ChannelShuffle(2)

    def forward(self, x):
        return self.up(self.body(x))
'''


@pytest.fixture
def mynet(tmp_path: Path) -> Path:
    path = tmp_path / "mynet.py"
    path.write_text(MYNET)
    return path


def test_cli_import_writes_the_spec_and_verifies(mynet: Path, tmp_path: Path) -> None:
    out = tmp_path / "net.yaml"
    r = CliRunner().invoke(app, ["import", f"{mynet}:Net", "--input", "3x32x32", "-o", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "round trip ok: max |output difference| 0" in r.output
    assert archviz.analyze(archviz.load(str(out))).totals.params == 8 * 3 * 9 + 8 + 2048 * 10 + 10


def test_cli_allow_opaque_warns(mynet: Path, tmp_path: Path) -> None:
    out = tmp_path / "odd.yaml"
    r = CliRunner().invoke(app, ["import", f"{mynet}:Odd", "--input", "3x32x32", "-o", str(out),
                                 "--allow-opaque"])
    assert r.exit_code == 0, r.output
    assert "warning: up: torch.nn.modules.channelshuffle.ChannelShuffle kept as an opaque layer" in r.output
    assert "op: opaque" in out.read_text()


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_package.models:net", "cannot import no_such_package.models: ModuleNotFoundError"),
    ("{mynet}:needs", "needs arguments (depth, width)"),
    ("{mynet}:Dyn", "torch.fx cannot trace Dyn"),
    ("{mynet}:Odd", "up: archviz has no op for torch.nn.modules.channelshuffle.ChannelShuffle"),
    ("{mynet}:Nope", "has no attribute 'Nope'"),
    ("{tmp}/model.onnx", "model.onnx: not an ONNX file"),
])
def test_cli_bad_targets_exit_2_without_traceback(mynet: Path, tmp_path: Path, target: str,
                                                  message: str) -> None:
    (tmp_path / "model.onnx").write_text("not onnx")
    out = tmp_path / "x.yaml"
    r = CliRunner().invoke(app, ["import", target.format(mynet=mynet, tmp=tmp_path), "--input", "3x32x32",
                                 "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_a_missing_name_in_a_large_package_is_not_answered_with_its_whole_dir() -> None:
    from archviz.runtime.importer import ImportFailed, load_target

    with pytest.raises(ImportFailed) as err:
        load_target("torch.nn:Nope")
    assert "has no attribute 'Nope'" in err.value.message
    assert "public names there, e.g." in err.value.hint and len(err.value.hint) < 300, err.value.hint
    with pytest.raises(ImportFailed) as err:
        load_target("torch.nn:Conv2e")
    assert err.value.hint == "did you mean 'Conv2d'?"
