"""archviz: one YAML layer spec → checked shapes and counts, diagrams, a PyTorch model, a benchmark.

Public API (torch, graphviz and matplotlib are imported only by the functions that need them)::

    import archviz
    spec = archviz.load("alexnet")          # a path, or a bundled spec's stem
    result = archviz.analyze(spec)          # per-layer shapes, params, MACs, warnings
    model = archviz.to_module(spec)         # torch.nn.Module (imports torch)
    spec = archviz.from_module(net, (3, 224, 224))        # a torch.nn.Module → Spec (imports torch)
    result = archviz.analyze(net, input_shape=(3, 224, 224))
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core.analysis import Analysis
from .core.analysis import analyze as _analyze
from .core.graph import Graph, build
from .errors import ArchvizError, ShapeError, SpecError
from .spec import Spec, load, loads

__version__ = "0.1.0"

__all__ = ["Analysis", "ArchvizError", "Graph", "ShapeError", "Spec", "SpecError", "analyze",
           "build", "from_module", "load", "load_weights", "loads", "to_module", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    import torch


def to_module(spec: Any, *, devices: Sequence[Any] | None = None, halo: bool = False,
              **kwargs: Any) -> torch.nn.Module:
    """Compile a spec (a :class:`Spec`, a path or a bundled name) into a ``torch.nn.Module``.

    ``devices=["cuda:0", "cuda:1"]`` builds the spec's GPU split (its ``gpus:``) as model-parallel
    towers, one per device, as in the AlexNet paper (:mod:`archviz.runtime.parallel`; ``halo=True``
    makes LRN exchange its boundary channels so the towers equal the single-device module).
    """
    if devices is not None:
        from .runtime.parallel import to_towers

        return to_towers(spec, devices, halo=halo, **kwargs)
    from .runtime.compile import to_module as _to_module

    return _to_module(spec, **kwargs)


def analyze(x: Any, input_shape: tuple[int, ...] | None = None, gpus: int | None = None) -> Analysis:
    """Analyse ``x``: a :class:`Spec` or :class:`Graph` (the core's analyze), a path or a bundled
    spec's name (loaded), or a ``torch.nn.Module`` (imported first: ``input_shape`` is required)."""
    if isinstance(x, (Spec, Graph)):
        return _analyze(x, input_shape, gpus)
    if isinstance(x, (str, os.PathLike)):
        return _analyze(load(os.fspath(x)), input_shape, gpus)
    if _is_module(x):
        if input_shape is None:
            raise ArchvizError("analyze(module): give input_shape, e.g. input_shape=(3, 224, 224)")
        return _analyze(from_module(x, input_shape), None, gpus)
    raise ArchvizError(f"analyze: expected a Spec, Graph, spec path or name, or a torch.nn.Module,"
                       f" got {type(x).__name__}")


def _is_module(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a module exists only once torch is imported
    return torch is not None and isinstance(x, torch.nn.Module)


def from_module(model: Any, input_shape: tuple[int, ...], **kwargs: Any) -> Spec:
    """A ``torch.nn.Module`` as a spec, traced with torch.fx on ``input_shape`` (C, H, W).

    ``archviz.runtime.importer.from_module`` returns the spec's text and the state-dict name map
    as well (``allow_opaque=True`` keeps unmappable layers as ``opaque``)."""
    from .runtime.importer import from_module as _from_module

    return _from_module(model, tuple(input_shape), **kwargs).spec


def load_weights(module: Any, state_dict: Any, name_map: Any) -> Any:
    """Load a source model's ``state_dict`` into a compiled imported spec through its name map."""
    from .runtime.importer import load_weights as _load_weights

    return _load_weights(module, state_dict, name_map)
