"""The callables one timed iteration runs, built once for the sweep and for the per-layer times.

``infer`` = a forward pass under ``torch.inference_mode``; ``train`` = zero the gradients,
forward, cross-entropy on random labels, backward, one SGD step (:data:`SGD`). dtypes: fp32
(TF32 off), tf32 (TF32 on: CUDA matmul and cuDNN), bf16 / fp16 via autocast. Also here: the
model and batch a case runs on, and the backend flags a sweep sets and restores.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..core.devices import Dtype
from ..core.flops import Mode
from .bench_rows import Settings, Workload
from .inputs import example_input

AUTOCAST = {Dtype.bf16: torch.bfloat16, Dtype.fp16: torch.float16}
SGD = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}  # the one training update of every step

Mark = Callable[[str], None]  # called between the phases of a training step (per-layer timing)


def _no_mark(phase: str) -> None:
    pass


def prepare(work: Workload, batch: int, settings: Settings) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model on the device, a random batch and random labels."""
    from .parallel import Towers

    dev = torch.device(settings.device)
    # model-parallel towers already sit on their devices (the input goes to each, the output
    # comes back on the first)
    model: Any = work.module if isinstance(work.module, Towers) else work.module.to(dev)
    x = example_input(work.input_shape, work.input_dtype, batch=batch, device=dev, random=True)  # (N, ...)
    if settings.channels_last and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    classes, rest = work.output_shape[0], work.output_shape[1:]
    y = torch.randint(0, classes, (batch, *rest), device=dev)  # (N,) or (N, H, W)
    return model, x, y


def autocast(device: str, dtype: Dtype, cache: bool = True) -> AbstractContextManager[Any]:
    if dtype not in AUTOCAST:
        return nullcontext()
    return torch.autocast(device_type=device, dtype=AUTOCAST[dtype], cache_enabled=cache)


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


def build_step(mode: Mode, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               ctx: Callable[[], AbstractContextManager[Any]], mark: Mark = _no_mark) -> Callable[[], None]:
    """One iteration of ``mode``. ``mark(phase)`` is called after the forward ("loss"), the loss
    ("backward"), the backward ("update") and the SGD update ("end") of a training step."""
    if mode is not Mode.train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), ctx():
                model(x)

        return infer
    model.train()
    opt = torch.optim.SGD(model.parameters(), **SGD)  # type: ignore[arg-type]

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = model(x)
        mark("loss")
        value = loss(out, y)
        mark("backward")
        value.backward()
        mark("update")
        opt.step()
        mark("end")

    return train


def make_step(mode: Mode, dtype: Dtype, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              settings: Settings) -> Callable[[], None]:
    """The callable that one timed iteration of the sweep runs (compiled / graph-captured if asked)."""
    if settings.compile:
        torch._dynamo.reset()  # a fresh graph for every case: no recompile limit, no dynamic shapes
        how = "reduce-overhead" if settings.cuda_graphs else "default"
        model = torch.compile(model, mode=how, dynamic=False)  # type: ignore[assignment]
    graphs = settings.cuda_graphs and not settings.compile
    step = build_step(mode, model, x, y, partial(autocast, settings.device, dtype, not graphs))
    return capture(step) if graphs else step


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


@contextmanager
def restored(model: nn.Module, training: bool) -> Iterator[None]:
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


@contextmanager
def backend(device: str) -> Iterator[None]:
    """cudnn.benchmark on for a sweep on CUDA; the TF32 flags restored afterwards."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    cudnn.benchmark = device == "cuda"
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def set_precision(dtype: Dtype) -> None:
    tf32 = dtype is Dtype.tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
