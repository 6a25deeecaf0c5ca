"""`archviz view` pages: file size, load-to-interactive time and answer times in headless Chromium.

For AlexNet, ResNet-50, a generated 1,022-layer spec (10 block uses of a conv → batchnorm
→ relu block repeated 34 times, then flatten and a linear layer) and a 5,012-layer one (167
repeats): the page's size (both layouts counted where the spec has blocks), the time to build
it (`dot` included), the load-to-interactive time: from navigation start until the page's
script has laid out the diagram and bound its handlers (``window.archviz.readyAt``), and the
load-to-settled time: until it has also built the other layouts in the background
(``window.archviz.builtAt``; a click before then waits for that work). Then, each timed in the
page from the event until the next frame is drawn: for specs with blocks, whose page opens on
the folded overview, the first switch to the unfolded layout and the switch back; a search for
the last layer until its results list is drawn; and the same search with Enter until the
layer is centred (unfolded first) and its panel shown. Every figure is the best of 3 fresh
loads. Targets: ResNet-50 under 500 KB and under 1 s; the 5k spec interactive under 2 s and
every answer under 100 ms. Exits 1 when a target is missed.

Needs Graphviz's dot, playwright and a chromium (ARCHVIZ_CHROMIUM or `chromium` on PATH):

    python benchmarks/bench_view.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from archviz.render import html
from archviz.spec import load, loads

RESNET50_MAX_BYTES = 500_000
RESNET50_MAX_S = 1.0
LOADS = 3
FIVE_K_MAX_S, ANSWER_MAX_MS = 2.0, 100.0
# a click on Fold blocks, timed in the page until the next frame is drawn (ms; -1 when the page
# has no folded layout, or is not in the state `pressed` says: 'true' folded, 'false' unfolded)
SWITCH = """(pressed) => new Promise(done => { const b = document.getElementById('fold');
  if (b.hidden || b.getAttribute('aria-pressed') !== pressed) return done(-1);
  const t = performance.now(); b.click();
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t))); })"""
# a search typed into the box until its results list is drawn (ms)
SEARCH = """(q) => new Promise(done => { const s = document.getElementById('search');
  const t = performance.now(); s.value = q; s.dispatchEvent(new Event('input'));
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t))); })"""
# the same search, then Enter: until the layer is centred (unfolded first when folded) and its
# panel drawn (ms; -1 if no panel opened)
GO = """(q) => new Promise(done => { const s = document.getElementById('search');
  const t = performance.now(); s.value = q; s.dispatchEvent(new Event('input'));
  s.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
  requestAnimationFrame(() => requestAnimationFrame(() =>
    done(document.getElementById('panel').hidden ? -1 : performance.now() - t))); })"""


def generated(stages: int = 10, repeat: int = 34) -> str:
    lines = ["name: generated-1k", "input: [16, 32, 32]", "blocks:", "  unit:", "    layers:",
             "      - {name: conv, op: conv, out: 16, kernel: 3, padding: 1}",
             "      - {name: bn, op: batchnorm}", "      - {name: relu, op: relu}", "layers:"]
    lines += [f"  - {{name: stage{i}, block: unit, repeat: {repeat}}}" for i in range(stages)]
    lines += ["  - {name: flatten, op: flatten}", "  - {name: fc, op: linear, out: 10}"]
    return "\n".join(lines) + "\n"


def _loads(browser: Any, path: Path, last: str) -> tuple[float, float, dict[str, float]]:
    """LOADS fresh loads of the page: the best load-to-interactive and load-to-settled (s: every
    layout built, nothing left queued) and the best of each
    answer (ms): the first unfold, folding again, a search's results, a search taken to its panel
    from the folded overview (-1: the page has no folded layout; search → panel never is)."""
    times: list[float] = []
    settled: list[float] = []
    ms: dict[str, list[float]] = {"unfold": [], "fold": [], "search": [], "go": []}
    for _ in range(LOADS):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        times.append(page.evaluate("window.archviz.readyAt") / 1000)
        page.wait_for_selector("body[data-built='1']", timeout=60_000)
        settled.append(page.evaluate("window.archviz.builtAt") / 1000)
        ms["unfold"].append(page.evaluate(SWITCH, "true"))
        ms["fold"].append(page.evaluate(SWITCH, "false"))
        ms["search"].append(page.evaluate(SEARCH, last[:-1]))
        ms["go"].append(page.evaluate(GO, last))  # found, centred, its panel opened
        page.close()
    return min(times), min(settled), {k: min((x for x in v if x >= 0), default=-1.0) for k, v in ms.items()}


def main() -> int:
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("ARCHVIZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("no chromium found (set ARCHVIZ_CHROMIUM)")
        return 2
    specs = {"AlexNet": load("alexnet"), "ResNet-50": load("resnet50"),
             "generated 1k": loads(generated(), "generated-1k.yaml"),
             "generated 5k": loads(generated(10, 167).replace("generated-1k", "generated-5k"),
                                   "generated-5k.yaml")}
    ok = True
    folder = Path(tempfile.mkdtemp(prefix="archviz-view-"))
    print(f"{'spec':<14}{'layers':>7}{'size':>11}{'build':>9}{'interactive':>13}{'settled':>9}{'unfold':>8}"
          f"{'fold':>7}{'search':>8}{'search→panel':>14}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for label, spec in specs.items():
            t0 = time.perf_counter()
            page_text = html.view(spec).html
            build = time.perf_counter() - t0
            path = folder / f"{label.replace(' ', '-')}.html"
            path.write_text(page_text, encoding="utf-8")
            size = len(page_text.encode("utf-8"))
            best, calm, ms = _loads(browser, path, spec.layers[-1].name)
            shown = {k: f"{v:.0f}ms" if v >= 0 else "—" for k, v in ms.items()}
            print(f"{label:<14}{len(spec.layers):>7}{size / 1000:>9.0f}KB{build:>8.2f}s{best:>12.2f}s"
                  f"{calm:>8.2f}s{shown['unfold']:>8}{shown['fold']:>7}{shown['search']:>8}{shown['go']:>14}")
            ok &= ms["search"] >= 0 and ms["go"] >= 0
            if label == "generated 5k":
                ok &= best < FIVE_K_MAX_S and min(ms.values()) >= 0 and max(ms.values()) < ANSWER_MAX_MS
            if label == "ResNet-50":
                ok &= size < RESNET50_MAX_BYTES and best < RESNET50_MAX_S
                print(f"{'':<14}ResNet-50: {size / RESNET50_MAX_BYTES:.2f} of the 500 KB target,"
                      f" {best / RESNET50_MAX_S:.2f} of the 1 s target")
        browser.close()
    shutil.rmtree(folder)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
