"""What `archviz plot` draws: the data of the count charts and of the block figure, checked
against hand arithmetic; then that the drawn bars carry exactly that data."""

from __future__ import annotations

from math import sqrt

import pytest
from conftest import ROOT, bundled_specs

import archviz
from archviz.render import blocks, plots


@pytest.fixture(scope="module")
def alexnet() -> archviz.Analysis:
    return archviz.analyze(archviz.load("alexnet"))


@pytest.fixture(scope="module")
def counts(alexnet: archviz.Analysis) -> plots.CountsData:
    return plots.counts_data(alexnet)


def test_counts_one_bar_per_layer(counts: plots.CountsData) -> None:
    assert counts.names == tuple(la.name for la in archviz.load("alexnet").layers)
    assert [p.key for p in counts.panels] == ["params", "macs", "act_bytes"]
    assert counts.families[counts.names.index("conv1")] == "conv"
    assert counts.families[counts.names.index("fc6")] == "linear"


def test_counts_values_by_hand(counts: plots.CountsData) -> None:
    params, macs, act = (dict(zip(counts.names, p.values, strict=True)) for p in counts.panels)
    assert params["conv1"] == 96 * 3 * 11 * 11 + 96 == 34_944
    assert params["conv2"] == 256 * 48 * 5 * 5 + 256          # groups 2: 48 input channels each
    assert params["fc6"] == 9216 * 4096 + 4096 == 37_752_832
    assert params["relu1"] == params["pool1"] == 0
    assert macs["conv1"] == 96 * 55 * 55 * (3 * 11 * 11) == 105_415_200
    assert macs["fc7"] == 4096 * 4096
    assert act["conv1"] == 96 * 55 * 55 * 4 == 1_161_600      # bytes, float32
    assert act["fc8"] == 1000 * 4


def test_counts_shares_show_the_split(counts: plots.CountsData) -> None:
    """Convolutions hold the compute, the fully connected layers hold the parameters."""
    params, macs, _ = counts.panels
    conv_params = 34_944 + 307_456 + 885_120 + 663_936 + 442_624
    fc_params = 37_752_832 + 16_781_312 + 4_097_000
    assert params.total == conv_params + fc_params == 60_965_224
    assert params.shares == (("linear", fc_params / params.total), ("conv", conv_params / params.total))
    conv_macs = 105_415_200 + 223_948_800 + 149_520_384 + 112_140_288 + 74_760_192
    fc_macs = 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert macs.total == conv_macs + fc_macs
    assert macs.shares[0] == ("conv", conv_macs / macs.total) and macs.shares[0][1] > 0.9
    assert params.shares[0][1] > 0.95
    assert plots.panel_heading(params) == \
        "parameters: 60,965,224 in all — fully connected 96.2%, convolution 3.8%"


def test_drawn_bars_carry_the_data(counts: plots.CountsData) -> None:
    fig = plots.draw_counts(counts)
    for ax, panel in zip(fig.axes, counts.panels, strict=True):
        heights = tuple(round(bar.get_height()) for bar in ax.patches)  # type: ignore[attr-defined]
        assert heights == panel.values
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == list(counts.names)
    log = plots.draw_counts(counts, log=True)
    assert all(ax.get_yscale() == "log" for ax in log.axes)


def test_short_numbers() -> None:
    assert plots.short(746_496) == "746K" and plots.short(37_752_832) == "37.8M" and plots.short(4000) == "4K"


# ---------------------------------------------------------------------------- blocks


def test_blocks_boxes_and_kernels(alexnet: archviz.Analysis) -> None:
    data = blocks.blocks_data(alexnet)
    (row,) = data.rows
    assert [b.name for b in row] == ["input", "conv1", "pool1", "conv2", "pool2", "conv3", "conv4",
                                     "conv5", "pool5", "fc6", "fc7", "fc8"]
    kernels = {b.name: b.kernel for b in row}
    # each box carries the kernel of the layer that reads it
    assert kernels["input"] == (11, 11) and kernels["conv1"] == (3, 3) and kernels["pool1"] == (5, 5)
    assert kernels["pool2"] == (3, 3) and kernels["conv5"] == (3, 3) and kernels["pool5"] is None
    shapes = {b.name: b.shape for b in row}
    assert shapes["input"] == (3, 227, 227) and shapes["conv1"] == (96, 55, 55) and shapes["fc8"] == (1000,)
    assert not any(b.crossing for b in row)


def test_blocks_scale_sub_linearly() -> None:
    t, h, w = blocks.box_size((96, 55, 55))
    assert (t, h, w) == pytest.approx((0.3 * sqrt(96), sqrt(55), sqrt(55)))
    big, small = blocks.box_size((3, 227, 227)), blocks.box_size((256, 6, 6))
    assert big[1] > small[1] and big[1] / small[1] == pytest.approx(sqrt(227 / 6))
    assert big[1] / small[1] < 227 / 6                        # the 6×6 map stays visible
    assert blocks.box_size((384, 13, 13))[0] > blocks.box_size((256, 13, 13))[0]  # more channels, thicker
    assert blocks.box_size((4096,))[1] == pytest.approx(0.2 * 64)


def test_blocks_split_rows() -> None:
    sp = archviz.load("alexnet")
    data = blocks.blocks_data(archviz.analyze(sp, gpus=2), split=True)
    assert len(data.rows) == 2 and len(data.row_titles) == 2
    for row in data.rows:
        shapes = {b.name: b.shape for b in row}
        assert shapes["conv1"] == (48, 55, 55) and shapes["conv2"] == (128, 27, 27)
        assert shapes["fc6"] == (2048,) and shapes["fc8"] == (500,)
        assert shapes["input"] == (3, 227, 227)               # the image is replicated
        assert {b.name for b in row if b.crossing} == {"conv3", "fc6", "fc7", "fc8"}
    assert data.row_titles[0].startswith("GPU 0: 30.5M params, 362.2M MACs")


def test_blocks_split_needs_gpus() -> None:
    sp = archviz.load("lenet5")
    with pytest.raises(archviz.ArchvizError):
        blocks.blocks_data(archviz.analyze(sp), split=True)


def test_wrap_breaks_at_commas() -> None:
    assert blocks.wrap("conv 3×3, 384, pad 1, groups 2") == "conv 3×3, 384,\npad 1, groups 2"
    assert blocks.wrap("maxpool 3×3 /2") == "maxpool 3×3 /2"


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_figure_bytes(counts: plots.CountsData, fmt: str, magic: bytes) -> None:
    data = plots.figure_bytes(plots.draw_counts(counts), fmt)
    assert data.startswith(magic)
    assert plots.figure_bytes(plots.draw_counts(counts), fmt) == data  # no timestamps


def test_figure_bytes_refuses_unknown_format(counts: plots.CountsData) -> None:
    with pytest.raises(archviz.ArchvizError, match="png, svg, pdf"):
        plots.figure_bytes(plots.draw_counts(counts), "gif")


@pytest.mark.parametrize("name", bundled_specs())
def test_plot_data_for_every_bundled_spec(name: str) -> None:
    sp = archviz.load(name)
    a = archviz.analyze(sp)
    c = plots.counts_data(a)
    # one bar per layer, or per block use for a deep net (summed: the totals stay)
    bars = len(sp.layers) if len(sp.layers) <= plots.MAX_BARS else None
    assert len(c.names) == bars if bars else len(c.names) <= plots.MAX_BARS
    assert (c.panels[0].total, c.panels[1].total) == (a.totals.params, a.totals.macs)
    assert c.panels[2].total == 4 * a.totals.activations
    if any(len(s.inputs) > 1 for s in a.layers):   # branched (residuals, Inception, ...): refused
        with pytest.raises(archviz.ArchvizError, match="archviz draw"):
            blocks.blocks_data(a)
        return
    (row,) = blocks.blocks_data(a).rows
    assert [b.name for b in row] == ["input", *(s.name for s in a.layers if s.family in blocks.BOX_FAMILIES)]
    assert all(b.shape == a.layer(b.name).output for b in row[1:])


# ---- user text is drawn as typed, never as mathtext (issue 26) ----------------------------------
DOLLARS = r"cost $5 and $6 \$ $\frac$"


def _svg_text(fig: object) -> str:
    """The figure as SVG with its texts kept as text (mathtext would split them into glyphs)."""
    import html
    import io

    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")   # type: ignore[attr-defined]
    return html.unescape(buf.getvalue().decode())


@pytest.mark.parametrize("kind", ["counts", "blocks", "memory"])
def test_plot_draws_dollars_as_typed(tmp_path, kind: str) -> None:
    from typer.testing import CliRunner

    from archviz.cli import app
    from archviz.core.cost import Settings, estimate, target
    from archviz.render import cost_plot

    text = (ROOT / "specs" / "lenet5.yaml").read_text()
    spec = tmp_path / "d.yaml"
    spec.write_text(text.replace("name: LeNet-5", f"name: '{DOLLARS}'", 1))
    sp = archviz.load(str(spec))
    assert sp.name == DOLLARS
    a = archviz.analyze(sp)
    if kind == "counts":
        fig = plots.draw_counts(plots.counts_data(a))
    elif kind == "blocks":
        fig = blocks.draw_blocks(blocks.blocks_data(a))
    else:
        c = estimate(a, Settings(batch=2), target("h100"))
        fig = cost_plot.draw_memory(cost_plot.memory_data(c, [(1, c.peak)]))
    assert DOLLARS in _svg_text(fig)                                  # one text, as typed
    r = CliRunner().invoke(app, ["plot", str(spec), "--kind", kind, "-o", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output                                 # was 3: mathtext's parse error


def test_bench_plot_draws_dollars_as_typed(tmp_path) -> None:
    from archviz.render import bench_plot

    rows = [{"status": "ok", "mode": "infer", "model": DOLLARS, "dtype": "fp32", "batch": b,
             "images_per_s": 10.0 * b} for b in (1, 2)]
    out = tmp_path / "bench.svg"
    import html

    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        bench_plot.plot_throughput(rows, out, title=f"{DOLLARS} on cpu")
    svg = html.unescape(out.read_text())
    assert f"{DOLLARS} on cpu" in svg and f"{DOLLARS} fp32" in svg
