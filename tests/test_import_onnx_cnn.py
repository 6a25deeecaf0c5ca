"""Issue 21: every new CNN op written by ``to_onnx`` (torch.onnx, dynamo) and imported back by
``from_onnx``, proven by ``round_trip`` against onnxruntime (outputs within 1e-5, params equal)."""

from __future__ import annotations

from pathlib import Path

import pytest

import archviz

pytest.importorskip("onnxruntime")
from archviz.runtime.export import onnx_available, to_onnx  # noqa: E402
from archviz.runtime.onnx_import import from_onnx, round_trip  # noqa: E402

pytestmark = pytest.mark.skipif(not onnx_available(), reason="torch.onnx needs onnx and onnxscript")

CONV = "{name: conv, op: conv, out: 8, kernel: 1}"

# op → (its layers after a 1×1 conv on 4×6×6, the ops the import must give back)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "groupnorm": (("{name: gn, op: groupnorm, groups: 4}",), ("conv", "groupnorm")),
    "groupnorm_plain": (("{name: gn, op: groupnorm, groups: 2, affine: false}",), ("conv", "groupnorm")),
    "instancenorm": (("{name: inorm, op: instancenorm, affine: true}",), ("conv", "instancenorm")),
    "instancenorm_plain": (("{name: inorm, op: instancenorm}",), ("conv", "instancenorm")),
    "elu": (("{name: act, op: elu, alpha: 0.5}",), ("conv", "elu")),
    "mish": (("{name: act, op: mish}",), ("conv", "mish")),
    "permute": (("{name: p, op: permute, dims: [1, 2, 0]}",), ("conv", "permute")),
    "transpose": (("{name: t, op: transpose, dim0: 0, dim1: 2}",), ("conv", "permute")),
    "reshape": (("{name: r, op: reshape, shape: [16, 18]}",), ("conv", "reshape")),
    "flatten": (("{name: f, op: flatten, start: 1, end: 2}",), ("conv", "flatten")),
    "narrow": (("{name: n, op: narrow, dim: 0, start: 2, length: 4}",), ("conv", "narrow")),
    "mean": (("{name: m, op: mean, dims: [0], keepdim: true}",), ("conv", "mean")),
    "scale": (("{name: ls, op: scale, axis: channels, init: 0.5}",), ("conv", "scale")),
}
XFAIL: dict[str, str] = {}


def _spec(*layers: str) -> archviz.Spec:
    text = "name: t\ninput: [4, 6, 6]\nlayers:\n" + "".join(f"  - {la}\n" for la in (CONV, *layers))
    return archviz.loads(text, "t.yaml")


@pytest.mark.parametrize("op", [pytest.param(k, marks=pytest.mark.xfail(reason=XFAIL[k], strict=True))
                                if k in XFAIL else k for k in CASES])
def test_op_round_trips_through_onnx(tmp_path: Path, op: str) -> None:
    layers, want = CASES[op]
    path = tmp_path / f"{op}.onnx"
    path.write_bytes(to_onnx(_spec(*layers)))
    imported = from_onnx(path)
    assert tuple(la.op for la in imported.spec.layers) == want, imported.text
    rt = round_trip(imported)
    assert rt.ok, rt


@pytest.mark.parametrize(("factory", "ops"), [
    ("convnext_block", ("groupnorm", "permute", "scale")),      # GroupNorm written out, γ (C, 1, 1)
    ("convnext_block_last", ("permute", "scale")),               # γ (C,) on the last dim
    ("shufflenet_unit", ("narrow", "reshape", "permute", "flatten")),   # Split's two outputs, the shuffle
])
def test_modern_block_imports_from_torch_onnx(tmp_path: Path, factory: str, ops: tuple[str, ...]) -> None:
    import reference_modern
    import torch

    model = getattr(reference_modern, factory)().eval()
    path = tmp_path / f"{factory}.onnx"
    torch.onnx.export(model, (torch.randn(2, 3, 8, 8),), str(path), input_names=["input"], dynamo=True,
                      external_data=False, verbose=False)
    imported = from_onnx(path)
    got = [la.op for la in imported.spec.layers]
    assert all(op in got for op in ops), got
    rt = round_trip(imported)
    assert rt.ok, rt   # params: the file's (the exporter folds ShuffleNet's eval BatchNorms into its convs)
