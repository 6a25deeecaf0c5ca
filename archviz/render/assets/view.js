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

  // ------------------------------------------------------------------ one pane: its layouts
  // Every layout of a pane is parsed once (the first at load, the others just after) and kept;
  // switching layouts (Fold, GPU lanes) shows one and hides the others, so it costs no parsing.
  function layerOf(layout, nodeId) {
    if (layout === "split") return nodeId.replace(/^gpu[0-9]+\./, "");
    return nodeId;
  }
  function gpuOf(nodeId) { var m = /^gpu([0-9]+)\./.exec(nodeId); return m ? Number(m[1]) : null; }
  function nodeOf(ev) { var g = ev.target.closest ? ev.target.closest("g.node") : null; return g ? g.getAttribute("data-layer") : null; }

  function bind(pane, svg) {  // one listener per event for the whole diagram
    var over = null;
    svg.addEventListener("click", function (ev) {
      var name = nodeOf(ev); if (name !== null) { ev.stopPropagation(); clicked(pane, name); }
    });
    svg.addEventListener("mouseover", function (ev) {
      var name = nodeOf(ev); if (name === over) return;
      if (over !== null) hover(pane, over, false);
      over = name; if (name !== null) hover(pane, name, true);
    });
    svg.addEventListener("mouseleave", function () { if (over !== null) hover(pane, over, false); over = null; });
  }

  function build(pane, layout) {
    var text = pane.layouts[layout];
    var holder = el("div", null, "view off");  // not drawn until show(); laid out only as measured
    pane.stage.appendChild(holder);
    var doc = new DOMParser().parseFromString(text, "image/svg+xml");
    var svg = document.importNode(doc.documentElement, true);
    var vb = svg.viewBox && svg.viewBox.baseVal, vw = vb ? vb.width : 0, vh = vb ? vb.height : 0;
    svg.removeAttribute("width"); svg.removeAttribute("height");
    var v = { layout: layout, holder: holder, svg: svg, nodes: {}, edges: [], rankdir: ArchvizMap.rankdirOf(text) };
    v.first = Array.prototype.slice.call(svg.querySelectorAll("g.node"), 0, 12);  // in document order
    Array.prototype.forEach.call(svg.querySelectorAll("g.node"), function (g) {
      var t = g.querySelector("title"); if (!t) return;
      var name = layerOf(layout, t.textContent);
      g.setAttribute("data-layer", name);
      (v.nodes[name] = v.nodes[name] || []).push(g);
      if (pane.status && pane.status[name]) g.classList.add("st-" + pane.status[name]);
    });
    Array.prototype.forEach.call(svg.querySelectorAll("g.edge"), function (g) {
      var t = g.querySelector("title"); if (!t) return;
      var ends = t.textContent.split("->");
      v.edges.push({ g: g, tail: layerOf(layout, ends[0]), head: layerOf(layout, ends[1]), gpu: gpuOf(ends[0]) });
    });
    bind(pane, svg);
    var shapes = svg.querySelectorAll("g.graph polygon, g.graph path, g.graph ellipse, g.graph polyline");  // for the minimap
    v.tiles = ArchvizTiles.make(svg, Object.keys(v.nodes).length);  // large: drawn near the screen only
    holder.appendChild(svg);
    var update = function () { if (v.map) v.map.update(v.pz); if (v.tiles) v.tiles.schedule(); };
    v.pz = svgPanZoom(svg, { zoomEnabled: true, controlIconsEnabled: false, fit: true, center: true,
                             minZoom: 0.005, maxZoom: 60, dblClickZoomEnabled: false, zoomScaleSensitivity: 0.3,
                             onZoom: update, onPan: update });
    v.viewport = svg.querySelector("g.svg-pan-zoom_viewport");
    var input = (v.nodes.input || v.first)[0];
    if (v.tiles) { v.tiles.follow(v.pz, v.viewport); if (input) v.tiles.reveal([input]); }
    if (input) ArchvizMap.readable(v.pz, svg, v.viewport, holder, v.rankdir, v.first, input);
    if (v.tiles) v.tiles.cull();
    v.map = new ArchvizMap.Minimap(holder, function (x, y) { ArchvizMap.jumpTo(v.pz, x, y); });
    var graph = svg.querySelector("g.graph");
    if (vw && graph) setTimeout(function () { v.map.draw(graph, shapes, vw, vh); update(); }, 0);
    pane.views[layout] = v;
    if (shapesOn()) labelEdges(pane, v);
    if (colourKey() !== "family") ArchvizColour.paint({ nodes: v.nodes, membersOf: pane.membersOf, byLayer: pane.byLayer }, colourKey());
    return v;
  }

  // Each edge's tensor shape, made the first time it is asked for, at the first spot along the
  // edge (its middle, then nearer either end, right of it, then left) where the label's box meets
  // no node's box and no label placed before; an edge with no such spot gets its shape as a
  // tooltip (its <title>) instead, so no label ever covers a node's text.
  var SPOTS = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8];
  function labelEdges(pane, v) {
    if (v.labelled) return;
    v.labelled = true;
    if (v.tiles) v.tiles.showAll();  // measured whole; culled again on the next frame
    var grid = new ArchvizMap.BoxGrid(60);
    Object.keys(v.nodes).forEach(function (n) { v.nodes[n].forEach(function (g) { grid.add(g.getBBox()); }); });
    v.edges.forEach(function (e) {  // Graphviz's own edge labels (the split view's crossing counts)
      Array.prototype.forEach.call(e.g.querySelectorAll("text"), function (t) { grid.add(t.getBBox()); });
    });
    v.edges.forEach(function (e) {
      var path = e.g.querySelector("path");
      var layer = pane.byLayer[e.tail], stage = pane.stageByName[e.tail];
      var shape = e.tail === "input" ? pane.net.input : layer ? layer.output : stage ? stage.output : "";
      if (layer && e.gpu !== null && layer.lane) shape = layer.lane.shapes[e.gpu];
      if (!path || !shape) return;
      var label = svgEl("text");
      label.setAttribute("class", "eshape");
      label.textContent = shape;
      e.g.appendChild(label);
      if (!placeLabel(label, path, grid)) {
        e.g.removeChild(label);
        var tip = e.g.querySelector("title"); if (tip) tip.textContent = shape;
      }
    });
    if (v.tiles) v.tiles.schedule();
  }
  function placeLabel(label, path, grid) {
    var len = path.getTotalLength(), w = null;
    for (var i = 0; i < SPOTS.length; i++) {
      var p = path.getPointAtLength(len * SPOTS[i]);
      for (var side = 0; side < 2; side++) {
        var x = side ? p.x - 4 : p.x + 4;
        label.setAttribute("x", x); label.setAttribute("y", p.y + 3);
        label.setAttribute("text-anchor", side ? "end" : "start");
        if (w === null) { var b0 = label.getBBox(); w = b0.width; }
        var box = { x: side ? x - w : x, y: p.y - 7, width: w, height: 12 };
        if (!grid.hits(box)) { grid.add(box); return true; }
      }
    }
    return false;
  }

  function show(pane, layout) {
    var v = pane.views[layout] || build(pane, layout);
    Object.keys(pane.views).forEach(function (k) { pane.views[k].holder.classList.toggle("off", k !== layout); });
    pane.layout = layout; pane.svg = v.svg; pane.pz = v.pz; pane.nodes = v.nodes; pane.edges = v.edges; pane.view = v;
    v.pz.resize(); v.map.update(v.pz);
    if (v.tiles) v.tiles.cull();
    if (selected && selected.pane === pane) mark(pane, selected.name, "sel", true);
  }
  function buildRest() {  // after the page is interactive: the other layouts, ready for a switch
    panes.forEach(function (pane) {
      Object.keys(pane.layouts).forEach(function (k) { if (!pane.views[k]) build(pane, k); });
    });
  }

  function fit() { panes.forEach(function (p) { p.pz.resize(); p.pz.fit(); p.pz.center(); }); }

  function visibleRect(pane) {  // the pane less what the side panel covers
    var b = pane.stage.getBoundingClientRect(), r = { left: b.left, top: b.top, right: b.right, bottom: b.bottom };
    if (!$("panel").hidden) {
      var p = $("panel").getBoundingClientRect();
      if (p.left < r.right && p.left > r.left + 120) r.right = p.left;
    }
    r.width = r.right - r.left; r.height = r.bottom - r.top;
    return r;
  }

  function centreOn(pane, names) {
    var gs = [];
    names.forEach(function (n) { (pane.nodes[n] || []).forEach(function (g) { gs.push(g); }); });
    if (!gs.length) return false;
    if (pane.view.tiles) pane.view.tiles.reveal(gs);
    var box = visibleRect(pane);
    var rect = function () { return ArchvizMap.rectOf(pane.pz, pane.svg, pane.view.viewport, gs); };
    var r = rect(), h = r.b - r.t, w = r.r - r.l;
    var factor = Math.min(box.height * 0.8 / Math.max(h, 1), box.width * 0.8 / Math.max(w, 1), 60 / Math.max(h / gs.length, 1) * 1.0);
    if (gs.length === 1) factor = Math.min(factor, 70 / Math.max(h, 1));
    var name = ArchvizMap.nameHeight(pane.pz, pane.view.first);  // never below readable names
    if (name && name * factor < ArchvizMap.MIN_NAME_PX + 1) factor = (ArchvizMap.MIN_NAME_PX + 1) / name;
    if (factor > 0 && isFinite(factor)) pane.pz.zoomBy(factor);
    r = rect();  // centred; a group taller (wider) than the pane starts at its top (left) edge
    var dy = r.b - r.t > box.height * 0.9 ? box.top + 40 - r.t : box.top + box.height / 2 - (r.t + r.b) / 2;
    var dx = r.r - r.l > box.width * 0.9 ? box.left + 40 - r.l : box.left + box.width / 2 - (r.l + r.r) / 2;
    pane.pz.panBy({ x: dx, y: dy });
    return true;
  }

  var marked = [];  // the boxes marked "sel", some perhaps in a tile out of the document (view_tiles.js)
  function mark(pane, name, cls, on) {
    (pane.nodes[name] || []).forEach(function (g) { g.classList.toggle(cls, on); if (cls === "sel" && on) marked.push(g); });
  }
  function hover(pane, name, on) {
    mark(pane, name, "hl", on);
    pane.edges.forEach(function (e) {
      if (e.head === name) { e.g.classList.toggle("hl-in", on); mark(pane, e.tail, "hl-in", on); }
      if (e.tail === name) { e.g.classList.toggle("hl-out", on); mark(pane, e.head, "hl-out", on); }
    });
  }
  function select(pane, name) {
    marked.splice(0).forEach(function (g) { g.classList.remove("sel"); });
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
    out.push(el("h3", "share of the network"));
    out.push(shares(pane, [L.name]));
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
  function stagePanel(pane, st) {
    return [el("h2", st.label), el("div", st.layers.length + " layers · output " + st.output),
            el("h3", "share of the network"), shares(pane, st.layers),
            el("div", "Unfolded: its layers are outlined. Fold blocks folds them again.")];
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
    var st = pane.stageByName[name];
    if (st && pane.layout === "folded") { unfoldAt(pane, st); return; }
    if (DATA.mode === "compare") { clickedPair(pane, name); return; }
    var L = pane.byLayer[name];
    select(pane, name);
    if (L) openPanel(layerPanel(pane, L));
    else if (name === "input") openPanel([el("h2", "input"), el("div", pane.net.input, "shape")]);
  }
  function clickedPair(pane, name) {
    var P = pane.pairOf[name]; if (!P) return;
    select(null);
    if (P.a) mark(panes[0], P.a, "sel", true);
    if (P.b) mark(panes[1], P.b, "sel", true);
    selected = { pane: pane, name: name };
    openPanel(pairPanel(P, panes[0], panes[1]));  // first: the partner is centred in what it leaves
    var other = pane === panes[0] ? panes[1] : panes[0], partner = other === panes[0] ? P.a : P.b;
    if (partner && !other.nodes[partner] && other.layout === "folded") unfoldPane(other);
    if (partner) centreOn(other, [partner]);  // the partner layer brought into view
  }
  function unfoldPane(pane) { show(pane, pane.layouts.split && pane.prev === "split" ? "split" : "plain"); }
  function unfoldAt(pane, st) {
    (DATA.mode === "compare" ? panes : [pane]).forEach(unfoldPane);  // the panes fold together
    syncButtons();
    if (DATA.mode !== "compare") { select(null); openPanel(stagePanel(pane, st)); }
    centreOn(pane, st.layers);
    st.layers.forEach(function (n) { mark(pane, n, "found", true); });
    setTimeout(function () { st.layers.forEach(function (n) { mark(pane, n, "found", false); }); }, 1500);
  }
  function goTo(pane, name) {
    if (!pane.nodes[name] && pane.layout === "folded") { unfoldPane(pane); syncButtons(); }
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
      var lg = el("span"); lg.id = "legend";  // swatches styled as the nodes are (view.css)
      ["added", "removed", "changed", "same"].forEach(function (s) {
        lg.appendChild(el("span", (s === "same" ? "unchanged" : s) + " " + (counts[s] || 0), "sw st-" + s));
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
  function shapesOn() { return $("shapes").getAttribute("aria-pressed") === "true"; }
  function colourKey() { return $("colour").value || "family"; }

  // ------------------------------------------------------------------ colour by cost
  function colourBy(key) {
    var max = 0;
    panes.forEach(function (p) {
      Object.keys(p.views).forEach(function (k) {
        var v = p.views[k], m = ArchvizColour.paint({ nodes: v.nodes, membersOf: p.membersOf, byLayer: p.byLayer }, key);
        if (v === p.view) max = Math.max(max, m);
      });
    });
    var lg = $("scale");
    while (lg.firstChild) lg.removeChild(lg.firstChild);
    lg.hidden = key === "family";
    if (key === "family") return;
    var M = ArchvizColour.METRICS.filter(function (m) { return m.key === key; })[0];
    lg.appendChild(el("span", "0"));
    var bar = el("span", null, "bar"); bar.style.background = ArchvizColour.gradient(); lg.appendChild(bar);
    lg.appendChild(el("span", amount(max, key) + " (the largest box) · " + M.title));
  }
  function amount(v, key) {
    if (key === "time") return Number(v).toFixed(3) + " ms";
    return human(v) + (key === "saved" ? "B" : "");
  }
  function shares(pane, names) {  // each metric: these layers' sum and its share of the network's total
    var rows = [];
    ArchvizColour.METRICS.forEach(function (m) {
      if (m.key === "family" || !ArchvizColour.available(pane.net, m.key)) return;
      var sum = 0, total = pane.net.totals[m.key];
      names.forEach(function (n) { var L = pane.byLayer[n]; if (L && typeof L[m.key] === "number") sum += L[m.key]; });
      rows.push([m.key === "saved" ? "saved for backward" : m.key === "time" ? "measured time" : m.key === "macs" ? "MACs" : "params",
                 amount(sum, m.key) + " · " + (total ? (sum / total * 100).toFixed(1) : "0.0") + "% of the total"]);
    });
    return table(rows);
  }
  function colourControl() {
    var nets = DATA.mode === "compare" ? [DATA.a, DATA.b] : [DATA.net];
    ArchvizColour.METRICS.forEach(function (m) {
      if (!nets.every(function (n) { return ArchvizColour.available(n, m.key); })) return;
      var o = el("option", m.key === "family" ? "op family" : m.key === "saved" ? "activation memory" :
                 m.key === "time" ? "measured time" : m.key === "macs" ? "MACs" : "parameters");
      o.value = m.key; $("colour").appendChild(o);
    });
    $("colour").addEventListener("change", function () { colourBy(colourKey()); });
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
    var pane = { key: key, box: box, net: net, layouts: layouts, byLayer: {}, stageByName: {}, pairOf: {}, views: {} };
    if (title) { pane.title = el("div", title, "pane-title"); box.appendChild(pane.title); }
    pane.stage = el("div", null, "stage"); box.appendChild(pane.stage);
    net.layers.forEach(function (L) { pane.byLayer[L.name] = L; });
    net.stages.forEach(function (s) {
      var last = pane.byLayer[s.layers[s.layers.length - 1]];
      s.output = last ? last.output : ""; pane.stageByName[s.name] = s;
    });
    pane.membersOf = function (name) { var st = pane.stageByName[name]; return st ? st.layers : [name]; };
    $("main").appendChild(box);
    panes.push(pane);
    return pane;
  }
  function diffStatus(A, B) {  // node classes st-added / st-removed / st-changed (a block use: any)
    A.status = {}; B.status = {};
    DATA.pairs.forEach(function (p) {
      var st = p.status === "same" ? null : p.status;
      if (p.a) { A.pairOf[p.a] = p; if (st) A.status[p.a] = st; }
      if (p.b) { B.pairOf[p.b] = p; if (st) B.status[p.b] = st; }
    });
    [A, B].forEach(function (pane) {
      pane.net.stages.forEach(function (s) {
        if (s.layers.some(function (n) { return pane.status[n]; })) pane.status[s.name] = "changed";
      });
    });
  }

  header();
  colourControl();
  if (DATA.mode === "compare") {
    $("main").classList.add("compare");
    var A = makePane(DATA.a, DATA.layouts_a, "a", "A: " + DATA.a.name);
    var B = makePane(DATA.b, DATA.layouts_b, "b", "B: " + DATA.b.name);
    diffStatus(A, B);
    var start = DATA.layouts_a.folded && DATA.layouts_b.folded ? "folded" : "plain";
    show(A, start); show(B, start);
    if (DATA.layouts_a.folded || DATA.layouts_b.folded) $("fold").hidden = false;
  } else {
    var P = makePane(DATA.net, DATA.layouts, "net", "");
    show(P, DATA.initial);
    if (DATA.layouts.split) $("lanes").hidden = false;
    if (DATA.layouts.folded) $("fold").hidden = false;
  }
  syncButtons();

  $("fit").addEventListener("click", fit);
  $("shapes").addEventListener("click", function () {
    var on = !shapesOn();
    toggle($("shapes"), on); $("main").classList.toggle("show-shapes", on);
    if (on) panes.forEach(function (p) { Object.keys(p.views).forEach(function (k) { labelEdges(p, p.views[k]); }); });
  });
  $("lanes").addEventListener("click", function () {
    var p = panes[0]; p.prev = p.layout;
    show(p, p.layout === "split" ? "plain" : "split"); syncButtons();
  });
  $("fold").addEventListener("click", function () {
    var to = panes[0].layout === "folded" ? "plain" : "folded";
    panes.forEach(function (p) { show(p, p.layouts[to] ? to : "plain"); });
    syncButtons();
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
  // for tests and benchmarks: each drawn node's value under a colouring, in the pane's layout
  window.archviz.nodeValues = function (key, i) {
    var p = panes[i || 0]; return ArchvizColour.nodeValues({ nodes: p.nodes, membersOf: p.membersOf, byLayer: p.byLayer }, key);
  };
  window.archviz.layout = function (i) { return panes[i || 0].layout; };
  window.archviz.ready = true;
  window.archviz.readyAt = performance.now();  // ms since navigation start (benchmarks/bench_view.py)
  document.body.setAttribute("data-ready", "1");
  setTimeout(function () {
    buildRest();
    setTimeout(function () {  // after the minimaps buildRest queued: nothing left to do
      window.archviz.builtAt = performance.now();
      document.body.setAttribute("data-built", "1");
    }, 0);
  }, 0);
})();
