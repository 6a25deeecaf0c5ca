"""`archviz import` never writes a wrong spec: every layer and the network's output are checked against
the trace, --verify's failures are located (exit 1, nothing written), opaque layers keep any rank and
their dtype, repeated stages fold into blocks and inexact divisions the source makes are accepted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archviz
from archviz.cli.app import app
from archviz.core.analysis import analyze
from archviz.runtime import importer
from archviz.runtime.importer import ImportFailed, VerifyFailed, from_module, round_trip
from archviz.runtime.mapping import check
from archviz.spec import loads

sys.path.insert(0, str(Path(__file__).parent))
import reference_torchvision_resnet as tvr  # noqa: E402

NETS = '''
import torch
from torch import nn


class CatTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        return torch.cat([x, x], 1)


class ArgMax(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        return torch.erf(self.lin(x)).argmax(-1)


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        return torch.logsumexp(self.lin(x), 1)
'''


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


def test_a_tensor_passed_twice_is_read_twice(nets: Path) -> None:
    """torch.cat([x, x], 1) after an 8-channel conv: 16 channels (fx's all_input_nodes gives x once,
    which once made the concat an identity and the spec's output 8 channels)."""
    model = importer.load_target(f"{nets}:CatTwice")
    imported = from_module(model, (3, 8, 8))
    cat = imported.spec.layers[-1]
    assert (cat.op, cat.inputs) == ("concat", ("conv", "conv"))
    assert analyze(imported.spec).layers[-1].output == (16, 8, 8)
    rt = round_trip(model, imported)
    assert rt.ok and rt.max_abs_diff == 0


def test_the_networks_output_is_checked_against_the_models() -> None:
    spec = loads("format: 3\nname: t\ninput: [3, 8, 8]\nlayers:\n"
                 "  - {name: conv, op: conv, out: 8, kernel: 1}\n")
    check(spec, {"conv": (8, 8, 8)}, (8, 8, 8))
    with pytest.raises(ImportFailed, match=r"conv \(the network's output\): analysed \(8, 8, 8\), the model's"
                                           r" \(16, 8, 8\)"):
        check(spec, {"conv": (8, 8, 8)}, (16, 8, 8))
    with pytest.raises(ImportFailed, match=r"conv: analysed \(8, 8, 8\), traced \(4, 8, 8\)"):
        check(spec, {"conv": (4, 8, 8)})


def _wrong(imported: importer.Imported) -> importer.Imported:
    """The import with its conv's channels changed: a spec that disagrees with the model."""
    text = imported.text.replace("out: 8", "out: 4")
    return importer.Imported(loads(text), text, imported.name_map, imported.renames)


def test_verify_failures_are_located_exit_1_and_nothing_written(nets: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = importer.load_target(f"{nets}:CatTwice")
    wrong = _wrong(from_module(model, (3, 8, 8)))
    with pytest.raises(VerifyFailed, match="the model's weights do not fit the spec: .*conv.weight"):
        round_trip(model, wrong)
    real = importer.from_module
    monkeypatch.setattr(importer, "from_module", lambda *a, **k: _wrong(real(*a, **k)))
    out = tmp_path / "x.yaml"
    r = CliRunner().invoke(app, ["import", f"{nets}:CatTwice", "--input", "3x8x8", "-o", str(out),
                                 "--verify"])
    assert r.exit_code == 1, r.output
    assert "conv.weight" in r.output and "not written" in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_a_compiled_spec_that_fails_names_its_layer(nets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = importer.load_target(f"{nets}:CatTwice")
    imported = from_module(model, (3, 8, 8))
    import archviz.runtime.compile as compile_

    def broken(spec: object, **kw: object) -> nn.Module:
        gm = real(spec, **kw)
        gm.cat.forward = lambda xs: torch.cat(xs, 3)[:, :, :, :1].expand(1, 2, 3, 4)   # a RuntimeError
        return gm

    real = compile_.to_module
    monkeypatch.setattr(compile_, "to_module", broken)
    with pytest.raises(VerifyFailed, match="the compiled spec fails at layer cat: RuntimeError"):
        round_trip(model, imported)


def test_opaque_layers_keep_any_rank_and_their_dtype(nets: Path, tmp_path: Path) -> None:
    imported = from_module(importer.load_target(f"{nets}:ArgMax"), (2, 3, 16), allow_opaque=True)
    a = analyze(imported.spec)
    assert [(s.op, s.output, s.dtype) for s in a.layers][-2:] == [
        ("opaque", (2, 3, 16), "float32"), ("opaque", (2, 3), "int64")]
    assert "traced_dtype: int64" in imported.text
    r = CliRunner().invoke(app, ["import", f"{nets}:Scalar", "--input", "16", "--allow-opaque"])
    assert r.exit_code == 2, r.output
    assert "logsumexp (torch.logsumexp): its output has 0 sizes per example" in r.output


def test_torchvisions_resnet50_folds_into_stages_with_repeat() -> None:
    """torchvision's own code (one ReLU called three times, out += identity) folds; the folded text
    analyses to the flat one's numbers."""
    torch.manual_seed(0)
    model = tvr.resnet50()
    imported = from_module(model, (3, 64, 64))
    for stage, n, width in (("layer1", 3, 64), ("layer2", 4, 128), ("layer3", 6, 256), ("layer4", 3, 512)):
        assert f"{{name: {stage}, block: layer, repeat: {n}, args: {{conv1_out: {width}," in imported.text
    assert imported.text.count("    layers:") == 1     # the four stages share one block
    assert "layer1.0.add" in {la.name for la in imported.spec.layers}
    folded, flat = analyze(imported.spec), analyze(archviz.load(str(_flat(imported))))
    assert [(s.name, s.output, s.params, s.macs) for s in folded.layers] == \
        [(s.name, s.output, s.params, s.macs) for s in flat.layers]
    assert round_trip(model, imported).ok


def _flat(imported: importer.Imported) -> Path:
    import tempfile

    from archviz.spec.write import Header, entry_of, write

    spec = imported.spec
    text = write(Header(spec.name, tuple(spec.input)), [entry_of(la) for la in spec.layers])
    path = Path(tempfile.mkdtemp()) / "flat.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_strict_agrees_with_the_bundled_resnet50(tmp_path: Path) -> None:
    """At 224 torchvision's stride-2 convs divide inexactly (they floor): the import accepts them where
    the source makes them, so `shapes --strict` passes on both, and diff finds them equal."""
    out = tmp_path / "r50.yaml"
    out.write_text(from_module(tvr.resnet50(), (3, 224, 224)).text)
    assert "allow: [inexact]" in out.read_text()
    for spec in (str(out), "resnet50"):
        r = CliRunner().invoke(app, ["shapes", spec, "--strict"])
        assert r.exit_code == 0, r.output
    a, b = analyze(archviz.load(str(out))), analyze(archviz.load("resnet50"))
    assert (a.totals.params, a.totals.macs) == (b.totals.params, b.totals.macs)


class _Tokens(nn.Module):
    """ViT's pattern at toy size: a class token expanded and concatenated (computed from a
    parameter alone), attention returning (x, weights) of which [0] is read, a position table
    buffer; an MLP run on a constant table (Swin V2's bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.table = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
        self.register_buffer("coords", torch.randn(5, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.attn(x, x, x, need_weights=False)[0]
        return x + self.table(self.coords)


def test_opaque_totals_count_each_parameter_once_and_no_buffers() -> None:
    model = _Tokens()
    imported = from_module(model, (4, 8), allow_opaque=True)
    assert analyze(imported.spec).totals.params == sum(p.numel() for p in model.parameters())
    # the class token is a cls_token, the attention module archviz's attention op; the table stays opaque
    assert [la.op for la in imported.spec.layers] == ["cls_token", "attention", "opaque"]
