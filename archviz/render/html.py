"""Analysis → one self-contained, offline HTML file: the `draw` diagram with pan, zoom, a panel
per layer, search, blocks that fold, the GPU lanes, and two networks compared (``archviz view``).

The page holds the Graphviz SVG that ``archviz draw`` makes (same layout), the vendored
svg-pan-zoom library (BSD-2, ``vendor/``), the page's own script and style (``assets/``), and
every number as JSON. Nothing is fetched: the page works from ``file://`` and its
Content-Security-Policy forbids network requests.

Safety: every user-provided string (the spec ``name:``, ``source:``, ``description:``,
``note:``, layer names) travels inside the JSON, escaped so that no text can end the script
element, and the page's script puts it on screen with ``textContent`` only. The SVGs are
Graphviz output, whose labels are escaped by Graphviz and :func:`html.escape`; they are parsed
as XML in the page, never as HTML.
"""

from __future__ import annotations

import json
import re
from dataclasses import field
from html import escape
from importlib import resources
from typing import Any

from ..core.analysis import Analysis, LayerStats
from ..core.check import CheckResult, run_checks
from ..core.diff import Diff, show
from ..errors import ArchvizError
from ..limits import MAX_LANES
from ..ops import OPS
from ..ops import fmt_dims as dims
from ..ops.dtypes import note as dtype_note
from ..record import record
from ..spec import INPUT, Origin, Spec
from . import dot

SCHEMA_VERSION = 1
SLOTS = ("CSS", "LIB", "APP", "DATA", "TITLE")
SLOT = re.compile(r"\{\{(" + "|".join(SLOTS) + r")\}\}")
# JSON inside <script>: no "<", ">" or "&" (so no "</script>" nor "<!--"), and no line separators
JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


# ---------------------------------------------------------------------------- block stages


@record
class Stage:
    """One ``block:`` use in ``layers:``: the layers it expanded into."""

    name: str                   # the use's name, e.g. "layer3"
    block: str                  # the block's name, e.g. "basic"
    repeat: int                 # copies (1 without ``repeat:``)
    layers: tuple[str, ...] = field(default=())

    def label(self) -> str:
        """The use and its copy count first ("layer3 ×6"), then the block ("bottleneck")."""
        head = f"{self.name} ×{self.repeat}"
        return f"{head} · {self.block}" if self.block else head


def stages(a: Analysis) -> tuple[Stage, ...]:
    """The analysed spec's block uses, in order, from each layer's block origin."""
    runs: dict[str, list[str]] = {}
    origins: dict[str, Origin] = {}
    for s in a.layers:
        if s.origin is not None:
            runs.setdefault(s.origin.use, []).append(s.name)
            origins.setdefault(s.origin.use, s.origin)
    return tuple(Stage(use, origins[use].block, origins[use].count, tuple(names))
                 for use, names in runs.items())


# ---------------------------------------------------------------------------- the data


def _num(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _claims_by_layer(checks: list[CheckResult], names: set[str]) -> tuple[dict[str, list[dict[str, Any]]],
                                                                          list[dict[str, Any]]]:
    per: dict[str, list[dict[str, Any]]] = {}
    net: list[dict[str, Any]] = []
    for c in checks:
        rec = {"what": c.what, "claimed": c.claimed, "computed": c.computed, "how": c.how, "ok": c.ok,
               "explanation": c.explanation, "source": c.source}
        head = c.what.split(" ", 1)[0]
        (per.setdefault(head, []) if head in names else net).append(rec)
    return per, net


def _lane(a: Analysis, s: LayerStats) -> dict[str, Any] | None:
    if a.split is None:
        return None
    sp = a.split
    crossing = s.name in sp.crossing
    shapes = [dims(dot.lane_shape(s.output, sp.gpus, g)) for g in range(sp.gpus)]
    text = (f"reads every GPU's share ({sp.cross_elements.get(s.name, 0):,} elements per image"
            " sent between GPUs)" if crossing else "keeps to its own GPU")
    return {"crossing": crossing, "shapes": shapes, "text": f"{text}; each GPU holds "
            + " + ".join(shapes)}


def _layer(a: Analysis, s: LayerStats, claims: list[dict[str, Any]], stage: str,
           readers: list[str]) -> dict[str, Any]:
    settings = {k: show(v) for k, v in OPS[s.op].settings(s.op_params).items()}
    return {
        "name": s.name, "op": s.op, "family": s.family, "label": s.label, "settings": settings,
        "inputs": list(s.inputs), "readers": readers,
        "in_shapes": [dims(x) for x in s.in_shapes], "output": dims(s.output) + dtype_note(s.dtype),
        "params": s.params, "buffers": s.buffers, "neurons": s.neurons, "macs": s.macs,
        "activations": s.activations, "formula": s.formula, "warnings": list(s.warnings),
        "rf": _num(s.rf), "rf_jump": _num(s.rf_jump), "expect": dims(s.expect) if s.expect else None,
        "lane": _lane(a, s), "claims": claims, "stage": stage, "note": s.note,
    }


def saved_per_image(a: Analysis) -> dict[str, int]:
    """Layer → bytes it saves for backward per image (training, fp32: the cost model's rule)."""
    from ..core.cost import Settings, saved_bytes

    return saved_bytes(a, Settings(batch=1))


def load_times(path: str) -> dict[str, float]:
    """Layer → measured milliseconds (forward + backward) from ``archviz bench --layers --format
    json`` output: the first row with per-layer times in train mode, else the first with any."""
    from pathlib import Path

    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = [r for r in result.get("rows", []) if isinstance(r, dict) and r.get("layers")]
    except (OSError, ValueError, AttributeError) as exc:
        raise ArchvizError(f"--times {path}: not the JSON of `archviz bench --layers`: {exc}") from None
    if not rows:
        raise ArchvizError(f"--times {path}: no per-layer times (run `archviz bench --layers --format json`)")
    row = next((r for r in rows if r.get("mode") == "train"), rows[0])
    return {t["name"]: float(t.get("forward_ms") or 0) + float(t.get("backward_ms") or 0)
            for t in row["layers"]["layers"]}


def network_data(a: Analysis, times: dict[str, float] | None = None) -> dict[str, Any]:
    """Everything the page shows about one network, as JSON-ready values."""
    checks = run_checks(a)
    saved = saved_per_image(a)
    names = {s.name for s in a.layers}
    per, net = _claims_by_layer(checks, names)
    sts = stages(a)
    stage_of = {n: st.name for st in sts for n in st.layers}
    readers: dict[str, list[str]] = {INPUT: []}
    for s in a.layers:
        readers.setdefault(s.name, [])
        for src in s.inputs:
            readers.setdefault(src, []).append(s.name)
    t = a.totals
    return {
        "name": a.name, "source": a.source, "description": a.spec.description, "path": a.path,
        "input": dims(a.input) + dtype_note(a.input_dtype), "gpus": a.split.gpus if a.split else None,
        "totals": {"params": t.params, "buffers": t.buffers, "macs": t.macs, "neurons": t.neurons,
                   "activations": t.activations, "saved": sum(saved.values()),
                   "time": sum(times.get(s.name, 0.0) for s in a.layers) if times else None},
        "checks": {"passed": sum(c.ok for c in checks), "failed": sum(not c.ok for c in checks),
                   "network": net},
        "layers": [{**_layer(a, s, per.get(s.name, []), stage_of.get(s.name, ""), readers[s.name]),
                    "saved": saved.get(s.name, 0), "time": times.get(s.name) if times else None}
                   for s in a.layers],
        "input_readers": readers[INPUT],
        "stages": [{"name": st.name, "label": st.label(), "layers": list(st.layers)}
                   for st in sts],
        "cross_bytes": a.split.cross_bytes(1, 4) if a.split else None,
    }


def _svg(g: Any) -> str:
    """Graphviz SVG without its XML prolog, doctype and comments (parsed as XML in the page)."""
    g = g.copy()
    g.comment = None  # the file name stays out of the page
    text = dot.render(g, "svg").decode("utf-8")
    text = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", text, flags=re.S)
    return re.sub(r">\s+<", "><", text).strip()


def layouts(a: Analysis, rankdir: str = "TB", fold: bool = False) -> dict[str, str]:
    """The page's precomputed layouts: ``plain`` always, ``split`` with a GPU split over at most
    :data:`~archviz.limits.MAX_LANES` GPUs (beyond, each layer's panel still lists every GPU's
    share), ``folded`` (each block use one box) when the spec uses blocks."""
    out = {"plain": _svg(dot.layer_graph(a, rankdir, fold))}
    if a.split is not None and a.split.gpus <= MAX_LANES:
        out["split"] = _svg(dot.split_graph(a, dot.AUTO, fold))
    sts = stages(a)
    if sts:
        stage_of = {n: st.name for st in sts for n in st.layers}
        labels = {st.name: st.label() for st in sts}
        out["folded"] = _svg(dot.stage_graph(a, stage_of, labels, rankdir))
    return out


def view_data(a: Analysis, rankdir: str = "TB", fold: bool = False, initial: str = "",
              times: dict[str, float] | None = None) -> dict[str, Any]:
    """The page's JSON for one analysed network (with its GPU lanes when it was analysed split)."""
    if initial == "split" and a.split is not None:
        dot.check_lanes(a)   # asked for the lanes: a clear refusal rather than the plain layout
    lays = layouts(a, rankdir, fold)
    start = initial if initial in lays else ("folded" if "folded" in lays else "plain")
    return {"schema_version": SCHEMA_VERSION, "mode": "single", "net": network_data(a, times),
            "layouts": lays, "initial": start}


def _change(v: Any) -> str:
    return "—" if v is None else show(v)


def _compare_layouts(a: Analysis) -> dict[str, str]:
    """``plain`` and (with blocks) ``folded``, titled without the op-family legend: compared,
    the boxes are coloured by difference (added, removed, changed), which the page's legend shows."""
    t = a.totals
    title = (f'<<font point-size="16"><b>{escape(a.name)} · {t.params:,} params · {t.macs:,} MACs'
             " per image</b></font>>")
    graphs = {"plain": dot.layer_graph(a)}
    sts = stages(a)
    if sts:
        graphs["folded"] = dot.stage_graph(a, {n: st.name for st in sts for n in st.layers},
                                           {st.name: st.label() for st in sts})
    for g in graphs.values():
        g.attr(label=title)
    return {k: _svg(g) for k, g in graphs.items()}


def compare_data(d: Diff) -> dict[str, Any]:
    """The page's JSON for two networks side by side, paired as ``archviz diff`` pairs them."""
    from ..core.diff import METRICS

    pairs = [{"status": r.status, "a": r.a.name if r.a else None, "b": r.b.name if r.b else None,
              "moved": r.move_note or "",
              "changes": [{"key": c.key, "a": _change(c.a), "b": _change(c.b)} for c in r.changes]}
             for r in d.layers]
    return {
        "schema_version": SCHEMA_VERSION, "mode": "compare",
        "a": network_data(d.a), "b": network_data(d.b),
        "layouts_a": _compare_layouts(d.a),
        "layouts_b": _compare_layouts(d.b),
        "pairs": pairs,
        "totals": {m: {"a": d.total(m)[0], "b": d.total(m)[1]} for m in METRICS},
    }


# ---------------------------------------------------------------------------- the page


def _asset(*parts: str) -> str:
    return resources.files("archviz.render").joinpath(*parts).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: it cannot end it nor open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: JSON_ESCAPES[m.group(0)], text)


def page(data: dict[str, Any]) -> str:
    """The whole HTML document for ``data`` (from :func:`view_data` or :func:`compare_data`)."""
    lib = _asset("vendor", "svg-pan-zoom.min.js")
    scripts = ("view_map.js", "view_tiles.js", "view_colour.js", "view.js")
    app = "\n".join(_asset("assets", f) for f in scripts)
    css = _asset("assets", "view.css")
    for name, code in (("svg-pan-zoom", lib), ("view.js", app), ("view.css", css)):
        if re.search(r"</(script|style)", code, re.I):  # pragma: no cover - guards the package data
            raise ArchvizError(f"{name} cannot be inlined: it contains a closing tag")
    if data["mode"] == "compare":
        title = f"{data['a']['name']} vs {data['b']['name']}"
    else:
        title = data["net"]["name"]
    slots = {"CSS": css, "LIB": lib, "APP": app, "DATA": script_json(data),
             "TITLE": escape(f"{title} · archviz view")}
    return SLOT.sub(lambda m: slots[m.group(1)], _asset("assets", "view.html"))


# ---------------------------------------------------------------------------- notebooks


@record
class View:
    """An HTML view; displays inline in Jupyter (an iframe whose ``srcdoc`` is the page)."""

    html: str
    height: int = 640

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{escape(self.html, quote=True)}" style="width:100%;'
                f'height:{self.height}px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>')

    def save(self, path: str) -> None:
        from ..io import write_atomic

        write_atomic(path, self.html)


def view(spec: str | Spec | Analysis, vs: str | Spec | Analysis | None = None, split: bool = False,
         times: str | None = None) -> View:
    """The view of a spec (a bundled name, a path, a loaded Spec or its Analysis), or of two compared.

    >>> from archviz.render.html import view
    >>> view("alexnet")                      # in a notebook cell: the interactive view
    """
    a = _analysis(spec)
    if vs is None:
        return View(page(view_data(a, initial="split" if split else "",
                                   times=load_times(times) if times else None)))
    from ..core.diff import diff

    return View(page(compare_data(diff(a, _analysis(vs)))))


def _analysis(x: str | Spec | Analysis) -> Analysis:
    from ..core.analysis import analyze
    from ..spec import load

    return x if isinstance(x, Analysis) else analyze(x if isinstance(x, Spec) else load(x))
