"""The cost model's vocabulary beyond one device (pure): the precision regimes and the bytes per
parameter they keep, ZeRO's sharding of those bytes over the data-parallel devices, how
``--gpus`` divides into tensor × data × pipeline parallelism, the margin a "fits" verdict keeps,
and a run's length (steps, and a duration written for people).

Model states per parameter (Rajbhandari et al. 2020, "ZeRO", Section 3.1 and Figure 1):
mixed precision with Adam keeps 2Ψ (fp16/bf16 parameters) + 2Ψ (their gradients) + KΨ (fp32
master weights, momentum and variance: K = 12); ZeRO stage 1 shards the K over the N_d
data-parallel devices (4Ψ + KΨ/N_d), stage 2 the gradients too (2Ψ + 14Ψ/N_d), stage 3 the
parameters too (16Ψ/N_d). Megatron-LM keeps fp32 main gradients (2 + 4 + 12 = 18 bytes; with its
distributed optimizer 6 + 12/N_d: megatron/training/theoretical_memory_usage.py).
"""

from __future__ import annotations

import math
from enum import Enum

from ..errors import ArchvizError
from ..record import record


class CostError(ArchvizError):
    """Bad settings for the cost model (an unknown device, a batch below 1, a --gpus not
    divisible by tp · pp, ...)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def format(self) -> str:
        return str(self) + (f"\n{self.hint}" if self.hint else "")


class Precision(str, Enum):
    """Where the bytes of training live: ``amp`` (torch.autocast: fp32 parameters and gradients,
    ``--dtype`` compute), ``mixed`` (``--dtype`` parameters and gradients, fp32 master weights and
    moments: ZeRO's 16 bytes per parameter with Adam), ``megatron`` (as mixed, but fp32 main
    gradients: 18)."""

    amp = "amp"
    mixed = "mixed"
    megatron = "megatron"


@record
class StateBytes:
    """Bytes per parameter: the parameters as stored, their gradients, the optimizer's state
    (fp32 master weights where the parameters are not fp32, and the optimizer's moments)."""

    params: float
    grads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.params + self.grads + self.optimizer


def state_bytes(precision: Precision, moments: int, low: int = 2) -> StateBytes:
    """Bytes per parameter before sharding; ``moments``: fp32 tensors per parameter the optimizer
    keeps (SGD 0, momentum 1, Adam 2); ``low``: bytes of the 16-bit type."""
    if precision is Precision.amp:
        return StateBytes(4, 4, 4 * moments)
    master = 4 + 4 * moments            # K: the fp32 master copy and the moments (Adam: 12)
    return StateBytes(low, 4 if precision is Precision.megatron else low, master)


def sharded(b: StateBytes, zero: int, dp: int) -> StateBytes:
    """Each data-parallel device's bytes per parameter under ZeRO ``zero`` over ``dp`` devices:
    stage 1 shards the optimizer state, 2 the gradients too, 3 the parameters too (FSDP)."""
    return StateBytes(b.params / dp if zero >= 3 else b.params, b.grads / dp if zero >= 2 else b.grads,
                      b.optimizer / dp if zero >= 1 else b.optimizer)


@record
class Parallel:
    """``--gpus`` = tp · dp · pp: tensor-parallel (the spec's channel split), data-parallel
    replicas and pipeline stages."""

    tp: int = 1
    dp: int = 1
    pp: int = 1

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp


def parallel(gpus: int | None, tp: int | None, pp: int | None, spec_gpus: int | None,
             cpu: bool) -> Parallel:
    """Resolve the flags: ``--gpus`` defaults to the spec's ``gpus:`` on a GPU device and 1 on the
    CPU (one device); ``--tp`` to the spec's ``gpus:`` where it divides ``--gpus``, else 1."""
    p = pp or 1
    if p < 1:
        raise CostError(f"--pp: expected a positive number of pipeline stages, got {p}")
    spec = spec_gpus or 1
    if cpu:
        if (gpus or 1) > 1 or (tp or 1) > 1 or p > 1:
            raise CostError("--device cpu is one device: --gpus, --tp and --pp must be 1 there",
                            "hint: name a GPU of the table (--device h100) to split")
        return Parallel()
    total = gpus if gpus is not None else spec * p
    t = tp if tp is not None else (spec if total % (spec * p) == 0 else 1)
    if t < 1 or total < 1:
        raise CostError("--gpus and --tp: expected positive numbers of devices")
    if total % (t * p):
        raise CostError(f"--gpus {total} is not divisible by tp · pp = {t * p}",
                        "hint: --gpus = tp · dp · pp (all the devices)")
    return Parallel(tp=t, dp=total // (t * p), pp=p)


# ---- the margin a "fits" verdict keeps -------------------------------------------------------
# The CUDA context (the driver's and the CUDA libraries' code and state) is outside PyTorch's
# allocator: with lazy module loading (CUDA ≥ 11.7, PyTorch's default) it is a few hundred MB
# per process; pytorch/pytorch#34323 shows 781 MB in nvidia-smi with eager loading. 0.5 GiB is
# kept. The caching allocator's reserve (memory_reserved − memory_allocated: rounding to
# 512-byte blocks and 2 / 20 MiB segments, fragmentation) is taken as 5 % of the peak — an
# assumption to be measured with benchmarks/cost_vs_cuda.py (max_memory_reserved beside
# max_memory_allocated), not a measured figure. The CPU keeps neither.
CUDA_CONTEXT = 2**29
ALLOCATOR_RESERVE = 0.05


def kept(peak: int, gpu: bool) -> int:
    """Bytes kept beside the peak: the CUDA context and the allocator's reserve."""
    return CUDA_CONTEXT + math.ceil(ALLOCATOR_RESERVE * peak) if gpu else 0


def usable(capacity: int, gpu: bool) -> int:
    """The largest peak that fits in ``capacity`` with :func:`kept` beside it."""
    return max(int((capacity - CUDA_CONTEXT) / (1 + ALLOCATOR_RESERVE)), 0) if gpu else capacity


# ---- a run -----------------------------------------------------------------------------------

def fmt_duration(seconds: float) -> str:
    """3 significant figures in a unit people read: seconds, minutes, hours or days."""
    for unit, size, limit in (("s", 1, 120), ("min", 60, 120 * 60), ("h", 3600, 36 * 3600),
                              ("days", 86400, math.inf)):
        if seconds < limit * 1 or unit == "days":
            value = seconds / size
            text = f"{value:#.3g}".rstrip(".")
            return f"{text} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


@record
class Run:
    """A whole run: optimizer steps, what they cover, and the time (None: no time model)."""

    steps: int
    what: str
    seconds: float | None

    def as_dict(self) -> dict[str, object]:
        return {"steps": self.steps, "what": self.what, "run_seconds": self.seconds}


def run_steps(global_batch: int, seq: int | None, epochs: float | None, images: int | None,
              tokens: int | None) -> tuple[int, str] | None:
    """Steps of a run: ``epochs`` (1 without) passes over ``images`` at ``global_batch`` samples a
    step, or ``tokens`` ÷ (global batch · ``seq``) for a token-id input; None when neither is asked."""
    if tokens is not None:
        if images is not None or epochs is not None:
            raise CostError("--tokens counts a run by itself: leave out --epochs and --images")
        if not seq:
            raise CostError("--tokens: the input is not token ids (int64 / int32): count the run with"
                            " --images", "hint: --input-dtype int64 for a sequence of token ids")
        return math.ceil(tokens / (global_batch * seq)), f"{tokens:,} tokens"
    if epochs is not None and images is None:
        raise CostError("--epochs needs --images (a run is epochs × images)")
    if images is None:
        return None
    if epochs is not None and epochs <= 0:
        raise CostError(f"--epochs: expected a positive number, got {epochs:g}")
    e = 1.0 if epochs is None else epochs
    what = f"{e:g} epoch{'s' if e != 1 else ''} of {images:,} images"
    return math.ceil(e * math.ceil(images / global_batch)), what
