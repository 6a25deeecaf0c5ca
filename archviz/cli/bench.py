"""``archviz bench``: time the compiled spec (and a user's reference module) over a sweep of
batch sizes, modes and dtypes. torch, rich's progress bar and matplotlib load inside the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from ..render.text import safe
from .common import DEFAULT_SPEC, InputOpt, Mode, SpecArg, console, fail, guarded, load_analysis, parse_input

DTYPES = ("fp32", "tf32", "bf16", "fp16")
# Defaults per device: a sensible sweep in under a minute (AlexNet on 2 CPU cores: ~17 s).
DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {"batch": "1,8", "dtype": "fp32", "warmup": 2, "iters": 8},
    "mps": {"batch": "1,32", "dtype": "fp32,fp16", "warmup": 5, "iters": 20},
    "cuda": {"batch": "1,32,128", "dtype": "fp32,tf32,bf16", "warmup": 10, "iters": 50},
}


class BenchUsage(ArchvizError):
    """A bad option value of archviz bench."""


def parse_list(text: str, option: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    bad = [t for t in items if t not in choices]
    if bad or not items:
        raise BenchUsage(f"{option}: expected a comma-separated list of {', '.join(choices)}, got {text!r}")
    return tuple(dict.fromkeys(items))


def parse_batches(text: str) -> tuple[int, ...]:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise BenchUsage(f"--batch: expected positive integers separated by commas (e.g. 1,32,128),"
                         f" got {text!r}")
    return tuple(dict.fromkeys(int(p) for p in parts))


def resolve_device(name: str) -> str:
    from ..core import devices

    name = name.lower()
    if name not in ("auto", "cpu", "cuda", "mps"):
        raise BenchUsage(f"--device: expected auto, cpu, cuda or mps, got {name!r}")
    if name == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if devices.available(d))
    if not devices.available(name):
        import torch

        raise BenchUsage(f"--device {name}: not available here (torch {torch.__version__}"
                         f"{', built without CUDA' if name == 'cuda' and not torch.version.cuda else ''})")
    return name


def check_writable(path: Optional[str], option: str) -> None:
    """Fail before the sweep, not after it, when an output's folder does not exist."""
    if path and not (Path(path).parent if str(Path(path).parent) else Path(".")).is_dir():
        raise BenchUsage(f"{option} {path}: cannot write: folder {Path(path).parent} does not exist")
    if path and Path(path).is_dir():
        raise BenchUsage(f"{option} {path}: cannot write: it is a directory")


def build_module(spec: Any, input_shape: Optional[tuple[int, ...]]) -> Any:
    """The spec compiled into an nn.Module by archviz.compile."""
    from ..runtime.compile import to_module

    return to_module(spec, input_shape=input_shape)


@guarded
def bench(
    spec: SpecArg = DEFAULT_SPEC,
    device: Annotated[str, typer.Option("--device", "-d",
                                        help="cpu, cuda, mps or auto (first available).")] = "auto",
    batch: Annotated[Optional[str], typer.Option(
        "--batch", "-b",
        help="Batch sizes, e.g. 1,32,128 (default: cpu 1,8; mps 1,32; cuda 1,32,128)")] = None,
    mode: Annotated[Mode, typer.Option("--mode", "-m", case_sensitive=False)] = Mode.both,
    dtype: Annotated[Optional[str], typer.Option(
        "--dtype",
        help="fp32,tf32,bf16,fp16 (default: cpu fp32; mps fp32,fp16; cuda fp32,tf32,bf16).")] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.")] = False,
    compiled: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the module (fresh per row).")] = False,
    cuda_graphs: Annotated[bool, typer.Option(
        "--cuda-graphs", help="Capture each step in a CUDA graph.")] = False,
    warmup: Annotated[Optional[int], typer.Option(
        "--warmup", help="Untimed iterations (default: cpu 2, mps 5, cuda 10).")] = None,
    iters: Annotated[Optional[int], typer.Option(
        "--iters", help="Timed iterations (default: cpu 8, mps 20, cuda 50).")] = None,
    json_out: Annotated[Optional[str], typer.Option(
        "--json", help="Write every figure as JSON to FILE.")] = None,
    plot: Annotated[Optional[str], typer.Option(
        "--plot", help="Draw images/s against batch (.png/.svg/.pdf).")] = None,
    layers: Annotated[bool, typer.Option(
        "--layers", help="Per-layer forward/backward times, slowest first.")] = False,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Measure this device's matmul ceiling and take % of peak against it.")] = False,
    reference: Annotated[Optional[str], typer.Option(
        "--reference", help="FILE.py:NAME, an nn.Module class or factory to time beside the spec.")] = None,
    input_size: InputOpt = None,
) -> None:
    """Time the compiled model: ms per batch (median, IQR), images/s, TFLOP/s, % of peak, memory.

    Each row is one (model, mode, dtype, batch); a failure (out of memory, an unsupported
    dtype) stays in its row and the sweep goes on; Ctrl-C keeps the finished rows. FLOPs come
    from the analysis (train = forward + input and weight gradients, see docs/benchmarks.md).

    Examples:

      archviz bench lenet5 --device cpu                       # under a minute on a laptop

      archviz bench alexnet --device cuda --batch 1,32,128,256 --dtype fp32,tf32,bf16 --json out.json

      archviz bench alexnet --device cuda --compile --channels-last --mode train --plot tput.png

      archviz bench alexnet --batch 8 --mode train --layers   # where the time goes, like `caffe time`

      archviz bench alexnet --reference my_alexnet.py:AlexNet  # the spec beside your own module
    """
    from ..core import devices
    from ..runtime import bench as B

    dev = resolve_device(device)
    d = DEFAULTS[dev]
    if cuda_graphs and dev != "cuda":
        raise BenchUsage("--cuda-graphs needs --device cuda")
    modes = ("infer", "train") if mode is Mode.both else (mode.value,)
    dtypes = parse_list(d["dtype"] if dtype is None else dtype, "--dtype", DTYPES)
    settings = B.Settings(dev, parse_batches(d["batch"] if batch is None else batch), modes,
                          dtypes, channels_last, compiled,
                          cuda_graphs, d["warmup"] if warmup is None else warmup,
                          d["iters"] if iters is None else iters, layers)
    if settings.iters < 1 or settings.warmup < 0 or (compiled and settings.warmup < 1):
        raise BenchUsage("--iters must be ≥ 1 and --warmup ≥ 0 (≥ 1 with --compile, which compiles then)")
    check_writable(json_out, "--json")
    check_writable(plot, "--plot")
    if plot and Path(plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BenchUsage(f"--plot {plot}: expected a .png, .svg or .pdf file")
    sp, a = load_analysis(spec, input_size)
    works = [B.Workload.of(sp.name, build_module(sp, parse_input(input_size)), a)]
    if reference:
        works.append(_reference(B, reference, a))
    info = devices.describe(dev)
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 150)  # a file or pipe: keep the table's columns whole
    _header(out, sp.name, info, settings)
    calibrated = _calibrate(B, out, settings, info) if calibrate else None
    peak, peak_source = B.peaks(info, settings.dtypes, calibrated)
    rows, interrupted = _sweep(B, settings, works, info, peak)
    _report(B, out, rows, works, interrupted, on_cpu=info.kind == "cpu")
    result = _result(B, sp, a, info, settings, works, rows, peak, peak_source, calibrated, interrupted)
    _write(result, json_out, plot)
    if interrupted:
        raise typer.Exit(130)
    if rows and not any(r.status == "ok" for r in rows):
        fail("no row ran (see the notes above)", 1)


def _reference(B: Any, text: str, a: Any) -> Any:
    module = B.load_reference(text)
    n = sum(p.numel() for p in module.parameters())
    if n != a.totals.params:
        console(stderr=True).print(f"note: the reference has {n:,} parameters, the spec {a.totals.params:,};"
                                   " its TFLOP/s use the spec's FLOPs")
    return B.Workload.of("reference", module, a)


def _header(out: Any, name: str, info: Any, s: Any) -> None:
    versions = f"torch {info.torch}" + (f", CUDA {info.cuda}, driver {info.driver}, cuDNN {info.cudnn}"
                                        if info.kind == "cuda" else f", {info.threads} threads")
    flags = [f for f, on in (("channels-last", s.channels_last), ("compile", s.compile),
                             ("cuda-graphs", s.cuda_graphs)) if on]
    out.print(f"[bold]{safe(name)}[/] on {safe(info.name)} ({safe(versions)})", soft_wrap=True)
    out.print(f"warm-up {s.warmup}, {s.iters} timed iterations per row"
              + (f"; {', '.join(flags)}" if flags else ""), soft_wrap=True)


def _calibrate(B: Any, out: Any, settings: Any, info: Any) -> dict[str, float | None]:
    with out.status("calibrating: timing a large matmul per dtype"):
        found = B.calibrate(settings.device, settings.dtypes, info)
    out.print("calibrated matmul ceiling: " + ", ".join(
        f"{d} {v:.2f} TFLOP/s" if v else f"{d} n/a" for d, v in found.items()))
    return found


def _sweep(B: Any, settings: Any, works: list[Any], info: Any,
           peak: dict[str, Any]) -> tuple[list[Any], bool]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = len(B.plan(settings, works))
    rows: list[Any] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("bench", total=total)
        try:
            for row in B.sweep(settings, works, info, peak):
                rows.append(row)
                c = row.case
                progress.update(task, advance=1, description=f"{c.model} {c.mode} {c.dtype} batch {c.batch}")
        except KeyboardInterrupt:
            return rows, True
    return rows, False


def _fmt(v: Optional[float], spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _report(B: Any, out: Any, rows: list[Any], works: list[Any], interrupted: bool,
            on_cpu: bool = False) -> None:
    from rich.table import Table

    memory = "peak RSS MiB" if on_cpu else "peak mem MiB"
    notes = []
    if on_cpu:
        notes.append("peak RSS: the whole process's resident memory (torch included), not the model's alone")
    if any(r.peak_pct is None and r.status == "ok" for r in rows):
        notes.append("% peak —: no known peak for this device and dtype; --calibrate measures one")
    caption = "\n".join(notes) or None
    table = Table(title="archviz bench", title_justify="left", caption=caption, caption_justify="left")
    for col in ("model", "mode", "dtype", "batch", "ms/batch", "IQR ms", "images/s", "TFLOP/s", "% peak",
                memory, "note"):
        table.add_column(col, justify="left" if col in ("model", "mode", "dtype", "note") else "right")
    for r in rows:
        c, ms = r.case, r.ms
        iqr = ms.iqr if ms is not None and ms.n > 1 else None  # one iteration has no spread
        table.add_row(safe(c.model), c.mode, c.dtype, str(c.batch), _fmt(ms and ms.median, ".2f"),
                      _fmt(iqr, ".2f"), _fmt(r.images_per_s, ",.1f"), _fmt(r.tflops, ".3f"),
                      _fmt(r.peak_pct, ".1f"), _fmt(r.memory and r.memory / 2**20, ",.0f"),
                      safe(r.note or ("" if r.status == "ok" else r.status)))
    out.print(table)
    if interrupted:
        out.print(f"[yellow]interrupted:[/] {len(rows)} finished row(s) kept")
    if len(works) > 1:
        for q in B.ratios(rows, works[0].label, works[1].label):
            out.print(f"{safe(works[0].label)} / reference images/s, {q['mode']} {q['dtype']}"
                      f" batch {q['batch']}: {q['ratio']:.3f}×")
    for r in rows:
        if r.layers is not None:
            _layer_table(out, r)


def _layer_table(out: Any, row: Any) -> None:
    from rich.table import Table

    c, lr = row.case, row.layers
    table = Table(title=f"per layer: {safe(c.model)} {c.mode} {c.dtype} batch {c.batch} (median ms;"
                        " eager module, a device synchronise at every hook)", title_justify="left")
    for col in ("layer", "forward", "backward", "total", "% of sum"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for t in lr.layers:
        backward = f"{t.backward_ms:.3f}" if c.mode == "train" else "—"
        table.add_row(safe(t.name), f"{t.forward_ms:.3f}", backward,
                      f"{t.total_ms:.3f}", f"{100 * t.total_ms / lr.sum_ms:.1f}" if lr.sum_ms else "—")
    out.print(table)
    verdict = "within" if lr.adds_up else "[yellow]OUTSIDE[/]"
    out.print(f"sum of layers {lr.sum_ms:.2f} ms vs whole step {lr.step_ms:.2f} ms: ratio {lr.ratio:.3f}"
              f" ({verdict} ±{lr.tolerance:.0%})")


def _result(B: Any, sp: Any, a: Any, info: Any, s: Any, works: list[Any], rows: list[Any],
            peak: dict[str, Any], peak_source: str, calibrated: Any, interrupted: bool) -> dict[str, Any]:
    from .. import __version__

    return {
        "archviz": __version__,
        "spec": {"name": sp.name, "path": sp.path, "input": list(a.input)},
        "device": info.as_dict(),
        "settings": {"device": s.device, "batches": list(s.batches), "modes": list(s.modes),
                     "dtypes": list(s.dtypes), "channels_last": s.channels_last, "compile": s.compile,
                     "cuda_graphs": s.cuda_graphs, "warmup": s.warmup, "iters": s.iters, "layers": s.layers,
                     "timer": "CUDA events" if s.device == "cuda" else "time.perf_counter"},
        "peak": {"source": peak_source, "tflops": peak, "calibrated": calibrated,
                 "table": {d: B.devices.table_peak(info.name, d) if info.kind == "cuda" else None
                           for d in s.dtypes}},
        "flops_per_image": {w.label: {"infer": w.forward_flops, "train": w.train_flops} for w in works},
        "train_flops_formula": B.TRAIN_FLOPS_FORMULA,
        "rows": [B.row_dict(r) for r in rows],
        "ratios": B.ratios(rows, works[0].label, works[1].label) if len(works) > 1 else [],
        "interrupted": interrupted,
    }


def _write(result: dict[str, Any], json_out: Optional[str], plot: Optional[str]) -> None:
    from ..io import write_atomic

    err = console(stderr=True)
    if json_out:
        write_atomic(json_out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        err.print(f"wrote {json_out}")
    if plot:
        from ..render.bench_plot import plot_throughput

        plot_throughput(result["rows"], plot, title=f"{result['spec']['name']} on {result['device']['name']}")
        err.print(f"wrote {plot}")
