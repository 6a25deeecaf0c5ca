"""``archviz cost``: will it fit, and how long will a step and a run take (pure Python: no torch
unless ``--device cuda`` asks which GPU this is). Parse → compute (archviz.core.cost) → render."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from .common import (
    DEFAULT_SPEC,
    Dtype,
    InputDtype,
    Optimizer,
    SpecArg,
    TextFormat,
    console,
    emit,
    guarded,
    load_analysis,
    lowering,
    text_format,
)
from .common import StepMode as Mode

HW, STEP, RUN = "Hardware and parallelism", "The training step", "A whole run"


# the choices as typer shows them, shared with the other commands (cli/common.py: Dtype,
# Optimizer, StepMode as Mode); the core's Enums are imported only when the command runs, so that
# other commands never load them (tests/test_cost.py and test_help.py hold the values equal)
class Precision(str, Enum):
    amp = "amp"
    mixed = "mixed"
    megatron = "megatron"


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


IO = "Input and output"
# the shared options, with one-line help in this command's panel (archviz.cli.common parses them)
_Input = Annotated[Optional[str], typer.Option("--input", "-i", rich_help_panel=IO,
                                                help="Input size per example: 3x224x224.")]
_InputDtype = Annotated[Optional[InputDtype], typer.Option(
    "--input-dtype", case_sensitive=False, rich_help_panel=IO, help="int64 / int32 for token ids.")]
_Output = Annotated[Optional[str], typer.Option("--output", "-o", rich_help_panel=IO,
                                                 help="Write to FILE ('-': standard output).")]
_Lowering = Annotated[Optional[str], typer.Option(
    "--lowering", metavar="OP=CHOICE", rich_help_panel=IO, help="lrn=torch: count torch's LRN.")]

_Seq = Annotated[Optional[int], typer.Option(
    "--seq", rich_help_panel=STEP, help="Tokens per sequence (prefill; token-id input).")]
_Context = Annotated[Optional[int], typer.Option(
    "--context", rich_help_panel=STEP, help="Infer: tokens in the KV cache (default --seq).")]


@guarded
def cost(
    spec: SpecArg = DEFAULT_SPEC,
    device: Annotated[str, typer.Option(
        "--device", "-d", rich_help_panel=HW, show_default=False,
        help="gtx580, h100, … 24GB, cpu (default h100); a100,h100: a row each.")] = "h100",
    gpus: Annotated[Optional[int], typer.Option(
        "--gpus", rich_help_panel=HW, help="tp·dp·pp (default: spec's gpus:, cpu 1).")
    ] = None,
    tp: Annotated[Optional[int], typer.Option(
        "--tp", rich_help_panel=HW, help="Heads/columns (attention), else channels (spec's gpus:).")
    ] = None,
    pp: Annotated[int, typer.Option("--pp", rich_help_panel=HW, show_default=False,
                                    help="Pipeline stages (1F1B).")] = 1,
    sp: Annotated[bool, typer.Option("--sp", rich_help_panel=HW, help="Sequence parallelism.")] = False,
    zero: Annotated[int, typer.Option(
        "--zero", min=0, max=3, rich_help_panel=HW, show_default=False,
        help="1 optimizer, 2 +grads, 3 +params (FSDP).")] = 0,
    batch: Annotated[str, typer.Option(
        "--batch", "--micro-batch", "-b", rich_help_panel=STEP, show_default=False,
        help="Per replica, micro-step (default 128); 1,2,4: a row each.")] = "128",
    grad_accum: Annotated[int, typer.Option(
        "--grad-accum", rich_help_panel=STEP, show_default=False, help="Micro-steps per step.")] = 1,
    mode: Annotated[Mode, typer.Option("--mode", case_sensitive=False, rich_help_panel=STEP)] = Mode.train,
    recompute: Annotated[Recompute, typer.Option(
        "--recompute", case_sensitive=False, rich_help_panel=STEP)] = Recompute.none,
    precision: Annotated[Precision, typer.Option(
        "--precision", case_sensitive=False, rich_help_panel=STEP, show_default=False,
        help="amp (default): fp32 weights.")] = Precision.amp,
    dtype: Annotated[Optional[Dtype], typer.Option(
        "--dtype", case_sensitive=False, rich_help_panel=STEP,
        help="Compute: fp32 (amp), bf16 (mixed).")] = None,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", case_sensitive=False, rich_help_panel=STEP)] = Optimizer.momentum,
    epochs: Annotated[Optional[float], typer.Option(
        "--epochs", rich_help_panel=RUN, help="Passes over --images.")] = None,
    images: Annotated[Optional[str], typer.Option(
        "--images", rich_help_panel=RUN, help="Images per epoch, e.g. 1.2M (alone: one pass).")] = None,
    seq: _Seq = None,
    context: _Context = None,
    tokens: Annotated[Optional[str], typer.Option(
        "--tokens", rich_help_panel=RUN, help="Training tokens, e.g. 300B (token-id inputs).")] = None,
    fmt: Annotated[Optional[TextFormat], typer.Option(
        "--format", "-f", case_sensitive=False, rich_help_panel=IO,
        help="Default: table, or -o's suffix.")] = None,
    input_size: _Input = None,
    dtype_in: _InputDtype = None,
    output: _Output = None,
    lowering_text: _Lowering = None,
) -> None:
    """Memory per GPU (parameters, gradients, optimizer, activations, temporaries: the peak),
    whether it fits, and a roofline lower bound on a step's and a run's time (docs/cost.md).

    Examples:

      archviz cost alexnet --device gtx580 --gpus 1 --epochs 90 --images 1.2M

      archviz cost resnet50 --device a100 --gpus 64 --zero 3 --precision mixed --optimizer adam
    """
    a = _load(spec, input_size, dtype_in, seq)
    rows = [compute(a, d, gpus=gpus, tp=tp, pp=pp, sp=sp, recompute=recompute, zero=zero, batch=b,
                    grad_accum=grad_accum, mode=mode, precision=precision, dtype=dtype,
                    optimizer=optimizer, epochs=epochs, images=images, tokens=tokens,
                    lowering_text=lowering_text, seq=seq, context=context)
            for d in _list(device, "--device") for b in _batches(batch)]
    _show(rows, text_format(fmt, output), output)


def _list(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        from ..core.cost_states import CostError

        raise CostError(f"{flag}: an empty item in '{text}'", "hint: a comma list such as a100,h100")
    return items


def _batches(text: str) -> list[int]:
    from ..core.cost_states import CostError

    out = []
    for t in _list(text, "--batch"):
        if not t.isdigit():
            raise CostError(f"--batch: expected positive numbers of samples, got '{t}'",
                            "hint: --batch 8, or a comma list --batch 1,2,4")
        out.append(int(t))
    return out


def _show(rows: list[tuple[Any, Any]], kind: TextFormat, output: Optional[str]) -> None:
    """One configuration: its tables (or JSON/CSV/Markdown); several: a row each."""
    from ..render import cost_sweep, cost_view

    if kind is TextFormat.table:
        from ..render.tables import plain_text

        view = cost_view.cost_view(*rows[0]) if len(rows) == 1 else cost_sweep.sweep_view(rows)
        if output:
            emit(plain_text(view, width=160), output)
        else:
            console().print(view)
    elif len(rows) == 1:
        emit(cost_view.WRITERS[kind.value](*rows[0]), output)
    else:
        emit(cost_sweep.WRITERS[kind.value](rows), output)


def _load(spec: str, input_size: Optional[str], dtype_in: Any, seq: Optional[int]) -> Any:
    if seq is not None and input_size:
        from ..core.cost_states import CostError

        raise CostError("--seq and --input both size the input: give one")
    return load_analysis(spec, input_size, None, dtype_in)


def compute(a: Any, device: str, *, gpus: Optional[int] = None, tp: Optional[int] = None, pp: int = 1,
            sp: bool = False, recompute: Recompute = Recompute.none, zero: int = 0, batch: int = 128,
            grad_accum: int = 1, mode: Mode = Mode.train,
            precision: Precision = Precision.amp, dtype: Optional[Dtype] = None,
            optimizer: Optimizer = Optimizer.momentum, epochs: Optional[float] = None,
            images: Optional[str] = None, tokens: Optional[str] = None,
            lowering_text: Optional[str] = None, seq: Optional[int] = None,
            context: Optional[int] = None) -> tuple[Any, Any]:
    """The cost of an analysed spec as the flags ask (the CLI's and ``archviz.cost``'s one path):
    the :class:`~archviz.core.cost.Cost` and the run (None where none is asked)."""
    from dataclasses import replace

    from ..core.cost import estimate
    from ..core.cost_layout import Recompute as Recomp
    from ..core.cost_layout import width
    from ..core.cost_states import CostError, parallel
    from ..runtime.probe import device_target

    cpu = device.strip().lower() == "cpu"
    where = device_target(device)
    if seq is not None:
        a = _at_seq(a, seq)
    if mode is Mode.infer and dtype in (Dtype.bf16, Dtype.fp16):
        precision = Precision.mixed          # serving stores the weights in --dtype (DESIGN.md)
    par = parallel(gpus, tp, pp, a.gpus, cpu)
    megatron = width(a) is not None      # attention: heads and columns split (cost_layout)
    if sp and (par.tp == 1 or not megatron):
        raise CostError("--sp splits a model with attention along the sequence over --tp devices",
                        "hint: add --tp 2 (or more) on a model with an attention layer")
    if par.tp != (a.gpus or 1) and not megatron:
        from ..core.analysis import analyze

        a = analyze(a.graph, a.input, par.tp, a.input_dtype)
    settings = _settings(mode, batch, precision, dtype, optimizer, zero, par.dp, grad_accum, cpu,
                         lowering_text)
    settings = replace(settings, tp=par.tp if megatron else 1, sp=sp, pp=par.pp,
                       recompute=Recomp(recompute.value))
    c = estimate(a, settings, where, 1 if megatron else par.tp)
    if context is not None and mode is not Mode.infer:
        raise CostError("--context: the tokens a KV cache holds, with --mode infer")
    if mode is Mode.infer:
        c = _serve(a, c, where, context, 1 if megatron else par.tp)
    return c, _run(c, a, epochs, images, tokens)


def _at_seq(a: Any, seq: int) -> Any:
    """The analysis at ``seq`` tokens (a token-id input only)."""
    from ..core.analysis import analyze
    from ..core.cost_states import CostError

    if a.input_dtype not in ("int64", "int32") or len(a.input) != 1:
        raise CostError(f"--seq: the length of a token-id input; {a.name} reads {a.input}",
                        "hint: give an image's size with --input")
    if seq < 1:
        raise CostError(f"--seq: expected a positive number of tokens, got {seq}")
    return analyze(a.graph, (seq,), a.gpus, a.input_dtype)


def _serve(a: Any, c: Any, where: Any, context: Optional[int], gpus: int) -> Any:
    """Fold the KV cache and a decode step into an inference cost (archviz.core.cost_serve)."""
    from ..core.cost import estimate, settings_layout
    from ..core.cost_serve import self_attention, serve
    from ..core.cost_states import CostError

    seq = a.input[0]
    if not any(self_attention(st) for st in a.layers) or a.input_dtype not in ("int64", "int32"):
        if context is not None:
            raise CostError(f"--context: {a.name} has no self-attention over token ids to cache")
        return c
    context = seq if context is None else context
    if context < seq:
        raise CostError(f"--context {context}: the cache must hold the prefill's --seq {seq} tokens",
                        f"hint: --context {seq} or more, or a shorter --seq")
    decode = estimate(_at_seq(a, 1), c.settings, where, gpus)
    return serve(c, decode, a, settings_layout(a, c.settings), context, seq)


def _settings(mode: Mode, batch: int, precision: Precision, dtype: Optional[Dtype], optimizer: Optimizer,
              zero: int, dp: int, grad_accum: int, cpu: bool, lowering_text: Optional[str]) -> Any:
    from ..core import cost_states, devices, flops
    from ..core.cost import Optimizer as Opt
    from ..core.cost import Settings

    low = "fp32" if precision is Precision.amp else "bf16"
    compute = devices.Dtype(dtype.value if dtype else low)
    return Settings(mode=flops.Mode(mode.value), batch=batch, dtype=compute,
                    optimizer=Opt(optimizer.value), torch_device="cpu" if cpu else "cuda",
                    lowering=lowering(lowering_text), precision=cost_states.Precision(precision.value),
                    zero=zero, dp=dp, grad_accum=grad_accum)


def _run(c: Any, a: Any, epochs: Optional[float], images: Optional[str], tokens: Optional[str]) -> Any:
    """The run the flags ask for (None: none asked)."""
    from ..core.cost import parse_images
    from ..core.cost_states import Run, run_steps

    token_ids = a.input_dtype in ("int64", "int32")
    found = run_steps(c.settings.global_batch, a.input[0] if token_ids else None, epochs,
                      parse_images(images) if images is not None else None,
                      parse_images(tokens, "--tokens", "token") if tokens is not None else None)
    if found is None:
        return None
    steps, what = found
    return Run(steps, what, steps * c.time.step_ms / 1e3 if c.time is not None else None)
