"""nn.Module → benchmark rows: warm-up, timed iterations, median and IQR, throughput, % of peak.

Method (docs/benchmarks.md says the same at more length):

* one *case* = (model, mode, dtype, batch). Each is warmed up, then timed ``iters`` times; on
  CUDA with a pair of CUDA events around every iteration (the end event is waited on before the
  next iteration starts), elsewhere with ``time.perf_counter`` after a synchronise.
* ``infer`` = a forward pass under ``torch.inference_mode``; ``train`` = zero the gradients,
  forward, cross-entropy on random labels, backward, one SGD step (momentum 0.9).
* dtypes: fp32 (TF32 off), tf32 (TF32 on: CUDA matmul and cuDNN), bf16 / fp16 via autocast.
* FLOPs come from the analysis, never from timing: see :func:`train_flops`.

A failure stays in its row (out of memory, an unsupported dtype, any other error): the sweep
goes on. torch is imported here and in the modules only this one imports.
"""

from __future__ import annotations

import gc
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..core import devices
from ..core.analysis import Analysis
from ..errors import ArchvizError
from ..spec import INPUT

MODES = ("infer", "train")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
TRAIN_FLOPS_FORMULA = (
    "train FLOPs per image = Σ forward FLOPs (2·MACs of every conv / linear layer)"
    " + Σ weight-gradient FLOPs (2·MACs of every conv / linear layer with parameters)"
    " + Σ input-gradient FLOPs (2·MACs of every conv / linear layer that has a parameterised"
    " layer upstream: not the first layer, whose input needs no gradient)")


class BenchError(ArchvizError):
    """Bad benchmark settings (an unknown dtype, a device that is not there, ...)."""


@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    batches: tuple[int, ...] = (1, 8)
    modes: tuple[str, ...] = MODES
    dtypes: tuple[str, ...] = ("fp32",)
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    warmup: int = 3
    iters: int = 10
    layers: bool = False


@dataclass(frozen=True)
class Workload:
    """A module to time, with the per-image FLOPs its figures are computed from."""

    label: str
    module: Any                     # torch.nn.Module
    input_shape: tuple[int, ...]    # (C, H, W) or (F,), per image
    output_shape: tuple[int, ...]   # classes first: labels are drawn for cross-entropy
    forward_flops: int              # per image
    train_flops: int                # per image

    @classmethod
    def of(cls, label: str, module: Any, analysis: Analysis) -> Workload:
        last = analysis.layers[-1].output
        return cls(label, module, analysis.input, last, analysis.totals.flops, train_flops(analysis))


@dataclass(frozen=True)
class Case:
    model: str
    mode: str
    dtype: str
    batch: int


@dataclass(frozen=True)
class Stats:
    """Median and quartiles (ms) of the timed iterations."""

    median: float
    q1: float
    q3: float
    n: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        if len(samples) < 2:
            return cls(samples[0], samples[0], samples[0], len(samples))
        q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(q2, q1, q3, len(samples))


@dataclass(frozen=True)
class LayerTime:
    name: str
    forward_ms: float
    backward_ms: float              # for "(SGD step)": the update after the backward pass

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms


@dataclass(frozen=True)
class LayerReport:
    layers: tuple[LayerTime, ...]   # slowest first
    step_ms: float                  # the same case's median step, timed without hooks
    tolerance: float = 0.15

    @property
    def sum_ms(self) -> float:
        return sum(t.total_ms for t in self.layers)

    @property
    def ratio(self) -> float:
        return self.sum_ms / self.step_ms

    @property
    def adds_up(self) -> bool:
        return abs(self.ratio - 1) <= self.tolerance


@dataclass(frozen=True)
class Row:
    case: Case
    status: str                     # ok, oom, unsupported, error
    note: str = ""
    ms: Stats | None = None
    images_per_s: float | None = None
    tflops: float | None = None
    peak_tflops: float | None = None
    peak_pct: float | None = None
    memory: int | None = None       # bytes
    memory_kind: str = ""
    layers: LayerReport | None = field(default=None, compare=False)


def train_flops(analysis: Analysis) -> int:
    """Per image, forward + backward, counted analytically (:data:`TRAIN_FLOPS_FORMULA`).

    For a conv or linear layer the gradient of its input costs the same MACs as the forward
    (a transposed convolution / a matmul with the weight transposed), and so does the
    gradient of its weight (input ⊛ output gradient). The input gradient is skipped where no
    layer upstream has parameters, as autograd skips it; bias gradients (a sum) are not counted,
    as in forward FLOPs.
    """
    grad = _needs_grad(analysis)
    total = 0
    for s in analysis.layers:
        total += s.flops
        if s.macs and s.params:
            total += s.flops
        if s.macs and any(i in grad for i in s.inputs):
            total += s.flops
    return total


def _needs_grad(analysis: Analysis) -> set[str]:
    """Layers whose output carries a gradient: they or a layer upstream have parameters."""
    grad: set[str] = set()
    changed = True
    while changed:
        changed = False
        for s in analysis.layers:
            if s.name not in grad and (s.params or any(i in grad for i in s.inputs if i != INPUT)):
                grad.add(s.name)
                changed = True
    return grad


def plan(settings: Settings, workloads: list[Workload]) -> list[Case]:
    """Every case of the sweep, models interleaved so that a ratio compares like with like."""
    return [Case(w.label, mode, dtype, batch)
            for mode in settings.modes for dtype in settings.dtypes
            for batch in settings.batches for w in workloads]


def sweep(settings: Settings, workloads: list[Workload], info: devices.DeviceInfo,
          peaks: dict[str, float | None]) -> Iterator[Row]:
    """Yield one row per case; Ctrl-C propagates between (or inside) groups, the rows so far kept."""
    by_label = {w.label: w for w in workloads}
    cases = plan(settings, workloads)
    with _backend(settings):
        for i in range(0, len(cases), len(workloads)):
            group = cases[i:i + len(workloads)]
            yield from run_group(group, [by_label[c.model] for c in group], settings, info,
                                 peaks.get(group[0].dtype))


def run_case(case: Case, work: Workload, settings: Settings, info: devices.DeviceInfo,
             peak: float | None) -> Row:
    return run_group([case], [work], settings, info, peak)[0]


def run_group(cases: list[Case], works: list[Workload], settings: Settings, info: devices.DeviceInfo,
              peak: float | None) -> list[Row]:
    """Time cases that differ only in the model, their iterations interleaved (A, B, A, B, ...)
    so that a ratio between them is not skewed by drift; a failure ends only its own row."""
    why = devices.dtype_support(info, cases[0].dtype)
    if why:
        return [Row(c, "unsupported", why) for c in cases]
    done: dict[Case, Row] = {}
    try:
        with ExitStack() as stack:
            ready = _ready(cases, works, settings, stack, done)
            # after the warm-up: the peak of the timed steps, not of compiling or autotuning
            devices.reset_peak_memory(settings.device)
            samples = _interleaved(ready, settings, done)
            memory, kind = devices.peak_memory(settings.device)
            for case, work in zip(cases, works, strict=True):
                if case in samples:
                    finish = partial(_finish, case, work, ready[case], Stats.of(samples[case]),
                                     settings, peak, memory, kind)
                    done[case] = _guard(case, finish)
    finally:
        _free(settings.device)
    return [done[c] for c in cases]


Prepared = tuple[Callable[[], Any], nn.Module, torch.Tensor, torch.Tensor]


def _guard(case: Case, fn: Callable[[], Row]) -> Row:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a failure stays in its row
        return _failed_row(case, exc)


def _ready(cases: list[Case], works: list[Workload], settings: Settings, stack: ExitStack,
           done: dict[Case, Row]) -> dict[Case, Prepared]:
    """Model, input and step of every case, warmed up; a case that fails gets its row in ``done``."""
    ready: dict[Case, Prepared] = {}
    for case, work in zip(cases, works, strict=True):
        try:
            _set_precision(case.dtype)
            model, x, y = _prepare(work, case.batch, settings)
            stack.enter_context(_restored(model, case.mode == "train"))
            step = make_step(case, model, x, y, settings)
            time_iterations(step, settings.warmup, 0, settings.device)
            ready[case] = (step, model, x, y)
        except Exception as exc:  # noqa: BLE001 - a failure stays in its row
            done[case] = _failed_row(case, exc)
    return ready


def _interleaved(ready: dict[Case, Prepared], settings: Settings,
                 done: dict[Case, Row]) -> dict[Case, list[float]]:
    samples: dict[Case, list[float]] = {c: [] for c in ready}
    for _ in range(settings.iters):
        for case in list(samples):
            try:
                samples[case] += time_iterations(ready[case][0], 0, 1, settings.device)
            except Exception as exc:  # noqa: BLE001 - a failure stays in its row
                done[case] = _failed_row(case, exc)
                del samples[case]
    return samples


def _finish(case: Case, work: Workload, prepared: Prepared, stats: Stats, settings: Settings,
            peak: float | None, memory: int | None, kind: str) -> Row:
    layers = None
    if settings.layers:
        _, model, x, y = prepared
        layers = time_layers(case, work, model, x, y, settings, stats.median)
    return _figures(case, work, stats, peak, memory, kind, layers)


def _figures(case: Case, work: Workload, stats: Stats, peak: float | None, memory: int | None,
             kind: str, layers: LayerReport | None) -> Row:
    per_image = work.train_flops if case.mode == "train" else work.forward_flops
    seconds = stats.median / 1e3
    tflops = per_image * case.batch / seconds / 1e12
    pct = 100 * tflops / peak if peak else None
    return Row(case, "ok", "", stats, case.batch / seconds, tflops, peak, pct, memory, kind, layers)


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _failed_row(case: Case, exc: BaseException) -> Row:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    if is_oom(exc):
        return Row(case, "oom", f"out of memory at batch {case.batch}")
    return Row(case, "error", f"{type(exc).__name__}: {first}")


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


@contextmanager
def _backend(settings: Settings) -> Iterator[None]:
    """cudnn.benchmark on for the sweep; TF32 flags restored afterwards."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    cudnn.benchmark = settings.device == "cuda"
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _set_precision(dtype: str) -> None:
    tf32 = dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def autocast(device: str, dtype: str, cache: bool = True) -> Any:
    if dtype not in AUTOCAST:
        return nullcontext()
    return torch.autocast(device_type=device, dtype=AUTOCAST[dtype], cache_enabled=cache)


def _prepare(work: Workload, batch: int, settings: Settings) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    dev = torch.device(settings.device)
    model = work.module.to(dev)
    x = torch.randn(batch, *work.input_shape, device=dev)  # (N, C, H, W)
    if settings.channels_last and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    classes, rest = work.output_shape[0], work.output_shape[1:]
    y = torch.randint(0, classes, (batch, *rest), device=dev)  # (N,) or (N, H, W)
    return model, x, y


@contextmanager
def _restored(model: nn.Module, training: bool) -> Iterator[None]:
    """Training changes the weights: put them back so every case starts from the same model."""
    if not training:
        yield
        return
    saved = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    try:
        yield
    finally:
        model.load_state_dict(saved)
        model.zero_grad(set_to_none=True)


def make_step(case: Case, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              settings: Settings) -> Callable[[], None]:
    """The callable that one timed iteration runs (compiled / graph-captured if asked)."""
    if settings.compile:
        torch._dynamo.reset()  # a fresh graph for every case: no recompile limit, no dynamic shapes
        mode = "reduce-overhead" if settings.cuda_graphs else "default"
        model = torch.compile(model, mode=mode, dynamic=False)  # type: ignore[assignment]
    graphs = settings.cuda_graphs and not settings.compile
    ctx = partial(autocast, settings.device, case.dtype, not graphs)
    step = train_step(model, x, y, ctx) if case.mode == "train" else infer_step(model, x, ctx)
    return capture(step) if graphs else step


def infer_step(model: nn.Module, x: torch.Tensor, ctx: Callable[[], Any]) -> Callable[[], None]:
    model.eval()

    def step() -> None:
        with torch.inference_mode(), ctx():
            model(x)

    return step


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               ctx: Callable[[], Any]) -> Callable[[], None]:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = model(x)
        loss(out, y).backward()
        opt.step()

    return step


def loss(out: torch.Tensor | tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the spec's last output; other outputs (auxiliary heads) add their mean,
    so that their backward runs too."""
    if isinstance(out, torch.Tensor):
        return F.cross_entropy(out.float(), y)
    *others, last = out
    total = F.cross_entropy(last.float(), y)
    for o in others:
        total = total + o.float().mean()
    return total


def capture(step: Callable[[], None], warmup: int = 3) -> Callable[[], None]:
    """Capture the whole step in one CUDA graph (warmed up on a side stream, as torch's docs do)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def time_iterations(step: Callable[[], Any], warmup: int, iters: int, device: str) -> list[float]:
    """Milliseconds of each of ``iters`` iterations, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    devices.synchronize(device)
    if device == "cuda":
        return _cuda_times(step, iters)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        devices.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _cuda_times(step: Callable[[], Any], iters: int) -> list[float]:
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(float(start.elapsed_time(end)))
    return times


def calibrate(device: str, dtypes: tuple[str, ...], info: devices.DeviceInfo,
              size: int | None = None, iters: int = 10) -> dict[str, float | None]:
    """This device's matmul ceiling per dtype (TFLOP/s): a large square matmul, median time."""
    n = size or (8192 if device == "cuda" else 1024)
    out: dict[str, float | None] = {}
    with _backend(Settings(device=device)):
        for dtype in dtypes:
            if devices.dtype_support(info, dtype):
                out[dtype] = None
                continue
            _set_precision(dtype)
            ms = _matmul_ms(n, AUTOCAST.get(dtype, torch.float32), device, iters)
            out[dtype] = 2 * n**3 / (ms / 1e3) / 1e12  # an n×n×n matmul: n³ MACs
            _free(device)
    return out


def _matmul_ms(n: int, dtype: torch.dtype, device: str, iters: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return statistics.median(time_iterations(partial(torch.mm, a, b), 3, iters, device))


def peaks(info: devices.DeviceInfo, dtypes: tuple[str, ...],
          calibrated: dict[str, float | None] | None) -> tuple[dict[str, float | None], str]:
    """The peak each dtype's % is taken against, and where it comes from."""
    if calibrated is not None:
        return dict(calibrated), "calibrated (measured matmul ceiling)"
    row = devices.lookup(info.name) if info.kind == "cuda" else None
    if row is None:
        return {d: None for d in dtypes}, "none (device not in the table; use --calibrate)"
    return {d: row.get(d) for d in dtypes}, f"table: {row.name} ({row.source})"


# --- per-layer times (archviz bench --layers), like `caffe time` ------------------------------

def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that do the work: those without children (the model itself if it has none)."""
    found = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    return found or [(type(model).__name__, model)]


@contextmanager
def _out_of_place(model: nn.Module) -> Iterator[None]:
    """Backward hooks refuse in-place ops on hooked outputs: run ReLU(inplace=True) out of place."""
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        m.inplace = False  # type: ignore[assignment]
    try:
        yield
    finally:
        for m in changed:
            m.inplace = True  # type: ignore[assignment]


class _Clock:
    """Hooks that stamp each leaf module's forward (pre/post) and the start of its backward."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.forward: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.marks: list[tuple[float, str]] = []

    def now(self) -> float:
        devices.synchronize(self.device)
        return time.perf_counter() * 1e3

    def attach(self, model: nn.Module, backward: bool) -> list[Any]:
        handles = []
        for name, mod in leaves(model):
            handles.append(mod.register_forward_pre_hook(partial(self._pre, name)))
            handles.append(mod.register_forward_hook(partial(self._post, name)))
            if backward:
                handles.append(mod.register_full_backward_pre_hook(partial(self._mark, name)))
        return handles

    def _mark(self, name: str, *_: Any) -> None:
        self.marks.append((self.now(), name))

    def _pre(self, name: str, *_: Any) -> None:
        self.started[name] = self.now()

    def _post(self, name: str, *_: Any) -> None:
        self.forward[name] = self.forward.get(name, 0.0) + self.now() - self.started[name]

    def reset(self) -> None:
        self.forward, self.started, self.marks = {}, {}, []

    def backward_times(self, begin: float, end: float) -> tuple[dict[str, float], float]:
        """Each layer's backward = from its own mark to the next (the last: to the end);
        the gap before the first mark is the loss's backward."""
        marks = sorted(self.marks)
        out: dict[str, float] = {}
        for (t, name), (t_next, _) in zip(marks, marks[1:] + [(end, "")], strict=True):
            out[name] = out.get(name, 0.0) + t_next - t
        return out, (marks[0][0] if marks else end) - begin


def time_layers(case: Case, work: Workload, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                settings: Settings, step_ms: float) -> LayerReport:
    """Median forward and backward time of every leaf module, hooks synchronising the device.

    The eager module is timed (a compiled or graph-captured one has no per-module boundaries);
    ``step_ms`` is the whole step's median timed without hooks, the sum is checked against it.
    """
    clock = _Clock(settings.device)
    train = case.mode == "train"
    samples: list[dict[str, tuple[float, float]]] = []
    with _out_of_place(model), warnings.catch_warnings():
        # the first layer's input needs no gradient: its backward hook may fire early (we use pre-hooks)
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        handles = clock.attach(model, backward=train)
        try:
            one = _layer_step(case, model, x, y, settings, clock)
            for i in range(settings.warmup + settings.iters):
                clock.reset()
                timed = one()
                if i >= settings.warmup:
                    samples.append(timed)
        finally:
            for h in handles:
                h.remove()
    names = samples[0].keys()
    rows = [LayerTime(n, statistics.median(s[n][0] for s in samples),
                      statistics.median(s[n][1] for s in samples)) for n in names]
    rows.sort(key=lambda r: r.total_ms, reverse=True)
    return LayerReport(tuple(rows), step_ms)


def _layer_step(case: Case, model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Settings,
                clock: _Clock) -> Callable[[], dict[str, tuple[float, float]]]:
    ctx = partial(autocast, settings.device, case.dtype)
    if case.mode != "train":
        model.eval()

        def infer() -> dict[str, tuple[float, float]]:
            with torch.inference_mode(), ctx():
                model(x)
            return {n: (t, 0.0) for n, t in clock.forward.items()}

        return infer
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train() -> dict[str, tuple[float, float]]:
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = model(x)
        t_loss = clock.now()
        value = loss(out, y)
        t_back = clock.now()
        value.backward()
        t_step = clock.now()
        opt.step()
        t_end = clock.now()
        back, loss_back = clock.backward_times(t_back, t_step)
        timed = {n: (t, back.get(n, 0.0)) for n, t in clock.forward.items()}
        timed["(loss)"] = (t_back - t_loss, loss_back)
        timed["(SGD step)"] = (0.0, t_end - t_step)
        return timed

    return train


# --- user reference modules (--reference FILE.py:NAME) and JSON -------------------------------

def load_reference(text: str) -> nn.Module:
    """A user's ``nn.Module`` from ``FILE.py:NAME``: a module class (built with no arguments),
    a factory function, or a module instance."""
    import importlib.util
    import sys
    from pathlib import Path

    path, sep, name = text.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise BenchError(f"--reference: expected FILE.py:NAME (a class or function), got {text!r}")
    file = Path(path)
    if not file.is_file():
        raise BenchError(f"--reference: {path}: no such file")
    mod_name = f"archviz_reference_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise BenchError(f"--reference: {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, str(file.resolve().parent))  # its sibling modules import, as with `python FILE`
    try:
        spec.loader.exec_module(module)
        obj = getattr(module, name) if hasattr(module, name) else None
        if obj is None:
            from ..errors import did_you_mean

            found = [n for n in vars(module) if not n.startswith("_")]
            raise BenchError(f"--reference: {path} defines no {name!r} ({did_you_mean(name, found)})")
        made = obj() if callable(obj) and not isinstance(obj, nn.Module) else obj
    except ArchvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code: report it, no traceback
        raise BenchError(f"--reference: {text}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(file.resolve().parent))
    if not isinstance(made, nn.Module):
        raise BenchError(f"--reference: {name} gave {_article(type(made).__name__)}, not a torch.nn.Module")
    return made


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def row_dict(row: Row) -> dict[str, Any]:
    c, ms = row.case, row.ms
    out: dict[str, Any] = {
        "model": c.model, "mode": c.mode, "dtype": c.dtype, "batch": c.batch,
        "status": row.status, "note": row.note,
        "ms_median": ms.median if ms else None, "ms_q1": ms.q1 if ms else None,
        "ms_q3": ms.q3 if ms else None, "ms_iqr": ms.iqr if ms else None, "iters": ms.n if ms else 0,
        "images_per_s": row.images_per_s, "tflops": row.tflops, "peak_tflops": row.peak_tflops,
        "peak_pct": row.peak_pct, "memory_bytes": row.memory, "memory_kind": row.memory_kind,
    }
    if row.layers is not None:
        lr = row.layers
        out["layers"] = {"sum_ms": lr.sum_ms, "step_ms": lr.step_ms, "ratio": lr.ratio,
                         "adds_up": lr.adds_up, "tolerance": lr.tolerance,
                         "layers": [{"name": t.name, "forward_ms": t.forward_ms,
                                     "backward_ms": t.backward_ms} for t in lr.layers]}
    return out


def ratios(rows: list[Row], model: str, reference: str) -> list[dict[str, Any]]:
    """images/s of ``model`` over ``reference`` for every case both finished."""
    ok = {(r.case.model, r.case.mode, r.case.dtype, r.case.batch): r for r in rows if r.status == "ok"}
    out = []
    for (m, mode, dtype, batch), r in ok.items():
        ref = ok.get((reference, mode, dtype, batch))
        if m == model and ref is not None and r.images_per_s and ref.images_per_s:
            out.append({"mode": mode, "dtype": dtype, "batch": batch, "model_images_per_s": r.images_per_s,
                        "reference_images_per_s": ref.images_per_s,
                        "ratio": r.images_per_s / ref.images_per_s})
    return out
