"""``--rankdir auto``: the direction whose drawing is closest to square, worked out before layout.

Graphviz is not run: each node's size is estimated from its label (characters per line, lines),
nodes are put on ranks by their longest path from the input (as ``dot`` does for a graph of
layers), and the two candidate drawings are sized from those ranks: top to bottom, each rank a
row of nodes side by side and the ranks stacked; left to right, the same turned through 90°.
Lanes (the GPU split) repeat each rank once per GPU across the flow. The title, legend and
lane headers set a minimum width. The estimate is within about 20% of ``dot``'s own size for
the bundled specs (tests/test_figures_layout.py compares them), enough to choose between two
drawings whose aspects differ by a factor of 5 to 50.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import unescape

from ..record import record

CHAR_PT = 6.3        # mean advance of an 11 pt Helvetica character
TITLE_CHAR_PT = 9.0  # the 16 pt bold title
LINE_PT = 14.0       # one label line
PAD_W, PAD_H = 18.0, 8.0  # the node's margin and border
NODESEP, RANKSEP = 0.3 * 72, 0.35 * 72  # as set on the graph (points)
LANE_PAD = 16.0      # a cluster's border and margin, each side
LEGEND_H = 60.0      # title line and legend row
TAG = re.compile(r"<[^>]+>")


@record
class Size:
    w: float
    h: float

    @property
    def aspect(self) -> float:
        """Long side over short side (1 = square)."""
        return max(self.w, self.h) / max(min(self.w, self.h), 1.0)


def label_size(label: str) -> Size:
    """A node's size in points from its label (plain text, or a Graphviz HTML label ``<...>``)."""
    body = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    lines = [unescape(TAG.sub("", part)) for part in re.split(r"<br\s*/?>|\n", body)]
    return Size(max(len(s) for s in lines) * CHAR_PT + PAD_W, len(lines) * LINE_PT + PAD_H)


def ranks(order: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Each node's rank: its longest path from a source (``order`` is topological)."""
    into: dict[str, list[str]] = {}
    for tail, head in edges:
        into.setdefault(head, []).append(tail)
    rank: dict[str, int] = {}
    for n in order:
        rank[n] = max((rank.get(t, 0) + 1 for t in into.get(n, ())), default=0)
    return rank


def drawing_size(sizes: dict[str, Size], rank: dict[str, int], rankdir: str, lanes: int = 1,
                 min_width: float = 0.0, extra_h: float = LEGEND_H) -> Size:
    """The expected size of the drawing (points), title and legend included."""
    rows: dict[int, list[Size]] = {}
    for n, s in sizes.items():
        rows.setdefault(rank[n], []).append(s)
    if rankdir == "TB":
        across = max(sum(s.w for s in r) + NODESEP * (len(r) - 1) for r in rows.values())
        along = sum(max(s.h for s in r) for r in rows.values()) + RANKSEP * (len(rows) - 1)
    else:
        across = max(sum(s.h for s in r) + NODESEP * (len(r) - 1) for r in rows.values())
        along = sum(max(s.w for s in r) for r in rows.values()) + RANKSEP * (len(rows) - 1)
    across = lanes * (across + 2 * LANE_PAD) if lanes > 1 else across
    w, h = (across, along) if rankdir == "TB" else (along, across)
    return Size(max(w, min_width), h + extra_h)


def choose(sizes: dict[str, Size], rank: dict[str, int], lanes: int = 1, min_width: float = 0.0,
           lane_min: float = 0.0, extra_h: float = LEGEND_H) -> str:
    """"TB" or "LR": the one whose expected drawing is closer to square (TB on a tie).

    ``lane_min``: a lane's least extent across the flow (its header's width, top to bottom).
    """
    tb = drawing_size(sizes, rank, "TB", lanes, max(min_width, lanes * lane_min), extra_h)
    lr = drawing_size(sizes, rank, "LR", lanes, min_width, extra_h)
    return "LR" if lr.aspect < tb.aspect else "TB"


def title_width(text: str) -> float:
    return len(text) * TITLE_CHAR_PT
