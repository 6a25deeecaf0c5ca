"""Export a compiled spec: readable PyTorch source, TorchScript, or ONNX.

The ``py`` format writes one self-contained ``nn.Module`` class that imports only torch: the
modules come from the same builders as :func:`archviz.runtime.compile.to_module` (so state-dict keys
and shapes are equal), each line carries the analysed output shape as a ``# (C, H, W)``
comment, and the forward pass is the layer graph written out (``x = self.conv1(x)`` for a
chain, named variables where a value is read twice, ``a + b`` / ``torch.cat`` for merges).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import keyword
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..core.analysis import Analysis, LayerStats
from ..core.graph import Graph
from ..errors import ArchvizError
from ..ops import OPS, fmt_shape
from ..ops.registry import LRNParams
from ..spec import INPUT, Spec
from .compile import class_name, compile_graph, made, parents_first, prepare

Shape = tuple[int, ...]
FORMATS = ("py", "torchscript", "onnx")
_RESERVED = {"x", "inputs", "self", "torch", "nn"}


class ExportError(ArchvizError):
    """An export that cannot be made here (a missing optional package, an untraceable model)."""


def to_python(spec: Spec | str | Path, input_shape: Shape | None = None) -> str:
    """The source text of a self-contained module equivalent to ``to_module(spec)``."""
    graph, analysis = prepare(spec, input_shape)
    stats = {s.name: s for s in analysis.layers}
    cls = class_name(graph.spec.name)
    lines = [*_header(graph, analysis, cls), *_init(graph, analysis), "",
             *_forward(graph, stats, analysis), *_footer(cls, analysis)]
    return "\n".join(lines) + "\n"


def _header(graph: Graph, a: Analysis, cls: str) -> list[str]:
    sp = graph.spec
    doc = [f"{sp.name}: a PyTorch module written by archviz from {Path(sp.path).name}.", ""]
    if sp.source:
        doc.append(f"Source: {sp.source}")
    doc += [f"Input: {fmt_shape(a.input)} per image; forward takes a batch (N, {_dims(a.input)}).",
            f"Parameters: {a.totals.params:,}; MACs per image: {a.totals.macs:,} (conv and linear).",
            "Module names are the spec's layer names, so state-dict keys match archviz.to_module."]
    doc = [_escape_doc(line) for line in doc]
    doc[0] = '"""' + doc[0]
    return [*doc, '"""', "", "import torch", "from torch import nn", "", "",
                                                   f"class {cls}(nn.Module):"]


def _escape_doc(line: str) -> str:
    return line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _dims(shape: Shape) -> str:
    return ", ".join(map(str, shape))


def _init(graph: Graph, a: Analysis) -> list[str]:
    builds = made(graph, a)
    stats = {s.name: s for s in a.layers}
    out = ["    def __init__(self) -> None:", "        super().__init__()"]
    layers = {la.name for la in graph.order}
    created: set[str] = set()
    for name in parents_first([la.name for la in graph.order]):
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in layers and prefix not in created:
                out.append(f"        {_assign(prefix, layers)} = nn.ModuleDict()")
                created.add(prefix)
        if builds[name].inline is None:
            note = _alpha_note(graph.layer(name).params) if graph.layer(name).op == "lrn" else ""
            line = f"        {_assign(name, layers)} = {builds[name].source()}"
            out.append(f"{line}  {_comment(stats[name])}{note}")
    return out


def _access(path: str, layers: set[str]) -> str:
    """Python expression for the module at ``path``: ModuleDict containers are indexed,
    layers and ``self`` use attributes (``getattr`` when the name is not an identifier)."""
    expr, prefix = "self", ""
    for seg in path.split("."):
        if prefix and prefix not in layers:
            expr += f'["{seg}"]'
        elif seg.isidentifier() and not keyword.iskeyword(seg):
            expr += f".{seg}"
        else:
            expr = f'getattr({expr}, "{seg}")'
        prefix = f"{prefix}.{seg}" if prefix else seg
    return expr


def _assign(path: str, layers: set[str]) -> str:
    """Left-hand side that registers a module at ``path``."""
    parent, _, seg = path.rpartition(".")
    if parent and parent not in layers:
        return f'{_access(parent, layers)}["{seg}"]'
    if seg.isidentifier() and not keyword.iskeyword(seg):
        return f"{_access(parent, layers) if parent else 'self'}.{seg}"
    raise ExportError(f"layer name '{path}': '{seg}' cannot be written as a Python attribute")


def _alpha_note(p: LRNParams) -> str:
    """LRN: torch divides alpha by size, so it is given the paper's α times size."""
    return f"; alpha = the paper's α {p.alpha:g} × size {p.size}"


def _comment(s: LayerStats) -> str:
    return f"# {fmt_shape(s.output)}" + (f", {s.params:,} params" if s.params else "")


def _variables(graph: Graph) -> dict[str, str]:
    """Each value's variable: ``x`` along a chain, the (sanitised) layer name where it is read
    later or more than once."""
    order = [la.name for la in graph.order]
    follower = dict(zip([INPUT, *order], [*order, None], strict=True))
    sole_output = graph.outputs == (order[-1],)
    taken = set(_RESERVED)
    names = {}
    for name in [INPUT, *order]:
        chained = graph.consumers[name] == (follower[name],) or (sole_output and name == order[-1])
        if chained:
            names[name] = "x"
            continue
        var = "inputs" if name == INPUT else re.sub(r"\W", "_", name)
        while var in taken or keyword.iskeyword(var):
            var += "_"
        taken.add(var)
        names[name] = var
    return names


def _forward(graph: Graph, stats: dict[str, LayerStats], a: Analysis) -> list[str]:
    builds = made(graph, a)
    var = _variables(graph)
    layers = {la.name for la in graph.order}
    many = len(graph.outputs) > 1
    ret = "tuple[torch.Tensor, ...]" if many else "torch.Tensor"
    out = [f"    def forward(self, {var[INPUT]}: torch.Tensor) -> {ret}:",
           f"        # {var[INPUT]}: (N, {_dims(a.input)})"]
    for la in graph.order:
        args = [var[s] for s in la.inputs]
        if builds[la.name].inline is not None:
            expr = builds[la.name].expression(args)
        else:
            expr = f"{_access(la.name, layers)}({args[0] if not OPS[la.op].multi_input else args})"
        out.append(f"        {var[la.name]} = {expr}  # {fmt_shape(stats[la.name].output)}")
    results = [var[n] for n in graph.outputs]
    out.append(f"        return {', '.join(results) if many else results[0]}")
    return out


def _footer(cls: str, a: Analysis) -> list[str]:
    return ["", "", 'if __name__ == "__main__":',
            f"    model = {cls}().eval()",
            "    with torch.no_grad():",
            f"        y = model(torch.zeros(1, {_dims(a.input)}))",
            "    shapes = [tuple(t.shape) for t in y] if isinstance(y, tuple) else tuple(y.shape)",
            "    params = sum(p.numel() for p in model.parameters())",
            "    print(f\"{type(model).__name__}: {params:,} parameters, output {shapes}\")"]


# --- binary formats -----------------------------------------------------------------------------

def to_torchscript(spec: Spec | str | Path, input_shape: Shape | None = None,
                   max_bytes: int | None = None) -> bytes:
    """A scripted module (traced if scripting fails) saved with ``torch.jit.save``."""
    graph, analysis = prepare(spec, input_shape)
    model = compile_graph(graph, analysis, max_bytes=max_bytes).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            jit = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - any scripting failure: fall back to tracing
            jit = torch.jit.trace(model, torch.zeros(1, *analysis.input))
        buf = io.BytesIO()
        torch.jit.save(jit, buf)  # deprecated in favour of torch.export, still the format people load
    return buf.getvalue()


def onnx_available() -> bool:
    """torch's ONNX exporter needs ``onnx`` and ``onnxscript``; archviz depends on neither."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript"))


def to_onnx(spec: Spec | str | Path, input_shape: Shape | None = None,
            max_bytes: int | None = None) -> bytes:
    """An ONNX graph (torch.onnx.export, dynamo exporter) with a dynamic batch axis, in one file."""
    if not onnx_available():
        raise ExportError("--format onnx needs the 'onnx' and 'onnxscript' packages, which are not"
                          " installed here\ninstall them with `pip install onnx onnxscript` (archviz does"
                          " not depend on them), or export --format torchscript or py")
    graph, analysis = prepare(spec, input_shape)
    model = compile_graph(graph, analysis, max_bytes=max_bytes, batch=2).eval()
    batch = torch.export.Dim("batch", min=1)
    with tempfile.TemporaryDirectory() as tmp, _quiet_onnx():
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(model, (torch.zeros(2, *analysis.input),), str(path), input_names=["input"],
                          dynamic_shapes={"x": {0: batch}}, external_data=False, verbose=False)
        return path.read_bytes()


@contextlib.contextmanager
def _quiet_onnx() -> Iterator[None]:
    """The exporter's progress lines, its notes on absent torchvision ops and deprecation warnings
    are not the user's business: keep only errors."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
