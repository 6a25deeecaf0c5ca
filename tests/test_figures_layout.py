"""The README's figures fit a page and stay true: aspect within 3:1, pixel sizes as the tool
draws them now, no edge label over a node, the numbers quoted near them the analysis's, and
every figure command the docs print is one docs/make_figures.py runs."""

from __future__ import annotations

import re
import shutil
import sys

import pytest
from conftest import ROOT
from figures import aspect, label_collisions, node_boxes, overlaps, png_size, svg_size

import archviz
from archviz.render import aspect as estimate
from archviz.render import dot

README = (ROOT / "README.md").read_text(encoding="utf-8")
FLAT = " ".join(README.split())  # the prose with its line breaks as spaces
DIAGRAMS = (ROOT / "docs" / "diagrams.md").read_text(encoding="utf-8")
IMAGES = re.findall(r"!\[[^\]]*\]\((docs/img/[\w.-]+\.png)\)", README)
MAX_ASPECT, MAX_PX, MIN_PX = 3.0, 2600, 600
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

sys.path.insert(0, str(ROOT / "docs"))
import make_figures  # noqa: E402


def test_the_readme_shows_figures() -> None:
    assert "docs/img/alexnet-split.png" in IMAGES and len(IMAGES) >= 4


@pytest.mark.parametrize("image", IMAGES)
def test_readme_figures_fit_a_page(image: str) -> None:
    w, h = png_size(ROOT / image)
    assert aspect(w, h) <= MAX_ASPECT, f"{image}: {w}×{h} px is {aspect(w, h):.1f}:1"
    assert MIN_PX <= max(w, h) <= MAX_PX, f"{image}: {w}×{h} px"


def _svg(a: archviz.Analysis, split: bool, rankdir: str = dot.AUTO, fold: bool = True) -> str:
    return dot.render(dot.diagram(a, split, rankdir, fold), "svg").decode("utf-8")


@needs_dot
@pytest.mark.parametrize("split, image", [(True, "alexnet-split"), (False, "alexnet")])
def test_draw_figures_are_what_draw_makes_now(split: bool, image: str) -> None:
    """The committed PNG's pixels are the SVG's points at dot.PNG_DPI (±1%: Graphviz builds
    differ in text widths); the default layout fits 3:1 where LR would not."""
    a = archviz.analyze(archviz.load("alexnet"), gpus=2 if split else None)
    w, h = svg_size(_svg(a, split))
    pw, ph = png_size(ROOT / "docs" / "img" / f"{image}.png")
    assert pw == pytest.approx(w * dot.PNG_DPI / 72, rel=0.01)
    assert ph == pytest.approx(h * dot.PNG_DPI / 72, rel=0.01)
    assert aspect(w, h) <= MAX_ASPECT
    assert aspect(*svg_size(_svg(a, split, "LR"))) > MAX_ASPECT  # why auto does not pick it


@needs_dot
@pytest.mark.parametrize("spec", ["alexnet", "lenet5", "zfnet", "vgg16"])
@pytest.mark.parametrize("rankdir", [dot.AUTO, "LR"])
def test_no_edge_label_over_a_node(spec: str, rankdir: str) -> None:
    a = archviz.analyze(archviz.load(spec), gpus=2)
    for fold in (True, False):
        assert label_collisions(_svg(a, True, rankdir, fold)) == []
    assert label_collisions((ROOT / "docs" / "img" / "alexnet-split.svg").read_text(encoding="utf-8")) == []


def test_the_collision_check_sees_a_collision() -> None:
    svg = ('<svg xmlns="http://www.w3.org/2000/svg"><g class="node"><title>n</title>'
           '<polygon points="0,0 100,0 100,-40 0,-40 0,0"/></g><g class="edge"><title>a-&gt;n</title>'
           '<path d="M50,-80C50,-60 50,-50 50,-40"/><text text-anchor="middle" x="50" y="-20" '
           'font-size="10">1,234</text></g></svg>')
    assert node_boxes(svg) == {"n": (0.0, -40.0, 100.0, 0.0)}
    assert len(label_collisions(svg)) == 1
    assert not overlaps((0, 0, 10, 10), (10, 0, 20, 10))


@needs_dot
def test_auto_estimate_is_near_dots_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """aspect.py's estimate of each candidate drawing against dot's (within 25%)."""
    seen: list[estimate.Size] = []
    real = estimate.drawing_size
    monkeypatch.setattr(estimate, "drawing_size", lambda *a, **kw: seen.append(real(*a, **kw)) or seen[-1])
    for name, gpus in (("alexnet", 2), ("resnet50", None), ("googlenet", None)):
        a = archviz.analyze(archviz.load(name), gpus=gpus)
        seen.clear()
        dot.diagram(a, gpus is not None, dot.AUTO, True)
        for rankdir, guess in zip(("TB", "LR"), list(seen), strict=True):
            w, h = svg_size(_svg(a, gpus is not None, rankdir))
            assert guess.w == pytest.approx(w, rel=0.25) and guess.h == pytest.approx(h, rel=0.25), \
                (name, rankdir, guess, (w, h))


@needs_dot
def test_folded_resnet50_size_quoted_in_the_docs() -> None:
    m = re.search(r"`archviz draw resnet50 --fold -o r.png`\s+is (\d+)×(\d+) px", DIAGRAMS)
    assert m, "docs/diagrams.md quotes the folded ResNet-50's size"
    from archviz.render.html import stages

    sp = archviz.load("resnet50")
    sts = stages(sp)
    g = dot.stage_graph(archviz.analyze(sp), {n: st.name for st in sts for n in st.layers},
                        {st.name: st.label() for st in sts}, dot.AUTO, fold=True)
    w, h = svg_size(dot.render(g, "svg").decode("utf-8"))
    assert int(m[1]) == pytest.approx(w * dot.PNG_DPI / 72, abs=3)
    assert int(m[2]) == pytest.approx(h * dot.PNG_DPI / 72, abs=3)


def test_numbers_near_the_figures_are_the_analysis() -> None:
    a = archviz.analyze(archviz.load("alexnet"), gpus=2)
    sp = a.split
    assert sp is not None
    per_image, per_batch = sp.cross_bytes(1, 4), sp.cross_bytes(128, 4)
    traffic = f"traffic: {per_image:,} bytes per image, {per_batch:,} per batch of 128"
    assert traffic in FLAT
    crossing = sorted(sp.crossing, key=[s.name for s in a.layers].index)
    assert f"({', '.join(crossing)})" in FLAT
    for layer, gpu_share in (("conv1", 48), ("fc6", 2048)):
        total = a.layer(layer).output[0]
        assert f"{gpu_share} of {layer}'s {total}" in FLAT and dot.share(total, 2, 0) == gpu_share
    from archviz.render import plots

    panels = plots.counts_data(a).panels
    shares = {"params": dict(panels[0].shares), "macs": dict(panels[1].shares)}
    assert f"convolutions hold {shares['macs']['conv'] * 100:.1f} % of the MACs" in FLAT
    assert f"fully connected layers {shares['params']['linear'] * 100:.1f} % of the parameters" in FLAT


def _figure_commands(text: str) -> set[str]:
    found = re.findall(r"^\$? ?(archviz (?:draw|plot) [^\n#]*-o docs/img/[\w.-]+)", text, re.MULTILINE)
    return {" ".join(c.replace("--kind counts", "").split()) for c in found}


def test_make_figures_runs_every_figure_command_the_docs_print() -> None:
    shown = _figure_commands(README) | _figure_commands(DIAGRAMS) | \
        _figure_commands((ROOT / "docs" / "cost.md").read_text(encoding="utf-8"))
    assert shown <= set(make_figures.COMMANDS), shown - set(make_figures.COMMANDS)


def test_quoted_file_sizes_are_the_files() -> None:
    for md in (README, DIAGRAMS):
        for path, size in re.findall(r"^wrote (docs/img/[\w.-]+) \(([\d,]+) bytes\)$", md, re.MULTILINE):
            assert int(size.replace(",", "")) == (ROOT / path).stat().st_size, \
                f"{path}: run python docs/make_figures.py"
