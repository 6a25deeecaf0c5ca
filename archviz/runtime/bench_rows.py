"""The records of a benchmark: what to run (Settings, Workload, Case), what came out (Row,
LayerReport, Ratio, BenchResult), and their JSON. No torch here: the CLI and the renderers
import this module at no cost.
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import Any

from ..core.analysis import Analysis
from ..core.devices import DeviceInfo, Dtype
from ..core.flops import TRAIN_FLOPS_FORMULA, Flops, Mode
from ..record import record
from .timing import Stats


class Status(str, Enum):
    ok = "ok"
    oom = "oom"
    unsupported = "unsupported"
    error = "error"


@record(kw_only=True)
class Settings:
    device: str = "cpu"
    batches: tuple[int, ...] = (1, 8)
    modes: tuple[Mode, ...] = (Mode.infer, Mode.train)
    dtypes: tuple[Dtype, ...] = (Dtype.fp32,)
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    warmup: int = 3
    iters: int = 10
    layers: bool = False
    max_bytes: int | None = None    # the memory guard's limit (None: 80% of what is available)

    @property
    def timer(self) -> str:
        return "CUDA events" if self.device == "cuda" else "time.perf_counter"


@record(kw_only=True)
class Workload:
    """A module to time, with the per-image FLOPs its figures are computed from."""

    label: str
    module: Any                     # torch.nn.Module
    input_shape: tuple[int, ...]    # per example, any rank: (C, H, W), (F,), (S, D), ...
    output_shape: tuple[int, ...]   # classes first: labels are drawn for cross-entropy
    flops: Flops                    # per image
    # archviz cost's prediction for a case: (peak bytes, roofline step ms or None, roofline ms per
    # layer); None: no prediction
    predict: Any = field(default=None, compare=False)
    analysis: Analysis | None = None  # for the memory guard: weights and activations per image
    input_dtype: str = "float32"    # int64 / int32: token ids (archviz.runtime.inputs)

    @classmethod
    def of(cls, label: str, module: Any, analysis: Analysis) -> Workload:
        return cls(label=label, module=module, input_shape=analysis.input,
                   output_shape=analysis.layers[-1].output, flops=Flops.of(analysis), analysis=analysis,
                   input_dtype=analysis.input_dtype)


@record(kw_only=True)
class Case:
    model: str
    mode: Mode
    dtype: Dtype
    batch: int


@record(kw_only=True)
class LayerTime:
    name: str
    forward_ms: float
    backward_ms: float              # for "(SGD step)": the update after the backward pass

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms


@record(kw_only=True)
class LayerReport:
    """Per-layer medians, and whether their sum agrees with the whole step timed without hooks."""

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


@record(kw_only=True)
class Row:
    case: Case
    status: Status
    note: str = ""
    ms: Stats | None = None
    images_per_s: float | None = None
    tflops: float | None = None
    peak_tflops: float | None = None
    peak_pct: float | None = None
    memory: int | None = None       # bytes
    memory_kind: str = ""
    predicted_memory: int | None = None     # archviz cost's peak for this case (bytes)
    predicted_ms: float | None = None       # archviz cost's roofline lower bound for one step
    predicted_layers: dict[str, float] | None = field(default=None, compare=False)  # per layer, ms
    layers: LayerReport | None = field(default=None, compare=False)

    @property
    def over_roofline(self) -> float | None:
        """Measured step time / the roofline's lower bound."""
        return self.ms.median / self.predicted_ms if self.ms and self.predicted_ms else None


@record(kw_only=True)
class Ratio:
    """images/s of the spec's model over the reference's, in one (mode, dtype, batch)."""

    mode: Mode
    dtype: Dtype
    batch: int
    model_images_per_s: float
    reference_images_per_s: float

    @property
    def ratio(self) -> float:
        return self.model_images_per_s / self.reference_images_per_s


@record(kw_only=True)
class Peaks:
    """The peak TFLOP/s each dtype's % is taken against, and where it comes from."""

    tflops: dict[Dtype, float | None]
    source: str
    calibrated: dict[Dtype, float | None] | None = None
    table: dict[Dtype, float | None] = field(default_factory=dict)


@record(kw_only=True)
class BenchResult:
    archviz: str                    # the version that measured
    spec_name: str
    spec_path: str | None
    input: tuple[int, ...]
    device: DeviceInfo
    settings: Settings
    peaks: Peaks
    works: tuple[Workload, ...]     # the spec's model first, then the reference (if any)
    rows: tuple[Row, ...]
    interrupted: bool

    @property
    def ratios(self) -> list[Ratio]:
        return ratios(self.rows, self.works[0].label, self.works[1].label) if len(self.works) > 1 else []


def ratios(rows: tuple[Row, ...] | list[Row], model: str, reference: str) -> list[Ratio]:
    """images/s of ``model`` over ``reference`` for every case both finished."""
    ok = {r.case: r for r in rows if r.status is Status.ok}
    out = []
    for case, r in ok.items():
        ref = ok.get(Case(model=reference, mode=case.mode, dtype=case.dtype, batch=case.batch))
        if case.model == model and ref is not None and r.images_per_s and ref.images_per_s:
            out.append(Ratio(mode=case.mode, dtype=case.dtype, batch=case.batch,
                             model_images_per_s=r.images_per_s, reference_images_per_s=ref.images_per_s))
    return out


def ratio_dict(q: Ratio) -> dict[str, Any]:
    return {"mode": q.mode.value, "dtype": q.dtype.value, "batch": q.batch,
            "model_images_per_s": q.model_images_per_s,
            "reference_images_per_s": q.reference_images_per_s, "ratio": q.ratio}


def row_dict(row: Row) -> dict[str, Any]:
    c, ms = row.case, row.ms
    out: dict[str, Any] = {
        "model": c.model, "mode": c.mode.value, "dtype": c.dtype.value, "batch": c.batch,
        "status": row.status.value, "note": row.note,
        "ms_median": ms.median if ms else None, "ms_q1": ms.q1 if ms else None,
        "ms_q3": ms.q3 if ms else None, "ms_iqr": ms.iqr if ms else None, "iters": ms.n if ms else 0,
        "images_per_s": row.images_per_s, "tflops": row.tflops, "peak_tflops": row.peak_tflops,
        "peak_pct": row.peak_pct, "memory_bytes": row.memory, "memory_kind": row.memory_kind,
        "predicted_memory_bytes": row.predicted_memory, "predicted_ms": row.predicted_ms,
        "measured_over_predicted_ms": row.over_roofline,
    }
    if row.layers is not None:
        lr = row.layers
        out["layers"] = {"sum_ms": lr.sum_ms, "step_ms": lr.step_ms, "ratio": lr.ratio,
                         "adds_up": lr.adds_up, "tolerance": lr.tolerance,
                         "layers": [{"name": t.name, "forward_ms": t.forward_ms,
                                     "backward_ms": t.backward_ms,
                                     "predicted_ms": (row.predicted_layers or {}).get(t.name)}
                                    for t in lr.layers]}
    return out


def _by_dtype(d: dict[Dtype, float | None] | None) -> dict[str, float | None] | None:
    return None if d is None else {k.value: v for k, v in d.items()}


def result_dict(res: BenchResult) -> dict[str, Any]:
    """The whole result as the ``--json`` file holds it."""
    s = res.settings
    return {
        "schema_version": 1,   # as every JSON output (archviz.render.tables.SCHEMA_VERSION)
        "archviz": res.archviz,
        "spec": {"name": res.spec_name, "path": res.spec_path, "input": list(res.input)},
        "device": res.device.as_dict(),
        "settings": {"device": s.device, "batches": list(s.batches), "modes": [m.value for m in s.modes],
                     "dtypes": [d.value for d in s.dtypes], "channels_last": s.channels_last,
                     "compile": s.compile, "cuda_graphs": s.cuda_graphs, "warmup": s.warmup,
                     "iters": s.iters, "layers": s.layers, "timer": s.timer},
        "peak": {"source": res.peaks.source, "tflops": _by_dtype(res.peaks.tflops),
                 "calibrated": _by_dtype(res.peaks.calibrated), "table": _by_dtype(res.peaks.table)},
        "flops_per_image": {w.label: {"infer": w.flops.infer, "train": w.flops.train} for w in res.works},
        "train_flops_formula": TRAIN_FLOPS_FORMULA,
        "rows": [row_dict(r) for r in res.rows],
        "ratios": [ratio_dict(q) for q in res.ratios],
        "interrupted": res.interrupted,
    }
