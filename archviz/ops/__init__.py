"""The ops: one class per op, in a module per family, each registering itself in
:data:`archviz.ops.registry.OPS` when imported (the order below is the order of docs and schema).
:mod:`~archviz.ops.registry` holds the base class and the registry, :mod:`~archviz.ops.saved`
the saved-for-backward vocabulary, :mod:`~archviz.ops.fields` the typed field parsers and
:mod:`~archviz.ops.arith` the size formula and its text."""

# isort: off
from . import conv, pool, resample, norm, activation, regularise, shape, linear, merge, opaque  # noqa: F401
# isort: on
from .registry import (
    OPS,
    Inferred,
    NoParams,
    OpError,
    OpKind,
    Shape,
    TorchLayer,
    fmt_dims,
    fmt_shape,
    register,
)

__all__ = ["OPS", "Inferred", "NoParams", "OpError", "OpKind", "Shape", "TorchLayer", "fmt_dims", "fmt_shape",
           "register"]
