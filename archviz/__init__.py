"""archviz: one YAML layer spec → checked shapes and counts, diagrams, a PyTorch model, a benchmark.

Public API (torch, graphviz and matplotlib are imported only by the functions that need them)::

    import archviz
    a = archviz.analyze("alexnet")          # a bundled name, a path, a Spec or a Graph
    a.layer("conv1").output                 # (96, 55, 55); a.to_dict(): `shapes --format json`
    archviz.check("alexnet").ok             # expect: and claims: against the computation
    archviz.diff("alexnet", "alexnet-torchvision")
    archviz.draw("alexnet", split_gpus=True).svg()
    model = archviz.to_module("alexnet")    # torch.nn.Module (imports torch)
    spec = archviz.from_module(net, (3, 224, 224))        # a torch.nn.Module → Spec (imports torch)
    a = archviz.analyze(net, input_shape=(3, 224, 224))   # or analyse the module directly

In Jupyter the results display themselves (tables as Markdown, diagrams as SVG).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core.analysis import Analysis
from .core.graph import Graph, build
from .errors import ArchvizError, ShapeError, SpecError
from .spec import Spec, load, loads

__version__ = "0.1.0"

__all__ = ["Analysis", "ArchvizError", "Checks", "Diagram", "DiffReport", "Graph", "Report", "ShapeError",
           "Spec", "SpecError", "analyze", "build", "check", "diff", "draw", "from_module", "load",
           "load_weights", "loads", "to_module", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .results import Checks, Diagram, DiffReport, Report

_RESULTS = ("Checks", "Diagram", "DiffReport", "Report")


def __getattr__(name: str) -> Any:
    """The result classes load with their first use (``archviz shapes`` never needs them)."""
    if name in _RESULTS:
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'archviz' has no attribute {name!r}")

Shape = tuple[int, ...]


def _source(x: Any, input_shape: Shape | None = None) -> Spec | Graph:
    """What every function here accepts, as the core takes it.

    - a Spec or a Graph: as it is;
    - a str or a path: a spec file, or a bundled spec's name (``"alexnet"``);
    - a ``torch.nn.Module``: imported (:func:`from_module`) at ``input_shape``, which it needs.
    """
    if isinstance(x, (Spec, Graph)):
        return x
    if isinstance(x, (str, os.PathLike)):
        return load(os.fspath(x))
    if _is_module(x):
        if input_shape is None:
            raise ArchvizError("a torch.nn.Module needs input_shape, e.g. input_shape=(3, 224, 224)")
        return from_module(x, input_shape)
    raise TypeError(f"expected a bundled spec's name, a path, a Spec, a Graph or a torch.nn.Module,"
                    f" got {type(x).__name__}")


def _is_module(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a module exists only once torch is imported
    return torch is not None and isinstance(x, torch.nn.Module)


def _spec(x: Spec | Graph) -> Spec:
    return x.spec if isinstance(x, Graph) else x


def analyze(x: Any, input_shape: Shape | None = None, gpus: int | None = None,
            input_dtype: str | None = None) -> Report:
    """Shapes, arithmetic, counts and warnings of every layer (``archviz shapes``).

    ``x``: a bundled spec's name, a path, a :class:`Spec`, a :class:`Graph`, or a
    ``torch.nn.Module`` (imported first; then ``input_shape`` is required). ``input_shape``
    overrides the spec's input, per example and of any rank (``(3, 224, 224)``, ``(1024, 768)``),
    ``input_dtype`` its ``input_dtype:`` (float32, bf16, fp16, int64, int32), ``gpus`` its ``gpus:``.
    """
    from .core.analysis import analyze as core_analyze
    from .results import Report

    src = _source(x, input_shape)
    return Report.of(core_analyze(src, None if _is_module(x) else input_shape, gpus, input_dtype))


def check(x: Any, input_shape: Shape | None = None, input_dtype: str | None = None) -> Checks:
    """Every ``expect:`` shape and ``claims:`` figure against the computation (``archviz check``)."""
    from .core.check import run_checks
    from .results import Checks

    a = analyze(_source(x), input_shape, input_dtype=input_dtype)
    return Checks(a.name, tuple(run_checks(a)))


def diff(a: Any, b: Any) -> DiffReport:
    """Two specs layer by layer (``archviz diff``)."""
    from .core.diff import diff as core_diff
    from .results import DiffReport

    return DiffReport.of(core_diff(analyze(_source(a)), analyze(_source(b))))


def draw(x: Any, split_gpus: bool = False, rankdir: str | None = None, fold: bool = False) -> Diagram:
    """The layer graph (``archviz draw``); ``split_gpus``: one lane per GPU (the spec's, else 2).

    ``.graph`` is the graphviz object, ``.svg()`` the SVG text, ``.save(path)`` writes a file.
    """
    from .render.dot import diagram
    from .results import Diagram

    src = _source(x)
    sp = _spec(src)
    gpus = (sp.gpus if sp.gpus and sp.gpus > 1 else 2) if split_gpus else None
    direction = rankdir or "AUTO"  # TB or LR, whichever draws closer to square
    return Diagram(diagram(analyze(src, gpus=gpus), split_gpus, direction, fold))


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
