"""Reading Graphviz SVG and PNG files for the figure tests: sizes, node boxes, edge-label boxes."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

NS = {"s": "http://www.w3.org/2000/svg"}
Box = tuple[float, float, float, float]  # left, top, right, bottom
CHAR_EM = 0.6  # a generous mean character width, in ems (Helvetica's is about 0.55)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def svg_size(text: str) -> tuple[float, float]:
    m = re.search(r'<svg[^>]*width="([\d.]+)pt"[^>]*height="([\d.]+)pt"', text)
    assert m, "no width/height in the SVG"
    return float(m[1]), float(m[2])


def aspect(w: float, h: float) -> float:
    return max(w, h) / min(w, h)


def _points(el: ET.Element) -> list[tuple[float, float]]:
    raw = el.get("points") or el.get("d") or ""
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", raw)]
    return list(zip(nums[::2], nums[1::2], strict=False))


def node_boxes(text: str) -> dict[str, Box]:
    """Each node's outline bounding box (its polygon, path or ellipse), by its id."""
    root = ET.fromstring(text)
    out = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") != "node":
            continue
        name = g.find("s:title", NS).text or ""
        pts: list[tuple[float, float]] = []
        for el in list(g.iterfind("s:polygon", NS)) + list(g.iterfind("s:path", NS)):
            pts += _points(el)
        for el in g.iterfind("s:ellipse", NS):
            cx, cy, rx, ry = (float(el.get(k)) for k in ("cx", "cy", "rx", "ry"))
            pts += [(cx - rx, cy - ry), (cx + rx, cy + ry)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        out[name] = (min(xs), min(ys), max(xs), max(ys))
    return out


def text_box(el: ET.Element) -> Box:
    """A <text>'s box from its anchor, font size and character count (generous: 0.6 em each)."""
    x, y = float(el.get("x")), float(el.get("y"))
    size = float(el.get("font-size", "10"))
    w = len(el.text or "") * size * CHAR_EM
    left = {"middle": x - w / 2, "end": x - w}.get(el.get("text-anchor", "start"), x)
    return (left, y - size * 0.8, left + w, y + size * 0.2)


def edge_label_boxes(text: str) -> list[tuple[str, Box]]:
    """Every edge label's text box, with the edge's title ("a->b")."""
    root = ET.fromstring(text)
    out = []
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "edge":
            title = g.find("s:title", NS).text or ""
            out += [(title, text_box(t)) for t in g.iterfind("s:text", NS)]
    return out


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_collisions(text: str) -> list[str]:
    """"edge label 'x' over node n" for each edge label box that meets a node box."""
    nodes = node_boxes(text)
    return [f"edge {title}: label box {box} over node {n}"
            for title, box in edge_label_boxes(text) for n, nb in nodes.items() if overlaps(box, nb)]
