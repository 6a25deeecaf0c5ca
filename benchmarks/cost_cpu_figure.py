"""docs/img/cost-saved-cpu.png: predicted vs measured saved-for-backward bytes on the CPU, every
bundled spec at batch 2 in fp32 and bf16 autocast (the measurement is tests/saved_oracle.py's,
the same as tests/test_cost_torch.py's). Prints the table it plots.

    python benchmarks/cost_cpu_figure.py [-o docs/img/cost-saved-cpu.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from saved_oracle import measure  # noqa: E402

from archviz.core.analysis import analyze  # noqa: E402
from archviz.core.cost import Settings, saved_bytes  # noqa: E402
from archviz.core.devices import Dtype  # noqa: E402
from archviz.spec import bundled, load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs/img/cost-saved-cpu.png"))
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    rows = []
    print("| spec | dtype | predicted MiB | measured MiB |\n|---|---|--:|--:|")
    for name in bundled.names():
        sp = load(name)
        a = analyze(sp)
        for dt in ("fp32", "bf16"):
            settings = Settings(batch=args.batch, dtype=Dtype(dt), torch_device="cpu")
            pred = sum(saved_bytes(a, settings).values())
            got = measure(sp, args.batch, dt).total
            rows.append((name, dt, pred, got))
            print(f"| {name} | {dt} | {pred / 2**20:.2f} | {got / 2**20:.2f} |", flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = bundled.names()
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
    for ax, dt in zip(axes, ("fp32", "bf16"), strict=True):
        got = {n: g / 2**20 for n, d, _, g in rows if d == dt}
        pred = {n: p / 2**20 for n, d, p, _ in rows if d == dt}
        ys = range(len(names))
        ax.barh([y + 0.2 for y in ys], [got[n] for n in names], height=0.38, color="#9ecae1",
                label="measured (autograd, by storage)")
        ax.barh([y - 0.2 for y in ys], [pred[n] for n in names], height=0.38, color="#08519c",
                label="predicted (archviz cost)")
        for y, n in zip(ys, names, strict=True):
            ax.text(max(got[n], pred[n]) * 1.15, y, f"{pred[n] / got[n]:.3f}×", va="center", fontsize=8)
        ax.set(xscale="log", title=f"{dt}{' autocast' if dt == 'bf16' else ''}",
               xlabel="saved for backward, MiB (log)")
        ax.set_xlim(right=max(got.values()) * 6)
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9)
    fig.suptitle(f"Saved-for-backward memory, batch {args.batch}, CPU: predicted / measured per bundled spec")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
