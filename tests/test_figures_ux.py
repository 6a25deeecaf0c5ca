"""Figures that must not mislead (issue 10, points 5 and 8): the block figure links every box to
the one it feeds and refuses networks that branch; the counts plot of a deep net stays readable;
each lane of the split diagram states its own share."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.errors import ArchvizError
from archviz.render import blocks, dot, plots

runner = CliRunner()


@pytest.mark.parametrize("stem, where", [("resnet18", "layer1.0.add reads layer1.0.conv2, maxpool"),
                                         ("resnet50", "layer1.0.downsample.0 reads maxpool"),
                                         ("googlenet", "inception3a.branch2.0.conv reads maxpool2"),
                                         ("squeezenet1_0", "fire2.expand3x3 reads fire2.squeeze")])
def test_branched_nets_are_refused_with_a_pointer_to_draw(stem: str, where: str, tmp_path) -> None:
    sp = archviz.load(stem)
    with pytest.raises(ArchvizError, match=re.escape(where)):
        blocks.blocks_data(archviz.analyze(sp), spec=stem)
    out = tmp_path / "b.png"
    r = runner.invoke(app, ["plot", stem, "--kind", "blocks", "-o", str(out)])
    assert r.exit_code == 2 and f"`archviz draw {stem}` draws branches and merges" in r.output
    assert not out.exists()


@pytest.mark.parametrize("stem", ["alexnet", "alexnet-1gpu", "lenet5", "vgg16", "zfnet", "alexnet-keras"])
def test_chains_are_drawn_each_box_reading_the_one_before(stem: str) -> None:
    sp = archviz.load(stem)
    a = archviz.analyze(sp)
    reads = blocks.box_inputs(a)
    names = ["input", *(s.name for s in a.layers if s.family in blocks.BOX_FAMILIES)]
    assert [reads[n] for n in names[1:]] == [{n} for n in names[:-1]]


def _arrows(fig) -> dict[str, int]:
    from matplotlib.colors import to_hex

    count: dict[str, int] = {}
    for ax in fig.axes:
        for t in ax.texts:
            patch = getattr(t, "arrow_patch", None)
            if patch is not None:
                colour = to_hex(patch.get_edgecolor())
                count[colour] = count.get(colour, 0) + 1
    return count


def test_alexnet_split_figure_links_pool5_fc6_fc7_fc8_in_each_lane() -> None:
    sp = archviz.load("alexnet")
    a = archviz.analyze(sp, gpus=2)
    fig = blocks.draw_blocks(blocks.blocks_data(a, split=True))
    arrows = _arrows(fig)
    # same-lane links where there is no kernel to mark: pool5→fc6, fc6→fc7, fc7→fc8, in 2 rows
    assert arrows["#555555"] == 3 * 2
    # cross-GPU links into conv3, fc6, fc7, fc8 from the other row
    assert arrows[dot.CROSS_COLOUR] == 4 * 2
    row = blocks.blocks_data(a, split=True).rows[0]
    texts = [b.text for b in row if b.name in ("conv1", "fc6")]
    assert texts == ["conv 11×11 /4, 48 of 96", "linear 2048 of 4096"]


def test_counts_of_a_deep_net_are_summed_by_block() -> None:
    a = archviz.analyze(archviz.load("resnet50"))
    assert len(a.layers) == 175
    data = plots.counts_data(a)
    assert len(data.names) == 23 <= plots.MAX_BARS
    assert data.names[:6] == ("conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1")
    params = dict(zip(data.names, data.panels[0].values, strict=True))
    by_hand = sum(s.params for s in a.layers if s.name.startswith("layer1.0."))
    assert params["layer1.0"] == by_hand
    for p in data.panels:
        assert p.total == sum(p.values)
    assert data.panels[0].total == a.totals.params and data.panels[1].total == a.totals.macs
    assert "175 layers summed into 23 blocks" in data.title
    small = plots.counts_data(archviz.analyze(archviz.load("alexnet")))
    assert len(small.names) == 23 and "summed" not in small.title


def test_each_lane_states_its_own_share() -> None:
    a = archviz.analyze(archviz.load("alexnet"), gpus=2)
    g = dot.split_graph(a, "LR")
    conv1 = next(line for line in g.body if line.strip().startswith('"gpu1.conv1"'))
    assert "conv 11×11 /4, 48 of 96" in conv1 and "48×55×55" in conv1
    fc8 = next(line for line in g.body if line.strip().startswith('"gpu0.fc8"'))
    assert "linear 500 of 1000" in fc8 and ">500<" in fc8
    three = archviz.analyze(archviz.load("alexnet"), gpus=3)
    s = three.layer("conv1")
    # 96 over 3 GPUs: 32 each; a kernel or stride equal to the count is not rewritten
    assert [dot.lane_op_text(s, 3, g) for g in range(3)] == ["conv 11×11 /4, 32 of 96"] * 3


def test_lane_headers_stay_clear_of_the_input_edges() -> None:
    """Top to bottom, the input's edges enter the lanes from above: the headers go below."""
    a = archviz.analyze(archviz.load("alexnet"), gpus=2)
    tb = dot.split_graph(a, "TB").source
    lr = dot.split_graph(a, "LR").source
    assert re.findall(r"labelloc=(\w)", tb.split("subgraph", 1)[1]).count("b") == 2
    assert "labelloc=b" not in lr.split("subgraph", 1)[1]
