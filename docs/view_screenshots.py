"""Screenshots of `archviz view` pages for docs/view.md, into docs/img/ (documentation, never
compared as golden images). Needs Graphviz's dot, playwright and a chromium
(ARCHVIZ_CHROMIUM or `chromium` on PATH):

    python docs/view_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from archviz.render import html

IMG = Path(__file__).resolve().parent / "img"


def main() -> None:
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("ARCHVIZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    folder = Path(tempfile.mkdtemp(prefix="archviz-shots-"))
    views = {"alexnet": html.view("alexnet"), "resnet18": html.view("resnet18"),
             "resnet50": html.view("resnet50"), "vs": html.view("alexnet", "alexnet-torchvision"),
             "vs-resnet": html.view("resnet18", "resnet50")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])

        def open_(key: str, size: tuple[int, int] = (1280, 800)) -> object:
            path = folder / f"{key}.html"
            views[key].save(str(path))
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-built='1']")
            page.wait_for_timeout(300)  # the minimap's image
            return page

        for key in ("alexnet", "resnet50", "vs-resnet"):  # first sight, as the page opens
            for w, h in ((1280, 800), (1920, 1080)):
                open_(key, (w, h)).screenshot(path=str(IMG / f"view-open-{key}-{w}x{h}.png"))
        page = open_("resnet50")  # coloured by MACs, one block use's share in the panel
        page.select_option("#colour", "macs")
        page.locator('#main .view:not(.off) g.node[data-layer="layer3"]').click()
        page.wait_for_timeout(300)
        page.screenshot(path=str(IMG / "view-colour-macs.png"))

        page = open_("alexnet")  # conv1's panel, edge shapes on
        page.click("#shapes")
        page.locator('#main .view:not(.off) g.node[data-layer="conv2"]').hover()
        page.locator('#main .view:not(.off) g.node[data-layer="conv1"]').click()
        page.screenshot(path=str(IMG / "view-alexnet.png"))
        page.click("#close")
        page.click("#lanes")  # the two GPU lanes, conv3 (reads both GPUs) selected
        page.locator("#search").fill("conv3")
        page.press("#search", "Enter")
        page.locator('#main .view:not(.off) g.node[data-layer="conv3"]').first.click()
        page.screenshot(path=str(IMG / "view-alexnet-lanes.png"))
        page = open_("resnet18")  # the folded overview, then layer3 unfolded
        page.screenshot(path=str(IMG / "view-resnet18-folded.png"))
        page.locator('#main .view:not(.off) g.node[data-layer="layer3"]').click()
        page.wait_for_timeout(1600)
        page.locator('#main .view:not(.off) g.node[data-layer="layer3.0.downsample.0"]').click()
        page.screenshot(path=str(IMG / "view-resnet18-unfolded.png"))
        page = open_("vs")  # two networks compared
        page.click("#fit")
        page.locator('#pane-a .view:not(.off) g.node[data-layer="conv2"]').click()
        page.wait_for_timeout(300)
        page.screenshot(path=str(IMG / "view-vs.png"))
        page.locator("#close").click()
        page.locator("#search").fill("conv")
        page.screenshot(path=str(IMG / "view-search.png"))
        browser.close()
    shutil.rmtree(folder)
    for f in sorted(IMG.glob("view-*.png")):
        print(f"wrote docs/img/{f.name} ({f.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
