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
from typing import Any

import torch

from ..core.analysis import Analysis, LayerStats
from ..core.graph import Graph
from ..errors import ArchvizError
from ..ops import OPS, fmt_shape
from ..ops.lowering import Lowering
from ..ops.norm import LRNParams
from ..spec import INPUT, Spec
from .compile import Made, class_name, compile_graph, made, parents_first, prepare
from .inputs import example_input
from .inputs import source as input_source
from .modnames import module_path

Shape = tuple[int, ...]
FORMATS = ("py", "torchscript", "onnx")
_RESERVED = {"x", "inputs", "self", "torch", "nn"}


class ExportError(ArchvizError):
    """An export that cannot be made here (a missing optional package, an untraceable model)."""


def to_python(spec: Spec | str | Path, input_shape: Shape | None = None, *,
              lowering: Lowering = Lowering(), input_dtype: str | None = None) -> str:
    """The source text of a self-contained module equivalent to ``to_module(spec, lowering=...)``
    (archviz's own layers are written as the torch class they subclass: the same maths)."""
    _, analysis = prepare(spec, input_shape, input_dtype)
    cls = class_name(analysis.name)
    builds = made(analysis, lowering)
    lines = [*_header(analysis, cls), *_own_classes(builds), f"class {cls}(nn.Module):",
             *_init(analysis, builds), "", *_forward(analysis, builds), *_footer(cls, analysis)]
    return "\n".join(lines) + "\n"


def _header(a: Analysis, cls: str) -> list[str]:
    sp = a.spec
    doc = [f"{sp.name}: a PyTorch module written by archviz from {Path(sp.path).name}.", ""]
    if sp.source:
        doc.append(f"Source: {sp.source}")
    dtype = "" if a.input_dtype == "float32" else f" {a.input_dtype}"
    doc += [f"Input: {fmt_shape(a.input)}{dtype} per example; forward takes a batch (N, {_dims(a.input)}).",
            f"Parameters: {a.totals.params:,}; MACs per image: {a.totals.macs:,} (conv and linear).",
            "Module names are the spec's layer names, so state-dict keys match archviz.to_module."]
    doc = [_escape_doc(line) for line in doc]
    doc[0] = '"""' + doc[0]
    return [*doc, '"""', "", "import torch", "from torch import nn", "", ""]


def _own_classes(builds: dict[str, Made]) -> list[str]:
    """The source of archviz's own modules the layers use (a layer scale, stochastic depth), so the
    file still imports only torch."""
    import inspect

    used = sorted({b.cls for b in builds.values() if b.own and b.inline is None}, key=lambda c: c.__name__)
    return [line for c in used for line in [*inspect.getsource(c).splitlines(), "", ""]]


def _escape_doc(line: str) -> str:
    return line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _dims(shape: Shape) -> str:
    return ", ".join(map(str, shape))


def _init(a: Analysis, builds: dict[str, Made]) -> list[str]:
    stats = {s.name: s for s in a.layers}
    out = ["    def __init__(self) -> None:", "        super().__init__()"]
    layers = {la.name for la in a.graph.order}
    for name, containers in _walk(a.graph, layers):
        out += [f"        {_assign(prefix, layers)} = nn.ModuleDict()" for prefix in containers]
        if builds[name].inline is None:
            note = _alpha_note(stats[name].op_params) if stats[name].op == "lrn" else ""
            line = f"        {_assign(name, layers)} = {builds[name].source()}"
            out.append(f"{line}  {_comment(stats[name])}{note}")
    for la in a.graph.order:   # tied weights: one Parameter held by two modules (compile.tie)
        if la.tie:
            out.append(f"        {_access(la.name, layers)}.weight = {_access(la.tie, layers)}.weight"
                       f"  # tied: {la.name}'s weight is {la.tie}'s")
    return out


def _walk(graph: Graph, layers: set[str]) -> Iterator[tuple[str, list[str]]]:
    """Each layer, parents first, with the plain containers (``layer2`` of ``layer2.0.conv1``,
    where no layer has that name) that must exist before it and were not made yet."""
    created: set[str] = set()
    for name in parents_first([la.name for la in graph.order]):
        parts = name.split(".")
        new = [p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
               if p not in layers and p not in created]
        created.update(new)
        yield name, new


def _access(path: str, layers: set[str]) -> str:
    """Python expression for the module at ``path``: ModuleDict containers are indexed,
    layers and ``self`` use attributes (``getattr`` when the name is not an identifier)."""
    expr, prefix = "self", ""
    for name, seg in zip(path.split("."), module_path(path).split("."), strict=True):
        if prefix and prefix not in layers:
            expr += f'["{seg}"]'
        elif seg.isidentifier() and not keyword.iskeyword(seg):
            expr += f".{seg}"
        else:
            expr = f'getattr({expr}, "{seg}")'
        prefix = f"{prefix}.{name}" if prefix else name
    return expr


def _assign(path: str, layers: set[str]) -> str:
    """Left-hand side that registers a module at ``path``."""
    parent, _, _ = path.rpartition(".")
    seg = module_path(path).rpartition(".")[2]
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


def _forward(a: Analysis, builds: dict[str, Made]) -> list[str]:
    graph = a.graph
    stats = {s.name: s for s in a.layers}
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
            expr = f"{_access(la.name, layers)}({', '.join(args) if not OPS[la.op].multi_input else args})"
        out.append(f"        {var[la.name]} = {expr}  # {fmt_shape(stats[la.name].output)}")
    results = [var[n] for n in graph.outputs]
    out.append(f"        return {', '.join(results) if many else results[0]}")
    return out


def _footer(cls: str, a: Analysis) -> list[str]:
    return ["", "", 'if __name__ == "__main__":',
            f"    model = {cls}().eval()",
            "    with torch.no_grad():",
            f"        y = model({input_source(a.input, a.input_dtype)})",
            "    shapes = [tuple(t.shape) for t in y] if isinstance(y, tuple) else tuple(y.shape)",
            "    params = sum(p.numel() for p in model.parameters())",
            "    print(f\"{type(model).__name__}: {params:,} parameters, output {shapes}\")"]


# --- binary formats -----------------------------------------------------------------------------

def to_torchscript(spec: Spec | str | Path, input_shape: Shape | None = None,
                   max_bytes: int | None = None, *, lowering: Lowering = Lowering(),
                   input_dtype: str | None = None) -> bytes:
    """A scripted module (traced if scripting fails) saved with ``torch.jit.save``."""
    graph, analysis = prepare(spec, input_shape, input_dtype)
    model = compile_graph(graph, analysis, max_bytes=max_bytes, lowering=lowering).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            jit = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - any scripting failure: fall back to tracing
            jit = torch.jit.trace(model, example_input(analysis.input, analysis.input_dtype))
        buf = io.BytesIO()
        torch.jit.save(jit, buf)  # deprecated in favour of torch.export, still the format people load
    return buf.getvalue()


def onnx_available() -> bool:
    """torch's ONNX exporter needs ``onnx`` and ``onnxscript``; archviz depends on neither."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript"))


def to_onnx(spec: Spec | str | Path, input_shape: Shape | None = None,
            max_bytes: int | None = None, *, lowering: Lowering = Lowering(),
            input_dtype: str | None = None) -> bytes:
    """An ONNX graph (torch.onnx.export, dynamo exporter) with a dynamic batch axis, in one file."""
    if not onnx_available():
        raise ExportError("--format onnx needs the 'onnx' and 'onnxscript' packages, which are not"
                          " installed here\ninstall them with `pip install onnx onnxscript` (archviz does"
                          " not depend on them), or export --format torchscript or py")
    graph, analysis = prepare(spec, input_shape, input_dtype)
    model = compile_graph(graph, analysis, max_bytes=max_bytes, batch=2, lowering=lowering).eval()
    batch = torch.export.Dim("batch", min=1)
    with tempfile.TemporaryDirectory() as tmp, _quiet_onnx():
        path = Path(tmp) / "model.onnx"
        x = example_input(analysis.input, analysis.input_dtype, batch=2)
        torch.onnx.export(model, (x,), str(path), input_names=["input"],
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


# --- the paper's towers as source (export --split-gpus) -------------------------------------------

def to_python_split(spec: Spec | str | Path, input_shape: Shape | None = None, *, halo: bool = False,
                    lowering: Lowering = Lowering()) -> str:
    """The source text of a self-contained module equal to ``to_module(spec, devices=[...])``
    (:class:`~archviz.runtime.parallel.Towers`): one tower per GPU of the spec's ``gpus:``, each
    holding its rows of every layer, activations moved between devices (``.to(d)``) only where
    the split view says (AlexNet: conv3, fc6, fc7, fc8), and the LRN halo where ``halo``. Its
    state-dict keys are the Towers' (``towers.{g}.{layer}.{tensor}``), so
    :func:`~archviz.runtime.parallel.split_weights` fills it."""
    from .parallel import to_towers

    graph, analysis = prepare(spec, input_shape)
    n = analysis.gpus or 1
    if n < 2:
        raise ExportError(f"{graph.spec.name}: --split-gpus needs a spec split over GPUs (`gpus: 2`); this"
                          " one runs on one device")
    towers = to_towers(graph.spec, ["cpu"] * n, input_shape=input_shape, halo=halo, lowering=lowering)
    builds = made(analysis, lowering)
    stats = {s.name: s for s in analysis.layers}
    layers = {la.name for la in graph.order}
    cls = class_name(graph.spec.name) + "Towers"
    sp = graph.spec
    crossing = [p.name for p in towers.parts if p.kind == "gather"]
    doc = [f"{sp.name} split over {n} devices as towers: a PyTorch module written by archviz from"
           f" {Path(sp.path).name}.", "",
           *([f"Source: {sp.source}"] if sp.source else []),
           f"Input: {fmt_shape(analysis.input)} per image; forward takes a batch"
           f" (N, {_dims(analysis.input)}).",
           f"Tower g holds rows [a, b) of every layer (its share); activations cross devices only for"
           f" {', '.join(crossing) or 'no layer'}"
           + (", and LRN's boundary channels (halo)." if halo else "."),
           "State-dict keys are archviz.runtime.parallel.Towers': towers.{g}.{layer}.{tensor}, so"
           " parallel.split_weights(towers, single_device_module) fills it."]
    doc = [_escape_doc(line) for line in doc]
    doc[0] = '"""' + doc[0]
    devs = ", ".join(repr(f"cuda:{g}") for g in range(n))
    out = [*doc, '"""', "", "import torch", "from torch import nn", "", "", f"class {cls}(nn.Module):",
           f"    def __init__(self, devices: tuple[str, ...] = ({devs},)) -> None:",
           "        super().__init__()",
           f"        assert len(devices) == {n}, 'one device per tower'",
           "        self.devices = [torch.device(d) for d in devices]"]
    for g in range(n):
        out += ["", f"        t{g} = nn.Module()  # tower {g}"]
        for name, containers in _walk(graph, layers):
            out += [f"        {_root(_assign(prefix, layers), g)} = nn.ModuleDict()" for prefix in containers]
            if builds[name].inline is not None:
                continue
            m = towers.towers[g].get_submodule(module_path(name))
            part = next(p for p in towers.parts if p.name == name)
            a, b = part.rows[g]
            src = _shard_source(graph, stats[name], b - a, n) or builds[name].source()
            params = sum(p.numel() for p in m.parameters(recurse=False))
            note = f"rows {a}:{b} of {stats[name].output[0]}" + (f", {params:,} params" if params else "")
            out.append(f"        {_root(_assign(name, layers), g)} = {src}  # {note}")
    out += ["", f"        self.towers = nn.ModuleList([{', '.join(f't{g}' for g in range(n))}])",
            "        for tower, device in zip(self.towers, self.devices):",
            "            tower.to(device)", "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            f"        # x: (N, {_dims(analysis.input)}), handed to every device",
            f"        {', '.join(f'd{g}' for g in range(n))} = self.devices",
            f"        {', '.join(f't{g}' for g in range(n))} = self.towers"]
    out += _split_forward(towers.parts, builds, stats, layers, n)
    last = _var(graph.outputs[0], 0)
    pieces = [last] + [f"{_var(graph.outputs[0], g)}.to(d0)" for g in range(1, n)]
    out.append(f"        return torch.cat([{', '.join(pieces)}], 1)  # gathered on the first device")
    cpus = ", ".join(repr("cpu") for _ in range(n))
    out += [line.replace(f"model = {cls}()", f"model = {cls}(devices=({cpus},))")
            for line in _footer(cls, analysis)]
    return "\n".join(out) + "\n"


def _root(expr: str, g: int) -> str:
    return f"t{g}" + expr[len("self"):]


def _var(name: str, g: int) -> str:
    return "x" if name == INPUT else re.sub(r"\W", "_", name) + f"_{g}"


def _shard_source(graph: Graph, st: LayerStats, rows: int, towers: int) -> str | None:
    """Constructor source of a tower's share of a layer with weights (the op's shard: conv,
    linear, BatchNorm); None for a parameter-free layer (written whole)."""
    layer = graph.layer(st.name)
    shard = OPS[layer.op].shard(layer.params, st.in_shapes, rows, towers)
    return Made.of(shard).source() if shard is not None else None


def _split_forward(parts: Any, builds: Any, stats: dict[str, LayerStats], layers: set[str],
                   n: int) -> list[str]:
    out: list[str] = []
    for part in parts:
        shape = fmt_shape(stats[part.name].output)
        calls = [_root(_access(part.name, layers), g) for g in range(n)]
        if part.kind == "gather":
            src = part.inputs[0]
            out.append(f"        # {part.name} reads every device: the other towers' shares of {src} cross")
            for g in range(n):
                a, b = part.rows[g]
                shares = ", ".join(_var(src, h) if h == g else f"{_var(src, h)}.to(d{g})" for h in range(n))
                whole = f"x.to(d{g})" if src == INPUT else f"torch.cat([{shares}], 1)"
                cut = "" if any(True for _ in builds[part.name].build().parameters()) else f"[:, {a}:{b}]"
                out.append(f"        {_var(part.name, g)} = {calls[g]}({whole}){cut}"
                           f"  # rows {a}:{b} of {shape}")
            continue
        for g in range(n):
            a, b = part.rows[g]
            ins = [(f"x.to(d{g})" if part.whole_input else f"x.to(d{g})[:, {a}:{b}]") if s == INPUT
                   else _var(s, g) for s in part.inputs]
            if part.kind == "merge" or builds[part.name].inline is not None:
                expr = (builds[part.name].expression(ins) if builds[part.name].inline is not None
                        else f"{calls[g]}([{', '.join(ins)}])")
            elif part.kind == "lrn" and part.halo != (0, 0):
                expr = _halo_expr(part, calls[g], g, n)
            else:
                expr = f"{calls[g]}({ins[0]})"
            out.append(f"        {_var(part.name, g)} = {expr}  # rows {a}:{b} of {shape}")
    return out


def _halo_expr(part: Any, call: str, g: int, n: int) -> str:
    """LRN with the neighbouring towers' edge channels borrowed (parallel.Towers._lrn_halo)."""
    before, after = part.halo
    src = part.inputs[0]
    own = _var(src, g)
    pieces, lo = [own], ""
    if g > 0 and before:
        pieces.insert(0, f"{_var(src, g - 1)}[:, -{before}:].to(d{g})")
        lo = str(before)
    if g + 1 < n and after:
        pieces.append(f"{_var(src, g + 1)}[:, :{after}].to(d{g})")
    if len(pieces) == 1:
        return f"{call}({own})"
    end = f"{lo} + {own}.shape[1]" if lo else f"{own}.shape[1]"
    return f"{call}(torch.cat([{', '.join(pieces)}], 1))[:, {lo}:{end}]"
