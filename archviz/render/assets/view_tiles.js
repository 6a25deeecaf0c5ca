/* archviz view: large diagrams draw only what is near the screen. A layout with more than
   MIN_NODES nodes has its nodes and edges moved, in document order, into tiles (<g class="tile">)
   of PER_TILE each, with each tile's box read from the SVG's own coordinates (no layout needed);
   after each pan or zoom, tiles whose box is more than a screen away are taken out of the
   document (a comment holds each one's place, so the drawing order stays). The browser then
   styles, lays out and paints a few hundred elements instead of all of them, which is what made
   unfolding a 5,000-layer network take seconds. Out of the document, not display:none: when a
   layout kept with content-visibility:hidden is shown, Chromium styles every element under it,
   display:none subtrees included (50,000 elements, about 280 ms, at 5,000 layers). Elements
   are moved, never copied: classes, colours and listeners are untouched, and the page's maps
   (view.js) still reach them. */
var ArchvizTiles = (function () {
  "use strict";
  var MIN_NODES = 100, PER_TILE = 60, MARGIN = 1.0;  // margin: screens on each side kept drawn

  function extend(box, x, y) {
    if (x < box.l) box.l = x; if (x > box.r) box.r = x; if (y < box.t) box.t = y; if (y > box.b) box.b = y;
  }
  function boxOf(g, box) {  // outline points, path coordinates, ellipses and text anchors
    Array.prototype.forEach.call(g.querySelectorAll("polygon, path, ellipse, text"), function (e) {
      var tag = e.tagName;
      if (tag === "ellipse") {
        var cx = +e.getAttribute("cx"), cy = +e.getAttribute("cy"), rx = +e.getAttribute("rx"), ry = +e.getAttribute("ry");
        extend(box, cx - rx, cy - ry); extend(box, cx + rx, cy + ry);
      } else if (tag === "text") {
        var x = +e.getAttribute("x"), y = +e.getAttribute("y"), w = (e.textContent || "").length * 8;
        extend(box, x - w, y - 14); extend(box, x + w, y + 4);
      } else {
        var n = (e.getAttribute(tag === "path" ? "d" : "points") || "").match(/-?\d+(?:\.\d+)?(?:e-?\d+)?/g) || [];
        for (var i = 0; i + 1 < n.length; i += 2) extend(box, +n[i], +n[i + 1]);
      }
    });
  }

  // made before the svg is put in the document, every tile out of it: the first layout and
  // svg-pan-zoom's set-up then measure a nearly empty diagram; follow() and cull() bring in
  // the tiles near the screen
  function Tiles(svg) {
    this.svg = svg; this.tiles = []; this.pending = false;
    var graph = svg.querySelector("g.graph");
    var items = Array.prototype.filter.call(graph.children, function (c) {
      return c.classList.contains("node") || c.classList.contains("edge");
    });
    for (var i = 0; i < items.length; i += PER_TILE) {
      var g = document.createElementNS("http://www.w3.org/2000/svg", "g"), box = { l: Infinity, t: Infinity, r: -Infinity, b: -Infinity };
      var mark = document.createComment("tile");
      g.setAttribute("class", "tile");
      graph.insertBefore(mark, items[i]);
      items.slice(i, i + PER_TILE).forEach(function (el) { g.appendChild(el); boxOf(el, box); });
      this.tiles.push({ g: g, box: box, shown: false, mark: mark });
    }
    this.graph = graph;
  }
  Tiles.prototype.follow = function (pz, viewport) { this.pz = pz; this.viewport = viewport; };
  Tiles.prototype.rect = function () {  // the screen, plus MARGIN screens each side, in the graph's units
    var z = this.pz.getSizes().realZoom, pan = this.pz.getPan(), o = this.svg.getBoundingClientRect();
    var m = this.viewport.getCTM().inverse().multiply(this.graph.getCTM()).inverse();
    var p = this.svg.createSVGPoint(), r = { l: Infinity, t: Infinity, r: -Infinity, b: -Infinity };
    var w = o.width, h = o.height;
    [[-MARGIN * w, -MARGIN * h], [(1 + MARGIN) * w, (1 + MARGIN) * h]].forEach(function (c) {
      p.x = (c[0] - pan.x) / z; p.y = (c[1] - pan.y) / z;
      var q = p.matrixTransform(m); extend(r, q.x, q.y);
    });
    return r;
  };
  Tiles.prototype.set = function (t, on) {  // out of the document, a comment holds its place
    if (t.shown === on) return;
    t.shown = on;
    if (on) t.mark.parentNode.replaceChild(t.g, t.mark); else t.g.parentNode.replaceChild(t.mark, t.g);
  };
  Tiles.prototype.cull = function () {
    var r = this.rect(), self = this;
    this.tiles.forEach(function (t) {
      self.set(t, t.box.l < r.r && r.l < t.box.r && t.box.t < r.b && r.t < t.box.b);
    });
  };
  Tiles.prototype.schedule = function () {  // once per frame, after svg-pan-zoom applied its change
    if (this.pending) return;
    this.pending = true;
    var self = this;
    requestAnimationFrame(function () { self.pending = false; self.cull(); });
  };
  Tiles.prototype.showAll = function () { var self = this; this.tiles.forEach(function (t) { self.set(t, true); }); };
  Tiles.prototype.reveal = function (els) {  // before measuring these elements (getBBox)
    var self = this;
    els.forEach(function (e) {
      var g = e.closest("g.tile");
      self.tiles.forEach(function (t) { if (t.g === g) self.set(t, true); });
    });
  };

  function make(svg, nodeCount) {
    return nodeCount > MIN_NODES ? new Tiles(svg) : null;
  }
  return { make: make, MIN_NODES: MIN_NODES };
})();
