"""``archviz bench --layers``: the median forward and backward time of every leaf module, like
``caffe time``. Hooks stamp each leaf's forward and the start of its backward, synchronising the
device; the step is the sweep's own (:func:`steps.build_step`), eager, with marks between phases.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from ..core.flops import Mode
from . import probe
from .bench_rows import Case, LayerReport, LayerTime, Settings
from .steps import autocast, build_step
from .timing import Timer, now_ms

Times = dict[str, tuple[float, float]]  # layer → (forward ms, backward ms) of one iteration


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


class Clock:
    """Hooks that stamp each leaf module's forward (pre/post) and the start of its backward,
    and the marks between the phases of a training step."""

    def __init__(self, device: str, timer: Timer = now_ms) -> None:
        self.device, self.timer = device, timer
        self.reset()

    def now(self) -> float:
        probe.synchronize(self.device)
        return self.timer()

    def reset(self) -> None:
        self.forward: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.marks: list[tuple[float, str]] = []
        self.phases: dict[str, float] = {}

    def attach(self, model: nn.Module, backward: bool) -> list[Any]:
        handles = []
        for name, mod in leaves(model):
            handles.append(mod.register_forward_pre_hook(partial(self._pre, name)))
            handles.append(mod.register_forward_hook(partial(self._post, name)))
            if backward:
                handles.append(mod.register_full_backward_pre_hook(partial(self._mark, name)))
        return handles

    def phase(self, name: str) -> None:
        self.phases[name] = self.now()

    def _mark(self, name: str, *_: Any) -> None:
        self.marks.append((self.now(), name))

    def _pre(self, name: str, *_: Any) -> None:
        self.started[name] = self.now()

    def _post(self, name: str, *_: Any) -> None:
        self.forward[name] = self.forward.get(name, 0.0) + self.now() - self.started[name]

    def times(self, train: bool) -> Times:
        """The last iteration's times per layer, with "(loss)" and "(SGD step)" when training."""
        if not train:
            return {n: (t, 0.0) for n, t in self.forward.items()}
        p = self.phases
        back, loss_back = self._backward(p["backward"], p["update"])
        timed = {n: (t, back.get(n, 0.0)) for n, t in self.forward.items()}
        timed["(loss)"] = (p["backward"] - p["loss"], loss_back)
        timed["(SGD step)"] = (0.0, p["end"] - p["update"])
        return timed

    def _backward(self, begin: float, end: float) -> tuple[dict[str, float], float]:
        """Each layer's backward = from its own mark to the next (the last: to the end);
        the gap before the first mark is the loss's backward."""
        marks = sorted(self.marks)
        out: dict[str, float] = {}
        for (t, name), (t_next, _) in zip(marks, marks[1:] + [(end, "")], strict=True):
            out[name] = out.get(name, 0.0) + t_next - t
        return out, (marks[0][0] if marks else end) - begin


def time_layers(case: Case, model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Settings,
                step_ms: float, timer: Timer = now_ms) -> LayerReport:
    """Median forward and backward time of every leaf module, hooks synchronising the device.

    The eager module is timed (a compiled or graph-captured one has no per-module boundaries);
    ``step_ms`` is the whole step's median timed without hooks, the sum is checked against it.
    """
    clock = Clock(settings.device, timer)
    train = case.mode is Mode.train
    samples: list[Times] = []
    with _out_of_place(model), warnings.catch_warnings():
        # the first layer's input needs no gradient: its backward hook may fire early (we use pre-hooks)
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        handles = clock.attach(model, backward=train)
        try:
            step = build_step(case.mode, model, x, y, partial(autocast, settings.device, case.dtype),
                              mark=clock.phase)
            for i in range(settings.warmup + settings.iters):
                clock.reset()
                step()
                if i >= settings.warmup:
                    samples.append(clock.times(train))
        finally:
            for h in handles:
                h.remove()
    return LayerReport(layers=_medians(samples), step_ms=step_ms)


def _medians(samples: list[Times]) -> tuple[LayerTime, ...]:
    rows = [LayerTime(name=n, forward_ms=statistics.median(s[n][0] for s in samples),
                      backward_ms=statistics.median(s[n][1] for s in samples)) for n in samples[0]]
    return tuple(sorted(rows, key=lambda r: r.total_ms, reverse=True))


