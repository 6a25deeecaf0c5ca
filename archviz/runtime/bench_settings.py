"""What a benchmark sweep runs, from the options as typed: the device's defaults, the parsed
lists, the chosen device. ``archviz bench`` and :func:`archviz.bench` both read their options
through :func:`bench_settings`; torch loads only to check a device (:func:`resolve_device`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ArchvizError

if TYPE_CHECKING:  # pragma: no cover
    from .bench_rows import Settings

# Defaults per device: a sensible sweep in under a minute (AlexNet on 2 CPU cores: ~17 s).
DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {"batch": "1,8", "dtype": "fp32", "warmup": 2, "iters": 8},
    "mps": {"batch": "1,32", "dtype": "fp32,fp16", "warmup": 5, "iters": 20},
    "cuda": {"batch": "1,32,128", "dtype": "fp32,tf32,bf16", "warmup": 10, "iters": 50},
}
MODES = ("infer", "train", "both")


class BenchUsage(ArchvizError):
    """A bad option value of archviz bench."""


def parse_list(text: str, option: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    bad = [t for t in items if t not in choices]
    if bad or not items:
        raise BenchUsage(f"{option}: expected a comma-separated list of {', '.join(choices)}, got {text!r}")
    return tuple(dict.fromkeys(items))


def parse_batches(text: str) -> tuple[int, ...]:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise BenchUsage(f"--batch: expected positive integers separated by commas (e.g. 1,32,128),"
                         f" got {text!r}")
    return tuple(dict.fromkeys(int(p) for p in parts))


def resolve_device(name: str) -> str:
    from . import probe

    name = name.lower()
    if name not in ("auto", "cpu", "cuda", "mps"):
        raise BenchUsage(f"--device: expected auto, cpu, cuda or mps, got {name!r}")
    if name == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if probe.available(d))
    if not probe.available(name):
        import torch

        raise BenchUsage(f"--device {name}: not available here (torch {torch.__version__}"
                         f"{', built without CUDA' if name == 'cuda' and not torch.version.cuda else ''})")
    return name


def bench_settings(dev: str, batch: str | None, mode: str, dtype: str | None,
                   channels_last: bool, compiled: bool, cuda_graphs: bool, warmup: int | None,
                   iters: int | None, layers: bool) -> Settings:
    """The options, with this device's defaults where one is not given (``archviz bench`` and
    ``archviz.bench``); ``mode``: infer, train or both."""
    from ..core.devices import DTYPES, Dtype
    from ..core.flops import Mode as StepMode
    from .bench_rows import Settings

    if mode not in MODES:
        raise BenchUsage(f"bench mode: expected {', '.join(MODES)}, got {mode!r}")
    d = DEFAULTS[dev]
    modes = tuple(StepMode) if mode == "both" else (StepMode(mode),)
    dtypes = parse_list(d["dtype"] if dtype is None else dtype, "--dtype", DTYPES)
    settings = Settings(device=dev, batches=parse_batches(d["batch"] if batch is None else batch),
                        modes=modes, dtypes=tuple(Dtype(t) for t in dtypes), channels_last=channels_last,
                        compile=compiled, cuda_graphs=cuda_graphs,
                        warmup=d["warmup"] if warmup is None else warmup,
                        iters=d["iters"] if iters is None else iters, layers=layers)
    if settings.iters < 1 or settings.warmup < 0 or (compiled and settings.warmup < 1):
        raise BenchUsage("--iters must be ≥ 1 and --warmup ≥ 0 (≥ 1 with --compile, which compiles then)")
    return settings
