"""The Graphviz diagrams: style registry, golden DOT source, folding, branches, and the
structure of the AlexNet two-GPU split view (checked against hand arithmetic)."""

from __future__ import annotations

import re

import pytest
from conftest import bundled_specs

import archviz
from archviz.ops import OPS
from archviz.render import dot

EDGE = re.compile(r'^\s*"?([\w.]+)"?\s*->\s*"?([\w.]+)"?\s*(\[.*\])?\s*$')
NODE = re.compile(r'^\s*"?([\w.]+)"?\s*\[label=')

RESIDUAL = """
name: tiny residual
input: [8, 16, 16]
layers:
  - {name: stem, op: conv, out: 16, kernel: 3, padding: 1}
  - {name: a, op: conv, out: 16, kernel: 3, padding: 1}
  - {name: relu_a, op: relu}
  - {name: b, op: conv, out: 16, kernel: 3, padding: 1}
  - {name: sum, op: add, from: [b, stem]}
  - {name: relu_sum, op: relu, from: sum}
  - {name: cat, op: concat, from: [relu_sum, sum]}
  - {name: relu_out, op: relu}
"""


def edges(source: str) -> list[tuple[str, str, str]]:
    """(tail, head, attributes) of every edge line of a DOT source."""
    out = []
    for line in source.splitlines():
        m = EDGE.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3) or ""))
    return out


def cluster_nodes(source: str, name: str) -> list[str]:
    """Node ids declared inside ``subgraph <name> { ... }`` (clusters do not nest here)."""
    body = source.split(f"subgraph {name} {{", 1)[1].split("\n\t}", 1)[0]
    return [m.group(1) for m in map(NODE.match, body.splitlines()) if m]


def analysis(name: str, gpus: int | None = None) -> archviz.Analysis:
    return archviz.analyze(archviz.load(name), gpus=gpus)


# ---------------------------------------------------------------------------- style registry


def test_every_op_has_a_style() -> None:
    for op, kind in OPS.items():
        style = dot.style_of(op)
        assert style is dot.STYLE[kind.family], op
        assert re.fullmatch(r"#[0-9a-f]{6}", style.fill) and style.title


def test_families_have_distinct_colours() -> None:
    fills = [s.fill for s in dot.STYLE.values()]
    assert len(set(fills)) == len(fills)


# ---------------------------------------------------------------------------- golden DOT


@pytest.mark.parametrize("name", bundled_specs())
def test_golden_dot(name: str, golden) -> None:
    a = analysis(name)
    golden.check(f"dot/{name}.dot", dot.layer_graph(a).source)


def test_golden_dot_alexnet_views(golden) -> None:
    golden.check("dot/alexnet-fold.dot", dot.layer_graph(analysis("alexnet"), fold=True).source)
    golden.check("dot/alexnet-split.dot", dot.split_graph(analysis("alexnet", 2)).source)
    golden.check("dot/alexnet-split-fold.dot", dot.split_graph(analysis("alexnet", 2), fold=True).source)


def test_dot_source_is_deterministic() -> None:
    first = dot.split_graph(analysis("alexnet", 2), fold=True).source
    assert dot.split_graph(analysis("alexnet", 2), fold=True).source == first


# ---------------------------------------------------------------------------- the layer graph


def test_nodes_show_name_op_settings_and_shape() -> None:
    src = dot.layer_graph(analysis("alexnet")).source
    conv1 = next(line for line in src.splitlines() if line.lstrip().startswith("conv1 "))
    assert "<b>conv1</b>" in conv1 and "conv 11×11 /4, 96" in conv1 and "96×55×55" in conv1
    assert dot.STYLE["conv"].fill in conv1
    fc8 = next(line for line in src.splitlines() if line.lstrip().startswith("fc8 "))
    assert "linear 1000" in fc8 and dot.STYLE["linear"].fill in fc8
    # a chain: input → conv1 → relu1 → ... → fc8, one edge per layer
    assert len(edges(src)) == len(archviz.load("alexnet").layers)
    assert "convolution" in src and "fully connected" in src  # the legend


def test_fold_alexnet() -> None:
    rep = dot.fold_map(analysis("alexnet"))
    assert rep["relu1"] == rep["norm1"] == "conv1"
    assert rep["relu2"] == rep["norm2"] == "conv2"
    assert rep["relu6"] == rep["drop6"] == "fc6"
    assert rep["pool1"] == "pool1" and rep["flatten"] == "flatten"
    src = dot.layer_graph(analysis("alexnet"), fold=True).source
    heads = {h for _, h, _ in edges(src)}
    assert heads == {"conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten",
                     "fc6", "fc7", "fc8"}
    assert "+ relu · lrn n=5, k=2" in src


def test_branches_and_merges() -> None:
    a = archviz.analyze(archviz.loads(RESIDUAL))
    src = dot.layer_graph(a).source
    assert {(t, h) for t, h, _ in edges(src)} == {
        ("input", "stem"), ("stem", "a"), ("a", "relu_a"), ("relu_a", "b"), ("b", "sum"), ("stem", "sum"),
        ("sum", "relu_sum"), ("relu_sum", "cat"), ("sum", "cat"), ("cat", "relu_out")}
    for merge in ("sum", "cat"):
        line = next(x for x in src.splitlines() if x.lstrip().startswith(f"{merge} "))
        assert "shape=ellipse" in line
    assert "32×16×16" in src  # concat of 16 + 16 channels


def test_fold_keeps_branch_points() -> None:
    rep = dot.fold_map(archviz.analyze(archviz.loads(RESIDUAL)))
    assert rep["relu_a"] == "a"          # a has one reader: folded
    assert rep["relu_sum"] == "relu_sum"  # sum has two readers: folding would hide the branch
    assert rep["relu_out"] == "cat"
    src = dot.layer_graph(archviz.analyze(archviz.loads(RESIDUAL)), fold=True).source
    assert ("sum", "relu_sum") in {(t, h) for t, h, _ in edges(src)}


def test_rankdir_is_checked() -> None:
    assert "rankdir=LR" in dot.layer_graph(analysis("lenet5"), "LR").source
    with pytest.raises(archviz.ArchvizError, match="rankdir"):
        dot.layer_graph(analysis("lenet5"), "XY")


# ---------------------------------------------------------------------------- the split view


@pytest.fixture(scope="module")
def split_src() -> str:
    return dot.split_graph(analysis("alexnet", 2)).source


def test_split_two_lanes_each_layer_once(split_src: str) -> None:
    names = [la.name for la in archviz.load("alexnet").layers]
    assert split_src.count("subgraph cluster_gpu") == 2
    for g in (0, 1):
        assert cluster_nodes(split_src, f"cluster_gpu{g}") == [f"gpu{g}.{n}" for n in names]


def test_split_lane_shares_and_headers(split_src: str) -> None:
    lines = {m.group(1): line for line in split_src.splitlines() if (m := NODE.match(line))}
    for g in (0, 1):
        assert "48×55×55" in lines[f"gpu{g}.conv1"]      # 48 of conv1's 96 kernels per GPU
        assert "128×27×27" in lines[f"gpu{g}.conv2"]
        assert "192×13×13" in lines[f"gpu{g}.conv3"]
        assert "2048" in lines[f"gpu{g}.fc6"] and "500" in lines[f"gpu{g}.fc8"]
    # every AlexNet layer has an even channel count, so each GPU holds exactly half:
    # 60,965,224 / 2 = 30,482,612 params and 724,406,816 / 2 = 362,203,408 MACs per image
    assert split_src.count("30,482,612 params") == 2
    assert split_src.count("362,203,408 MACs") == 2


def test_split_crossing_edges(split_src: str) -> None:
    es = edges(split_src)
    lane = {f"gpu{g}": g for g in (0, 1)}

    def where(node: str) -> tuple[int | None, str]:
        head, _, layer = node.partition(".")
        return lane.get(head), layer

    crossing: dict[str, int] = {}
    for tail, head, attrs in es:
        (gt, _), (gh, layer) = where(tail), where(head)
        if tail == "input":
            assert layer == "conv1"
            continue
        if gt != gh:
            assert dot.CROSS_COLOUR in attrs
            label = re.search(r'label="([\d,]+)"', attrs)
            assert label, attrs
            sent = int(label.group(1).replace(",", ""))
            crossing[layer] = crossing.get(layer, 0) + sent
    assert set(crossing) == {"conv3", "fc6", "fc7", "fc8"}
    # by hand: conv3 reads pool2, 256·13·13 = 43,264 elements, half from each GPU, i.e. 21,632
    # cross each way; fc6 reads flatten (9216), fc7 and fc8 read 4096 each
    assert crossing == {"conv3": 256 * 13 * 13, "fc6": 9216, "fc7": 4096, "fc8": 4096}
    assert sum(crossing.values()) == 60_672
    # input feeds conv1 in both lanes; every other layer has 1 edge per lane, crossing layers 4
    assert sum(1 for t, _, _ in es if t == "input") == 2
    assert len(es) == 2 + 2 * (len(archviz.load("alexnet").layers) - 1) + 2 * 4


def test_split_footer_traffic(split_src: str) -> None:
    # 60,672 elements × 4 bytes = 242,688 bytes per image; × 128 = 31,064,064 bytes per batch
    assert 60_672 * 4 == 242_688 and 242_688 * 128 == 31_064_064
    assert "60,672 elements" in split_src
    assert "242,688 bytes per image (float32)" in split_src
    assert "31,064,064 bytes" in split_src and "per batch of 128" in split_src
    assert "conv3 43,264 + fc6 9,216 + fc7 4,096 + fc8 4,096" in split_src


def test_split_fold_keeps_crossings() -> None:
    src = dot.split_graph(analysis("alexnet", 2), fold=True).source
    heads = {h.split(".")[1] for t, h, a in edges(src) if t != "input" and t.split(".")[0] != h.split(".")[0]}
    assert heads == {"conv3", "fc6", "fc7", "fc8"}
    assert cluster_nodes(src, "cluster_gpu1")[:3] == ["gpu1.conv1", "gpu1.pool1", "gpu1.conv2"]


def test_split_needs_gpus() -> None:
    with pytest.raises(archviz.ArchvizError, match="2 or more GPUs"):
        dot.split_graph(analysis("lenet5"))


def test_split_uneven_channels() -> None:
    """Three GPUs and 16 channels: shares 6, 5, 5 (the analysis' rule), crossing both ways."""
    a = archviz.analyze(archviz.loads(RESIDUAL), gpus=3)
    src = dot.split_graph(a).source
    assert [dot.share(16, 3, g) for g in range(3)] == [6, 5, 5]
    assert "6×16×16" in src and "5×16×16" in src
    assert src.count("subgraph cluster_gpu") == 3
