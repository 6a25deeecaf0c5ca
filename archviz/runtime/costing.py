"""The cost of an analysed spec as ``archviz cost``'s options ask, one configuration or a sweep
over lists (``--device a100,h100 --batch 1,2,4 --seq 512,1024 --zero 0,3``): the one path of the
CLI, ``archviz.cost`` and ``archviz plot --kind fit``.

Only the device probe (``--device cuda``) reaches torch, inside :mod:`archviz.runtime.probe`;
nothing here imports it. A sweep analyses once per distinct ``--seq`` (and channel split), looks
each device up once, and leaves the batch to the core's per-batch evaluation (memory is affine in
the batch: :func:`archviz.core.cost.estimate` reuses one walk of the step for every batch).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from enum import Enum
from typing import Any

from ..core.analysis import Analysis, analyze
from ..core.cost import Cost, CostError, Settings, estimate, parse_images, settings_layout
from ..core.cost_states import Run, parallel, run_steps
from ..ops.lowering import Lowering
from ..record import record

# the options that take a comma list, in the order a sweep nests them (the first outermost)
SWEPT = ("device", "gpus", "tp", "zero", "seq", "batch")
INT_LISTS = ("batch", "seq", "gpus", "tp", "zero")


def parse_list(text: str | int | list[Any] | tuple[Any, ...] | None, flag: str) -> list[Any]:
    """A comma list (``1,2,4``; ``a100,h100``; a Python list from the API); ``--batch`` and the
    other numeric options take ``A..B`` too: the powers of two from A to B (``1..64``: 1, 2, 4, …,
    64). Each item once, in the order given; an empty item or a non-number is a located error."""
    if text is None:
        return [None]
    if isinstance(text, (list, tuple)):
        items: list[Any] = [str(t).strip() for t in text]
    else:
        items = [t.strip() for t in str(text).split(",")]
    if not items or not all(items):
        raise CostError(f"--{flag}: an empty item in '{text}'", "hint: a comma list such as 1,2,4")
    if flag not in INT_LISTS:
        return list(dict.fromkeys(items))
    out: list[int] = []
    for t in items:
        out += _numbers(t, flag)
    return list(dict.fromkeys(out))


def _numbers(t: str, flag: str) -> list[int]:
    lo, dots, hi = t.partition("..")
    if not (lo.isdigit() and (not dots or hi.isdigit())):
        raise CostError(f"--{flag}: expected whole numbers, got '{t}'",
                        f"hint: --{flag} 8, a comma list --{flag} 1,2,4 or powers of two --{flag} 1..64")
    a, b = int(lo), int(hi) if dots else int(lo)
    if dots and (a < 1 or b < a or b > 2**40):
        raise CostError(f"--{flag} {t}: expected A..B with 1 ≤ A ≤ B (the powers of two from A to B)")
    out, x = [a], a
    while dots and x * 2 <= b:
        x *= 2
        out.append(x)
    return out


# ---- one configuration -----------------------------------------------------------------------

def _value(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


def compute(a: Analysis, device: str, *, gpus: int | None = None, tp: int | None = None, pp: int = 1,
            sp: bool = False, recompute: Any = "none", zero: int = 0, batch: int = 128,
            grad_accum: int = 1, mode: Any = "train", precision: Any = "amp", dtype: Any = None,
            optimizer: Any = "momentum", epochs: float | None = None, images: str | None = None,
            tokens: str | None = None, lowering_text: str | None = None, seq: int | None = None,
            context: int | None = None, memo: dict[Any, Any] | None = None,
            detail: bool = True) -> tuple[Cost, Run | None]:
    """The cost of an analysed spec as the flags ask (the CLI's and ``archviz.cost``'s one path):
    the :class:`~archviz.core.cost.Cost` and the run (None where none is asked). The choices are
    the Enums' values (or the Enums); ``memo`` (a sweep's) keeps the analyses and device lookups
    already made; ``detail`` False leaves out the per-layer rows (``Cost.layers`` empty)."""
    from ..core.cost_layout import Recompute as Recomp
    from ..core.cost_layout import width

    memo = {} if memo is None else memo
    mode, precision, dtype = _value(mode), _value(precision), _value(dtype)
    cpu = device.strip().lower() == "cpu"
    where = _memo(memo, ("device", device), lambda: _target(device))
    if seq is not None:
        a = _memo(memo, ("seq", id(a), seq), lambda: at_seq(a, seq))
    if mode == "infer" and dtype in ("bf16", "fp16"):
        precision = "mixed"          # serving stores the weights in --dtype (DESIGN.md)
    par = parallel(gpus, tp, pp, a.gpus, cpu)
    megatron = width(a) is not None      # attention: heads and columns split (cost_layout)
    if sp and (par.tp == 1 or not megatron):
        raise CostError("--sp splits a model with attention along the sequence over --tp devices",
                        "hint: add --tp 2 (or more) on a model with an attention layer")
    if par.tp != (a.gpus or 1) and not megatron:
        a = _memo(memo, ("split", id(a), par.tp), lambda: analyze(a.graph, a.input, par.tp, a.input_dtype))
    low = _memo(memo, ("lowering", lowering_text), lambda: Lowering.parse(lowering_text or ""))
    s = settings(mode, batch, precision, dtype, _value(optimizer), zero, par.dp, grad_accum, cpu, low)
    s = replace(s, tp=par.tp if megatron else 1, sp=sp, pp=par.pp, recompute=Recomp(_value(recompute)))
    c = estimate(a, s, where, 1 if megatron else par.tp, detail)
    if context is not None and mode != "infer":
        raise CostError("--context: the tokens a KV cache holds, with --mode infer")
    if mode == "infer":
        c = _serve(a, c, where, context, 1 if megatron else par.tp, memo)
    return c, _run(c, a, epochs, images, tokens)


def _memo(memo: dict[Any, Any], key: Any, make: Any) -> Any:
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _target(device: str) -> Any:
    from .probe import device_target

    return device_target(device)


def at_seq(a: Analysis, seq: int) -> Analysis:
    """The analysis at ``seq`` tokens (a token-id input only)."""
    if a.input_dtype not in ("int64", "int32") or len(a.input) != 1:
        raise CostError(f"--seq: the length of a token-id input; {a.name} reads {a.input}",
                        "hint: give an image's size with --input")
    if seq < 1:
        raise CostError(f"--seq: expected a positive number of tokens, got {seq}")
    return analyze(a.graph, (seq,), a.gpus, a.input_dtype)


def _serve(a: Analysis, c: Cost, where: Any, context: int | None, gpus: int, memo: dict[Any, Any]) -> Cost:
    """Fold the KV cache and a decode step into an inference cost (archviz.core.cost_serve)."""
    from ..core.cost_serve import self_attention, serve

    seq = a.input[0]
    if not any(self_attention(st) for st in a.layers) or a.input_dtype not in ("int64", "int32"):
        if context is not None:
            raise CostError(f"--context: {a.name} has no self-attention over token ids to cache")
        return c
    context = seq if context is None else context
    if context < seq:
        raise CostError(f"--context {context}: the cache must hold the prefill's --seq {seq} tokens",
                        f"hint: --context {seq} or more, or a shorter --seq")
    one = _memo(memo, ("seq", id(a), 1), lambda: at_seq(a, 1))
    decode = estimate(one, c.settings, where, gpus, detail=False)
    return serve(c, decode, a, settings_layout(a, c.settings), context, seq)


def settings(mode: str, batch: int, precision: str, dtype: str | None, optimizer: str, zero: int, dp: int,
             grad_accum: int, cpu: bool, lowering: Lowering) -> Settings:
    """The core's settings from the options' values."""
    from ..core import cost_states, devices, flops
    from ..core.cost import Optimizer

    low = "fp32" if precision == "amp" else "bf16"
    return Settings(mode=flops.Mode(mode), batch=batch, dtype=devices.Dtype(dtype or low),
                    optimizer=Optimizer(optimizer), torch_device="cpu" if cpu else "cuda",
                    lowering=lowering,
                    precision=cost_states.Precision(precision), zero=zero, dp=dp, grad_accum=grad_accum)


def _run(c: Cost, a: Analysis, epochs: float | None, images: str | None, tokens: str | None) -> Run | None:
    """The run the flags ask for (None: none asked)."""
    token_ids = a.input_dtype in ("int64", "int32")
    found = run_steps(c.settings.global_batch, a.input[0] if token_ids else None, epochs,
                      parse_images(images) if images is not None else None,
                      parse_images(tokens, "--tokens", "token") if tokens is not None else None)
    if found is None:
        return None
    steps, what = found
    return Run(steps, what, steps * c.time.step_ms / 1e3 if c.time is not None else None)


# ---- a sweep ---------------------------------------------------------------------------------

@record
class SweepRow:
    """One configuration of a sweep: the swept options' values, its cost and run, or why this
    combination is invalid (``error``; cost None)."""

    values: tuple[tuple[str, Any], ...]
    cost: Cost | None
    run: Run | None = None
    error: str = ""

    def get(self, option: str) -> Any:
        return dict(self.values).get(option)


@record
class Sweep:
    """Every configuration of the lists, in :data:`SWEPT` order (the first outermost);
    ``varied``: the options given more than one value; ``columns``: the option columns a table
    shows (the varied ones, and seq / zero / gpus where they are set)."""

    name: str
    rows: tuple[SweepRow, ...]
    varied: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def costs(self) -> list[tuple[Cost, Run | None]]:
        return [(r.cost, r.run) for r in self.rows if r.cost is not None]


def sweep(a: Analysis, lists: dict[str, list[Any]], detail: bool = True, **fixed: Any) -> Sweep:
    """The cartesian product of ``lists`` (option → values, each option of :data:`SWEPT`; an
    option absent or ``[None]`` takes ``fixed``'s value or its default): one row each. With more
    than one row, an invalid combination (``--gpus 8 --tp 3``) keeps a row saying why; a single
    configuration raises its error, and so do many when none is valid. ``detail`` False: the rows'
    costs without their per-layer rows (the table and CSV need the totals only)."""
    from ..errors import ArchvizError

    opts = [k for k in SWEPT if k in lists]
    _each_alone(lists)
    memo: dict[Any, Any] = {}
    combos = list(itertools.product(*(lists[k] for k in opts)))
    rows, first = [], None
    for combo in combos:
        values = tuple(zip(opts, combo, strict=True))
        kw = fixed | {k: v for k, v in values if v is not None}
        try:
            c, run = compute(a, memo=memo, detail=detail or len(combos) == 1, **kw)
        except ArchvizError as exc:
            if len(combos) == 1:
                raise
            first = first or exc
            rows.append(SweepRow(values, None, None, _reason(exc)))
            continue
        rows.append(SweepRow(values, c, run))
    if first is not None and not any(r.cost for r in rows):
        raise first                     # no combination is valid: the error they share
    varied = tuple(k for k in opts if len(lists[k]) > 1)
    shown = tuple(k for k in SWEPT if k in varied or k in ("device", "batch")
                  or (k in ("seq", "zero", "gpus") and lists.get(k, [None])[0] not in (None, 0)))
    return Sweep(a.name, tuple(rows), varied, shown)


def _each_alone(lists: dict[str, list[Any]]) -> None:
    """A value wrong whatever the others are (an unknown device, ZeRO stage 9) is the user's
    mistake, not a combination that cannot be: it is exit 2 before any row is made."""
    from ..core.cost_states import CostError
    from .probe import device_target

    for d in dict.fromkeys(x for x in lists.get("device", ()) if x is not None):
        device_target(d)
    for z in lists.get("zero", ()):
        if z is not None and z not in (0, 1, 2, 3):
            raise CostError(f"--zero: expected a ZeRO stage 0, 1, 2 or 3, got {z}")


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
