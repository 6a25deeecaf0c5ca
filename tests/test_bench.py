"""archviz.runtime (bench, steps, timing, bench_layers), archviz.core.flops and archviz.core.devices: FLOP
accounting against torch's flop counter and hand arithmetic, statistics against numpy, failures kept in
their rows, the per-layer check with a controlled clock, the CUDA path with fakes."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archviz
from archviz.core import devices, flops
from archviz.core.devices import Dtype
from archviz.core.flops import Mode
from archviz.render import bench_view
from archviz.runtime import bench, bench_layers, probe, steps, timing
from archviz.runtime.bench_rows import Case, Row, Settings, Status, Workload
from archviz.runtime.timing import Stats
from tests.reference_models import REFERENCES

CPU = devices.DeviceInfo("cpu", "test cpu", torch=torch.__version__)


def counted_train_flops(model: nn.Module, shape: tuple[int, ...], batch: int = 2) -> int:
    """torch's own count of one forward + backward (cross-entropy on random labels)."""
    x = torch.randn(batch, *shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        F.cross_entropy(out, torch.randint(0, out.shape[1], (batch,))).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("stem", ["lenet5", "alexnet-1gpu"])
def test_train_flops_match_torch_flop_counter(stem: str) -> None:
    build, shape = REFERENCES[stem]
    a = archviz.analyze(archviz.load(stem))
    assert counted_train_flops(build(), shape, batch=2) == 2 * flops.train_flops(a)


def test_train_flops_of_grouped_alexnet_by_hand() -> None:
    # torch.utils.flop_counter counts one backward term of a grouped conv without dividing by
    # the groups, so the paper's AlexNet (conv2/4/5 in 2 groups) is checked by hand instead.
    macs = {
        "conv1": 96 * 55 * 55 * (3 * 11 * 11),
        "conv2": 256 * 27 * 27 * (48 * 5 * 5),     # groups 2: 96/2 = 48 input channels each
        "conv3": 384 * 13 * 13 * (256 * 3 * 3),
        "conv4": 384 * 13 * 13 * (192 * 3 * 3),
        "conv5": 256 * 13 * 13 * (192 * 3 * 3),
        "fc6": 9216 * 4096, "fc7": 4096 * 4096, "fc8": 4096 * 1000,
    }
    forward = 2 * sum(macs.values())
    # forward + weight gradients (all 8 layers) + input gradients (all but conv1)
    expected = forward + forward + (forward - 2 * macs["conv1"])
    a = archviz.analyze(archviz.load("alexnet"))
    assert a.totals.flops == forward
    assert flops.train_flops(a) == expected


def test_no_input_gradient_below_the_first_parameterised_layer() -> None:
    spec = archviz.loads("""
name: pool-first
input: [3, 16, 16]
layers:
  - {name: pool, op: maxpool, kernel: 2}
  - {name: conv, op: conv, out: 8, kernel: 3}
  - {name: relu, op: relu}
  - {name: conv2, op: conv, out: 4, kernel: 3}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 5}
""")
    model = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    a = archviz.analyze(spec)
    assert counted_train_flops(model, (3, 16, 16), batch=3) == 3 * flops.train_flops(a)


def test_stats_match_numpy_percentiles() -> None:
    samples = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    st = Stats.of(samples)
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    assert (st.q1, st.median, st.q3) == pytest.approx((q1, med, q3))
    assert st.iqr == pytest.approx(q3 - q1) and st.n == 7
    assert Stats.of([4.0]) == Stats(median=4.0, q1=4.0, q3=4.0, n=1)


def test_time_iterations_on_cpu_runs_warmup_then_iters() -> None:
    calls = []
    times = timing.time_iterations(lambda: calls.append(1), warmup=2, iters=5, device="cpu")
    assert len(calls) == 7 and len(times) == 5 and all(t >= 0 for t in times)


def test_cuda_timing_path_uses_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch, with fake events: one pair per iteration, the end waited on."""
    elapsed = iter([3.0, 1.0, 2.0])
    log: list[str] = []

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing

        def record(self) -> None:
            log.append("record")

        def synchronize(self) -> None:
            log.append("sync")

        def elapsed_time(self, other: FakeEvent) -> float:
            return next(elapsed)

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(probe, "synchronize", lambda kind: log.append(f"device-sync {kind}"))
    times = timing.time_iterations(lambda: log.append("step"), warmup=1, iters=3, device="cuda")
    assert times == [3.0, 1.0, 2.0]
    assert log[:2] == ["step", "device-sync cuda"]
    assert log[2:] == ["record", "step", "record", "sync"] * 3


def _tiny() -> tuple[nn.Module, Workload]:
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(6, 8), relu=nn.ReLU(inplace=True), fc2=nn.Linear(8, 3)))
    spec = archviz.loads("""
name: tiny
input: [6]
layers:
  - {name: fc1, op: linear, out: 8}
  - {name: relu, op: relu}
  - {name: fc2, op: linear, out: 3}
""")
    return model, Workload.of("tiny", model, archviz.analyze(spec))


def test_row_figures_by_hand() -> None:
    _, work = _tiny()
    assert work.flops.infer == work.flops.per_image(Mode.infer) == 2 * (6 * 8 + 8 * 3)
    assert work.flops.train == work.flops.per_image(Mode.train) == 3 * 2 * (6 * 8 + 8 * 3) - 2 * 6 * 8
    case = Case(model="tiny", mode=Mode.train, dtype=Dtype.fp32, batch=4)
    row = bench.figures(case, work, Stats(median=2.0, q1=1.5, q3=2.5, n=3), peak=1.0e-6, memory=123,
                        memory_kind="process peak RSS")
    assert row.status is Status.ok and row.memory == 123
    assert row.images_per_s == pytest.approx(4 / 0.002)
    tflops = work.flops.train * 4 / 0.002 / 1e12
    assert row.tflops == pytest.approx(tflops)
    assert row.peak_pct == pytest.approx(100 * tflops / 1.0e-6)


def test_sweep_keeps_failures_in_their_rows() -> None:
    class Picky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == 4:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if x.shape[0] == 5:
                raise ValueError("something else\nsecond line")
            return self.fc(x)

    _, tiny = _tiny()
    work = Workload(label="picky", module=Picky(), input_shape=(6,), output_shape=(3,), flops=tiny.flops)
    settings = Settings(batches=(2, 4, 5, 3), modes=(Mode.train,), dtypes=(Dtype.fp32, Dtype.tf32), warmup=1,
                        iters=2)
    rows = list(bench.sweep(settings, [work], CPU, {}))
    got = [(r.case.dtype.value, r.case.batch, r.status.value) for r in rows]
    assert got == [("fp32", 2, "ok"), ("fp32", 4, "oom"), ("fp32", 5, "error"), ("fp32", 3, "ok")] + \
        [("tf32", b, "unsupported") for b in (2, 4, 5, 3)]
    assert rows[1].note == "out of memory at batch 4"
    assert rows[2].note == "ValueError: something else"
    assert "CUDA tensor-core mode" in rows[4].note


def test_a_real_cpu_allocation_failure_is_an_oom_row() -> None:
    _, work = _tiny()
    case = Case(model="tiny", mode=Mode.infer, dtype=Dtype.fp32, batch=10**12)
    row = bench.run_case(case, work, Settings(warmup=0, iters=1), CPU, None)
    assert row.status is Status.oom, row.note


def test_training_rows_leave_the_weights_as_they_were() -> None:
    model, work = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    case = Case(model="tiny", mode=Mode.train, dtype=Dtype.fp32, batch=4)
    row = bench.run_case(case, work, Settings(warmup=1, iters=2), CPU, None)
    assert row.status is Status.ok
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_layer_times_cover_every_leaf_and_clean_up() -> None:
    model, work = _tiny()
    case = Case(model="tiny", mode=Mode.train, dtype=Dtype.fp32, batch=4)
    row = bench.run_case(case, work, Settings(warmup=1, iters=3, layers=True), CPU, None)
    assert row.layers is not None and row.ms is not None
    names = {t.name for t in row.layers.layers}
    assert names == {"fc1", "relu", "fc2", "(loss)", "(SGD step)"}
    assert row.layers.sum_ms == pytest.approx(sum(t.forward_ms + t.backward_ms for t in row.layers.layers))
    assert row.layers.ratio == pytest.approx(row.layers.sum_ms / row.ms.median)
    totals = [t.total_ms for t in row.layers.layers]
    assert totals == sorted(totals, reverse=True)
    assert model.relu.inplace is True
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_pre_hooks for m in model.modules())


def test_infer_layer_times_have_no_backward() -> None:
    _, work = _tiny()
    case = Case(model="tiny", mode=Mode.infer, dtype=Dtype.fp32, batch=2)
    row = bench.run_case(case, work, Settings(warmup=0, iters=2, layers=True), CPU, None)
    assert row.layers is not None
    assert {t.name for t in row.layers.layers} == {"fc1", "relu", "fc2"}
    assert all(t.backward_ms == 0 for t in row.layers.layers)


def test_loss_of_several_outputs_reaches_every_head() -> None:
    main = torch.randn(4, 3, requires_grad=True)
    aux = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0])
    steps.loss((aux, main), y).backward()
    assert aux.grad is not None and main.grad is not None
    assert torch.allclose(steps.loss((aux, main), y), F.cross_entropy(main, y) + aux.mean())


def test_calibrate_on_cpu_measures_fp32_and_skips_tf32() -> None:
    found = bench.calibrate("cpu", (Dtype.fp32, Dtype.tf32), CPU, size=128, iters=3)
    assert found[Dtype.tf32] is None
    assert found[Dtype.fp32] is not None and found[Dtype.fp32] > 0


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A100-PCIE-40GB", "A100"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"), ("Tesla V100-PCIE-32GB", "V100 PCIe"), ("Tesla T4", "T4"),
    ("NVIDIA L4", "L4"), ("NVIDIA L40S", "L40S"), ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "GeForce RTX 3090"), ("NVIDIA A10", "A10"), ("Some Future GPU", None),
    ("NVIDIA GH200 480GB", "GH200"), ("NVIDIA H200 NVL", "H200 NVL"), ("Tesla V100S-PCIE-32GB", "V100S PCIe"),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", None), ("NVIDIA A10G", None),
])
def test_peak_table_lookup(name: str, expected: str | None) -> None:
    row = devices.lookup(name)
    assert (row.name if row else None) == expected


def test_peaks_prefer_calibration_then_table() -> None:
    h100 = devices.DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", torch="x", capability="9.0")
    table = bench.peaks(h100, (Dtype.fp32, Dtype.bf16), None)
    assert table.tflops == table.table == {Dtype.fp32: 66.9, Dtype.bf16: 989.4}
    assert table.source.startswith("table: H100 SXM") and table.calibrated is None
    measured = bench.peaks(h100, (Dtype.fp32,), {Dtype.fp32: 50.0})
    assert measured.tflops == {Dtype.fp32: 50.0} and measured.source.startswith("calibrated")
    assert measured.table == {Dtype.fp32: 66.9}
    assert bench.peaks(CPU, (Dtype.fp32,), None).tflops == {Dtype.fp32: None}


def test_dtype_support_by_compute_capability() -> None:
    v100 = devices.DeviceInfo("cuda", "Tesla V100-SXM2-16GB", torch="x", capability="7.0")
    a100 = devices.DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", torch="x", capability="8.0")
    assert probe.dtype_support(v100, "fp16") is None and probe.dtype_support(v100, "fp32") is None
    assert "8.0" in (probe.dtype_support(v100, "bf16") or "")
    assert all(probe.dtype_support(a100, d) is None for d in devices.DTYPES)
    assert probe.dtype_support(CPU, "tf32") and probe.dtype_support(CPU, "bf16") is None


def test_describe_cuda_with_a_fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    monkeypatch.setattr(probe, "nvidia_driver", lambda: "570.1")
    info = probe.describe("cuda")
    assert (info.name, info.capability, info.memory_gib, info.driver, info.cudnn) == \
        ("NVIDIA H100 80GB HBM3", "9.0", 80.0, "570.1", "91000")
    assert info.as_dict()["torch"] == torch.__version__


def test_cost_target_of_a_fake_local_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device cuda`` (archviz.runtime.probe.device_target): the local GPU's memory, and the
    table row its name matches for peaks, bandwidth and link."""
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    t = probe.device_target("cuda")
    assert (t.key, t.name, t.memory_gib, t.bandwidth_gbs) == ("h100", props.name, 80.0, 3350)
    assert t.peak is devices.by_key("h100") and t.link is not None and t.link.key == "nvlink4"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(archviz.ArchvizError, match="no CUDA GPU here"):
        probe.device_target("cuda")


def test_cpu_peak_memory_is_the_process_rss() -> None:
    probe.reset_peak_memory("cpu")
    before, kind = probe.peak_memory("cpu")
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    after, _ = probe.peak_memory("cpu")
    del block
    assert "RSS" in kind and before is not None and after is not None
    assert after - before >= 48 * 2**20


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rows_and_graphs() -> None:
    _, work = _tiny()
    info = probe.describe("cuda")
    for graphs in (False, True):
        settings = Settings(device="cuda", batches=(2,), dtypes=(Dtype.fp32, Dtype.bf16), warmup=2, iters=3,
                            cuda_graphs=graphs, layers=not graphs)
        rows = list(bench.sweep(settings, [work], info, {}))
        assert all(r.status in (Status.ok, Status.unsupported) for r in rows), [r.note for r in rows]
        assert all(r.memory and r.memory_kind == "CUDA allocator peak" for r in rows if r.status is Status.ok)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_calibration_is_below_the_table_peak() -> None:
    info = probe.describe("cuda")
    found = bench.calibrate("cuda", (Dtype.fp32,), info, size=4096, iters=5)
    peak = devices.table_peak(info.name, "fp32")
    assert found[Dtype.fp32] and found[Dtype.fp32] > 0
    if peak:
        assert found[Dtype.fp32] < 1.1 * peak


def test_models_of_a_case_are_timed_interleaved_and_fail_alone() -> None:
    order: list[str] = []

    class Logged(nn.Module):
        def __init__(self, tag: str, fail_at: int = -1) -> None:
            super().__init__()
            self.tag, self.fail_at, self.fc = tag, fail_at, nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            order.append(self.tag)
            if order.count(self.tag) == self.fail_at:
                raise RuntimeError("CUDA out of memory (pretend)")
            return self.fc(x)

    _, tiny = _tiny()
    works = [Workload(label=t, module=Logged(t, f), input_shape=(6,), output_shape=(3,), flops=tiny.flops)
             for t, f in (("A", -1), ("B", 4))]
    settings = Settings(batches=(2,), modes=(Mode.infer,), warmup=1, iters=4)
    rows = list(bench.sweep(settings, works, CPU, {}))
    # warm-up A, warm-up B, then A B A B A (B's 4th call fails) A
    assert order == ["A", "B", "A", "B", "A", "B", "A", "B", "A"]
    assert [(r.case.model, r.status) for r in rows] == [("A", Status.ok), ("B", Status.oom)]
    assert rows[0].ms is not None and rows[0].ms.n == 4


def test_layer_sum_is_checked_against_the_step_with_a_controlled_clock() -> None:
    """`--layers`' verdict: every clock reading is 1 ms after the last, so each leaf's forward,
    each backward (mark to next mark) and each phase of the step is exactly 1 ms; the sum (9 ms)
    is compared with a given whole-step time, and the ratio decides the verdict at ±15%."""
    model, work = _tiny()
    readings = itertools.count()
    settings = Settings(warmup=1, iters=3)
    case = Case(model="tiny", mode=Mode.train, dtype=Dtype.fp32, batch=4)
    _, x, y = steps.prepare(work, 4, settings)
    with steps.restored(model, training=True):
        report = bench_layers.time_layers(case, model, x, y, settings, step_ms=9.0,
                                          timer=lambda: float(next(readings)))
    times = {t.name: (t.forward_ms, t.backward_ms) for t in report.layers}
    assert times == {"fc1": (1.0, 1.0), "relu": (1.0, 1.0), "fc2": (1.0, 1.0), "(loss)": (1.0, 1.0),
                     "(SGD step)": (0.0, 1.0)}
    assert report.sum_ms == 9.0 and report.tolerance == 0.15
    for step_ms, ratio, adds_up in ((9.0, 1.0, True), (8.0, 1.125, True), (10.0, 0.9, True),
                                    (7.5, 1.2, False), (11.0, 9 / 11, False)):
        checked = dataclasses.replace(report, step_ms=step_ms)
        assert checked.ratio == pytest.approx(ratio) and checked.adds_up is adds_up
        verdict = bench_view.layer_verdict(checked).plain
        assert f"ratio {ratio:.3f} ({'within' if adds_up else 'OUTSIDE'} ±15%)" in verdict, verdict


def test_sweep_and_layer_timing_run_one_step_with_one_update() -> None:
    """The per-layer step is the sweep's step plus marks: the same SGD update, written once."""
    torch.manual_seed(0)
    plain, _ = _tiny()
    marked, by_hand = copy.deepcopy(plain), copy.deepcopy(plain)
    x, y = torch.randn(4, 6), torch.randint(0, 3, (4,))
    marks: list[str] = []
    for _ in range(2):
        steps.build_step(Mode.train, plain, x, y, contextlib.nullcontext)()
        steps.build_step(Mode.train, marked, x, y, contextlib.nullcontext, mark=marks.append)()
    assert marks == ["loss", "backward", "update", "end"] * 2
    for _ in range(2):  # a fresh optimizer per built step, as above
        opt = torch.optim.SGD(by_hand.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        opt.zero_grad()
        F.cross_entropy(by_hand(x), y).backward()
        opt.step()
    for a, b, c in zip(plain.parameters(), marked.parameters(), by_hand.parameters(), strict=True):
        assert torch.equal(a, b) and torch.allclose(a, c)


def test_bench_view_shows_names_and_notes_as_text() -> None:
    from rich.console import Console

    case = Case(model="Net [/x] [bold]b[/bold] :smile:", mode=Mode.infer, dtype=Dtype.fp32, batch=1)
    rows = [Row(case=case, status=Status.error, note="ValueError: got [/x] \x1b[31m:x:"),
            bench.figures(case, _tiny()[1], Stats(median=2.0, q1=1.0, q3=3.0, n=3), peak=None, memory=None,
                          memory_kind="")]
    out = Console(record=True, width=250, emoji=False, highlight=False)
    for part in bench_view.report(rows, case.model, [], interrupted=True, on_cpu=True):
        out.print(part)
    text = out.export_text()
    assert "Net [/x] [bold]b[/bold] :smile:" in text and "ValueError: got [/x] [31m:x:" in text
    assert "\x1b" not in text and "interrupted: 2 finished row(s) kept" in text
    assert "peak RSS MiB" in text and "% peak —: no known peak" in text
