"""The ops: one class per op, in a module per family, each registering itself in
:data:`archviz.ops.registry.OPS` when imported. Every module of this package that is not one of
the shared ones below is a family module, so adding a family is adding its file; ``OPS`` imports
the families when an op is first looked up (one at a time, in the order below, until the op is
found) or listed (all of them), not when this package is imported. The order of docs and schema:
the families of :data:`_FIRST`, then the others by name, ``opaque`` last.
:mod:`~archviz.ops.registry` holds the base class and the registry, :mod:`~archviz.ops.saved` the
saved-for-backward vocabulary, :mod:`~archviz.ops.fields` the typed field parsers and
:mod:`~archviz.ops.arith` the size formula and its text."""

from pkgutil import iter_modules as _iter_modules

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

# the modules every op uses, which register nothing
_SHARED = frozenset({"registry", "arith", "dtypes", "fields", "lowering", "receptive", "saved", "source"})
# the classic CNN families first, in the order a network uses them (docs/spec-format.md's table)
_FIRST = ("conv", "pool", "norm", "activation", "regularise", "shape", "linear", "merge")


def _family_modules() -> list[str]:
    found = {m.name for m in _iter_modules(__path__) if m.name not in _SHARED and not m.name.startswith("_")}
    rest = sorted(found - set(_FIRST) - {"opaque"})
    return [m for m in _FIRST if m in found] + rest + (["opaque"] if "opaque" in found else [])


OPS.load_from(__name__, _family_modules)

__all__ = ["OPS", "Inferred", "NoParams", "OpError", "OpKind", "Shape", "TorchLayer", "fmt_dims", "fmt_shape",
           "register"]
