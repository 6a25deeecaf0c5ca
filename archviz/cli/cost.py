"""``archviz cost``: will it fit, and how long will a step and a run take (pure Python: no torch
unless ``--device cuda`` asks which GPU this is). Parse → compute (archviz.core.cost) → render."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from .choices import (
    Dtype,
    Optimizer,
)
from .choices import StepMode as Mode
from .common import (
    DEFAULT_SPEC,
    InputDtype,
    SpecArg,
    TextFormat,
    console,
    emit,
    guarded,
    load_analysis,
    text_format,
)

HW, STEP, RUN = "Hardware and parallelism", "The training step", "A whole run"


# the choices as typer shows them, shared with the other commands (cli/choices.py: Dtype,
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

_Seq = Annotated[Optional[str], typer.Option(
    "--seq", rich_help_panel=STEP, help="Tokens per sequence (prefill; token-id input).")]
_Context = Annotated[Optional[int], typer.Option(
    "--context", rich_help_panel=STEP, help="Infer: tokens in the KV cache (default --seq).")]


@guarded
def cost(
    spec: SpecArg = DEFAULT_SPEC,
    device: Annotated[str, typer.Option(
        "--device", "-d", rich_help_panel=HW, show_default=False,
        help="gtx580, h100, … 24GB, cpu (default h100); a100,h100: a row each.")] = "h100",
    gpus: Annotated[Optional[str], typer.Option(
        "--gpus", rich_help_panel=HW, help="tp·dp·pp (default: spec's gpus:, cpu 1).")
    ] = None,
    tp: Annotated[Optional[str], typer.Option(
        "--tp", rich_help_panel=HW, help="Heads/columns (attention), else channels (spec's gpus:).")
    ] = None,
    pp: Annotated[int, typer.Option("--pp", rich_help_panel=HW, show_default=False,
                                    help="Pipeline stages (1F1B).")] = 1,
    sp: Annotated[bool, typer.Option("--sp", rich_help_panel=HW, help="Sequence parallelism.")] = False,
    zero: Annotated[str, typer.Option(
        "--zero", rich_help_panel=HW, show_default=False,
        help="1 optimizer, 2 +grads, 3 +params (FSDP); 0,3: a row each.")] = "0",
    batch: Annotated[str, typer.Option(
        "--batch", "--micro-batch", "-b", rich_help_panel=STEP, show_default=False,
        help="Per replica, micro-step (default 128); 1,2,4 or 1..64: a row each.")] = "128",
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
    from ..runtime.costing import parse_list, sweep

    lists = {"device": parse_list(device, "device"), "batch": parse_list(batch, "batch"),
             "seq": parse_list(seq, "seq"), "gpus": parse_list(gpus, "gpus"),
             "tp": parse_list(tp, "tp"), "zero": parse_list(zero, "zero")}
    a = _load(spec, input_size, dtype_in, seq)
    kind = text_format(fmt, output)
    result = sweep(a, lists, kind is TextFormat.json, pp=pp, sp=sp, recompute=recompute,
                   grad_accum=grad_accum, mode=mode, precision=precision, dtype=dtype,
                   optimizer=optimizer, epochs=epochs, images=images, tokens=tokens,
                   lowering_text=lowering_text, context=context)
    _show(result, kind, output)


def _show(result: Any, kind: TextFormat, output: Optional[str]) -> None:
    """One configuration: its tables (or JSON/CSV/Markdown); several: a row each."""
    from ..render import cost_sweep, cost_view

    one = result.costs[0] if len(result.rows) == 1 else None
    if kind is TextFormat.table:
        from ..render.tables import plain_text

        view = cost_view.cost_view(*one) if one else cost_sweep.sweep_view(result)
        if output:
            emit(plain_text(view, width=160), output)
        else:
            console().print(view)
    elif one:
        emit(cost_view.WRITERS[kind.value](*one), output)
    else:
        emit(cost_sweep.WRITERS[kind.value](result), output)


def _load(spec: str, input_size: Optional[str], dtype_in: Any, seq: Optional[int]) -> Any:
    if seq is not None and input_size:
        from ..core.cost_states import CostError

        raise CostError("--seq and --input both size the input: give one")
    return load_analysis(spec, input_size, None, dtype_in)
