"""archviz: one YAML layer spec → checked shapes and counts, diagrams, a PyTorch model, a benchmark.

Public API, one function per command (docs/api.md); torch, graphviz and matplotlib are imported
only by the functions that need them::

    import archviz
    a = archviz.analyze("alexnet")          # a bundled name, a path (YAML or ONNX), a Spec, a Graph
    a.layer("conv1").output                 # (96, 55, 55)
    print(a)                                # the table of `archviz shapes`
    a.to_dict()                             # the JSON of `archviz shapes --format json`
    archviz.check("alexnet").ok             # expect: and claims: against the computation
    archviz.cost("alexnet", "gtx580", gpus=1).largest_batch
    archviz.diff("alexnet", "alexnet-torchvision")
    archviz.draw("alexnet", split_gpus=True).svg()
    archviz.plot("alexnet", "blocks").save("alexnet-blocks.png")
    archviz.view("alexnet").save("alexnet.html")   # in a notebook: shown inline
    archviz.verify("alexnet").ok            # the compiled module against the analysis (torch)
    archviz.export("lenet5", "onnx").save("lenet5.onnx")
    archviz.bench("lenet5", "cpu", batch=1, iters=3)
    model = archviz.to_module("alexnet")    # torch.nn.Module
    spec = archviz.from_module(net, (3, 224, 224))       # a torch.nn.Module → Spec
    a = archviz.analyze(net, input_shape=(3, 224, 224), allow_opaque=True)   # or analyse it directly

Every result has ``to_dict()`` (the command's ``--format json``) where the command writes JSON,
prints as the command's table, and displays itself in Jupyter.
"""

from typing import Any as _Any

__version__ = "0.1.0"

_RESULTS = ("BenchReport", "Checks", "CostReport", "CostSweep", "Diagram", "DiffReport", "Exported", "Plot",
            "Report", "VerifyReport", "View")

__all__ = [
    # one function per command (DESIGN: the public API kept)
    "load", "analyze", "check", "diff", "draw", "cost", "plot", "view", "verify", "export", "bench",
    "to_module", "from_module",
    # helpers around them
    "loads", "build", "load_weights",
    # what they take and return, and what they raise
    "Analysis", "Graph", "Spec", *_RESULTS, "ArchvizError", "ShapeError", "SpecError",
    "__version__",
]


# where each public name lives: imported with its first use, so ``import archviz`` (and every
# ``archviz`` command, which imports this package first) loads nothing it does not need
_HOMES = {
    **dict.fromkeys(("load", "analyze", "check", "diff", "draw", "cost", "plot", "view", "verify",
                     "export", "bench", "to_module", "from_module", "loads", "build", "load_weights"), "api"),
    "Analysis": "core.analysis", "Graph": "core.graph", "Spec": "spec",
    **dict.fromkeys(("ArchvizError", "ShapeError", "SpecError"), "errors"),
    **dict.fromkeys(_RESULTS, "results"),
}


def __getattr__(name: str) -> _Any:
    """The public API, imported on first use (``archviz shapes`` needs neither the API functions
    nor the result classes)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archviz' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API only (not the submodules that importing archviz loads)."""
    return sorted(__all__)
