/* archviz view: the page's script. Every text from the data goes on screen through
   textContent (never innerHTML), so names cannot become markup. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("archviz-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var fmt = function (n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); };
  var human = function (n) {
    var units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) if (Math.abs(n) >= units[i][0]) return (n / units[i][0]).toFixed(2) + units[i][1];
    return String(n);
  };
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function svgEl(tag) { return document.createElementNS("http://www.w3.org/2000/svg", tag); }
  var panes = [];        // {key, box, pz, nodes: name -> [g], edges: [{g, tail, head}], net, layouts, layout}
  var selected = null;   // {pane, name}
  window.archviz = { ready: false, data: DATA };

  // ------------------------------------------------------------------ one pane: a layout shown
  function layerOf(pane, nodeId) {
    if (pane.layout === "split") return nodeId.replace(/^gpu[0-9]+\./, "");
    return nodeId;
  }
  function gpuOf(nodeId) { var m = /^gpu([0-9]+)\./.exec(nodeId); return m ? Number(m[1]) : null; }

  function show(pane, layout) {
    pane.layout = layout;
    if (pane.pz) { pane.pz.destroy(); pane.pz = null; }
    while (pane.box.lastChild && pane.box.lastChild !== pane.title) pane.box.removeChild(pane.box.lastChild);
    var doc = new DOMParser().parseFromString(pane.layouts[layout], "image/svg+xml");
    var svg = document.importNode(doc.documentElement, true);
    svg.removeAttribute("width"); svg.removeAttribute("height");
    pane.box.appendChild(svg);
    pane.svg = svg; pane.nodes = {}; pane.edges = [];
    var byLayer = pane.byLayer;
    Array.prototype.forEach.call(svg.querySelectorAll("g.node"), function (g) {
      var t = g.querySelector("title"); if (!t) return;
      var id = t.textContent, name = layerOf(pane, id);
      g.setAttribute("data-layer", name);
      (pane.nodes[name] = pane.nodes[name] || []).push(g);
      g.addEventListener("click", function (ev) { ev.stopPropagation(); clicked(pane, name); });
      g.addEventListener("mouseenter", function () { hover(pane, name, true); });
      g.addEventListener("mouseleave", function () { hover(pane, name, false); });
      if (pane.status && pane.status[name]) g.classList.add("st-" + pane.status[name]);
    });
    Array.prototype.forEach.call(svg.querySelectorAll("g.edge"), function (g) {
      var t = g.querySelector("title"); if (!t) return;
      var ends = t.textContent.split("->");
      var e = { g: g, tail: layerOf(pane, ends[0]), head: layerOf(pane, ends[1]), gpu: gpuOf(ends[0]) };
      pane.edges.push(e);
      var path = g.querySelector("path");
      var layer = byLayer[e.tail], stage = pane.stageByName[e.tail];
      var shape = e.tail === "input" ? pane.net.input : layer ? layer.output : stage ? stage.output : "";
      if (layer && e.gpu !== null && layer.lane) shape = layer.lane.shapes[e.gpu];
      if (path && shape) {
        var len = path.getTotalLength(), p = path.getPointAtLength(len / 2);
        var label = svgEl("text");
        label.setAttribute("x", p.x + 4); label.setAttribute("y", p.y);
        label.setAttribute("class", "eshape");
        label.textContent = shape;
        g.appendChild(label);
      }
    });
    pane.pz = svgPanZoom(svg, { zoomEnabled: true, controlIconsEnabled: false, fit: true, center: true,
                                minZoom: 0.05, maxZoom: 60, dblClickZoomEnabled: false, zoomScaleSensitivity: 0.3 });
    if (selected && selected.pane === pane) mark(pane, selected.name, "sel", true);
  }

  function fit() { panes.forEach(function (p) { p.pz.resize(); p.pz.fit(); p.pz.center(); }); }

  function centreOn(pane, names) {
    var gs = [];
    names.forEach(function (n) { (pane.nodes[n] || []).forEach(function (g) { gs.push(g); }); });
    if (!gs.length) return false;
    var box = pane.box.getBoundingClientRect();
    var rect = function () {
      var r = { l: Infinity, t: Infinity, r: -Infinity, b: -Infinity };
      gs.forEach(function (g) { var q = g.getBoundingClientRect(); r.l = Math.min(r.l, q.left); r.t = Math.min(r.t, q.top); r.r = Math.max(r.r, q.right); r.b = Math.max(r.b, q.bottom); });
      return r;
    };
    var r = rect(), h = r.b - r.t, w = r.r - r.l;
    var factor = Math.min(box.height * 0.8 / Math.max(h, 1), box.width * 0.8 / Math.max(w, 1), 60 / Math.max(h / gs.length, 1) * 1.0);
    if (gs.length === 1) factor = Math.min(factor, 70 / Math.max(h, 1));
    if (factor > 0 && isFinite(factor)) pane.pz.zoomBy(factor);
    r = rect();
    pane.pz.panBy({ x: box.left + box.width / 2 - (r.l + r.r) / 2, y: box.top + box.height / 2 - (r.t + r.b) / 2 });
    return true;
  }

  function mark(pane, name, cls, on) {
    (pane.nodes[name] || []).forEach(function (g) { g.classList.toggle(cls, on); });
  }
  function hover(pane, name, on) {
    mark(pane, name, "hl", on);
    pane.edges.forEach(function (e) {
      if (e.head === name) { e.g.classList.toggle("hl-in", on); mark(pane, e.tail, "hl-in", on); }
      if (e.tail === name) { e.g.classList.toggle("hl-out", on); mark(pane, e.head, "hl-out", on); }
    });
  }
  function select(pane, name) {
    panes.forEach(function (p) { Array.prototype.forEach.call(p.svg.querySelectorAll("g.node.sel"), function (g) { g.classList.remove("sel"); }); });
    selected = pane ? { pane: pane, name: name } : null;
    if (pane) mark(pane, name, "sel", true);
  }

  // ------------------------------------------------------------------ the panel
  function table(rows) {
    var t = el("table");
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === "") return;
      var tr = el("tr"); tr.appendChild(el("td", r[0]));
      var td = el("td", r[1], r[2]); tr.appendChild(td); t.appendChild(tr);
    });
    return t;
  }
  function openPanel(nodes) {
    var body = $("panel-body");
    while (body.firstChild) body.removeChild(body.firstChild);
    nodes.forEach(function (n) { body.appendChild(n); });
    $("panel").hidden = false;
  }
  function closePanel() { $("panel").hidden = true; select(null); }
  function linkTo(pane, name) {
    var a = el("a", name, "layer");
    a.addEventListener("click", function () { goTo(pane, name); });
    return a;
  }
  function layerPanel(pane, L) {
    var out = [el("h2", L.name), el("div", L.op + (L.label ? " " + L.label : ""), "op")];
    if (L.note) out.push(el("div", L.note, "note"));
    out.push(el("h3", "shape"));
    out.push(el("div", L.in_shapes.join(" + ") + " → " + L.output, "shape"));
    if (L.formula) out.push(el("div", L.formula, "formula"));
    L.warnings.forEach(function (w) { out.push(el("div", "⚠ " + w, "warn")); });
    if (L.expect) out.push(el("div", "expect: " + L.expect, "muted"));
    out.push(el("h3", "settings"));
    out.push(table(Object.keys(L.settings).map(function (k) { return [k, L.settings[k]]; })));
    out.push(el("h3", "counts"));
    out.push(table([["params", fmt(L.params) + (L.params >= 1000 ? " (" + human(L.params) + ")" : "")],
                    ["buffers", L.buffers ? fmt(L.buffers) : ""],
                    ["MACs", fmt(L.macs) + (L.macs >= 1000 ? " (" + human(L.macs) + ")" : "")],
                    ["neurons", fmt(L.neurons)], ["activations", fmt(L.activations)],
                    ["receptive field", L.rf ? L.rf.join("×") + " px" + (L.rf_jump ? ", jump " + L.rf_jump.join("×") : "") : ""]]));
    if (L.lane) { out.push(el("h3", "GPU lane")); out.push(el("div", L.lane.text, L.lane.crossing ? "warn" : "")); }
    out.push(el("h3", "graph"));
    var io = el("div"); io.appendChild(el("span", "reads: "));
    L.inputs.forEach(function (n, i) { if (i) io.appendChild(el("span", ", ")); io.appendChild(n === "input" ? el("span", "input") : linkTo(pane, n)); });
    out.push(io);
    var ro = el("div"); ro.appendChild(el("span", "read by: "));
    if (!L.readers.length) ro.appendChild(el("span", "(network output)"));
    L.readers.forEach(function (n, i) { if (i) ro.appendChild(el("span", ", ")); ro.appendChild(linkTo(pane, n)); });
    out.push(ro);
    if (L.stage) out.push(el("div", "in block use " + L.stage));
    if (L.claims.length) {
      out.push(el("h3", "check"));
      L.claims.forEach(function (c) {
        out.push(el("div", (c.ok ? "✓ " : "✗ ") + c.what + ": claimed " + c.claimed + ", computed " + c.computed, c.ok ? "ok" : "fail"));
        if (c.how) out.push(el("div", c.how, "formula"));
        if (c.explanation) out.push(el("div", c.explanation, "fail"));
      });
    }
    return out;
  }
  function stagePanel(st) {
    return [el("h2", st.label), el("div", st.layers.length + " layers · output " + st.output),
            el("div", "Click the box to open the unfolded network centred on it.")];
  }
  function pairPanel(P, A, B) {
    var out = [el("h2", (P.a || "—") + "  ↔  " + (P.b || "—")), el("div", P.status + (P.moved ? " · moved " + P.moved : ""), "st")];
    var la = P.a ? A.byLayer[P.a] : null, lb = P.b ? B.byLayer[P.b] : null;
    if (P.changes.length) {
      out.push(el("h3", "differences"));
      var t = el("table"), hd = el("tr"); hd.appendChild(el("td", "")); hd.appendChild(el("td", A.net.name)); hd.appendChild(el("td", B.net.name)); t.appendChild(hd);
      P.changes.forEach(function (c) { var tr = el("tr"); tr.appendChild(el("td", c.key)); tr.appendChild(el("td", c.a)); tr.appendChild(el("td", c.b)); t.appendChild(tr); });
      out.push(t);
    }
    out.push(el("h3", "side by side"));
    var rows = [["op", la ? la.op + " " + la.label : "—", lb ? lb.op + " " + lb.label : "—"],
                ["output", la ? la.output : "—", lb ? lb.output : "—"],
                ["params", la ? fmt(la.params) : "—", lb ? fmt(lb.params) : "—"],
                ["MACs", la ? fmt(la.macs) : "—", lb ? fmt(lb.macs) : "—"]];
    var t2 = el("table");
    rows.forEach(function (r) { var tr = el("tr"); r.forEach(function (c) { tr.appendChild(el("td", c)); }); t2.appendChild(tr); });
    out.push(t2);
    if (la && la.formula) out.push(el("div", "A: " + la.formula, "formula"));
    if (lb && lb.formula) out.push(el("div", "B: " + lb.formula, "formula"));
    return out;
  }

  function clicked(pane, name) {
    if (DATA.mode === "compare") {
      var P = pane.pairOf[name]; if (!P) return;
      select(null);
      if (P.a) mark(panes[0], P.a, "sel", true);
      if (P.b) mark(panes[1], P.b, "sel", true);
      selected = { pane: pane, name: name };
      var other = pane === panes[0] ? panes[1] : panes[0], partner = other === panes[0] ? P.a : P.b;
      if (partner) centreOn(other, [partner]);  // the partner layer brought into view
      openPanel(pairPanel(P, panes[0], panes[1]));
      return;
    }
    var st = pane.stageByName[name];
    if (st && pane.layout === "folded") { unfoldAt(pane, st); return; }
    var L = pane.byLayer[name];
    select(pane, name);
    if (L) openPanel(layerPanel(pane, L));
    else if (name === "input") openPanel([el("h2", "input"), el("div", pane.net.input, "shape")]);
  }
  function unfoldAt(pane, st) {
    show(pane, pane.layouts.split && pane.prev === "split" ? "split" : "plain");
    syncButtons();
    centreOn(pane, st.layers);
    st.layers.forEach(function (n) { mark(pane, n, "found", true); });
    setTimeout(function () { st.layers.forEach(function (n) { mark(pane, n, "found", false); }); }, 1500);
  }
  function goTo(pane, name) {
    if (!pane.nodes[name] && pane.layout === "folded") { show(pane, "plain"); syncButtons(); }
    centreOn(pane, [name]);
    clicked(pane, name);
  }

  // ------------------------------------------------------------------ header, toolbar, search
  function header() {
    var T = $("totals");
    if (DATA.mode === "compare") {
      $("net-name").textContent = DATA.a.name + "  vs  " + DATA.b.name;
      ["params", "macs"].forEach(function (m) {
        var x = DATA.totals[m];
        var pct = x.a ? ((x.b - x.a) / x.a * 100) : null;
        T.appendChild(el("span", (m === "macs" ? "MACs" : m) + ": " + fmt(x.a) + " → " + fmt(x.b) +
          (pct === null ? "" : " (" + (pct >= 0 ? "+" : "") + pct.toFixed(1) + "%)") + "   "));
      });
      var counts = {}; DATA.pairs.forEach(function (p) { counts[p.status] = (counts[p.status] || 0) + 1; });
      var lg = el("span"); lg.id = "legend";
      [["added", "#b7e4b0"], ["removed", "#f5b7b1"], ["changed", "#fad7a0"]].forEach(function (s) {
        var sp = el("span", s[0] + " " + (counts[s[0]] || 0)); sp.style.background = s[1]; lg.appendChild(sp);
      });
      T.appendChild(lg);
      return;
    }
    var N = DATA.net, t = N.totals;
    $("net-name").textContent = N.name;
    T.appendChild(el("span", "input " + N.input + " · " + fmt(t.params) + " params (" + human(t.params) + ") · " +
      fmt(t.macs) + " MACs (" + human(t.macs) + ") · " + fmt(t.neurons) + " neurons · " + N.layers.length + " layers · "));
    var c = N.checks;
    T.appendChild(el("span", "check: " + c.passed + " ✓" + (c.failed ? "  " + c.failed + " ✗" : ""), c.failed ? "bad" : "good"));
    var tip = [N.source, N.description].concat(c.network.map(function (x) { return (x.ok ? "✓ " : "✗ ") + x.what + ": claimed " + x.claimed + ", computed " + x.computed; }));
    T.title = tip.filter(Boolean).join("\n");
  }

  function toggle(btn, on) { btn.setAttribute("aria-pressed", on ? "true" : "false"); }
  function syncButtons() {
    var p = panes[0];
    toggle($("lanes"), p.layout === "split");
    toggle($("fold"), p.layout === "folded");
  }

  function search(q) {
    var R = $("results");
    while (R.firstChild) R.removeChild(R.firstChild);
    q = q.trim().toLowerCase();
    if (!q) { R.hidden = true; return; }
    var hits = [];
    panes.forEach(function (pane) {
      pane.net.layers.forEach(function (L) {
        if (L.name.toLowerCase().indexOf(q) >= 0 || L.op.toLowerCase().indexOf(q) >= 0) hits.push([pane, L]);
      });
    });
    hits.slice(0, 100).forEach(function (h, i) {
      var li = el("li"); li.appendChild(el("span", h[1].name, "name")); li.appendChild(el("span", h[1].op + " " + h[1].label + " → " + h[1].output, "op"));
      if (panes.length > 1) li.appendChild(el("span", " (" + h[0].net.name + ")", "op"));
      if (i === 0) li.classList.add("active");
      li.addEventListener("click", function () { R.hidden = true; goTo(h[0], h[1].name); });
      R.appendChild(li);
    });
    if (!hits.length) R.appendChild(el("li", "no layer matches"));
    R.hidden = false;
  }

  // ------------------------------------------------------------------ start
  function makePane(net, layouts, key, title) {
    var box = el("div", null, "pane"); box.id = "pane-" + key;
    var pane = { key: key, box: box, net: net, layouts: layouts, byLayer: {}, stageByName: {}, pairOf: {} };
    if (title) { pane.title = el("div", title, "pane-title"); box.appendChild(pane.title); }
    net.layers.forEach(function (L) { pane.byLayer[L.name] = L; });
    net.stages.forEach(function (s) {
      var last = pane.byLayer[s.layers[s.layers.length - 1]];
      s.output = last ? last.output : ""; pane.stageByName[s.name] = s;
    });
    $("main").appendChild(box);
    panes.push(pane);
    return pane;
  }

  header();
  if (DATA.mode === "compare") {
    var A = makePane(DATA.a, DATA.layouts_a, "a", "A: " + DATA.a.name);
    var B = makePane(DATA.b, DATA.layouts_b, "b", "B: " + DATA.b.name);
    A.status = {}; B.status = {};
    DATA.pairs.forEach(function (p) {
      var st = p.status === "same" || p.status === "moved" ? null : p.status;
      if (p.a) { A.pairOf[p.a] = p; if (st) A.status[p.a] = st === "added" ? "added" : st === "removed" ? "removed" : "changed"; }
      if (p.b) { B.pairOf[p.b] = p; if (st) B.status[p.b] = st === "added" ? "added" : st === "removed" ? "removed" : "changed"; }
    });
    show(A, "plain"); show(B, "plain");
  } else {
    var P = makePane(DATA.net, DATA.layouts, "net", "");
    show(P, DATA.initial);
    if (DATA.layouts.split) $("lanes").hidden = false;
    if (DATA.layouts.folded) $("fold").hidden = false;
    syncButtons();
  }

  $("fit").addEventListener("click", fit);
  $("shapes").addEventListener("click", function () {
    var on = $("shapes").getAttribute("aria-pressed") !== "true";
    toggle($("shapes"), on); $("main").classList.toggle("show-shapes", on);
  });
  $("lanes").addEventListener("click", function () {
    var p = panes[0]; p.prev = p.layout;
    show(p, p.layout === "split" ? "plain" : "split"); syncButtons();
  });
  $("fold").addEventListener("click", function () {
    var p = panes[0];
    show(p, p.layout === "folded" ? "plain" : "folded"); syncButtons();
  });
  $("close").addEventListener("click", closePanel);
  $("search").addEventListener("input", function () { search(this.value); });
  $("search").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { var first = $("results").querySelector("li.active"); if (first) first.click(); }
  });
  document.addEventListener("keydown", function (ev) {
    var typing = document.activeElement === $("search");
    if (ev.key === "Escape") {
      if (!$("results").hidden) { $("results").hidden = true; $("search").blur(); return; }
      closePanel(); $("search").blur(); return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "/") { ev.preventDefault(); $("search").focus(); $("search").select(); }
    else if (ev.key === "f") { fit(); }
  });
  window.addEventListener("resize", function () { panes.forEach(function (p) { p.pz.resize(); }); });
  window.archviz.ready = true;
  window.archviz.readyAt = performance.now();  // ms since navigation start (benchmarks/bench_view.py)
  document.body.setAttribute("data-ready", "1");
})();
