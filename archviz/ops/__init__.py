"""The op registry (one class per op: fields, shape rule, counts, receptive field, torch
description, drawing family) and the typed fields and size arithmetic it is built from."""

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
