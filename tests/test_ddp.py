"""bench --ddp: torchrun workers (gloo on CPU) timing the DDP training step; failures end the run."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import SPECS
from typer.testing import CliRunner

from archviz.cli import app
from archviz.runtime import bench_ddp
from archviz.runtime.bench_ddp import DdpResult, DdpRun, RankResult

KW = {"device": "cpu", "batch": 8, "dtype": "fp32", "warmup": 2, "iters": 3, "input_shape": None}


def _spec(tmp_path: Path) -> str:
    """lenet5 under a unique path, so that its workers can be found by their command line."""
    path = tmp_path / f"lenet5-{os.getpid()}-{time.monotonic_ns()}.yaml"
    shutil.copy(SPECS / "lenet5.yaml", path)
    return str(path)


def _running(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (the workers and torchrun of one test)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def test_two_gloo_workers_time_the_ddp_step(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    run = bench_ddp.launch(2, spec, **KW)  # type: ignore[arg-type]
    assert run.workers == 2 and run.backend == "gloo"
    assert [r.rank for r in run.ranks] == [0, 1]
    for r in run.ranks:
        assert r.batch == 8 and r.ms_median > 0
        assert abs(r.images_per_s - 8 / (r.ms_median / 1e3)) < 1e-6 * r.images_per_s
    assert run.images_per_s == sum(r.images_per_s for r in run.ranks)
    assert not _running(spec)


def test_scaling_efficiency_by_hand() -> None:
    def ranks(*ips: float) -> tuple[RankResult, ...]:
        return tuple(RankResult(rank=i, device="cpu", batch=8, ms_median=8e3 / v, images_per_s=v)
                     for i, v in enumerate(ips))

    one = DdpRun(workers=1, backend="gloo", ranks=ranks(100.0))
    two = DdpRun(workers=2, backend="gloo", ranks=ranks(90.0, 70.0))
    result = DdpResult(spec="x", device="cpu", batch=8, dtype="fp32", iters=3, single=one, run=two)
    assert result.efficiency == pytest.approx((90 + 70) / (2 * 100))   # 0.8
    d = result.as_dict()
    assert d["schema_version"] == 1 and d["scaling_efficiency"] == pytest.approx(0.8)


def test_a_failing_worker_ends_the_run_with_its_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path)
    monkeypatch.setenv("ARCHVIZ_DDP_FAIL_RANK", "1")
    start = time.monotonic()
    with pytest.raises(bench_ddp.DdpError, match=r"worker 1 failed: RuntimeError: rank 1 failed on purpose"):
        bench_ddp.launch(2, spec, timeout=120, **KW)  # type: ignore[arg-type]
    assert time.monotonic() - start < 60
    assert not _running(spec)   # rank 0, blocked in DDP's first all-reduce, was stopped too


def test_a_run_past_its_timeout_is_stopped_without_orphans(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with pytest.raises(bench_ddp.DdpError, match="did not finish within 1 s"):
        bench_ddp.launch(2, spec, timeout=1, **KW)  # type: ignore[arg-type]
    time.sleep(0.5)
    assert not _running(spec)


def test_cli_bad_worker_counts() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "lenet5", "--device", "cpu", "--ddp", "0"])
    assert res.exit_code == 2 and "--ddp: expected at least 1 worker, got 0" in res.output
    res = runner.invoke(app, ["bench", "lenet5", "--device", "cpu", "--split-gpus"])
    assert res.exit_code == 2 and "--split-gpus: LeNet-5 names 1 GPU(s)" in res.output


def test_cli_more_workers_than_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from archviz.cli import bench as cli_bench

    monkeypatch.setattr(cli_bench, "resolve_device", lambda name: "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    res = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cuda", "--ddp", "2"])
    assert res.exit_code == 2 and "--ddp 2: only 1 CUDA device(s) here" in res.output


def test_cli_ddp_table_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI around the launcher (the launcher itself is tested above): table and JSON."""
    def fake_run(n: int, spec: str, **kw: object) -> DdpResult:
        r = lambda i, v: RankResult(rank=i, device="cpu", batch=8, ms_median=8e3 / v, images_per_s=v)  # noqa: E731
        return DdpResult(spec=spec, device="cpu", batch=8, dtype="fp32", iters=3,
                         single=DdpRun(workers=1, backend="gloo", ranks=(r(0, 100.0),)),
                         run=DdpRun(workers=2, backend="gloo", ranks=(r(0, 90.0), r(1, 70.0))))

    monkeypatch.setattr(bench_ddp, "run", fake_run)
    out = tmp_path / "ddp.json"
    res = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cpu", "--ddp", "2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "scaling efficiency 2 workers vs 1: 80%" in res.output and "160.0" in res.output
    assert '"scaling_efficiency": 0.8' in out.read_text()


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_one_nccl_worker(tmp_path: Path) -> None:
    run = bench_ddp.launch(1, _spec(tmp_path), **{**KW, "device": "cuda"})  # type: ignore[arg-type]
    assert run.backend == "nccl" and run.ranks[0].device == "cuda:0"
