"""``archviz bench``: time the compiled spec (and a user's reference module) over a sweep of
batch sizes, modes and dtypes. torch, rich's progress bar and matplotlib load inside the command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .. import __version__
from ..core import devices
from ..core.flops import Mode as StepMode
from ..errors import ArchvizError
from ..render import bench_view
from ..render.text import safe
from ..runtime.bench_rows import BenchResult, Dtype, Peaks, Row, Settings, Status, Workload, result_dict
from .common import (
    DEFAULT_SPEC,
    InputOpt,
    MaxMemoryOpt,
    Mode,
    SpecArg,
    console,
    fail,
    guarded,
    load_analysis,
    max_bytes,
    parse_input,
)
from .reference import load_reference

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..core.analysis import Analysis
    from ..spec import Spec

DTYPES = tuple(d.value for d in Dtype)
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


def build_module(spec: Spec, input_shape: Optional[tuple[int, ...]]) -> Any:
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
    max_memory: MaxMemoryOpt = None,
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
    dev = resolve_device(device)
    if cuda_graphs and dev != "cuda":
        raise BenchUsage("--cuda-graphs needs --device cuda")
    settings = _settings(dev, batch, mode, dtype, channels_last, compiled, cuda_graphs, warmup, iters, layers)
    check_writable(json_out, "--json")
    check_writable(plot, "--plot")
    if plot and Path(plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BenchUsage(f"--plot {plot}: expected a .png, .svg or .pdf file")
    sp, a = load_analysis(spec, input_size)
    # the memory guard runs before each case allocates; a case above it is an oom row
    settings = replace(settings, max_bytes=max_bytes(max_memory))
    works = [Workload.of(sp.name, build_module(sp, parse_input(input_size)), a)]
    if reference:
        works.append(_reference(reference, a))
    info = devices.describe(dev)
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 150)  # a file or pipe: keep the table's columns whole
    for line in bench_view.header(sp.name, info, settings):
        out.print(line, soft_wrap=True)
    peaks = _peaks(out, settings, info, calibrate)
    rows, interrupted = _sweep(settings, works, info, peaks)
    result = BenchResult(archviz=__version__, spec_name=sp.name, spec_path=sp.path, input=a.input,
                         device=info, settings=settings, peaks=peaks, works=tuple(works), rows=tuple(rows),
                         interrupted=interrupted)
    on_cpu = info.kind == "cpu"
    for part in bench_view.report(rows, works[0].label, result.ratios, interrupted, on_cpu=on_cpu):
        out.print(part)
    _write(result, json_out, plot)
    if interrupted:
        raise typer.Exit(130)
    if rows and not any(r.status is Status.ok for r in rows):
        fail("no row ran (see the notes above)", 1)


def _settings(dev: str, batch: Optional[str], mode: Mode, dtype: Optional[str], channels_last: bool,
              compiled: bool, cuda_graphs: bool, warmup: Optional[int], iters: Optional[int],
              layers: bool) -> Settings:
    """The options, with this device's defaults where one is not given."""
    d = DEFAULTS[dev]
    modes = tuple(StepMode) if mode is Mode.both else (StepMode(mode.value),)
    dtypes = parse_list(d["dtype"] if dtype is None else dtype, "--dtype", DTYPES)
    settings = Settings(device=dev, batches=parse_batches(d["batch"] if batch is None else batch),
                        modes=modes, dtypes=tuple(Dtype(t) for t in dtypes), channels_last=channels_last,
                        compile=compiled, cuda_graphs=cuda_graphs,
                        warmup=d["warmup"] if warmup is None else warmup,
                        iters=d["iters"] if iters is None else iters, layers=layers)
    if settings.iters < 1 or settings.warmup < 0 or (compiled and settings.warmup < 1):
        raise BenchUsage("--iters must be ≥ 1 and --warmup ≥ 0 (≥ 1 with --compile, which compiles then)")
    return settings


def _reference(text: str, a: Analysis) -> Workload:
    module = load_reference(text)
    n = sum(p.numel() for p in module.parameters())
    if n != a.totals.params:
        console(stderr=True).print(f"note: the reference has {n:,} parameters, the spec {a.totals.params:,};"
                                   " its TFLOP/s use the spec's FLOPs")
    return Workload.of("reference", module, a)


def _peaks(out: Console, settings: Settings, info: devices.DeviceInfo, calibrate: bool) -> Peaks:
    from ..runtime import bench

    if not calibrate:
        return bench.peaks(info, settings.dtypes, None)
    with out.status("calibrating: timing a large matmul per dtype"):
        found = bench.calibrate(settings.device, settings.dtypes, info)
    out.print(bench_view.calibration(found))
    return bench.peaks(info, settings.dtypes, found)


def _sweep(settings: Settings, works: list[Workload], info: devices.DeviceInfo,
           peaks: Peaks) -> tuple[list[Row], bool]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..runtime import bench

    rows: list[Row] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("bench", total=len(bench.plan(settings, works)))
        try:
            for row in bench.sweep(settings, works, info, peaks.tflops):
                rows.append(row)
                c = row.case
                progress.update(task, advance=1, description=f"{safe(c.model)} {c.mode.value} {c.dtype.value}"
                                                             f" batch {c.batch}")
        except KeyboardInterrupt:
            return rows, True
    return rows, False


def _write(result: BenchResult, json_out: Optional[str], plot: Optional[str]) -> None:
    from ..io import write_atomic

    err = console(stderr=True)
    data = result_dict(result)
    if json_out:
        write_atomic(json_out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        err.print(f"wrote {safe(json_out)}")
    if plot:
        from ..render.bench_plot import plot_throughput

        plot_throughput(data["rows"], plot, title=f"{result.spec_name} on {result.device.name}")
        err.print(f"wrote {safe(plot)}")
