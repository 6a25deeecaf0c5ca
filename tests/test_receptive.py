"""Receptive fields: the analysis against a brute-force measurement in torch, and by hand.

The oracle: compile the spec, make every weight a positive constant (biases zero, max pooling
replaced by average pooling over the same windows, so that every input of a window gets a
gradient), feed a positive input, and take the gradient of one central output unit with respect
to the input. The rows and columns where that gradient is non-zero are the unit's field, clipped
by the image border; its extent must equal ``rf`` centred at ``rf_start + i·rf_jump``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.spec import load, loads

torch = pytest.importorskip("torch")
nn = torch.nn

TOY = """
name: toy dilated and padded
input: [2, 61, 53]
layers:
  - {name: c1, op: conv, out: 4, kernel: [4, 3], stride: [1, 2], padding: [3, 1], dilation: [2, 1]}
  - {name: r1, op: relu}
  - {name: p1, op: avgpool, kernel: 3, stride: 2, padding: 1}
  - {name: c2, op: conv, out: 4, kernel: 3, padding: same, dilation: 3}
  - {name: b1, op: conv, out: 4, kernel: 5, padding: 2, from: p1}
  - {name: b2, op: conv, out: 4, kernel: [1, 5], stride: 1, padding: [0, 2], from: c2}
  - {name: sum, op: add, from: [b1, b2]}
  - {name: cat, op: concat, from: [sum, c2]}
  - {name: pool, op: maxpool, kernel: 2, stride: 2, ceil_mode: true}
  - {name: ad, op: adaptive_avgpool, out: [7, 3]}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 3}
"""


def _positive_constant(model: nn.Module) -> None:
    """Constant positive weights, zero biases, max pooling → average pooling (same windows).

    BatchNorm's weight is a vector (fan-in 1); eval mode uses its running statistics (1 and 0)."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.MaxPool2d):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2],
                    nn.AvgPool2d(mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode))
    with torch.no_grad():  # weight 1/(2·fan-in): activations stay below 1, tanh does not saturate
        for pname, param in model.named_parameters():
            fan_in = param[0].numel() if param.dim() > 1 else 1
            param.fill_(0.0 if pname.endswith("bias") else 0.5 / fan_in)


def _slim(spec):
    """The same geometry with few channels (a field does not depend on them): a fast oracle."""
    def thin(layer):
        if layer.op == "conv":
            return replace(layer, params=replace(layer.params, out=2 * layer.params.groups))
        if layer.op == "linear":
            return replace(layer, params=replace(layer.params, out=4))
        return layer
    c = spec.input[0] if len(spec.input) == 1 else 2
    return replace(spec, input=(c, *spec.input[1:]), layers=tuple(thin(la) for la in spec.layers))


def _grids(a) -> dict[str, tuple[int, int]]:
    """For flatten and the elementwise layers after it: the (H, W) grid its elements came from."""
    grids: dict[str, tuple[int, int]] = {}
    for s in a.layers:
        if len(s.output) == 1 and s.rf_jump is not None:
            shape = s.in_shapes[0]
            grids[s.name] = shape[1:] if len(shape) == 3 else grids[s.inputs[0]]
    return grids


Extent = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def _measured(spec, input_shape, grids) -> dict[str, Extent]:
    """Per layer: the central unit's index (i, j) and the non-zero extent [lo, hi] of rows and columns."""
    from archviz.runtime.compile import to_module

    model = to_module(spec, input_shape=input_shape).eval().requires_grad_(False)
    _positive_constant(model)
    seen: dict[str, torch.Tensor] = {}
    names = [la.name for la in spec.layers]
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o))
    shape = input_shape or spec.input
    x = torch.ones((1, *shape), requires_grad=True)
    model(x)
    out = {}
    for name in names:
        y = seen[name]
        if y.dim() == 4:
            i, j = y.shape[2] // 2, y.shape[3] // 2
            unit = y[0, 0, i, j]
        elif name in grids:  # flattened (C, H, W): channel 0 at the central position
            h, w = grids[name]
            i, j = h // 2, w // 2
            unit = y[0, i * w + j]
        else:
            i = j = 0
            unit = y[0, y.shape[1] // 2]
        (g,) = torch.autograd.grad(unit, x, retain_graph=True)
        nz = g[0].abs().sum(0).nonzero()  # (H, W) positions read by that unit
        rows, cols = nz[:, 0], nz[:, 1]
        out[name] = ((i, j), (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())))
    return out


def _expected_extent(rf: float, jump: float, start: float, i: int, n: int) -> tuple[float, float]:
    """The field of unit i, clipped to the image [0, n − 1]."""
    centre = start + i * jump
    return max(0.0, centre - (rf - 1) / 2), min(n - 1.0, centre + (rf - 1) / 2)


def _compare(spec, input_shape=None, exact_start: bool = True) -> int:
    a = analyze(spec, input_shape)
    n_h, n_w = a.input[1], a.input[2]
    slim = _slim(spec)
    slim_input = None if input_shape is None else (slim.input[0], *input_shape[1:])
    assert [(s.rf, s.rf_jump, s.rf_start) for s in analyze(slim, slim_input).layers] == \
        [(s.rf, s.rf_jump, s.rf_start) for s in a.layers]
    measured = _measured(slim, slim_input, _grids(a))
    unclipped = 0
    for s in a.layers:
        (i, j), rows, cols = measured[s.name]
        if s.rf_jump is None:  # vector layer: the whole input, by convention
            assert s.rf == (n_h, n_w), s.name
            if exact_start:  # else the last rows and columns may be never read (see below)
                assert rows == (0, n_h - 1) and cols == (0, n_w - 1), s.name
            continue
        for axis, (idx, got, n) in enumerate(((i, rows, n_h), (j, cols, n_w))):
            want = _expected_extent(s.rf[axis], s.rf_jump[axis], s.rf_start[axis], idx, n)
            if exact_start:
                assert got == want, f"{s.name} axis {'HW'[axis]}: torch {got}, analysis {want}"
            if want[1] - want[0] + 1 == s.rf[axis]:
                unclipped += 1
                assert got[1] - got[0] + 1 == s.rf[axis], s.name
    return unclipped


@pytest.mark.parametrize("name", ["alexnet", "lenet5", "alexnet-torchvision"])
def test_bundled_fields_match_torch_gradients(name: str) -> None:
    spec = load(name)
    unclipped = _compare(spec)
    assert unclipped >= 8  # the comparison was not only of border-clipped fields


def test_alexnet_torchvision_uneven_adaptive_pool_size() -> None:
    # 300 input: pool5 is 8×8 and the adaptive pool maps 8 → 6 with windows [0,2) [1,3) [2,4)
    # [4,6) [5,7) [6,8): size 2 everywhere, spacing not even, so only the size is exact
    spec = load("alexnet-torchvision")
    a = analyze(spec, (3, 300, 300))
    assert a.layer("avgpool").rf == (195 + 32, 195 + 32)  # one more pool5 unit, 32 pixels apart
    assert a.layer("avgpool").rf_jump == (32 * 6 / 5, 32 * 6 / 5)  # mean spacing 6/5 of a unit
    _compare(spec, (3, 300, 300), exact_start=False)
    # pool1 drops conv1's last row ((74 − 3)/2 + 1 = 36.5): conv1 row 72 reads padded rows up to
    # 72·4 + 10 = 298, image row 296, so fc6 really sees rows 0..296 of 0..299
    (_, rows, cols) = _measured(_slim(spec), (2, 300, 300), {})["fc6"]
    assert rows == cols == (0, 296)


def test_toy_dilated_padded_branched_spec_matches_torch() -> None:
    spec = loads(TOY, "toy.yaml")
    assert _compare(spec) >= 6


def test_alexnet_by_hand() -> None:
    a = analyze(load("alexnet"))
    # r_out = r_in + (k − 1)·j_in, j_out = j_in·s, written out layer by layer
    r = {"conv1": 1 + 10 * 1, "pool1": 11 + 2 * 4, "conv2": 19 + 4 * 8, "pool2": 51 + 2 * 8,
         "conv3": 67 + 2 * 16, "conv4": 99 + 2 * 16, "conv5": 131 + 2 * 16, "pool5": 163 + 2 * 16}
    j = {"conv1": 4, "pool1": 8, "conv2": 8, "pool2": 16, "conv3": 16, "conv4": 16, "conv5": 16,
         "pool5": 32}
    # start_out = start_in + ((k − 1)/2 − p)·j_in
    start = {"conv1": 5, "pool1": 5 + 1 * 4, "conv2": 9 + (2 - 2) * 8, "pool2": 9 + 1 * 8,
             "conv3": 17, "conv4": 17, "conv5": 17, "pool5": 17 + 1 * 16}
    for name in r:
        s = a.layer(name)
        assert (s.rf, s.rf_jump, s.rf_start) == ((r[name],) * 2, (j[name],) * 2, (start[name],) * 2)
    assert a.layer("relu1").rf == a.layer("norm1").rf == (11, 11)
    assert a.layer("fc6").rf == (227, 227) and a.layer("fc6").rf_jump is None
    assert a.layer("fc6").rf_start == (113, 113)


def test_even_kernel_and_padding_give_half_and_negative_starts() -> None:
    spec = loads("name: t\ninput: [1, 16, 16]\nlayers:\n"
                 "  - {name: a, op: conv, out: 1, kernel: 2, padding: 0}\n"
                 "  - {name: b, op: conv, out: 1, kernel: 3, stride: 2, padding: 3}\n")
    a = analyze(spec)
    assert a.layer("a").rf_start == (0.5, 0.5)
    assert a.layer("b").rf_start == (0.5 + (1 - 3) * 1, 0.5 + (1 - 3) * 1)  # -1.5: in the padding
    assert a.layer("b").rf == (4, 4) and a.layer("b").rf_jump == (2, 2)


def test_vector_input_has_no_field() -> None:
    spec = loads("name: mlp\ninput: [10]\nlayers:\n  - {name: fc, op: linear, out: 3}\n")
    s = analyze(spec).layer("fc")
    assert s.rf is None and s.rf_jump is None and s.rf_start is None


def test_shapes_outputs_show_the_field() -> None:
    runner = CliRunner()
    data = json.loads(runner.invoke(app, ["shapes", "alexnet", "-f", "json"]).stdout)
    pool5 = next(la for la in data["layers"] if la["name"] == "pool5")
    assert (pool5["rf"], pool5["rf_jump"], pool5["rf_start"]) == ([195, 195], [32, 32], [33, 33])
    fc8 = data["layers"][-1]
    assert fc8["rf"] == [227, 227] and fc8["rf_jump"] is None
    csv_text = runner.invoke(app, ["shapes", "lenet5", "-f", "csv"]).stdout
    assert csv_text.splitlines()[0].endswith("rf,rf_jump,rf_start,accepted")
    assert csv_text.splitlines()[1].endswith("5×5,1×1,2×2,")
    table = runner.invoke(app, ["shapes", "alexnet"], env={"COLUMNS": "200"}).stdout
    assert " RF" in table and "195" in table
