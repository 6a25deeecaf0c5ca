"""A layer's name → its path in the compiled ``nn.Module`` (state-dict keys, exported source).

A layer name is kept as the module path, except for a dotted part that a torch module already
has as an attribute (``half``, ``train``, ``forward``, ``to``, ``_modules``): ``add_module``
refuses those, so such a part, or one of them followed by underscores, gets one more ``_``
(``half`` → ``half_``, ``half_`` → ``half__``). Distinct layers keep distinct paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache


@cache
def _taken() -> frozenset[str]:
    """The attribute names a compiled module (a GraphModule), its plain containers and exported
    source's ``nn.ModuleDict`` containers already have."""
    from torch import fx, nn

    gm = fx.GraphModule(nn.Module(), fx.Graph())
    return frozenset(dir(fx.GraphModule)) | frozenset(dir(nn.ModuleDict)) | frozenset(vars(gm))


def _part(p: str) -> str:
    stem = p
    while stem not in _taken():
        if not stem.endswith("_"):
            return p
        stem = stem[:-1]
    return p + "_"


def module_path(name: str) -> str:
    """The module path of the layer ``name`` (itself unless a part is a torch attribute)."""
    return ".".join(_part(p) for p in name.split("."))


def compiled_keys(name_map: Mapping[str, str], layers: Iterable[str]) -> dict[str, str]:
    """A name map whose values (``layer.weight``, spec names) become the compiled module's
    state-dict keys: the longest layer name a value starts with goes through :func:`module_path`."""
    names = set(layers)

    def key(value: str) -> str:
        parts = value.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if (layer := ".".join(parts[:i])) in names:
                return ".".join([module_path(layer), *parts[i:]])
        return value

    return {k: key(v) for k, v in name_map.items()}
