"""``opaque``: a layer archviz cannot describe, kept with its traced shape (import --allow-opaque)."""

from __future__ import annotations

from . import fields as typed
from . import receptive as rf
from .dtypes import DTYPES
from .fields import Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, register


class OpaqueParams(Settings):
    """What tracing measured of a layer archviz cannot describe (``archviz import --allow-opaque``)."""

    module: str = param(typed.TextField(doc="the traced module type or function, e.g. my_models.Mystery"))
    traced_shape: Shape = param(typed.ShapeField(doc="its output shape per image, measured by tracing"))
    traced_params: int = param(typed.Count(doc="its parameter count, measured by tracing"), 0)
    traced_dtype: str = param(typed.ChoiceField(choices=DTYPES, doc="its output's dtype, measured by tracing"
                                                " (any float is float32; bool and narrower integers int32)"),
                              "float32")


class OpaqueLayer(OpError):
    """An opaque layer was asked for a torch module: there is none to build."""


@register
class Opaque(OpKind):
    name, family = "opaque", "opaque"
    doc = ("a layer archviz cannot describe, kept with its traced output shape and parameter count"
           " so that totals stay true; not compiled")
    Params = OpaqueParams
    example = {"name": "mystery", "op": "opaque", "module": "my_models.Mystery",
               "traced_shape": [8, 12, 12], "traced_params": 12}

    def infer(self, p: OpaqueParams, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(p.traced_shape, f"traced at import ({p.module})")

    def out_dtype(self, p: OpaqueParams, ins: tuple[str, ...]) -> str:
        return p.traced_dtype  # any input taken; the output's dtype as traced

    def params(self, p: OpaqueParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return p.traced_params

    def receptive(self, p: OpaqueParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image)  # unknown: assume it may read every position

    def torch(self, p: OpaqueParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        raise OpaqueLayer(f"cannot compile an opaque layer ({p.module}): archviz knows only its traced"
                          " shape and parameter count", hint="hint: replace it in the spec by ops"
                          " archviz knows (see `archviz schema`), or compile the source model itself")

    def gpu_local(self, p: OpaqueParams, gpus: int) -> bool:
        return False

    def label(self, p: OpaqueParams) -> str:
        return f"traced: {p.module.rsplit('.', 1)[-1]}"
