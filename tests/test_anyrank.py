"""Tensors of any rank (issue 20, point 1): per-example shapes (F,), (S, D), (C, L), (C, H, W),
(C, D, H, W) and token ids (S,) int64, with torch as the oracle.

* linear, the activations and add at ranks 1 to 4: output shape, parameters and MACs equal
  torch's (hypothesis draws the shapes);
* a (C, L) and a (C, D, H, W) spec through shapes, compile and verify;
* ``--input 16 --input-dtype int64`` in the JSON output; a bad rank is a located error;
* the DOT diagram and the HTML view of a rank-2 spec.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import archviz
from archviz.cli import app

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
SHAPES = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


def spec_text(shape: tuple[int, ...], *layers: dict[str, Any], **top: Any) -> str:
    return yaml.safe_dump({"format": 3, "name": "rank", "input": list(shape), **top, "layers": list(layers)},
                          default_flow_style=None, sort_keys=False)


def torch_side(module: Any, *xs: Any) -> tuple[tuple[int, ...], int, int]:
    """Output shape, parameters and MACs (FlopCounterMode's FLOPs / 2) per example of a run."""
    with warnings.catch_warnings(), torch.no_grad(), FlopCounterMode(display=False) as counter:
        warnings.simplefilter("ignore")
        y = module(*xs)
    macs = counter.get_total_flops() // 2 // len(xs[0])
    return tuple(y.shape[1:]), sum(p.numel() for p in module.parameters()), macs


def archviz_side(text: str) -> tuple[tuple[int, ...], int, int]:
    s = archviz.analyze(archviz.loads(text)).layers[-1]
    return s.output, s.params, s.macs


@SETTINGS
@given(SHAPES, st.integers(1, 9), st.booleans())
def test_linear_at_any_rank_equals_torch(shape: tuple[int, ...], out: int, bias: bool) -> None:
    layer = {"name": "fc", "op": "linear", "out": out, "bias": bias}
    if len(shape) >= 3:
        layer["last_dim"] = True   # else refused: a missing flatten (test_properties.py)
    ref = torch_side(nn.Linear(shape[-1], out, bias=bias), torch.zeros(2, *shape))
    assert archviz_side(spec_text(shape, layer)) == ref
    compiled = archviz.to_module(archviz.loads(spec_text(shape, layer)))
    assert torch_side(compiled, torch.zeros(2, *shape)) == ref


@SETTINGS
@given(SHAPES, st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "relu6", "silu", "hardswish",
                                "hardsigmoid", "leaky_relu", "softmax", "dropout"]))
def test_activations_at_any_rank_equal_torch(shape: tuple[int, ...], op: str) -> None:
    text = spec_text(shape, {"name": "act", "op": op})
    module = archviz.to_module(archviz.loads(text)).eval()
    assert archviz_side(text) == torch_side(module, torch.randn(2, *shape)) == (shape, 0, 0)


@SETTINGS
@given(SHAPES, st.data())
def test_add_at_any_rank_equals_torch_with_broadcasting(shape: tuple[int, ...], data: st.DataObject) -> None:
    """add of the input and a layer of the same rank whose sizes may be 1 (torch's broadcasting)."""
    ones = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    other = tuple(1 if o else n for o, n in zip(ones, shape, strict=True))
    text = spec_text(shape, {"name": "sum", "op": "add", "from": ["input", "input"]})
    a, b = torch.randn(2, *shape), torch.randn(2, *other)
    assert archviz_side(text)[0] == tuple(torch.add(a, a).shape[1:])
    # broadcasting: the analysis of an add over two shapes against torch's own
    from archviz.ops.merge import broadcast

    assert broadcast(shape, other) == tuple((a + b).shape[1:])


def test_add_of_different_ranks_is_refused() -> None:
    """Both inputs carry the batch in front, so (N, S, D) + (N, D) is not a per-example broadcast."""
    text = spec_text((4, 8), {"name": "flat", "op": "flatten"},
                     {"name": "sum", "op": "add", "from": ["input", "flat"]})
    with pytest.raises(archviz.ShapeError, match="add needs inputs of one shape"):
        archviz.analyze(archviz.loads(text))


CL = spec_text((8, 100), {"name": "bn", "op": "batchnorm"}, {"name": "a", "op": "relu"},
               {"name": "b", "op": "tanh", "from": "bn"}, {"name": "cat", "op": "concat", "from": ["a", "b"]},
               {"name": "fc", "op": "linear", "out": 10})
CDHW = spec_text((3, 4, 8, 8), {"name": "bn", "op": "batchnorm"}, {"name": "act", "op": "relu"},
                 {"name": "mix", "op": "linear", "out": 5, "last_dim": True},
                 {"name": "flat", "op": "flatten"}, {"name": "head", "op": "linear", "out": 7})


@pytest.mark.parametrize("text, cls, out", [(CL, nn.BatchNorm1d, (16, 10)), (CDHW, nn.BatchNorm3d, (7,))])
def test_channels_first_specs_compile_and_verify(text: str, cls: type, out: tuple[int, ...]) -> None:
    sp = archviz.loads(text)
    a = archviz.analyze(sp)
    assert a.layers[-1].output == out and a.layers[0].rf is None   # no receptive fields off (C, H, W)
    model = archviz.to_module(sp).eval()
    assert type(model.bn) is cls
    assert torch_side(model, torch.randn(3, *sp.input))[:2] == (out, a.totals.params)
    from archviz.runtime.compile import verify

    assert verify(sp).ok


def test_sequence_spec_runs_on_a_batch() -> None:
    """A (S, D) spec of linear, relu and add runs on a random (N, S, D) input."""
    text = spec_text((16, 32), {"name": "fc1", "op": "linear", "out": 64}, {"name": "act", "op": "relu"},
                     {"name": "fc2", "op": "linear", "out": 32},
                     {"name": "res", "op": "add", "from": ["input", "fc2"]})
    a = archviz.analyze(archviz.loads(text))
    assert [s.output for s in a.layers] == [(16, 64), (16, 64), (16, 32), (16, 32)]
    assert a.layers[0].macs == 16 * 32 * 64
    assert a.layers[0].formula == "32 → 64 on the last dim, for each of 16"
    y = archviz.to_module(archviz.loads(text))(torch.randn(5, 16, 32))
    assert tuple(y.shape) == (5, 16, 32)


IDS = spec_text((8,), {"name": "flat", "op": "flatten"})


def test_input_dtype_on_the_command_line_in_json() -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.yaml"
        path.write_text(IDS, encoding="utf-8")
        res = CliRunner().invoke(app, ["shapes", str(path), "--input", "16", "--input-dtype", "INT64",
                                       "--format", "json"])
        assert res.exit_code == 0, res.output
        d = json.loads(res.stdout)
        assert d["input"] == [16] and d["input_dtype"] == "int64"
        assert d["layers"][0]["output"] == [16] and d["layers"][0]["output_dtype"] == "int64"
        plain = json.loads(CliRunner().invoke(app, ["shapes", str(path), "--format", "json"]).stdout)
        assert "input_dtype" not in plain and "output_dtype" not in plain["layers"][0]   # floats: absent
        bad = CliRunner().invoke(app, ["shapes", str(path), "--input-dtype", "long"])
        assert bad.exit_code == 2


def test_token_ids_in_spec_verify_and_export() -> None:
    sp = archviz.loads(spec_text((8,), {"name": "flat", "op": "flatten"}, input_dtype="int64"))
    a = archviz.analyze(sp)
    assert (a.input_dtype, a.layers[0].dtype) == ("int64", "int64")
    from archviz.runtime.compile import verify
    from archviz.runtime.export import to_python
    from archviz.runtime.inputs import example_input

    assert verify(sp).ok
    assert "dtype=torch.int64" in to_python(sp)
    ids = example_input((8,), "int64", batch=4, random=True, vocab=50)
    assert ids.dtype == torch.int64 and tuple(ids.shape) == (4, 8)
    assert 0 <= int(ids.min()) <= int(ids.max()) < 50


def test_integer_input_into_a_float_op_is_located() -> None:
    text = spec_text((8,), {"name": "fc", "op": "linear", "out": 4}, input_dtype="int64")
    with pytest.raises(archviz.ShapeError, match="linear needs a floating-point input, got int64") as exc:
        archviz.analyze(archviz.loads(text))
    assert exc.value.loc is not None and exc.value.loc.line == 6


@pytest.mark.parametrize("text, what", [
    (spec_text((16, 64), {"name": "c", "op": "conv", "out": 4, "kernel": 3}),
     "conv needs a (C, H, W) input, got (16, 64)"),
    (spec_text((3, 8, 8, 8), {"name": "p", "op": "maxpool", "kernel": 2}), "maxpool needs a (C, H, W) input"),
    (spec_text((16, 64), {"name": "n", "op": "lrn", "size": 5}), "lrn needs a (C, H, W) input"),
    (spec_text((3, 8), {"name": "a", "op": "adaptive_avgpool", "out": 1}),
     "adaptive_avgpool needs a (C, H, W)"),
])
def test_bad_ranks_are_located(text: str, what: str) -> None:
    with pytest.raises(archviz.ShapeError, match=what.replace("(", r"\(").replace(")", r"\)")) as exc:
        archviz.analyze(archviz.loads(text))
    assert exc.value.loc is not None and exc.value.loc.line == 5


def test_rank_2_spec_draws_and_views() -> None:
    pytest.importorskip("graphviz")
    from archviz.render.dot import diagram
    from archviz.render.html import network_data

    sp = archviz.loads(CL)
    a = archviz.analyze(sp)
    source = diagram(a, False, "TB", False).source
    assert "8×100" in source and "16×10" in source
    data = network_data(a)
    assert data["input"] == "8×100" and data["layers"][-1]["output"] == "16×10"
    ids = archviz.loads(IDS.replace("layers:", "input_dtype: int64\nlayers:"))
    assert "8 int64" in diagram(archviz.analyze(ids), False, "TB", False).source


def test_block_figure_refuses_a_sequence_with_a_hint() -> None:
    from archviz.render.blocks import blocks_data

    sp = archviz.loads(spec_text((16, 64), {"name": "fc", "op": "linear", "out": 8}))
    with pytest.raises(archviz.ArchvizError, match=r"draws images \(C, H, W\) and vectors \(F,\); input is"):
        blocks_data(archviz.analyze(sp))


def test_older_formats_and_the_schema() -> None:
    """A spec of format 3 validates against the JSON Schema; format 2 specs read unchanged."""
    jsonschema = pytest.importorskip("jsonschema")
    from archviz.spec.schema import spec_schema

    doc = yaml.safe_load(spec_text((16,), {"name": "flat", "op": "flatten"}, input_dtype="int64"))
    jsonschema.validate(doc, spec_schema())
    assert archviz.loads(CL.replace("format: 3", "format: 2")).input == (8, 100)
