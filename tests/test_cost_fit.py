"""``archviz plot --kind fit`` (issue 24): memory per GPU against the swept option, a capacity line
per device, the largest batch marked. The figure's artists are read back and held to the cost rows,
the device table and the cost's own ``largest_batch``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.cli.common import load_analysis
from archviz.core.cost import GIB, CostError
from archviz.core.devices import by_key
from archviz.render.cost_fit import draw_fit, fit_data, fit_sweep, swept_option
from archviz.runtime.costing import parse_list

runner = CliRunner()


def _fit(spec: str, **options: str | None) -> tuple[object, object]:
    a = load_analysis(spec)
    lists = {k: parse_list(options.get(k), k) for k in ("device", "batch", "seq", "gpus", "tp", "zero")}
    option, sw = fit_sweep(a, lists)
    return fit_data(a, option, sw), sw


def test_fit_points_capacities_and_marks_are_the_costs() -> None:
    d, _ = _fit("gpt2", device="v100,a100,h100", seq="256")
    assert d.option == "batch" and [line.device for line in d.lines] == ["V100 SXM2", "A100", "H100 SXM"]
    h100 = d.lines[2]
    # the default batches: powers of two up to the first that no device fits
    assert h100.xs == tuple(2**i for i in range(len(h100.xs)))
    top = archviz.cost("gpt2", "h100", batch=h100.xs[-1], seq=256)
    assert top.fits is False and archviz.cost("gpt2", "h100", batch=h100.xs[-2], seq=256).fits is True
    for line, key in zip(d.lines, ("v100", "a100", "h100"), strict=True):
        assert line.capacity_gib == by_key(key).memory_gib
        for x, y in zip(line.xs, line.gib, strict=True):
            c = archviz.cost("gpt2", key, batch=x, seq=256)
            assert y == (c.peak + c.kept) / GIB
        c = archviz.cost("gpt2", key, batch=1, seq=256)
        assert line.largest_batch == c.largest_batch and line.mark is not None
        assert line.mark[0] == c.largest_batch
        at = archviz.cost("gpt2", key, batch=c.largest_batch, seq=256)
        assert at.fits and not archviz.cost("gpt2", key, batch=c.largest_batch + 1, seq=256).fits
        assert line.mark[1] == (at.peak + at.kept) / GIB


def test_the_drawn_artists_carry_the_data() -> None:
    d, _ = _fit("gpt2", device="a100,v100", seq="128", batch="1..16")
    fig = draw_fit(d)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    memory = lines["memory per GPU"]         # every GPU of the table: one curve
    assert tuple(memory.get_xdata()) == d.lines[0].xs and tuple(memory.get_ydata()) == d.lines[0].gib
    flat = sorted(ln.get_ydata()[0] for ln in ax.get_lines() if len(set(ln.get_ydata())) == 1
                  and ln.get_linestyle() == "--")
    assert flat == sorted([by_key("a100").memory_gib, by_key("v100").memory_gib])
    for line in d.lines:
        star = lines[f"{line.device}: largest batch {line.largest_batch:,}"]
        assert line.mark is not None and (star.get_xdata()[0], star.get_ydata()[0]) == line.mark


def test_a_swept_option_other_than_the_batch() -> None:
    d, sw = _fit("gpt2", device="h100", seq="128,256,512", batch="8")
    assert d.option == "seq" and d.lines[0].xs == (128, 256, 512)
    for x, y in zip(d.lines[0].xs, d.lines[0].gib, strict=True):
        c = archviz.cost("gpt2", "h100", batch=8, seq=x)
        assert y == (c.peak + c.kept) / GIB
    assert d.lines[0].mark is not None and d.lines[0].mark[0] == 512     # the last seq that fits


def test_two_swept_options_are_an_error() -> None:
    with pytest.raises(CostError, match="--seq and --batch"):
        swept_option({"device": ["h100"], "batch": [1, 2], "seq": [128, 256]})
    r = runner.invoke(app, ["plot", "gpt2", "--kind", "fit", "--batch", "1,2", "--zero", "0,1",
                            "--gpus", "2"])
    assert r.exit_code == 2 and "one option besides --device" in r.output
    r = runner.invoke(app, ["plot", "gpt2", "--kind", "memory", "--batch", "1,2"])
    assert r.exit_code == 2 and "--kind fit" in r.output
    r = runner.invoke(app, ["plot", "gpt2", "--kind", "counts", "--seq", "128"])
    assert r.exit_code == 2 and "apply to --kind fit" in r.output


def test_cli_writes_the_figure(tmp_path: Path) -> None:
    out = tmp_path / "fit.png"
    r = runner.invoke(app, ["plot", "gpt2", "--kind", "fit", "-d", "gtx580,a100", "--seq", "128",
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_api_plot_is_the_clis() -> None:
    p = archviz.plot("gpt2", "fit", device=["a100", "v100"], seq=128, batch=[1, 2, 4])
    d, _ = _fit("gpt2", device="a100,v100", seq="128", batch="1,2,4")
    memory = next(ln for ln in p.figure.axes[0].get_lines() if ln.get_label() == "memory per GPU")
    assert tuple(memory.get_ydata()) == d.lines[0].gib and p.kind == "fit"
    with pytest.raises(archviz.ArchvizError, match="apply to kind='fit'"):
        archviz.plot("gpt2", "memory", seq=128)
