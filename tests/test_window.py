"""roll and pad (Swin's shifted windows): shapes, against torch.roll / F.pad, zero parameters and
MACs, autograd's saved tensors (nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402,N812

import archviz  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saved_oracle import measure  # noqa: E402

SPEC = """name: w
input: [7, 7, 8]
layers:
  - {name: shift, op: roll, shifts: [-3, -3], dims: [0, 1]}
  - {name: pad, op: pad, pad: [0, 0, 0, 1, 0, 1], value: 0.5}
"""


def test_shapes_params_macs() -> None:
    a = archviz.analyze(archviz.loads(SPEC))
    assert [s.output for s in a.layers] == [(7, 7, 8), (8, 8, 8)]
    assert a.totals.params == 0 and a.totals.macs == 0


def test_equals_torch() -> None:
    model = archviz.to_module(archviz.loads(SPEC)).eval()
    x = torch.randn(2, 7, 7, 8)
    want = F.pad(torch.roll(x, (-3, -3), (1, 2)), (0, 0, 0, 1, 0, 1), value=0.5)
    assert torch.equal(model(x), want)


def test_saves_nothing_for_backward() -> None:
    m = measure(archviz.loads(SPEC), 3)
    assert m.per_layer == {"shift": 0, "pad": 0}


@pytest.mark.parametrize("bad", ["{name: r, op: roll, shifts: [1], dims: [0, 1]}",
                                 "{name: p, op: pad, pad: [1, 2, 3]}",
                                 "{name: p, op: pad, pad: [0, 0, 0, 0, 0, 0, 1, 1]}"])
def test_refused(bad: str) -> None:
    with pytest.raises(archviz.ArchvizError):
        archviz.analyze(archviz.loads(f"name: w\ninput: [7, 7, 8]\nlayers:\n  - {bad}\n"))



def test_imported_roll_by_equal_shifts_writes_a_list() -> None:
    """Swin's cyclic shift by (-3, -3): the written spec keeps the shifts a list (a pair field
    such as a kernel would shorten (3, 3) to 3; roll's shifts are no pair)."""
    from archviz.runtime.importer import from_module, round_trip

    class Shift(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.roll(x, shifts=(-3, -3), dims=(1, 2)).reshape(x.shape[0], 7, 7, 2, 4)

    imported = from_module(Shift(), (7, 7, 8))
    assert "shifts: [-3, -3], dims: [0, 1]" in imported.text and "shape: [7, 7, 2, 4]" in imported.text
    assert round_trip(Shift(), imported).max_abs_diff == 0
