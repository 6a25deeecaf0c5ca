"""``archviz bench``: time the compiled spec (and a user's reference module) over a sweep of
batch sizes, modes and dtypes. torch, rich's progress bar and matplotlib load inside the command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from ..record import record
from ..render.text import safe
from ..runtime.bench_settings import (  # the options' defaults and parsers, shared with archviz.bench
    DEFAULTS,
    BenchUsage,
    bench_settings,
    parse_batches,
    parse_list,
    resolve_device,
)
from .choices import (
    BenchFormat,
    BenchMode,
    Device,
    LoweringOpt,
    MaxMemoryOpt,
    lowering,
    max_bytes,
)
from .common import (
    DEFAULT_SPEC,
    FULL_WIDTH,
    InputDtypeOpt,
    InputOpt,
    JsonFlag,
    OutputOpt,
    SpecArg,
    TextFormat,
    console,
    emit,
    fail,
    guarded,
    load_analysis,
    parse_input,
    text_format,
)
from .reference import load_reference

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..core import devices
    from ..core.analysis import Analysis
    from ..runtime.bench_rows import BenchResult, Peaks, Row, Settings, Workload
    from ..spec import Spec

# the device tables, the row types and the views load inside the command (not on `archviz shapes`)


def check_writable(path: Optional[str], option: str) -> None:
    """Fail before the sweep, not after it, when an output's folder does not exist."""
    if path and not (Path(path).parent if str(Path(path).parent) else Path(".")).is_dir():
        raise BenchUsage(f"{option} {path}: cannot write: folder {Path(path).parent} does not exist")
    if path and Path(path).is_dir():
        raise BenchUsage(f"{option} {path}: cannot write: it is a directory")


def build_module(spec: Spec, input_shape: Optional[tuple[int, ...]], lower: Any = None,
                 dtype: Optional[str] = None) -> Any:
    """The spec compiled into an nn.Module (archviz.runtime.compile), lowered as ``lower`` says
    (an :class:`archviz.ops.lowering.Lowering`; None: every op's default)."""
    from ..ops.lowering import Lowering
    from ..runtime.compile import to_module

    return to_module(spec, input_shape=input_shape, lowering=lower or Lowering(), input_dtype=dtype)


RUN, BUILD, PARALLEL, OUT = "What to run", "Build", "Parallel", None
DeviceOpt = Annotated[Device, typer.Option(
    "--device", "-d", case_sensitive=False, rich_help_panel=RUN, help="auto: the first of cuda, mps, cpu.")]
BatchOpt = Annotated[Optional[str], typer.Option(
    "--batch", "-b", metavar="N,...", rich_help_panel=RUN, help="Batch sizes, e.g. 1,32,128.")]
ModeOpt = Annotated[BenchMode, typer.Option("--mode", "-m", case_sensitive=False, rich_help_panel=RUN)]
DtypesOpt = Annotated[Optional[str], typer.Option(
    "--dtype", metavar="DTYPE,...", rich_help_panel=RUN, help="fp32, tf32, bf16, fp16, e.g. fp32,bf16.")]
ReferenceOpt = Annotated[Optional[str], typer.Option(
    "--reference", metavar="FILE.py:NAME", rich_help_panel=RUN,
    help="An nn.Module class or factory timed beside the spec.")]
LayersOpt = Annotated[bool, typer.Option(
    "--layers", rich_help_panel=RUN, help="Per-layer forward/backward times, slowest first.")]
CalibrateOpt = Annotated[bool, typer.Option(
    "--calibrate", rich_help_panel=RUN, help="% of peak against a measured matmul ceiling.")]
WarmupOpt = Annotated[Optional[int], typer.Option(
    "--warmup", rich_help_panel=BUILD, help="Untimed iterations per row.")]
ItersOpt = Annotated[Optional[int], typer.Option(
    "--iters", rich_help_panel=BUILD, help="Timed iterations per row.")]
ChannelsLastOpt = Annotated[bool, typer.Option(
    "--channels-last", rich_help_panel=BUILD, help="NHWC memory format.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", rich_help_panel=BUILD, help="torch.compile the module (fresh per row).")]
CudaGraphsOpt = Annotated[bool, typer.Option(
    "--cuda-graphs", rich_help_panel=BUILD, help="Capture each step in a CUDA graph.")]
DdpOpt = Annotated[Optional[int], typer.Option(
    "--ddp", metavar="N", rich_help_panel=PARALLEL,
    help="Data parallel: N torchrun workers (docs/scaling.md).")]
DdpTimeoutOpt = Annotated[float, typer.Option(
    "--ddp-timeout", rich_help_panel=PARALLEL, help="Seconds before a --ddp run is stopped.")]
SplitOpt = Annotated[bool, typer.Option(
    "--split-gpus", rich_help_panel=PARALLEL,
    help="Model parallel: the spec's GPU split as towers on two devices.")]
BenchFormatOpt = Annotated[Optional[BenchFormat], typer.Option(
    "--format", "-f", case_sensitive=False, rich_help_panel=OUT,
    help="Default: table, or json for -o FILE.json.")]
PlotOpt = Annotated[Optional[str], typer.Option(
    "--plot", metavar="FILE", rich_help_panel=OUT, help="Draw images/s against batch (.png, .svg, .pdf).")]
LegacyJsonOpt = Annotated[Optional[str], typer.Option("--json-file", hidden=True)]


class BenchCommand(TyperCommand):
    """bench's click command: the deprecated ``--json FILE.json`` (before ``--json`` meant
    ``--format json`` here as in every command) is read as the hidden ``--json-file FILE.json``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        for i in range(len(args) - 1):
            nxt = args[i + 1]
            if args[i] == "--json" and not nxt.startswith("-") and nxt.lower().endswith(".json"):
                args[i] = "--json-file"
        return super().parse_args(ctx, args)


@record
class Outputs:
    """Where bench's results go: ``kind`` to ``output`` (or standard output), the JSON file of the
    deprecated ``--json FILE`` (``json_file``), the plot."""

    kind: BenchFormat
    output: Optional[str]
    json_file: Optional[str]
    plot: Optional[str]


@guarded
def bench(
    spec: SpecArg = DEFAULT_SPEC,
    device: DeviceOpt = Device.auto,
    batch: BatchOpt = None,
    mode: ModeOpt = BenchMode.both,
    dtype: DtypesOpt = None,
    reference: ReferenceOpt = None,
    layers: LayersOpt = False,
    calibrate: CalibrateOpt = False,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    channels_last: ChannelsLastOpt = False,
    compiled: CompileOpt = False,
    cuda_graphs: CudaGraphsOpt = False,
    warmup: WarmupOpt = None,
    iters: ItersOpt = None,
    lowering_text: LoweringOpt = None,
    max_memory: MaxMemoryOpt = None,
    ddp: DdpOpt = None,
    ddp_timeout: DdpTimeoutOpt = 600.0,
    split_gpus: SplitOpt = False,
    fmt: BenchFormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
    json_file: LegacyJsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Time the compiled model: ms per batch, images/s, TFLOP/s, % of peak, memory.

    One row per (model, mode, dtype, batch); a failure stays in its row, Ctrl-C keeps the rows
    done. Defaults per device (batches, dtypes, iterations) and the columns: docs/benchmarks.md.

    Examples:

      archviz bench lenet5 --device cpu                  # under a minute on a laptop

      archviz bench alexnet -d cuda -b 1,32,128 --dtype fp32,bf16 -o alexnet.json

      archviz bench alexnet --batch 8 --mode train --layers      # where the time goes

      archviz bench alexnet -d cuda --ddp 4 --batch 128 --dtype bf16     # 4 GPUs, DDP
    """
    from ..runtime import probe
    from ..runtime.bench_rows import Status

    outs = _outputs(json_file, fmt, output, as_json, plot)
    a = load_analysis(spec, input_size, dtype=dtype_in)   # a bad spec is reported before torch is imported
    dev, lower = resolve_device(device.value), lowering(lowering_text)
    if ddp is not None:
        as_file = outs.output if outs.kind is BenchFormat.json else None   # --ddp: JSON to a file only
        _ddp(a.spec, dev, ddp, ddp_timeout, batch, dtype, warmup, iters, input_size,
             outs.json_file or as_file, str(lower))
        return
    if cuda_graphs and dev != "cuda":
        raise BenchUsage("--cuda-graphs needs --device cuda")
    settings = bench_settings(dev, batch, mode.value, dtype, channels_last, compiled, cuda_graphs, warmup,
                              iters, layers)
    settings = replace(settings, max_bytes=max_bytes(max_memory))  # checked before each case allocates
    info = probe.describe(dev)
    works, towers = _workloads(a, info, input_size, lower, split_gpus, reference)
    result = _run(a, info, settings, works, towers, calibrate, outs)
    if result.interrupted:
        raise typer.Exit(130)
    if result.rows and not any(r.status is Status.ok for r in result.rows):
        fail("no row ran (see the notes above)", 1)


def _outputs(json_file: Optional[str], fmt: Optional[BenchFormat], output: Optional[str], as_json: bool,
             plot: Optional[str]) -> Outputs:
    """Where the results go. ``--json`` is ``--format json`` as in every command; the old
    ``--json FILE.json`` ("also write the JSON to FILE") still works, with a warning."""
    if json_file is not None:
        console(stderr=True).print(f"warning: --json FILE is deprecated (--json is --format json in every"
                                   f" command): write the file with -o {safe(json_file)}", soft_wrap=True)
    text = text_format(TextFormat(fmt.value) if fmt else None, output, as_json)
    if text not in (TextFormat.table, TextFormat.json):
        raise BenchUsage(f"--format {text.value}: bench writes table or json")
    for path, option in ((json_file, "--json"), (output, "--output"), (plot, "--plot")):
        check_writable(path, option)
    if plot and Path(plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BenchUsage(f"--plot {plot}: expected a .png, .svg or .pdf file")
    return Outputs(BenchFormat(text.value), output, json_file, plot)


def _workloads(a: Analysis, info: devices.DeviceInfo, input_size: Optional[str], lower: Any, split_gpus: bool,
               reference: Optional[str]) -> tuple[list[Workload], Optional[tuple[str, Any, str]]]:
    """What is timed: the compiled spec (or its towers) and the user's reference module."""
    from ..runtime.bench_rows import Workload

    shape = parse_input(input_size)
    towers = _towers(a, info.kind, shape, lower) if split_gpus else None
    if towers:
        works = [Workload.of(towers[0], towers[1], a)]
    else:
        module = build_module(a.spec, shape, lower, a.input_dtype)
        from ..runtime.bench import predictor  # torch: after the spec has been read

        works = [replace(Workload.of(a.name, module, a), predict=predictor(a, info, lower))]
    if reference:
        works.append(_reference(reference, a))
    return works, towers


def _run(a: Analysis, info: devices.DeviceInfo, settings: Settings, works: list[Workload],
         towers: Optional[tuple[str, Any, str]], calibrate: bool, outs: Outputs) -> BenchResult:
    """The sweep, with the header, the table and the notes printed as it goes; the outputs written."""
    from ..render import bench_view
    from ..runtime.bench_rows import result_dict

    # the table goes to standard output; with --format json or -o it goes to stderr, with the progress
    out = console(stderr=outs.kind is BenchFormat.json or outs.output is not None)
    if not out.is_terminal:
        out.width = max(out.width, 150)  # a file or pipe: keep the table's columns whole
    parts: list[Any] = list(bench_view.header(a.name, info, settings))
    if towers:
        parts.append(bench_view.towers_line(towers[2]))
    for line in parts:
        out.print(line, soft_wrap=True)
    peaks = _peaks(out, settings, info, calibrate)
    result = _sweep(a, settings, works, info, peaks)
    rows, interrupted = list(result.rows), result.interrupted
    on_cpu = info.kind == "cpu"
    for part in bench_view.report(rows, works[0].label, result.ratios, interrupted, on_cpu=on_cpu):
        out.print(part)
        parts.append(part)
    _write(result, outs.json_file, outs.plot)
    if outs.kind is BenchFormat.json:
        emit(json.dumps(result_dict(result), indent=2, ensure_ascii=False) + "\n", outs.output)
    elif outs.output:
        from rich.console import Group

        from ..render.tables import plain_text

        emit(plain_text(Group(*parts), width=FULL_WIDTH), outs.output)
    return result


def split_devices(dev: str, count: int) -> tuple[list[str], str]:
    """The devices the towers run on, and a line that says what that means here."""
    if dev == "cuda":
        import torch

        have = torch.cuda.device_count()
        if have >= 2:
            return ["cuda:0", "cuda:1"], "towers on cuda:0 and cuda:1 (the paper's two GPUs)"
        return ["cuda:0", "cuda:0"], ("only one GPU here: both towers on cuda:0 — this times the split's"
                                      " extra work, not two GPUs working side by side")
    return [dev, dev], f"both towers on {dev} ({dev},{dev}): the split run on one device, not two GPUs"


def _towers(a: Analysis, dev: str, shape: Optional[tuple[int, ...]], lower: Any) -> tuple[str, Any, str]:
    from ..runtime.parallel import to_towers

    if (a.gpus or 1) != 2:
        raise BenchUsage(f"--split-gpus: {a.name} names {a.gpus or 1} GPU(s) (`gpus:`); the towers need 2")
    devs, line = split_devices(dev, 2)
    return f"{a.name} (towers)", to_towers(a.spec, devs, input_shape=shape, lowering=lower), line


def _ddp(sp: Spec, dev: str, n: int, timeout: float, batch: Optional[str], dtype: Optional[str],
         warmup: Optional[int], iters: Optional[int], input_size: Optional[str],
         json_out: Optional[str], lower: str = "") -> None:
    """--ddp N: one torchrun launch of one worker (the baseline), then one of N; ``lower``: the
    --lowering text the workers build with."""
    from ..core.devices import DTYPES
    from ..render import bench_view
    from ..runtime import bench_ddp

    if n < 1:
        raise BenchUsage(f"--ddp: expected at least 1 worker, got {n}")
    if dev == "mps":
        raise BenchUsage("--ddp runs on cpu (gloo) or cuda (nccl), not mps")
    if dev == "cuda":
        import torch

        if n > torch.cuda.device_count():
            raise BenchUsage(f"--ddp {n}: only {torch.cuda.device_count()} CUDA device(s) here; nccl needs"
                             " one GPU per worker (several machines: see docs/scaling.md)")
    check_writable(json_out, "--json")
    if not sp.path or not Path(sp.path).is_file():
        raise BenchUsage(f"--ddp: the workers load the spec from a file; {safe(sp.name)} has none")
    d = DEFAULTS[dev]
    b = parse_batches(d["batch"] if batch is None else batch)[-1]
    dt = parse_list(d["dtype"] if dtype is None else dtype, "--dtype", DTYPES)[-1]
    w = max(2, d["warmup"] if warmup is None else warmup)  # DDP rebuilds its buckets after step 1
    it = d["iters"] if iters is None else iters
    if it < 1:
        raise BenchUsage("--iters must be ≥ 1")
    out = console()
    out.print(bench_view.ddp_header(sp.name, dev, n, b, dt, w, it), soft_wrap=True)
    with console(stderr=True).status(f"torchrun: 1 worker, then {n}" if n > 1 else "torchrun: 1 worker"):
        result = bench_ddp.run(n, sp.path, timeout=timeout, device=dev, batch=b, dtype=dt, warmup=w, iters=it,
                               input_shape=parse_input(input_size), lowering=lower)
    out.print(bench_view.ddp_table(result))
    if json_out:
        from ..io import write_atomic

        write_atomic(json_out, json.dumps(result.as_dict(), indent=2) + "\n")
        console(stderr=True).print(f"wrote {safe(json_out)}")


def _reference(text: str, a: Analysis) -> Workload:
    from ..runtime.bench_rows import Workload

    module = load_reference(text)
    n = sum(p.numel() for p in module.parameters())
    if n != a.totals.params:
        console(stderr=True).print(f"note: the reference has {n:,} parameters, the spec {a.totals.params:,};"
                                   " its TFLOP/s use the spec's FLOPs")
    return Workload.of("reference", module, a)


def _peaks(out: Console, settings: Settings, info: devices.DeviceInfo, calibrate: bool) -> Peaks:
    from ..render import bench_view
    from ..runtime import bench, probe

    if not calibrate:
        return bench.peaks(info, settings.dtypes, None)
    with out.status("calibrating: timing a large matmul per dtype and a large copy"):
        found = bench.calibrate(settings.device, settings.dtypes, info)
        gbs = bench.bandwidth(settings.device)
    out.print(bench_view.calibration(found))
    kept = probe.save_calibration(info.kind, info.name, {d.value: v for d, v in found.items()}, gbs)
    out.print(f"memory bandwidth (copy): {gbs:,.1f} GB/s; kept for archviz cost in {safe(str(kept))}")
    return bench.peaks(info, settings.dtypes, found)


def _sweep(a: Analysis, settings: Settings, works: list[Workload], info: devices.DeviceInfo,
           peaks: Peaks) -> BenchResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..runtime import bench

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("bench", total=len(bench.plan(settings, works)))

        def advance(row: Row) -> None:
            c = row.case
            progress.update(task, advance=1, description=f"{safe(c.model)} {c.mode.value} {c.dtype.value}"
                                                         f" batch {c.batch}")

        return bench.measure(a, settings, works, info, peaks, advance)


def _write(result: BenchResult, json_out: Optional[str], plot: Optional[str]) -> None:
    from ..io import write_atomic
    from ..runtime.bench_rows import result_dict

    err = console(stderr=True)
    data = result_dict(result)
    if json_out:
        write_atomic(json_out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        err.print(f"wrote {safe(json_out)}")
    if plot:
        from ..render.bench_plot import plot_throughput

        plot_throughput(data["rows"], plot, title=f"{result.spec_name} on {result.device.name}")
        err.print(f"wrote {safe(plot)}")
