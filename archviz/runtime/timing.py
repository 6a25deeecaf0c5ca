"""Timers and their statistics: milliseconds per iteration, median and quartiles.

On CUDA a pair of CUDA events brackets every iteration (the end event is waited on before the
next one starts); elsewhere ``time.perf_counter`` after a device synchronise. torch is imported
only for the CUDA events.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from ..record import record
from . import probe

Timer = Callable[[], float]  # a clock reading, in ms


def now_ms() -> float:
    return time.perf_counter() * 1e3


@record(kw_only=True)
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
            return cls(median=samples[0], q1=samples[0], q3=samples[0], n=len(samples))
        q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(median=q2, q1=q1, q3=q3, n=len(samples))


def time_iterations(step: Callable[[], Any], warmup: int, iters: int, device: str,
                    timer: Timer = now_ms) -> list[float]:
    """Milliseconds of each of ``iters`` iterations, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    probe.synchronize(device)
    if device == "cuda":
        return _cuda_times(step, iters)
    times = []
    for _ in range(iters):
        start = timer()
        step()
        probe.synchronize(device)
        times.append(timer() - start)
    return times


def _cuda_times(step: Callable[[], Any], iters: int) -> list[float]:
    import torch

    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(float(start.elapsed_time(end)))
    return times
