"""``archviz bench --plot``: images/s against batch size, one line per (model, dtype), a panel per mode.

Reads the rows of the bench JSON (plain dicts), so it needs neither torch nor a live run.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import ArchvizError
from ..io import write_atomic
from .text import mpl

FORMATS = ("png", "svg", "pdf")


def series(rows: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], list[tuple[int, float]]]]:
    """mode → (model, dtype) → [(batch, images/s)] sorted by batch; rows that did not run left out."""
    out: dict[str, dict[tuple[str, str], list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("status") == "ok" and r.get("images_per_s"):
            out[r["mode"]][(r["model"], r["dtype"])].append((int(r["batch"]), float(r["images_per_s"])))
    return {m: {k: sorted(v) for k, v in lines.items()} for m, lines in out.items()}


def plot_throughput(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Draw the chart and write it atomically; the format follows the file's suffix."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArchvizError(f"--plot {path}: expected a .png, .svg or .pdf file")
    data = series(rows)
    if not data:
        raise ArchvizError(f"--plot {path}: no finished row to draw")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4), squeeze=False)
    for ax, (mode, lines) in zip(axes[0], sorted(data.items()), strict=True):
        _panel(ax, mode, lines)
    if title:
        fig.suptitle(mpl(title))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    plt.close(fig)
    return write_atomic(path, buf.getvalue())


def _panel(ax: Any, mode: str, lines: dict[tuple[str, str], list[tuple[int, float]]]) -> None:
    for (model, dtype), points in sorted(lines.items()):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", linestyle="-" if model != "reference" else "--",
                label=mpl(f"{model} {dtype}"))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("images / s")
    ax.set_title(mode)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
