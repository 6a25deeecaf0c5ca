"""The choices of the commands that draw, build, measure and cost: their Enums (typer shows them
as choices, case-insensitive) and the options that take them. ``shapes``, ``check`` and ``diff``
import :mod:`.common` alone: an Enum costs CPython about 0.1 ms to make, and an ``Annotated``
option about as much, so those commands do not make these (issue 26's start-up)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

MaxMemoryOpt = Annotated[Optional[str], typer.Option(
    "--max-memory", rich_help_panel="Build",
    help="Refuse a model that needs more memory, e.g. 8G (docs/limits.md).")]
LoweringOpt = Annotated[Optional[str], typer.Option(
    "--lowering", metavar="OP=CHOICE,...", rich_help_panel="Build",
    help="Which torch implementation of an op, e.g. lrn=torch (docs/pytorch.md).")]


def lowering(text: Optional[str]) -> Any:
    """``--lowering``'s value as an :class:`archviz.ops.lowering.Lowering` (every op's default
    without it); an unknown op or choice is exit 2 with the allowed values."""
    from ..ops.lowering import Lowering

    return Lowering.parse(text or "")


def max_bytes(text: Optional[str]) -> Optional[int]:
    """``--max-memory``'s value in bytes (None: the default share of what is available)."""
    if text is None:
        return None
    from ..runtime.compile import parse_bytes

    return parse_bytes(text)


class DrawFormat(str, Enum):
    svg = "svg"
    png = "png"
    pdf = "pdf"
    dot = "dot"
    html = "html"


class PlotFormat(str, Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


class PlotKind(str, Enum):
    counts = "counts"
    blocks = "blocks"
    memory = "memory"
    fit = "fit"


class RankDir(str, Enum):
    auto = "auto"
    TB = "TB"
    LR = "LR"


class ExportFormat(str, Enum):
    py = "py"
    torchscript = "torchscript"
    onnx = "onnx"


class BenchMode(str, Enum):
    infer = "infer"
    train = "train"
    both = "both"


class BenchFormat(str, Enum):
    """What ``archviz bench`` writes: the table, or every figure as JSON."""

    table = "table"
    json = "json"


class Device(str, Enum):
    """A torch device for bench (``auto``: the first of cuda, mps, cpu that is here)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


# The shared choices of `cost` (and bench's defaults): the same values as the core's Enums
# (archviz.core.devices.Dtype, archviz.core.flops.Mode, archviz.core.cost.Optimizer), kept here so
# that building the CLI imports no core module; tests/test_help.py checks they agree.
class Dtype(str, Enum):
    """The one dtype vocabulary: fp32, tf32 (TF32 matmuls, stored as fp32), bf16, fp16 (autocast)."""

    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"


class StepMode(str, Enum):
    """One training step (forward, backward, update) or one forward pass."""

    train = "train"
    infer = "infer"


class Optimizer(str, Enum):
    """The optimizer whose state is counted."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    adamw = "adamw"
