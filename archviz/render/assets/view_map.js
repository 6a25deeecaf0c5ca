/* archviz view: first sight and the overview. `readable` opens a diagram at a zoom where every
   node's name is at least MIN_NAME_PX high, at the network's input end; `Minimap` draws the
   whole diagram small in a corner with a frame round the visible part (click or drag it to go
   there). The minimap is a canvas the layout's shapes are drawn into once (Minimap.draw): no
   DOM per node, and nothing to lay out or draw again when its layout is shown. */
var ArchvizMap = (function () {
  "use strict";
  var MIN_NAME_PX = 11, TARGET_NAME_PX = 12, MAX_NAME_PX = 20;

  // svg-pan-zoom applies a zoom or pan on the next animation frame, so the DOM's client rects
  // lag behind it: these work from its state (zoom, pan) and each element's place in the diagram
  function rectOf(pz, svg, viewport, els) {
    var z = pz.getSizes().realZoom, pan = pz.getPan(), o = svg.getBoundingClientRect();
    var inv = viewport.getCTM().inverse(), r = { l: Infinity, t: Infinity, r: -Infinity, b: -Infinity };
    els.forEach(function (e) {
      var bb = e.getBBox(), m = inv.multiply(e.getCTM()), p = svg.createSVGPoint();
      [[bb.x, bb.y], [bb.x + bb.width, bb.y + bb.height]].forEach(function (c) {
        p.x = c[0]; p.y = c[1]; var q = p.matrixTransform(m);
        var x = o.left + q.x * z + pan.x, y = o.top + q.y * z + pan.y;
        r.l = Math.min(r.l, x); r.r = Math.max(r.r, x); r.t = Math.min(r.t, y); r.b = Math.max(r.b, y);
      });
    });
    return r;
  }

  // on-screen height of the smallest name (a node's first <text>) among `gs`, the diagram's first
  // nodes (read from their attributes: they may be out of the document, view_tiles.js)
  function nameHeight(pz, gs) {
    var h = Infinity, z = pz.getSizes().realZoom;
    for (var i = 0; i < gs.length && i < 12; i++) {
      var t = gs[i].querySelector("text");
      // a text's client rect is about 1.12 of its font size high (ascent + descent)
      if (t) h = Math.min(h, (parseFloat(t.getAttribute("font-size")) || 14) * 1.12 * z);
    }
    return isFinite(h) ? h : 0;
  }

  // fit when that is readable; else zoom so names are TARGET_NAME_PX and put `input` (a node in
  // the document) in view; `first`: the diagram's first nodes
  function readable(pz, svg, viewport, box, rankdir, first, input) {
    pz.resize(); pz.fit(); pz.center();
    var h = nameHeight(pz, first);
    if (!h || (h >= MIN_NAME_PX && h <= MAX_NAME_PX)) return;
    pz.zoomBy((h < MIN_NAME_PX ? TARGET_NAME_PX : MAX_NAME_PX) / h);
    if (h > MAX_NAME_PX) { pz.center(); return; }
    var r = rectOf(pz, svg, viewport, [input]), b = box.getBoundingClientRect(), m = 24;
    if (rankdir === "LR") pz.panBy({ x: b.left + m - r.l, y: b.top + b.height / 2 - (r.t + r.b) / 2 });
    else pz.pan({ x: pz.getPan().x + b.left + b.width / 2 - (r.l + r.r) / 2, y: 8 });  // the title and legend, then the input
  }

  function rankdirOf(svgText) {  // Graphviz draws LR graphs wider than tall at the input end
    return /<title>gpu0\./.test(svgText) ? "LR" : "TB";
  }

  function Minimap(host, onJump) {
    this.el = document.createElement("div"); this.el.className = "minimap";
    this.frame = document.createElement("div"); this.frame.className = "mm-frame";
    this.el.appendChild(this.frame); host.appendChild(this.el);
    this.onJump = onJump;
    var self = this, dragging = false;
    var jump = function (ev) {
      var r = self.el.getBoundingClientRect();
      self.onJump((ev.clientX - r.left - self.ox) / self.scale, (ev.clientY - r.top - self.oy) / self.scale);
    };
    this.el.addEventListener("mousedown", function (ev) { dragging = true; ev.preventDefault(); ev.stopPropagation(); jump(ev); });
    window.addEventListener("mousemove", function (ev) { if (dragging) jump(ev); });
    window.addEventListener("mouseup", function () { dragging = false; });
  }
  // `shapes`: the outlines of the layout (polygons, paths, ellipses, polylines in document
  // order, some perhaps out of the document, view_tiles.js); `graph`: its g.graph, whose
  // transform maps them to the viewBox (w × h). Drawn once, small, into a canvas from their
  // attributes: fills and strokes, no text (illegible at this size). The layout's SVG as a
  // background image would cost the browser a layout of the whole diagram (seconds at 5,000
  // layers, 50 ms at ResNet-50's size) when decoded, and a redraw each time it is painted.
  Minimap.prototype.draw = function (graph, shapes, w, h) {
    var maxW = 180, maxH = 220, k = 2;  // k: canvas pixels per CSS pixel
    var s = this.scale = Math.min(maxW / w, maxH / h);
    var dw = Math.max(w * s, 40), dh = Math.max(h * s, 40);
    this.ox = (dw - w * s) / 2; this.oy = (dh - h * s) / 2;
    this.el.style.width = dw + "px"; this.el.style.height = dh + "px";
    var c = document.createElement("canvas"), ctx = c.getContext("2d");
    c.width = Math.ceil(dw * k); c.height = Math.ceil(dh * k);
    ctx.setTransform(k * s, 0, 0, k * s, k * this.ox, k * this.oy);
    var t = graph.transform.baseVal.consolidate();
    if (t) ctx.transform(t.matrix.a, t.matrix.b, t.matrix.c, t.matrix.d, t.matrix.e, t.matrix.f);
    var thin = 1 / (k * s);  // one canvas pixel: a long diagram's lines stay visible
    Array.prototype.forEach.call(shapes, function (e) { paintShape(ctx, e, thin); });
    this.el.insertBefore(c, this.frame);
  };
  function paintShape(ctx, e, thin) {
    var tag = e.tagName, p, fill = e.getAttribute("fill"), stroke = e.getAttribute("stroke");
    if (tag === "ellipse") {
      p = new Path2D();
      p.ellipse(+e.getAttribute("cx"), +e.getAttribute("cy"), +e.getAttribute("rx"), +e.getAttribute("ry"), 0, 0, 2 * Math.PI);
    } else if (tag === "path") {
      p = new Path2D(e.getAttribute("d") || "");
    } else {  // "x,y x,y ...": after M, further pairs are line-tos
      p = new Path2D("M" + (e.getAttribute("points") || "") + (tag === "polygon" ? "Z" : ""));
    }
    if (fill && fill !== "none" && tag !== "polyline") { ctx.fillStyle = fill; ctx.fill(p); }
    if (stroke && stroke !== "none") {
      ctx.strokeStyle = stroke; ctx.lineWidth = Math.max(parseFloat(e.getAttribute("stroke-width")) || 1, thin); ctx.stroke(p);
    }
  }
  // the visible part in the diagram's viewBox units (svg-pan-zoom's viewport keeps them)
  Minimap.prototype.update = function (pz) {
    if (!this.scale) return;
    var z = pz.getSizes().realZoom, pan = pz.getPan(), size = pz.getSizes();
    var s = this.scale, f = this.frame.style;
    var x0 = -pan.x / z, y0 = -pan.y / z, x1 = (size.width - pan.x) / z, y1 = (size.height - pan.y) / z;
    f.left = (this.ox + x0 * s) + "px"; f.top = (this.oy + y0 * s) + "px";
    f.width = Math.max((x1 - x0) * s, 3) + "px"; f.height = Math.max((y1 - y0) * s, 3) + "px";
  };
  Minimap.prototype.show = function (on) { this.el.hidden = !on; };

  // centre the diagram's point (x, y) (the diagram's viewBox units) in the pane
  function jumpTo(pz, x, y) {
    var z = pz.getSizes().realZoom, size = pz.getSizes();
    pz.pan({ x: size.width / 2 - x * z, y: size.height / 2 - y * z });
  }

  // boxes ({x, y, width, height}) bucketed in square cells: does a box meet any box added?
  function BoxGrid(cell) { this.cell = cell; this.cells = {}; }
  BoxGrid.prototype.each = function (b, f) {
    var c = this.cell;
    for (var i = Math.floor(b.x / c); i <= Math.floor((b.x + b.width) / c); i++) {
      for (var j = Math.floor(b.y / c); j <= Math.floor((b.y + b.height) / c); j++) if (f(i + "," + j)) return true;
    }
    return false;
  };
  BoxGrid.prototype.add = function (b) {
    var cells = this.cells;
    this.each(b, function (k) { (cells[k] = cells[k] || []).push(b); return false; });
  };
  BoxGrid.prototype.hits = function (b) {
    var cells = this.cells;
    return this.each(b, function (k) {
      return (cells[k] || []).some(function (o) {
        return b.x < o.x + o.width && o.x < b.x + b.width && b.y < o.y + o.height && o.y < b.y + b.height;
      });
    });
  };

  return { readable: readable, nameHeight: nameHeight, rectOf: rectOf, rankdirOf: rankdirOf, Minimap: Minimap,
           jumpTo: jumpTo, BoxGrid: BoxGrid, MIN_NAME_PX: MIN_NAME_PX };
})();
