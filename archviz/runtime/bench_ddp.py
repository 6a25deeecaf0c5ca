"""``bench --ddp N``: data-parallel training throughput through ``torch.distributed.run``.

The launcher runs ``python -m torch.distributed.run --standalone --nproc-per-node N -m
archviz.runtime.ddp_worker ...`` in a subprocess (its own process group, so that a timeout ends
the launcher and every worker), once with one worker and once with N, and reads each rank's
``rank<R>.json`` from a temporary folder. Scaling efficiency = images/s of N workers /
(N × images/s of one). A worker that fails ends the run (torchrun stops the others) and its
error is raised as :class:`DdpError`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ArchvizError
from ..record import record

DEFAULT_TIMEOUT = 600.0


class DdpError(ArchvizError):
    """A worker failed, or the run did not finish in time."""


@record(kw_only=True)
class RankResult:
    rank: int
    device: str
    batch: int
    ms_median: float
    images_per_s: float


@record(kw_only=True)
class DdpRun:
    """One launch: N workers, each rank's figures."""

    workers: int
    backend: str
    ranks: tuple[RankResult, ...]

    @property
    def images_per_s(self) -> float:
        return sum(r.images_per_s for r in self.ranks)


@record(kw_only=True)
class DdpResult:
    spec: str
    device: str
    batch: int
    dtype: str
    iters: int
    single: DdpRun | None     # one worker (the baseline); None when N is 1 (it is the run itself)
    run: DdpRun

    @property
    def baseline(self) -> DdpRun:
        return self.single or self.run

    @property
    def efficiency(self) -> float:
        return self.run.images_per_s / (self.run.workers * self.baseline.images_per_s)

    def as_dict(self) -> dict[str, object]:
        def run_dict(r: DdpRun) -> dict[str, object]:
            return {"workers": r.workers, "backend": r.backend, "images_per_s": r.images_per_s,
                    "ranks": [vars(x) for x in r.ranks]}
        return {"schema_version": 1, "spec": self.spec, "device": self.device, "batch_per_worker": self.batch,
                "dtype": self.dtype, "iters": self.iters, "baseline": run_dict(self.baseline),
                "run": run_dict(self.run), "scaling_efficiency": self.efficiency}


def command(n: int, spec: str, *, device: str, batch: int, dtype: str, warmup: int, iters: int,
            input_shape: tuple[int, ...] | None, out: str, threads: int = 0, lowering: str = "") -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "archviz.runtime.ddp_worker", "--spec", spec, "--device", device, "--batch", str(batch),
           "--dtype", dtype, "--warmup", str(warmup), "--iters", str(iters), "--threads", str(threads),
           "--out", out]
    if input_shape:
        cmd += ["--input", ",".join(map(str, input_shape))]
    if lowering:
        cmd += ["--lowering", lowering]
    return cmd


def launch(n: int, spec: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: object) -> DdpRun:
    """One torchrun launch of ``n`` workers; their figures, or a :class:`DdpError`."""
    with tempfile.TemporaryDirectory(prefix="archviz-ddp-") as out:
        cmd = command(n, spec, out=out, **kw)  # type: ignore[arg-type]
        env = {**os.environ, "OMP_NUM_THREADS": str(kw.get("threads") or max(1, (os.cpu_count() or 1) // n)),
               "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end(proc)
            raise DdpError(f"--ddp {n}: the workers did not finish within {timeout:.0f} s; stopped them"
                           " (raise --ddp-timeout for a large model)") from None
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C): no orphaned workers
                _end(proc)
        errors = sorted(Path(out).glob("rank*.error"))
        if errors or proc.returncode != 0:
            raise DdpError(_failure(n, proc.returncode, errors, log))
        ranks = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(out).glob("rank*.json"))]
    if len(ranks) != n:
        raise DdpError(f"--ddp {n}: {len(ranks)} of {n} workers reported")
    ranks.sort(key=lambda r: r["rank"])
    return DdpRun(workers=n, backend=ranks[0]["backend"], ranks=tuple(
        RankResult(rank=r["rank"], device=r["device"], batch=r["batch"], ms_median=r["ms_median"],
                   images_per_s=r["images_per_s"]) for r in ranks))


def run(n: int, spec: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: object) -> DdpResult:
    """One worker (the baseline) then ``n``, unless ``n`` is 1. On the CPU every worker of both
    launches gets cores / ``n`` threads, so that the baseline is one of the ``n`` workers alone."""
    if kw.get("device") == "cpu":
        kw.setdefault("threads", max(1, (os.cpu_count() or 1) // n))
    single = launch(1, spec, timeout=timeout, **kw) if n > 1 else None
    many = launch(n, spec, timeout=timeout, **kw)
    return DdpResult(spec=spec, device=str(kw["device"]), batch=int(kw["batch"]),  # type: ignore[call-overload]
                     dtype=str(kw["dtype"]), iters=int(kw["iters"]), single=single, run=many)  # type: ignore[call-overload]


def _end(proc: subprocess.Popen[str]) -> None:
    """Stop the launcher's process group (torchrun and the workers it started), then reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(n: int, rc: int | None, errors: list[Path], log: str) -> str:
    if errors:
        first = errors[0].read_text(encoding="utf-8").splitlines()[0]
        rank = errors[0].name.removeprefix("rank").removesuffix(".error")
        return f"--ddp {n}: worker {rank} failed: {first}"
    tail = "\n".join(line for line in log.strip().splitlines()[-8:])
    return f"--ddp {n}: torch.distributed.run exited with {rc}:\n{tail}"


def _package_root() -> str:
    """The folder holding this archviz package, so that the workers import the same copy."""
    return str(Path(__file__).resolve().parents[2])
