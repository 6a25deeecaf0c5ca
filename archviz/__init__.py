"""archviz: one YAML layer spec → checked shapes and counts, diagrams, a PyTorch model, a benchmark.

Public API (torch, graphviz and matplotlib are imported only by the functions that need them)::

    import archviz
    spec = archviz.load("alexnet")          # a path, or a bundled spec's stem
    result = archviz.analyze(spec)          # per-layer shapes, params, MACs, warnings
    model = archviz.to_module(spec)         # torch.nn.Module (imports torch)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core.analysis import Analysis, analyze
from .core.graph import Graph, build
from .errors import ArchvizError, ShapeError, SpecError
from .spec import Spec, load, loads

__version__ = "0.1.0"

__all__ = ["Analysis", "ArchvizError", "Graph", "ShapeError", "Spec", "SpecError", "analyze",
           "build", "load", "loads", "to_module", "__version__"]

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
