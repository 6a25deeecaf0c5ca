"""`archviz view` pages in a real browser: Debian's chromium driven by playwright (which downloads
no browser here: it is given chromium's path). Every page is opened from file:// with every
network request blocked and counted (there must be none). One browser for the module.

Skips, saying why, where playwright, chromium or Graphviz's `dot` is missing; install.sh
installs chromium and `pip install -e .[dev]` playwright, so CI runs these.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archviz.render import html
from archviz.spec import loads

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str | None:
    """ARCHVIZ_CHROMIUM, else the first chromium on PATH."""
    for name in (os.environ.get("ARCHVIZ_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


def _why_not() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "chromium is not installed (./install.sh installs it; Debian: apt-get install chromium)"
    if shutil.which("dot") is None:
        return "Graphviz's dot is not installed"
    return ""


REASON = _why_not()
if REASON:
    print(f"\ntests/test_view_browser.py skipped: {REASON}")
pytestmark = pytest.mark.skipif(bool(REASON), reason=REASON)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("views")
    out = {}
    for key, spec, vs in (("alexnet", "alexnet", None), ("resnet18", "resnet18", None),
                          ("resnet50", "resnet50", None), ("vs", "alexnet", "alexnet-torchvision"),
                          ("vs-resnet", "resnet18", "resnet50")):
        path = folder / f"{key}.html"
        html.view(spec, vs).save(str(path))
        out[key] = path
    out["timed"] = folder / "timed.html"
    html.view("alexnet", times=str(_bench_json(folder / "bench.json"))).save(str(out["timed"]))
    from test_view import HOSTILE

    out["hostile"] = folder / "hostile.html"
    html.view(loads(HOSTILE, "hostile.yaml")).save(str(out["hostile"]))
    return out


def _bench_json(path: Path) -> Path:
    """A file in the shape `archviz bench --layers --format json` writes (made-up times)."""
    import json

    from archviz.spec import load

    names = [layer.name for layer in load("alexnet").layers]
    layers = [{"name": n, "forward_ms": 0.5 + i, "backward_ms": 1.0 + 2 * i, "predicted_ms": None}
              for i, n in enumerate(names)]
    rows = [{"mode": "train", "batch": 8, "layers": {"sum_ms": 0, "layers": layers}}]
    path.write_text(json.dumps({"schema_version": 1, "rows": rows}), encoding="utf-8")
    return path


class Opened:
    """A page opened from file://, with its blocked requests, errors and dialogs recorded."""

    def __init__(self, browser: Any, path: Path, size: tuple[int, int] = (1400, 900)) -> None:
        self.page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = path.resolve().as_uri()

        def route(r: Any) -> None:
            if r.request.url == self.url:
                r.continue_()
            else:
                self.requests.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=15_000)

    def node(self, name: str) -> Any:
        return self.page.locator(f'#main .view:not(.off) g.node[data-layer="{name}"]')

    def panel(self) -> str:
        return self.page.locator("#panel-body").inner_text()

    def close(self) -> None:
        assert self.requests == [] and self.errors == [] and self.dialogs == []
        self.page.close()


@pytest.fixture
def opened(browser: Any, pages: dict[str, Path]) -> Iterator[Any]:
    made: list[Opened] = []

    def open_(key: str, size: tuple[int, int] = (1400, 900)) -> Opened:
        made.append(Opened(browser, pages[key], size))
        return made[-1]

    yield open_
    for o in made:
        o.close()  # no request, no script error, no dialog on any page


def test_alexnet_click_hover_keys(opened: Any) -> None:
    v = opened("alexnet")
    assert v.page.locator("#net-name").inner_text() == "AlexNet"
    assert "60,965,224 params" in v.page.locator("#totals").inner_text()
    v.node("conv1").click()
    text = v.panel()
    assert "3×227×227 → 96×55×55" in text and "⌊(227 + 2·0 − 11)/4⌋ + 1 = 55" in text
    assert "34,944" in text and "105,415,200" in text and "11×11 px" in text
    assert "✓ conv1 output" in text and "✗ conv1 neurons" in text
    assert "keeps to its own GPU" in text
    v.page.keyboard.press("Escape")
    assert v.page.locator("#panel").is_hidden()
    v.node("conv2").hover()  # its input and its reader light up
    assert "hl-in" in (v.node("pool1").get_attribute("class") or "")
    assert "hl-out" in (v.node("relu2").get_attribute("class") or "")
    v.page.mouse.move(5, 5)
    v.page.keyboard.press("f")


def test_search_by_name_and_op(opened: Any) -> None:
    v = opened("alexnet")
    v.page.locator("body").press("/")
    assert v.page.evaluate("document.activeElement.id") == "search"
    v.page.keyboard.type("lrn")
    assert v.page.locator("#results li .name").all_inner_texts() == ["norm1", "norm2"]
    v.page.keyboard.press("Enter")
    assert v.panel().startswith("norm1")
    assert "sel" in (v.node("norm1").get_attribute("class") or "")


# each edge-shape label of the shown layout whose box meets a node's box (both in the diagram's units)
LABELS_OVER_NODES = """() => {
  const v = document.querySelector('#main .view:not(.off)'), out = [];
  const boxes = [...v.querySelectorAll('g.node')].map(g => [g.getAttribute('data-layer'), g.getBBox()]);
  for (const t of v.querySelectorAll('text.eshape')) {
    const b = t.getBBox();
    for (const [n, o] of boxes) {
      if (b.x < o.x + o.width && o.x < b.x + b.width && b.y < o.y + o.height && o.y < b.y + b.height)
        out.push(t.textContent + ' over ' + n);
    }
  }
  return out; }"""


def test_lanes_and_edge_shapes(opened: Any) -> None:
    v = opened("alexnet")
    assert v.node("conv1").count() == 1
    v.page.click("#lanes")
    assert v.node("conv1").count() == 2  # one per GPU lane
    v.page.click("#fit")  # the whole split view: conv3 is off screen at the readable zoom
    v.node("conv3").first.click()
    assert "reads every GPU's share" in v.panel() and "192×13×13 + 192×13×13" in v.panel()
    shapes = v.page.locator(".view:not(.off) text.eshape")
    assert shapes.count() == 0  # made the first time they are asked for
    v.page.click("#shapes")
    assert shapes.count() > 0 and shapes.first.is_visible()
    assert "48×55×55" in shapes.all_text_contents()  # conv1's share of one GPU, on its edges
    assert v.page.evaluate(LABELS_OVER_NODES) == []
    v.page.click("#lanes")
    assert v.page.evaluate(LABELS_OVER_NODES) == []  # the plain layout's labels, made on the switch
    assert v.node("conv1").count() == 1


def test_resnet_fold_and_unfold(opened: Any) -> None:
    v = opened("resnet18")
    assert v.node("layer3").count() == 1 and v.node("layer3.0.conv1").count() == 0
    v.node("layer3").click()  # opens the unfolded layout centred on layer3
    assert v.page.locator("#fold").get_attribute("aria-pressed") == "false"
    assert v.node("layer3.0.conv1").count() == 1
    pane = v.page.locator("#pane-net").bounding_box()
    box = v.node("layer3.0.conv1").bounding_box()
    assert pane and box
    assert pane["y"] < box["y"] < pane["y"] + pane["height"]  # on screen after centring
    assert box["height"] > 20  # readable, not the whole-network fit
    v.node("layer3.0.conv1").click()
    assert "in block use layer3" in v.panel()
    v.page.click("#fold")
    assert v.node("layer3").count() == 1


def test_compare_view(opened: Any) -> None:
    v = opened("vs")
    assert "60,965,224 → 61,100,840" in v.page.locator("#totals").inner_text()
    norm1 = v.page.locator('#pane-a .view:not(.off) g.node[data-layer="norm1"]')
    assert "st-removed" in (norm1.get_attribute("class") or "")
    avgpool = v.page.locator('#pane-b .view:not(.off) g.node[data-layer="avgpool"]')
    assert "st-added" in (avgpool.get_attribute("class") or "")
    v.page.locator('#pane-a .view:not(.off) g.node[data-layer="conv1"]').click()
    text = v.panel()
    assert "conv1 ↔ conv1" in text and "changed" in text
    assert "96×55×55" in text and "64×55×55" in text  # the outputs side by side
    partner = v.page.locator('#pane-b .view:not(.off) g.node[data-layer="conv1"]')
    assert "sel" in (partner.get_attribute("class") or "")
    pane = v.page.locator("#pane-b").bounding_box()
    box = v.page.locator('#pane-b .view:not(.off) g.node[data-layer="conv1"]').bounding_box()
    assert pane and box and pane["x"] < box["x"] < pane["x"] + pane["width"]  # the partner in view


def test_hostile_names_render_as_text(opened: Any) -> None:
    from test_view import HOSTILE_NAME

    v = opened("hostile")
    assert v.page.locator("#net-name").text_content() == HOSTILE_NAME
    assert v.page.locator("img").count() == 0 and v.page.locator("#main script, #panel script").count() == 0
    assert v.page.evaluate("document.scripts.length") == 3
    v.node("conv1").click()
    assert "</script><svg onload=alert(4)>" in v.panel()
    v.page.locator("#search").fill("conv")
    assert v.page.locator("#results li .name").all_inner_texts() == ["conv1"]
    tip = v.page.locator("#totals").get_attribute("title") or ""
    assert "</script><script>alert(2)</script>" in tip and "<img src=x onerror=alert(3)>" in tip
    assert v.page.locator("svg foreignObject, #main svg script").count() == 0


# the height on screen of each visible node's name (its first <text>), and the pane's layout
NAME_PX = """() => [...document.querySelectorAll('#main .view:not(.off) g.node')].map(g => {
  const r = g.querySelector('text').getBoundingClientRect();
  return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth ? r.height : null;
}).filter(h => h !== null)"""


# per minimap of the shown layout: the share of its canvas pixels drawn in a colour (not white)
MINIMAP_INK = """() => [...document.querySelectorAll('#main .view:not(.off) .minimap canvas')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.min(d[i], d[i + 1], d[i + 2]) < 240) n++;
  return n / (d.length / 4); })"""


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
@pytest.mark.parametrize("key", ["alexnet", "resnet50", "vs", "vs-resnet"])
def test_first_sight_names_are_readable(opened: Any, key: str, size: tuple[int, int]) -> None:
    v = opened(key, size)
    v.page.wait_for_timeout(100)  # svg-pan-zoom applies its zoom on the next frame
    heights = v.page.evaluate(NAME_PX)
    assert len(heights) >= 5 and min(heights) >= 11, heights
    assert v.node("input").count() >= 1 and v.node("input").first.is_visible()  # the input end
    assert v.page.locator("#main .view:not(.off) .minimap .mm-frame").count() == (2 if "vs" in key else 1)
    v.page.wait_for_selector("body[data-built='1']")  # the minimaps drawn
    ink = v.page.evaluate(MINIMAP_INK)  # the diagram drawn small: boxes, lines, the legend
    assert len(ink) == (2 if "vs" in key else 1) and min(ink) > 0.01, ink
    if key == "resnet50":  # deeper than a screen: opens folded, the count shown
        assert v.page.evaluate("window.archviz.layout()") == "folded"
        assert "layer3 ×6" in (v.node("layer3").text_content() or "")
        v.page.click("#fold")  # one click unfolds (drawn near the screen: the input end)
        assert v.page.evaluate("window.archviz.layout()") == "plain" and v.node("layer1.0.conv1").count() == 1
        v.page.wait_for_timeout(100)
        assert min(v.page.evaluate(NAME_PX)) >= 11


def test_fold_in_compare(opened: Any) -> None:
    v = opened("vs-resnet")
    assert v.page.locator("#fold").is_visible()
    assert v.page.evaluate("[window.archviz.layout(0), window.archviz.layout(1)]") == ["folded", "folded"]
    assert "st-changed" in (v.page.locator('#pane-b .view:not(.off) g.node[data-layer="layer3"]')
                            .get_attribute("class") or "")
    v.page.click("#fold")
    assert v.page.evaluate("[window.archviz.layout(0), window.archviz.layout(1)]") == ["plain", "plain"]


METRICS = {"params": "params", "macs": "macs", "saved": "saved", "time": "time"}


@pytest.mark.parametrize("key", ["timed", "resnet50"])
def test_colour_by_cost(opened: Any, key: str) -> None:
    v = opened(key)
    options = v.page.locator("#colour option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["family", "params", "macs", "saved"] + (["time"] if key == "timed" else [])
    totals = v.page.evaluate("window.archviz.data.net.totals")
    for metric in options[1:]:
        v.page.select_option("#colour", metric)
        assert v.page.locator("#scale").is_visible() and v.page.locator("#scale .bar").count() == 1
        fills = v.page.locator("#main .view:not(.off) g.node").evaluate_all(
            "gs => gs.map(g => g.querySelector('path, polygon, ellipse').style.fill)")
        assert len(set(fills)) >= 5, (metric, set(fills))
        values = v.page.evaluate(f"window.archviz.nodeValues({metric!r})")
        assert sum(values.values()) == pytest.approx(totals[metric], rel=1e-9), metric
    v.page.select_option("#colour", "family")
    assert v.page.locator("#scale").is_hidden()
    if key == "timed":
        v.page.click("#fit")
        v.node("fc6").click()
        text = v.panel()
        assert "% of the total" in text and "measured time" in text and "saved for backward" in text


def test_compare_palette_title_and_partner(opened: Any) -> None:
    v = opened("vs")
    family = {"#a6cee3", "#fdbf6f", "#cab2d6", "#b2df8a", "#fbe38e", "#d9d9d9", "#fb9a99", "#e5d8bd"}
    colours = v.page.evaluate("""() => ['added', 'removed', 'changed'].map(s => {
      const on = '#main .view:not(.off) g.node.st-' + s;
      const g = document.querySelector(on + ' > path, ' + on + ' > polygon');
      const sw = document.querySelector('#legend .st-' + s);
      return [g ? getComputedStyle(g).fill : null, getComputedStyle(sw).backgroundColor]; })""")
    for drawn, swatch in colours:
        assert drawn is not None and drawn == swatch  # the legend shows what is drawn
        rgb = tuple(int(x) for x in drawn[4:-1].split(","))
        assert "#{:02x}{:02x}{:02x}".format(*rgb) not in family
    for side in ("a", "b"):  # each pane's label clear of its diagram
        title = v.page.locator(f"#pane-{side} .pane-title").bounding_box()
        stage = v.page.locator(f"#pane-{side} .stage").bounding_box()
        assert title and stage and title["y"] + title["height"] <= stage["y"] + 0.5
    v.page.click("#fit")
    v.page.locator('#pane-a .view:not(.off) g.node[data-layer="fc8"]').click()
    v.page.wait_for_timeout(100)
    panel = v.page.locator("#panel").bounding_box()
    stage = v.page.locator("#pane-b .stage").bounding_box()
    box = v.page.locator('#pane-b .view:not(.off) g.node[data-layer="fc8"]').bounding_box()
    assert panel and stage and box
    visible_mid = (stage["x"] + min(stage["x"] + stage["width"], panel["x"])) / 2
    assert abs(box["x"] + box["width"] / 2 - visible_mid) < 30  # centred where the panel leaves room
    assert stage["y"] < box["y"] < stage["y"] + stage["height"]


def test_a_large_layout_draws_only_near_the_screen(browser: Any, tmp_path: Path) -> None:
    """Over ArchvizTiles.MIN_NODES nodes: tiles far from the screen are out of the document; a
    search for the last layer brings its tile back and centres it; a selection taken while a box
    is out of the document leaves no stale mark; edge shapes still avoid nodes."""
    lines = ["name: long chain", "input: [4, 8, 8]", "layers:"]
    lines += [f"  - {{name: c{i}, op: conv, out: 4, kernel: 3, padding: 1}}" for i in range(450)]
    path = tmp_path / "long.html"
    html.view(loads("\n".join(lines) + "\n", "long.yaml")).save(str(path))
    v = Opened(browser, path)
    drawn = "document.querySelectorAll('.view:not(.off) g.node').length"  # tiles far off: out of the document
    assert 0 < v.page.evaluate(drawn) < 451 and v.node("c449").count() == 0
    v.page.fill("#search", "c449")
    v.page.press("#search", "Enter")
    assert v.panel().startswith("c449") and v.node("c449").is_visible()
    v.page.fill("#search", "c0")
    v.page.press("#search", "Enter")
    v.page.click("#fit")  # the whole diagram on screen: every tile back, one box selected
    v.page.wait_for_function(f"() => {drawn} === 451")
    assert v.page.locator(".view:not(.off) g.node.sel").count() == 1
    assert "sel" in (v.node("c0").get_attribute("class") or "")
    v.page.click("#shapes")
    assert v.page.evaluate(LABELS_OVER_NODES) == []
    v.close()
