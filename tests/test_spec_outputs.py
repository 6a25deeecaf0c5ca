"""A spec's ``outputs:``: the network's outputs in order, where a layer another layer reads is one
too (BERT's last_hidden_state beside its pooler_output). Default: the layers nobody reads."""

from __future__ import annotations

import pytest
import torch

import archviz

SPEC = """name: t
input: [6, 8]
outputs: [{outputs}]
blocks:
  pair:
    layers:
      - {{name: fc, op: linear, out: 8}}
      - {{name: act, op: relu}}
layers:
  - {{name: enc, block: pair, repeat: 2}}
  - {{name: first, op: narrow, length: 1}}
  - {{name: pooler, op: linear, out: 4}}
"""


def test_outputs_are_returned_in_order_and_a_use_names_its_last_layer() -> None:
    sp = archviz.loads(SPEC.format(outputs="enc, pooler"), "t.yaml")
    assert sp.outputs == ("enc.1.act", "pooler")
    a = archviz.analyze(sp)
    assert a.outputs == ("enc.1.act", "pooler") and not a.warnings
    model = archviz.to_module(sp).eval()
    x = torch.randn(2, 6, 8)
    hidden, pooled = model(x)
    assert hidden.shape == (2, 6, 8) and pooled.shape == (2, 1, 4)
    with torch.no_grad():   # the same layers, run by hand: the first output is what the narrow reads
        h = x
        for i in range(2):
            h = model.get_submodule(f"enc.{i}.fc")(h).relu()
        assert torch.equal(hidden, h)
        assert torch.equal(pooled, model.get_submodule("pooler")(h[:, :1]))


def test_without_outputs_the_unread_layers_are_and_warn() -> None:
    text = SPEC.replace("outputs: [{outputs}]\n", "").replace("{{", "{").replace("}}", "}")
    text += "  - {name: extra, op: relu, from: enc}\n"
    a = archviz.analyze(archviz.loads(text, "t.yaml"))
    assert a.outputs == ("pooler", "extra")
    assert [w for _, w in a.warnings] == ["output never read by another layer"]


@pytest.mark.parametrize(("outputs", "message"), [
    ("enc, nope", "outputs: no layer named 'nope'"),
    ("pooler, pooler", "outputs: a layer is named twice"),
    ("input", "'input' is reserved"),
])
def test_a_bad_output_is_a_located_error(outputs: str, message: str) -> None:
    with pytest.raises(archviz.ArchvizError, match=message) as info:
        archviz.analyze(archviz.loads(SPEC.format(outputs=outputs), "t.yaml"))
    assert str(info.value).startswith("t.yaml:3:")        # the outputs: line
