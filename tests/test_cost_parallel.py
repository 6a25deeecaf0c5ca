"""archviz cost beyond one device: the precision regimes' bytes per parameter, ZeRO's sharding
(the paper's own example worked out), Megatron-LM's formula, how --gpus divides into tp · dp ·
pp, the CPU's calibration, the margin of a "fits" verdict and a run's length."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.core.cost import Optimizer, Settings, estimate, target
from archviz.core.cost_states import (
    CostError,
    Parallel,
    Precision,
    fmt_duration,
    parallel,
    run_steps,
    sharded,
    state_bytes,
)
from archviz.core.devices import Dtype
from archviz.spec import load

runner = CliRunner()


def test_the_zero_papers_example() -> None:
    """Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B, N_d = 64, K = 12 (Adam, mixed precision):
    120 GB, 31.4 GB, 16.6 GB, 1.9 GB per device for the baseline and stages 1, 2, 3."""
    psi, nd = 7.5e9, 64
    b = state_bytes(Precision.mixed, Optimizer.adam.states)
    assert (b.params, b.grads, b.optimizer) == (2, 2, 12)           # 2Ψ + 2Ψ + KΨ
    per_device = [psi * sharded(b, z, nd).total / 1e9 for z in range(4)]
    assert [round(g, 1) for g in per_device] == [120.0, 31.4, 16.6, 1.9]
    assert per_device[1] == pytest.approx((4 + 12 / nd) * psi / 1e9)   # 4Ψ + KΨ/N_d
    assert per_device[2] == pytest.approx((2 + 14 / nd) * psi / 1e9)   # 2Ψ + 14Ψ/N_d
    assert per_device[3] == pytest.approx(16 / nd * psi / 1e9)         # 16Ψ/N_d


def test_megatron_keeps_fp32_main_gradients() -> None:
    """megatron/training/theoretical_memory_usage.py: 18 bytes per parameter, 6 + 12/dp with the
    distributed optimizer (ZeRO-1); 2 more than ZeRO's 16 (fp32, not bf16, gradients)."""
    b = state_bytes(Precision.megatron, Optimizer.adam.states)
    assert b.total == 18 and b.total - state_bytes(Precision.mixed, 2).total == 2
    for dp in (1, 2, 8, 64):
        assert sharded(b, 1, dp).total == pytest.approx(6 + 12 / dp)
    amp = state_bytes(Precision.amp, Optimizer.momentum.states)
    assert (amp.params, amp.grads, amp.optimizer) == (4, 4, 4)


def test_model_states_of_a_step_follow_the_formula() -> None:
    """The walk's persistent parts and gradients at the optimizer step equal Ψ × the bytes."""
    sp = load("resnet18")
    a = analyze(sp, gpus=1)
    psi = a.totals.params
    for prec, z, dp in ((Precision.mixed, 0, 1), (Precision.mixed, 1, 8), (Precision.mixed, 3, 8),
                        (Precision.megatron, 1, 4)):
        s = Settings(batch=2, dtype=Dtype.bf16, optimizer=Optimizer.adam, precision=prec, zero=z, dp=dp)
        c = estimate(a, s, target("h100"), 1)
        want = sharded(state_bytes(prec, 2), z, dp)
        m = c.memory
        assert m.params == pytest.approx(psi * want.params, abs=1)
        assert m.optimizer == pytest.approx(psi * want.optimizer, abs=1)
        if prec is Precision.megatron:
            assert m.grads == pytest.approx(psi * want.grads, abs=1)


def test_zero3_gathers_the_running_layers_parameters() -> None:
    a = analyze(load("alexnet"), gpus=1)
    s = Settings(batch=8, dtype=Dtype.bf16, optimizer=Optimizer.adam, precision=Precision.mixed, dp=4)
    z2 = estimate(a, Settings(**{**s.__dict__, "zero": 2}), target("h100"), 1)
    z3 = estimate(a, Settings(**{**s.__dict__, "zero": 3}), target("h100"), 1)
    # fc6 (37.7M parameters) and its neighbour gathered in bf16 at some moment of the step
    assert z3.memory.transient - z2.memory.transient >= 2 * 37_752_832
    assert z3.memory.params == pytest.approx(a.totals.params * 2 / 4, abs=1)


@pytest.mark.parametrize(("args", "want"), [
    ((None, None, None, 2, False), Parallel(2, 1)),    # the spec's split
    ((8, None, None, 2, False), Parallel(2, 4)),
    ((3, None, None, 2, False), Parallel(1, 3)),       # 2 does not divide 3: tp 1
    ((8, 4, None, 2, False), Parallel(4, 2)),
    ((None, None, None, 2, True), Parallel(1, 1)),     # the CPU is one device
])
def test_gpus_divide_into_tp_dp_pp(args: tuple, want: Parallel) -> None:  # type: ignore[type-arg]
    assert parallel(*args) == want


def test_bad_parallel_settings() -> None:
    with pytest.raises(CostError, match="not divisible"):
        parallel(6, 4, None, 2, False)
    with pytest.raises(CostError, match="tp · pp = 4"):
        parallel(6, 2, 2, 2, False)
    assert parallel(8, 2, 2, 2, False) == Parallel(tp=2, dp=2, pp=2)
    assert parallel(None, None, 2, 2, False) == Parallel(tp=2, dp=1, pp=2)   # the spec's split, 2 stages


def test_run_length_and_durations() -> None:
    assert run_steps(256, None, 90, 1_200_000, None) == (90 * 4688, "90 epochs of 1,200,000 images")
    assert run_steps(256, None, None, 1000, None) == (4, "1 epoch of 1,000 images")
    assert run_steps(8, 1024, None, None, 10**9) == (122071, "1,000,000,000 tokens")
    assert run_steps(8, None, None, None, None) is None
    assert [fmt_duration(x) for x in (0.5, 90, 3000, 4000, 155_520, 10**6)] == \
        ["0.500 s", "90.0 s", "50.0 min", "66.7 min", "1.80 days", "11.6 days"]
    assert fmt_duration(40 * 3600 / 2) == "20.0 h"


def test_cpu_calibration_gives_time(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from archviz.runtime import probe

    monkeypatch.setenv("ARCHVIZ_CALIBRATION", str(tmp_path / "cal.json"))
    r = runner.invoke(app, ["cost", "lenet5", "--device", "cpu"])
    assert r.exit_code == 0 and "archviz bench --calibrate --device cpu" in r.output
    assert "kept for the CUDA" not in r.output          # no CUDA context on the CPU
    probe.save_calibration("cpu", "Test CPU", {"fp32": 1.0, "bf16": None}, 20.0)
    where = probe.device_target("cpu")
    assert where.tflops(Dtype.fp32) == 1.0 and where.bandwidth_gbs == 20.0
    r = runner.invoke(app, ["cost", "lenet5", "--device", "cpu", "--images", "60K", "--format", "json"])
    d = json.loads(r.output)
    assert d["time"]["step_ms"] > 0 and d["time"]["steps"] == 469
    assert d["time"]["run_seconds"] == pytest.approx(469 * d["time"]["step_ms"] / 1e3)
    assert d["settings"] | {"lowering": None} == d["settings"] | {
        "tp": 1, "dp": 1, "pp": 1, "zero": 0, "precision": "amp", "gpus": 1, "lowering": None}


def test_json_settings_and_breakdown() -> None:
    r = runner.invoke(app, ["cost", "alexnet", "--device", "a100", "--gpus", "8", "--zero", "2",
                            "--precision", "mixed", "--optimizer", "adam", "--grad-accum", "4",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    s = d["settings"]
    assert (s["tp"], s["dp"], s["pp"], s["zero"], s["precision"], s["dtype"]) == (2, 4, 1, 2, "mixed", "bf16")
    assert s["global_batch"] == 128 * 4 * 4
    for m in d["per_gpu"]:
        assert m["model_states"] == m["params"] + m["grads"] + m["optimizer"]
        assert m["peak"] == m["model_states"] + m["buffers"] + m["input"] + m["saved"] + m["transient"] \
            + m["kv_cache"]


def test_cli_enums_mirror_the_cores() -> None:
    from archviz.cli import cost as cli
    from archviz.core.flops import Mode

    for mine, core in ((cli.Mode, Mode), (cli.Dtype, Dtype), (cli.Optimizer, Optimizer),
                       (cli.Precision, Precision)):
        assert {e.value for e in mine} == {e.value for e in core}


def test_help_fits_on_a_screen() -> None:
    r = runner.invoke(app, ["cost", "--help"], env={"COLUMNS": "100"}, terminal_width=100)
    assert r.exit_code == 0
    assert len(r.output.splitlines()) <= 60
    for panel in ("Hardware and parallelism", "The training step", "A whole run", "Input and output"):
        assert panel in r.output
