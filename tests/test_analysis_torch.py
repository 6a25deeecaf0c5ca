"""The analysis against PyTorch itself: for every hand-written reference model, each layer's
real output shape and parameter count, and the total MACs from torch.utils.flop_counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archviz
from tests.reference_models import REFERENCES


def torch_layers(model: torch.nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (output shape without batch, own parameter count), from forward hooks."""
    seen: dict[str, tuple[tuple[int, ...], int]] = {}
    hooks = []
    for name, mod in model.named_children():
        def hook(m, i, out, name=name):  # noqa: ANN001
            seen[name] = (tuple(out.shape[1:]), sum(p.numel() for p in m.parameters()))
        hooks.append(mod.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *shape))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("stem", sorted(REFERENCES))
def test_every_layer_matches_torch(stem: str) -> None:
    build, shape = REFERENCES[stem]
    analysis = archviz.analyze(archviz.load(stem))
    assert analysis.input == shape
    real = torch_layers(build(), shape)
    assert [s.name for s in analysis.layers] == list(real)
    for s in analysis.layers:
        assert (s.output, s.params) == real[s.name], s.name


@pytest.mark.parametrize("stem", sorted(REFERENCES))
def test_totals_and_flops_match_torch(stem: str) -> None:
    build, shape = REFERENCES[stem]
    model = build().eval()
    analysis = archviz.analyze(archviz.load(stem))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.buffers == sum(b.numel() for b in model.buffers())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    assert analysis.totals.flops == counter.get_total_flops()


def test_alexnet_sizes_along_the_way() -> None:
    sizes = [s.output[1] for s in archviz.analyze(archviz.load("alexnet")).layers
             if len(s.output) == 3 and s.op in ("conv", "maxpool")]
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]


def test_alexnet_totals_by_hand() -> None:
    t = archviz.analyze(archviz.load("alexnet")).totals
    convs = (96 * 3 * 11 * 11 + 96) + (256 * 48 * 5 * 5 + 256) + (384 * 256 * 3 * 3 + 384) \
        + (384 * 192 * 3 * 3 + 384) + (256 * 192 * 3 * 3 + 256)
    fcs = (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert t.params == convs + fcs == 60_965_224
    assert t.neurons == 96 * 55 * 55 + 256 * 27 * 27 + 2 * 384 * 13 * 13 + 256 * 13 * 13 + 4096 * 2 + 1000
