/* archviz view: colour by cost. Each metric gives every node the sum of its layers' values
   (a folded block use: all its layers); fills follow a sequential scale on the square root of
   the value (so small layers still differ), with a legend bar from 0 to the largest node. */
var ArchvizColour = (function () {
  "use strict";
  var METRICS = [
    { key: "family", title: "op family" },
    { key: "params", title: "parameters", unit: "" },
    { key: "macs", title: "MACs", unit: "" },
    { key: "saved", title: "activation memory (saved for backward, bytes per image)", unit: "B" },
    { key: "time", title: "measured time (forward + backward, ms)", unit: " ms" }
  ];
  // light yellow → orange → dark red (ColorBrewer YlOrRd), no op family's pastel
  var STOPS = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"];
  var ZERO = "#ffffff";

  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.substr(i, 2), 16); }); }
  function mix(a, b, t) {
    var x = hex(a), y = hex(b);
    return "rgb(" + x.map(function (v, i) { return Math.round(v + (y[i] - v) * t); }).join(",") + ")";
  }
  function fill(v, max) {
    if (!(v > 0) || !(max > 0)) return ZERO;
    var t = Math.sqrt(v / max) * (STOPS.length - 1), i = Math.min(Math.floor(t), STOPS.length - 2);
    return mix(STOPS[i], STOPS[i + 1], t - i);
  }
  // text on a fill: white on the dark end of the scale, else the drawing's own colour
  function ink(rgb) {
    var m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(rgb || "");
    if (!m) return "";
    var lum = (0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3]) / 255;   // relative luminance (sRGB)
    return lum < 0.45 ? "#ffffff" : "";
  }
  function gradient() {
    var n = STOPS.length - 1;
    return "linear-gradient(to right, " + STOPS.map(function (c, i) {
      return c + " " + (Math.sqrt(i / n) * 100).toFixed(1) + "%";  // the bar is linear in value
    }).join(", ") + ")";
  }
  function layerValue(L, key) { var v = L[key]; return typeof v === "number" ? v : 0; }

  // name → value for every node drawn in a pane's current layout (input: 0)
  function nodeValues(pane, key) {
    var out = {};
    Object.keys(pane.nodes).forEach(function (name) {
      var members = pane.membersOf(name), sum = 0;
      members.forEach(function (n) { var L = pane.byLayer[n]; if (L) sum += layerValue(L, key); });
      out[name] = sum;
    });
    return out;
  }
  function shapeOf(g) { return g.querySelector("path, polygon, ellipse"); }

  function paint(pane, key) {
    var vals = key === "family" ? null : nodeValues(pane, key), max = 0;
    if (vals) Object.keys(vals).forEach(function (n) { if (vals[n] > max) max = vals[n]; });
    Object.keys(pane.nodes).forEach(function (name) {
      pane.nodes[name].forEach(function (g) {
        var s = shapeOf(g); if (!s) return;
        var f = vals && name !== "input" ? fill(vals[name], max) : "";
        s.style.fill = f;
        var text = ink(f);
        g.querySelectorAll("text").forEach(function (t) { t.style.fill = text; });
      });
    });
    return max;
  }
  function available(net, key) {
    return key === "family" || net.totals[key] !== null && net.totals[key] !== undefined;
  }
  return { METRICS: METRICS, nodeValues: nodeValues, paint: paint, gradient: gradient, fill: fill,
           available: available };
})();
