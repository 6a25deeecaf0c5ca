"""Graph specs (from:, add, concat), the GPU split, claims parsing."""

from __future__ import annotations

import pytest

import archviz
from archviz.spec.claims import parse_number

BRANCHY = """
name: branchy
input: [8, 16, 16]
layers:
  - {name: a, op: conv, out: 8, kernel: 3, padding: 1}
  - {name: b, op: conv, out: 8, kernel: 1, from: input}
  - {name: s, op: add, from: [a, b]}
  - {name: c1, op: conv, out: 4, kernel: 1, from: s}
  - {name: c2, op: conv, out: 6, kernel: 3, padding: 1, from: s}
  - {name: cat, op: concat, from: [c1, c2]}
"""


def test_branches_and_merges() -> None:
    a = archviz.analyze(archviz.loads(BRANCHY))
    assert a.layer("s").output == (8, 16, 16)
    assert a.layer("cat").output == (4 + 6, 16, 16)
    assert a.layer("b").inputs == ("input",)
    assert a.outputs == ("cat",) and a.warnings == ()


def test_forward_reference_is_ordered_topologically() -> None:
    spec = archviz.loads("""
name: fwd
input: [4]
layers:
  - {name: head, op: linear, out: 2, from: body}
  - {name: body, op: linear, out: 3, from: input}
""")
    g = archviz.build(spec)
    assert [la.name for la in g.order] == ["body", "head"]
    assert archviz.analyze(g).layer("head").params == 3 * 2 + 2


def test_unused_layer_is_a_warning() -> None:
    a = archviz.analyze(archviz.loads("""
name: dangling
input: [4]
layers:
  - {name: x, op: linear, out: 3}
  - {name: y, op: linear, out: 2, from: input}
"""))
    assert a.warnings == (("x", "output never read by another layer"),)


def test_gpu_split_of_the_paper() -> None:
    a = archviz.analyze(archviz.load("alexnet"))
    assert a.split is not None and a.split.gpus == 2
    assert a.split.crossing == ("conv3", "fc6", "fc7", "fc8")
    assert a.split.cross_elements == {"conv3": 256 * 13 * 13, "fc6": 9216, "fc7": 4096, "fc8": 4096}
    assert a.split.cross_bytes(128) == (43264 + 9216 + 4096 + 4096) * 4 * 128
    assert sum(lane.params for lane in a.split.lanes) == a.totals.params
    assert a.split.lanes[0].macs == a.totals.macs // 2


def test_split_can_be_asked_for_a_spec_without_gpus() -> None:
    a = archviz.analyze(archviz.load("alexnet-1gpu"), gpus=2)
    # without groups, conv2/4/5 read both GPUs too
    assert a.split is not None
    assert a.split.crossing == ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


@pytest.mark.parametrize("text,value,tol", [
    ("60M ±5%", 60e6, 0.05), ("650K", 650e3, 0.0), ("253,440", 253440, 0.0),
    ("1.43G +-1%", 1.43e9, 0.01), (61100840, 61100840, 0.0),
])
def test_claim_numbers(text, value, tol) -> None:
    assert parse_number(text) == pytest.approx((value, tol))


def test_same_and_valid_padding() -> None:
    a = archviz.analyze(archviz.loads("""
name: pads
input: [3, 10, 12]
layers:
  - {name: s, op: conv, out: 4, kernel: [3, 4], padding: same}
  - {name: v, op: conv, out: 4, kernel: 3, padding: valid}
"""))
    assert a.layer("s").output == (4, 10, 12)
    assert a.layer("v").output == (4, 8, 10)
    assert "H:" in a.layer("v").formula  # H and W differ, so both are written out


def test_from_suggestions_leave_out_the_layer_itself() -> None:
    with pytest.raises(archviz.SpecError) as err:
        archviz.build(archviz.loads("name: s\ninput: [4]\nlayers:\n  - {name: a, op: relu, from: nope}\n"))
    assert "valid: input" in err.value.format() and "a, input" not in err.value.format()


def test_uneven_gpu_shares_add_up_to_the_totals() -> None:
    # 5 output features over 2 GPUs: 3 + 2 of them; fc has 4·5 + 5 = 25 parameters: 15 + 10
    text = "name: s\ninput: [4]\ngpus: 2\nlayers:\n  - {name: fc, op: linear, out: 5}\n"
    a = archviz.analyze(archviz.loads(text))
    assert a.split is not None
    assert [lane.params for lane in a.split.lanes] == [15, 10]
    assert sum(lane.macs for lane in a.split.lanes) == a.totals.macs == 20
