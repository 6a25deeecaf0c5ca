"""The dtypes a tensor of the analysis may have: a network input's (``input_dtype:`` in a spec,
``--input-dtype`` on the command line) and each layer's output.

Shapes are per example, the batch apart; a dtype travels beside the shape only where it matters.
The analysis is dtype-agnostic for floating point: a float layer's output is ``float32`` whatever
float the input is (the compiled module is float32; the cost model's ``--dtype`` says what a run
stores). Integer tensors (token ids) keep their dtype through the few ops that accept them.
"""

from __future__ import annotations

from typing import Literal

DType = Literal["float32", "bf16", "fp16", "int64", "int32"]
FLOAT = "float32"
DTYPES: tuple[str, ...] = ("float32", "bf16", "fp16", "int64", "int32")
INTEGER: frozenset[str] = frozenset({"int64", "int32"})
# the torch name of each (torch.<name>)
TORCH_NAMES = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16", "int64": "int64",
               "int32": "int32"}

# what people write for them (torch's and numpy's names): a hint, never read as the dtype itself
ALIASES = {"float": "float32", "fp32": "float32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
           "long": "int64", "int": "int32", "int8": "int32", "uint8": "int32"}


def is_integer(dtype: str) -> bool:
    return dtype in INTEGER


def note(dtype: str) -> str:
    """What follows a shape in text: `` int64`` for token ids, nothing for floats."""
    return f" {dtype}" if is_integer(dtype) else ""


def promote(dtypes: tuple[str, ...]) -> str:
    """torch's promotion for the dtypes of a merge's inputs: any float → float32 (the analysis's
    float); all integers → the widest of them."""
    if not all(map(is_integer, dtypes)):
        return FLOAT
    return "int64" if "int64" in dtypes else "int32"
