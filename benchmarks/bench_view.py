"""`archviz view` pages: file size and load-to-interactive time in headless Chromium.

For AlexNet, ResNet-50 and a generated 1,022-layer spec (10 block uses of a conv → batchnorm
→ relu block repeated 34 times, then flatten and a linear layer): the page's size (both
layouts counted where the spec has blocks), the time to build it (`dot` included), and the
load-to-interactive time: from navigation start until the page's script has laid out the
diagram and bound its handlers (``window.archviz.readyAt``, best of 3 loads); for specs with
blocks, whose page opens on the folded overview, also the time to switch to the unfolded
layout (parse and bind, best of 3); and how long a search for the last layer takes to centre it
and show its panel. Targets: ResNet-50 under 500 KB and under 1 s.
Exits 1 when a target is missed.

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

from archviz.render import html
from archviz.spec import load, loads

RESNET50_MAX_BYTES = 500_000
RESNET50_MAX_S = 1.0
LOADS = 3
FIVE_K_MAX_S, ANSWER_MAX_MS = 2.0, 100.0
# the folded → unfolded switch, timed in the page until the next frame is drawn (ms; -1 when
# the page has no folded layout)
UNFOLD = """() => new Promise(done => { const b = document.getElementById('fold');
  if (b.hidden || b.getAttribute('aria-pressed') !== 'true') return done(-1);
  const t = performance.now(); b.click();
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t))); })"""
# a search typed into the box until its results list is drawn (ms)
SEARCH = """(q) => new Promise(done => { const s = document.getElementById('search');
  const t = performance.now(); s.value = q; s.dispatchEvent(new Event('input'));
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t))); })"""


def generated(stages: int = 10, repeat: int = 34) -> str:
    lines = ["name: generated-1k", "input: [16, 32, 32]", "blocks:", "  unit:", "    layers:",
             "      - {name: conv, op: conv, out: 16, kernel: 3, padding: 1}",
             "      - {name: bn, op: batchnorm}", "      - {name: relu, op: relu}", "layers:"]
    lines += [f"  - {{name: stage{i}, block: unit, repeat: {repeat}}}" for i in range(stages)]
    lines += ["  - {name: flatten, op: flatten}", "  - {name: fc, op: linear, out: 10}"]
    return "\n".join(lines) + "\n"


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
    print(f"{'spec':<14}{'layers':>7}{'size':>11}{'build':>9}{'interactive':>13}{'unfold':>9}"
          f"{'search':>9}{'search→panel':>14}")
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
            times, unfold, found, click = [], [], [], 0.0
            for _ in range(LOADS):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                           else r.abort())
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                times.append(page.evaluate("window.archviz.readyAt") / 1000)
                page.wait_for_selector("body[data-built='1']", timeout=60_000)
                unfold.append(page.evaluate(UNFOLD) / 1000)
                found.append(page.evaluate(SEARCH, spec.layers[-1].name[:-1]))
                t0 = time.perf_counter()
                page.fill("#search", spec.layers[-1].name)  # found, centred, its panel opened
                page.press("#search", "Enter")
                page.wait_for_selector("#panel:not([hidden])")
                click = time.perf_counter() - t0
                page.close()
            best = min(times)
            shown = f"{min(unfold) * 1000:.0f}ms" if min(unfold) >= 0 else "—"
            print(f"{label:<14}{len(spec.layers):>7}{size / 1000:>9.0f}KB{build:>8.2f}s{best:>12.2f}s"
                  f"{shown:>9}{min(found):>7.0f}ms{click * 1000:>12.0f}ms")
            if label == "generated 5k":
                ok &= best < FIVE_K_MAX_S and max(min(found), min(unfold) * 1000) < ANSWER_MAX_MS
            if label == "ResNet-50":
                ok &= size < RESNET50_MAX_BYTES and best < RESNET50_MAX_S
                print(f"{'':<14}ResNet-50: {size / RESNET50_MAX_BYTES:.2f} of the 500 KB target,"
                      f" {best / RESNET50_MAX_S:.2f} of the 1 s target")
        browser.close()
    shutil.rmtree(folder)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
