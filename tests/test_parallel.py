"""Model-parallel towers (archviz.runtime.parallel) against the single-device module and the
analysis' split view: same output with the same weights, and exactly the analysis' traffic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archviz
from archviz.core.analysis import analyze
from archviz.runtime import parallel

CPUS = ["cpu", "cpu"]

# A two-GPU net without LRN: the towers are then the single-device module exactly, traffic and all.
SPLIT_NET = """
name: split net
input: [3, 16, 16]
gpus: 2
layers:
  - {name: conv1, op: conv, out: 8, kernel: 3, padding: 1}
  - {name: bn1, op: batchnorm}
  - {name: relu1, op: relu}
  - {name: conv2, op: conv, out: 12, kernel: 3, groups: 2}
  - {name: pool2, op: maxpool, kernel: 2, stride: 2}
  - {name: conv3, op: conv, out: 6, kernel: 3, padding: 1}
  - {name: res, op: add, from: [conv3, conv3]}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out: 10}
  - {name: prob, op: softmax}
"""


@pytest.fixture(scope="module")
def alexnet_pair() -> tuple[nn.Module, parallel.Towers]:
    return _pair("alexnet")


def _pair(spec: object, halo: bool = False) -> tuple[nn.Module, parallel.Towers]:
    torch.manual_seed(0)
    single = archviz.to_module(spec).eval()
    towers = archviz.to_module(spec, devices=CPUS, halo=halo).eval()
    assert isinstance(towers, parallel.Towers)
    parallel.split_weights(towers, single)
    return single, towers


def _perturb_bn(model: nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so that slicing them wrongly would show."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 2)


def test_split_net_equals_single_device_and_moves_exactly_the_analysis_traffic() -> None:
    spec = archviz.loads(SPLIT_NET)
    torch.manual_seed(0)
    single = archviz.to_module(spec).eval()
    _perturb_bn(single)
    towers = archviz.to_module(spec, devices=CPUS).eval()
    parallel.split_weights(towers, single)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad(), parallel.count_transfers() as seen:
        shards = towers.shards(x)
    split = analyze(spec).split
    assert split is not None
    assert dict(seen) == split.cross_elements
    # by hand: conv3 reads pool2 (12·7·7 = 588), fc reads flatten (6·7·7 = 294), softmax reads fc (10)
    assert split.cross_elements == {"conv3": 588, "fc": 294, "prob": 10}
    with torch.no_grad():
        want = single(x)
        got = towers(x)
    assert torch.allclose(torch.cat(shards[0], dim=1), want, atol=1e-6)
    assert (got - want).abs().max().item() <= 1e-5


def test_alexnet_towers_hold_the_papers_shares(alexnet_pair: tuple[nn.Module, parallel.Towers]) -> None:
    towers = alexnet_pair[1]
    for g in (0, 1):
        t = towers.towers[g]
        assert t.conv1.weight.shape == (48, 3, 11, 11)     # conv1: 48 kernels per GPU, all 3 colours
        assert t.conv2.weight.shape == (128, 48, 5, 5)     # conv2: its own GPU's 48 maps
        assert t.conv3.weight.shape == (192, 256, 3, 3)    # conv3: both GPUs' 256 maps
        assert t.conv4.weight.shape == (192, 192, 3, 3)
        assert t.conv5.weight.shape == (128, 192, 3, 3)
        assert t.fc6.weight.shape == (2048, 9216)          # fc6: 2048 rows per GPU
        assert t.fc8.weight.shape == (500, 4096)
    a = analyze(archviz.load("alexnet"))
    assert a.split is not None
    for lane, tower in zip(a.split.lanes, towers.towers, strict=True):
        assert sum(p.numel() for p in tower.parameters()) == lane.params


def test_alexnet_paper_towers_move_exactly_the_analysis_bytes(
        alexnet_pair: tuple[nn.Module, parallel.Towers]) -> None:
    """The paper's split (LRN on each GPU's own maps): only conv3, fc6, fc7, fc8 cross."""
    towers = alexnet_pair[1]
    x = 30 * torch.randn(2, 3, 227, 227)
    with torch.no_grad(), parallel.count_transfers() as seen:
        towers.shards(x)
    split = analyze(archviz.load("alexnet")).split
    assert split is not None
    assert dict(seen) == split.cross_elements
    # conv3 reads 256·13·13, fc6 9216, fc7 and fc8 4096 each: 60,672 elements, ×4 bytes in fp32
    by_hand = 4 * (256 * 13 * 13 + 9216 + 4096 + 4096)
    assert sum(seen.values()) * 4 == split.cross_bytes() == by_hand == 242_688


def test_alexnet_halo_towers_equal_the_single_device_module() -> None:
    """With LRN's boundary channels exchanged the towers compute the single-device module; the
    extra traffic is LRN's window: size 5 wants 2 channels from each side of the boundary."""
    single, towers = _pair("alexnet", halo=True)
    x = 30 * torch.randn(2, 3, 227, 227)
    with torch.no_grad(), parallel.count_transfers() as seen:
        got = towers(x)
        want = single(x)
    assert (got - want).abs().max().item() <= 1e-5 * want.abs().max().item()
    assert seen["norm1 (halo)"] == 2 * 2 * 55 * 55 and seen["norm2 (halo)"] == 2 * 2 * 27 * 27
    assert seen["output"] == 500   # fc8's second half, gathered on the first device
    rest = {k: v for k, v in seen.items() if "halo" not in k and k != "output"}
    split = analyze(archviz.load("alexnet")).split
    assert split is not None and rest == split.cross_elements


def test_paper_towers_differ_from_the_single_device_module_only_through_lrn(
        alexnet_pair: tuple[nn.Module, parallel.Towers]) -> None:
    """Without the halo the LRN next to the boundary sees only its own GPU: norm1's channels
    46, 47, 48, 49 differ from the single-device module's, every other channel is equal."""
    single, towers = alexnet_pair
    x = 30 * torch.randn(1, 3, 227, 227)
    outs: dict[str, torch.Tensor] = {}
    shards: list[torch.Tensor] = []
    hooks = [single.norm1.register_forward_hook(lambda m, i, o: outs.__setitem__("single", o))]
    hooks += [towers.towers[g].norm1.register_forward_hook(lambda m, i, o: shards.append(o)) for g in (0, 1)]
    with torch.no_grad():
        towers(x)
        single(x)
    for h in hooks:
        h.remove()
    both = torch.cat(shards, dim=1)
    diff = (both - outs["single"]).abs().amax(dim=(0, 2, 3))
    assert set(torch.nonzero(diff > 1e-6).flatten().tolist()) <= {46, 47, 48, 49}
    assert diff[[46, 47, 48, 49]].max() > 1e-3


def test_weights_round_trip(alexnet_pair: tuple[nn.Module, parallel.Towers]) -> None:
    single, towers = alexnet_pair
    back = parallel.gather_weights(towers)
    state = single.state_dict()
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], v) for k, v in state.items())


def test_training_step_gradients_match() -> None:
    spec = archviz.loads(SPLIT_NET)
    single, towers = _pair(spec)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    for m in (single, towers):
        m.train()
        torch.nn.functional.nll_loss(torch.log(m(x)), y).backward()
    grads = {k: p.grad for k, p in single.named_parameters()}
    for g, tower in enumerate(towers.towers):
        (a, b) = next(p for p in towers.parts if p.name == "fc").rows[g]
        assert torch.allclose(tower.fc.weight.grad, grads["fc.weight"][a:b], atol=1e-6)


def test_wrong_device_count_is_a_clear_error() -> None:
    with pytest.raises(archviz.ArchvizError, match=r"names 3 device\(s\).*split over 2 GPU"):
        archviz.to_module("alexnet", devices=["cpu"] * 3)
    with pytest.raises(archviz.ArchvizError, match=r"split over 1 GPU"):
        archviz.to_module("lenet5", devices=CPUS)


def test_concat_is_refused_clearly() -> None:
    spec = archviz.loads(SPLIT_NET.replace("{name: res, op: add", "{name: res, op: concat"))
    with pytest.raises(parallel.SplitError, match="res: concat"):
        parallel.to_towers(spec, CPUS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_towers() -> None:
    """Two GPUs where there are two; both towers on cuda:0 where there is one."""
    devs = ["cuda:0", "cuda:1"] if torch.cuda.device_count() > 1 else ["cuda:0", "cuda:0"]
    torch.manual_seed(0)
    single = archviz.to_module("alexnet").eval()
    towers = archviz.to_module("alexnet", devices=devs, halo=True).eval()
    parallel.split_weights(towers, single)
    assert towers.towers[1].conv1.weight.device == torch.device(devs[1])
    x = 30 * torch.randn(4, 3, 227, 227)
    with torch.no_grad():
        want = single(x)
        got = towers(x.to(devs[0])).cpu()
    assert (got - want).abs().max().item() <= 1e-3 * want.abs().max().item()  # TF32/cuDNN rounding
