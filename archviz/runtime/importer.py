"""A ``torch.nn.Module`` → a spec (``archviz import``, ``archviz.from_module``).

The module is traced with ``torch.fx`` (a tracer that remembers, for every node, the module
whose ``forward`` made it), its shapes measured by one forward pass (``ShapeProp``), and every
node mapped onto an archviz op: modules by type (``nn.Conv2d`` → conv, ...) and functions by
target (``F.relu``, ``torch.flatten``, ``operator.add``, ``torch.cat``, ``x.view(n, -1)``,
``x.mean((2, 3), keepdim=True)`` ...). Module paths become layer names; a first path segment
that is not a name (``0`` of a bare ``nn.Sequential``) is prefixed ``layer_`` (``layer_0.conv``),
and :attr:`Imported.name_map` maps every source state-dict key to the spec's. The written
spec is checked against the trace: every layer's analysed output shape must equal the traced one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import operator
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..core.analysis import analyze
from ..errors import ArchvizError
from ..spec import INPUT, Spec, loads
from ..spec.write import Entry, Header, fold, write

Shape = tuple[int, ...]
PREFIX = "layer_"   # for a module path whose first segment is not a name: 0.conv → layer_0.conv


class ImportFailed(ArchvizError):
    """The target does not import, cannot be traced, or holds something archviz cannot map."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def format(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")


@dataclass(frozen=True)
class Imported:
    spec: Spec
    text: str                        # the spec's YAML
    name_map: Mapping[str, str]      # source state-dict key → the compiled spec's key
    renames: Mapping[str, str]       # module path → layer name, where they differ
    opaque: tuple[str, ...] = ()     # layers kept as `opaque` (--allow-opaque)
    warnings: tuple[str, ...] = ()


# --- loading a target ---------------------------------------------------------------------------

def load_target(target: str) -> nn.Module:
    """``package.module:factory_or_class`` or ``path/to/file.py:Name`` → the module it makes."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise ImportFailed(f"{target}: expected package.module:Name, path/to/file.py:Name or a .onnx file")
    try:
        if where.endswith(".py") or "/" in where or "\\" in where:
            path = Path(where)
            if path.is_dir():
                raise ImportFailed(f"{target}: {where} is a directory, not a Python file")
            if not path.is_file():
                raise ImportFailed(f"{target}: no file {where}")
            spec = importlib.util.spec_from_file_location(f"archviz_import_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
    except ImportFailed:
        raise
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ImportFailed(f"{target}: cannot import {where}: {type(exc).__name__}: {exc}") from None
    obj = getattr(mod, attr, None)
    if obj is None:
        names = [n for n in dir(mod) if not n.startswith("_")]
        from ..errors import did_you_mean
        raise ImportFailed(f"{target}: {where} has no attribute {attr!r}", did_you_mean(attr, names))
    return _instantiate(obj, target)


def _instantiate(obj: Any, target: str) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ImportFailed(f"{target}: is a {type(obj).__name__}, not a module, class or factory")
    try:
        sig = inspect.signature(obj)
        needed = [p.name for p in sig.parameters.values() if p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        needed = []
    if needed:
        raise ImportFailed(f"{target}: needs arguments ({', '.join(needed)})",
                           "hint: write a function that takes none and returns the model, and import that")
    try:
        model = obj()
    except Exception as exc:  # noqa: BLE001 - the user's constructor
        raise ImportFailed(f"{target}: calling it failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ImportFailed(f"{target}: returned a {type(model).__name__}, not a torch.nn.Module")
    return model


# --- tracing ------------------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """fx's tracer, remembering in ``node.meta["scope"]`` the module whose forward made a node."""

    def __init__(self) -> None:
        super().__init__()
        self.where = ""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in MODULES or super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        old, self.where = self.where, self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.where = old

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["scope"] = self.where
        return node


class FxFailed(ImportFailed):
    """torch.fx cannot trace the model (the import then tries torch.export)."""


def trace(model: nn.Module, input_shape: Shape) -> fx.GraphModule:
    """The fx graph of ``model`` with each node's output measured on a (2, *input_shape) input."""
    from torch.fx.passes.shape_prop import ShapeProp

    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, ... on dynamic code
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FxFailed(f"torch.fx cannot trace {type(model).__name__}: {reason}",
                       "hint: fx needs forward code without data-dependent control flow"
                       " (if/for over tensor values); rewrite that part or mark it as a leaf"
                       " module") from None
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.randn(2, *input_shape))
    except Exception as exc:  # noqa: BLE001 - the model refuses this input size
        raise ImportFailed(f"{type(model).__name__} does not run on input {'x'.join(map(str, input_shape))}:"
                           f" {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                           "hint: give the input size it expects with --input CxHxW") from None
    finally:
        model.train(was)
    return gm


def _shape(node: Any) -> Shape | None:
    """A tensor node's output shape without the batch; None for anything that is not a tensor."""
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(d) for d in meta.shape[1:])


# --- the mapping --------------------------------------------------------------------------------

class Unmapped(Exception):
    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


Mapped = list[tuple[str, dict[str, Any]]]   # (op, settings) per layer; [] = an identity


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv(m: nn.Conv2d) -> Mapped:
    if m.padding_mode != "zeros":
        raise Unmapped(f"padding_mode={m.padding_mode!r} (only zeros)")
    pad = m.padding if isinstance(m.padding, str) else _pair(m.padding)
    return [("conv", {"out": m.out_channels, "kernel": _pair(m.kernel_size), "stride": _pair(m.stride),
                      "padding": pad, "dilation": _pair(m.dilation), "groups": m.groups,
                      "bias": m.bias is not None})]


def _bn(m: nn.BatchNorm2d | nn.BatchNorm1d) -> Mapped:
    if m.momentum is None or not m.track_running_stats:
        raise Unmapped("momentum=None or no running statistics")
    return [("batchnorm", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine})]


def _pool(op: str) -> Callable[[Any], Mapped]:
    def make(m: Any) -> Mapped:
        if op == "maxpool" and (m.dilation not in (1, (1, 1)) or m.return_indices):
            raise Unmapped("dilation or return_indices")
        if op == "avgpool" and (not m.count_include_pad or m.divisor_override is not None):
            raise Unmapped("count_include_pad=False or divisor_override")
        stride = m.stride if m.stride not in (None, ()) else m.kernel_size
        return [(op, {"kernel": _pair(m.kernel_size), "stride": _pair(stride),
                      "padding": _pair(m.padding), "ceil_mode": bool(m.ceil_mode)})]
    return make


def _flatten_module(m: nn.Flatten) -> Mapped:
    if m.start_dim != 1 or m.end_dim != -1:
        raise Unmapped(f"start_dim={m.start_dim}, end_dim={m.end_dim} (only 1, -1)")
    return [("flatten", {})]


def _gelu(m: nn.GELU) -> Mapped:
    if m.approximate != "none":
        raise Unmapped(f"approximate={m.approximate!r}")
    return [("gelu", {})]


def _softmax(m: nn.Softmax) -> Mapped:
    if m.dim != 1:
        raise Unmapped(f"dim={m.dim} (only 1)")
    return [("softmax", {})]


def _plain(op: str) -> Callable[[Any], Mapped]:
    return lambda m: [(op, {})]


MODULES: dict[type[nn.Module], Callable[[Any], Mapped]] = {
    nn.Conv2d: _conv,
    nn.Linear: lambda m: [("linear", {"out": m.out_features, "bias": m.bias is not None})],
    nn.BatchNorm2d: _bn, nn.BatchNorm1d: _bn,
    nn.MaxPool2d: _pool("maxpool"), nn.AvgPool2d: _pool("avgpool"),
    nn.AdaptiveAvgPool2d: lambda m: [("adaptive_avgpool", {"out": m.output_size})],  # None: see _node
    nn.LocalResponseNorm: lambda m: [("lrn", {"size": m.size, "alpha": m.alpha / m.size, "beta": m.beta,
                                              "k": m.k})],   # torch divides its alpha by n
    nn.ReLU: _plain("relu"), nn.ReLU6: _plain("relu6"), nn.SiLU: _plain("silu"),
    nn.Sigmoid: _plain("sigmoid"), nn.Tanh: _plain("tanh"), nn.GELU: _gelu,
    nn.Hardswish: _plain("hardswish"), nn.Hardsigmoid: _plain("hardsigmoid"),
    nn.LeakyReLU: lambda m: [("leaky_relu", {"negative_slope": m.negative_slope})],
    nn.Softmax: _softmax,
    nn.Dropout: lambda m: [("dropout", {"p": m.p})],
    nn.Flatten: _flatten_module,
    nn.Identity: lambda m: [],
}

_ACTS = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.silu: "silu", torch.sigmoid: "sigmoid",
         F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.hardswish: "hardswish",
         F.hardsigmoid: "hardsigmoid", F.gelu: "gelu"}
_METHOD_ACTS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "relu_": "relu", "sigmoid_": "sigmoid"}
_ADDS = (operator.add, operator.iadd, torch.add)
_MULS = (operator.mul, operator.imul, torch.mul)

SUPPORTED_FUNCTIONS = ("F.relu/relu6/silu/gelu/hardswish/hardsigmoid, torch.relu/sigmoid/tanh,"
                       " F.dropout, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, torch.flatten,"
                       " x.flatten(1), x.view/reshape(n, -1), torch.cat(dim=1), + / torch.add,"
                       " * / torch.mul (broadcast), x.mean((2, 3)) (global average pool)")


def supported_modules() -> str:
    return ", ".join(sorted(f"nn.{t.__name__}" for t in MODULES))


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _function(node: fx.Node, ins: list[Shape], out: Shape) -> Mapped:
    """A call_function / call_method node → (op, settings) list."""
    t = node.target
    method = node.op == "call_method"
    if (not method and t in _ACTS) or (method and t in _METHOD_ACTS):
        op = _METHOD_ACTS[t] if method else _ACTS[t]  # type: ignore[index]
        if op == "gelu" and _arg(node, 1, "approximate", "none") != "none":
            raise Unmapped("approximate gelu")
        return [(op, {})]
    bounds = (_arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0))
    if not method and t is F.hardtanh and bounds == (0, 6):
        return [("relu6", {})]
    if not method and t is F.dropout:
        return [("dropout", {"p": float(_arg(node, 1, "p", 0.5))})]
    if not method and t is F.leaky_relu:
        return [("leaky_relu", {"negative_slope": float(_arg(node, 1, "negative_slope", 0.01))})]
    if (not method and t in (F.softmax, torch.softmax)) or (method and t == "softmax"):
        if _arg(node, 1, "dim") != 1:
            raise Unmapped("softmax over a dim other than 1")
        return [("softmax", {})]
    if not method and t in (F.max_pool2d, F.avg_pool2d):
        k = _arg(node, 1, "kernel_size")
        s = _arg(node, 2, "stride") or k
        return [("maxpool" if t is F.max_pool2d else "avgpool",
                 {"kernel": _pair(k), "stride": _pair(s), "padding": _pair(_arg(node, 3, "padding", 0)),
                  "ceil_mode": bool(_arg(node, 5 if t is F.max_pool2d else 4, "ceil_mode", False))})]
    if not method and t is F.adaptive_avg_pool2d:
        return [("adaptive_avgpool", {"out": (out[1], out[2])})]
    if (not method and t is torch.flatten) or (method and t in ("flatten", "view", "reshape")):
        if len(ins) == 1 and out == (prod(ins[0]),):
            return [("flatten", {})] if len(ins[0]) > 1 else []
        raise Unmapped(f"reshape {ins[0] if ins else ''} → {out} (only flattening to (N, F))")
    if (not method and t in _ADDS) or (method and t in ("add", "add_")):
        if len(ins) == 2 and ins[0] == ins[1] and len(node.args) == 2:
            return [("add", {})]
        raise Unmapped("add of tensors of one shape only (no constants, no broadcast)")
    if (not method and t in _MULS) or (method and t in ("mul", "mul_")):
        if len(ins) == 2 and len(node.args) == 2:
            return [("mul", {})]
        raise Unmapped("multiply by a constant")
    if not method and t is torch.cat:
        if _arg(node, 1, "dim", 0) not in (1, -3):
            raise Unmapped("concatenation along a dim other than channels (1)")
        return [("concat", {})] if len(ins) > 1 else []   # one tensor: an identity
    if (not method and t is torch.mean) or (method and t == "mean"):
        dims = _arg(node, 1, "dim")
        dims = tuple(sorted(d % 4 for d in dims)) if isinstance(dims, (list, tuple)) else None
        if dims == (2, 3) and len(ins) == 1 and len(ins[0]) == 3:
            pool = ("adaptive_avgpool", {"out": (1, 1)})
            return [pool] if _arg(node, 2, "keepdim", False) else [pool, ("flatten", {})]
        raise Unmapped("mean over anything but (H, W)")
    raise Unmapped()


def _what(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        return f"{type(m).__module__}.{type(m).__qualname__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    t = node.target
    return f"{getattr(t, '__module__', None) or ''}.{getattr(t, '__name__', str(t))}".lstrip(".")


# --- names --------------------------------------------------------------------------------------

_SEG = re.compile(r"[A-Za-z0-9_]+")


def layer_name(path: str) -> str:
    """A module path as a layer name: a first segment that starts with a digit gets ``layer_``
    (``0.conv`` → ``layer_0.conv``); characters outside letters, digits and _ become _."""
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", p) or "_" for p in path.split(".")]
    if parts[0][0].isdigit():
        parts[0] = PREFIX + parts[0]
    return ".".join(parts)


class _Names:
    def __init__(self) -> None:
        self.taken: set[str] = {INPUT}
        self.count: dict[str, int] = {}

    def unique(self, base: str) -> str:
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name

    def function(self, scope: str, base: str) -> str:
        return self.unique(layer_name(f"{scope}.{base}") if scope else base)


_BASE = re.compile(r"_\d+$")


# --- the import ---------------------------------------------------------------------------------

def from_module(model: nn.Module, input_shape: Shape, *, name: str | None = None, source: str = "",
                allow_opaque: bool = False) -> Imported:
    """Trace ``model`` on a (2, *input_shape) input and describe it as a spec (see the module doc)."""
    input_shape = tuple(input_shape)
    if len(input_shape) not in (1, 3):
        raise ImportFailed(f"input: expected CxHxW or F, got {input_shape}")
    try:
        gm = trace(model, input_shape)
    except FxFailed as fx_failed:
        return via_export(model, input_shape, fx_failed, name=name, allow_opaque=allow_opaque, source=source)
    entries: list[Entry] = []
    values: dict[fx.Node, str] = {}
    names = _Names()
    name_map: dict[str, str] = {}
    renames: dict[str, str] = {}
    opaque: list[str] = []
    warnings: list[str] = []
    traced: dict[str, Shape] = {}
    called: dict[str, int] = {}
    output: list[str] = []
    scopes: dict[str, list[str]] = {}     # module path → the function layers its forward made
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if values:
                raise ImportFailed(f"{type(model).__name__}.forward takes more than one input")
            values[node] = INPUT
            continue
        if node.op == "output":
            output = [values[n] for n in node.all_input_nodes if n in values]
            continue
        out = _shape(node)
        if out is None or node.op == "get_attr":
            continue  # sizes, shapes, parameters read as attributes: not layers
        tensor_ins = [n for n in node.all_input_nodes if n in values]
        ins = [_shape(n) or () for n in tensor_ins]
        try:
            if node.op == "call_module":
                leaf = gm.get_submodule(node.target)
                mapper = MODULES.get(type(leaf))
                if mapper is None:
                    raise Unmapped()
                mapped = mapper(leaf)
                if mapped and mapped[0][0] == "adaptive_avgpool":
                    mapped = [("adaptive_avgpool", {"out": (out[1], out[2])})]
            else:
                mapped = _function(node, ins, out)
        except Unmapped as exc:
            if not allow_opaque:
                raise _unmapped(node, gm, exc.reason) from None
            mapped = None
        if mapped == []:
            values[node] = values[tensor_ins[0]]  # an identity: readers read its input
            continue
        m: nn.Module | None = None
        if node.op == "call_module":
            path = str(node.target)
            called[path] = called.get(path, 0) + 1
            base = layer_name(path)
            m = gm.get_submodule(path)
            if called[path] > 1 and any(True for _ in m.parameters()):
                raise ImportFailed(f"{path} ({_what(node, gm)}) is called {called[path]} times:"
                                   " shared weights cannot be written as a spec (one layer, one module)")
        else:
            base = _BASE.sub("", node.name)
        if mapped is None:  # --allow-opaque
            params = sum(p.numel() for p in m.parameters()) if m is not None else sum(
                getattr(gm, str(n.target)).numel() for n in node.all_input_nodes if n.op == "get_attr")
            mapped = [("opaque", {"module": _what(node, gm), "traced_shape": out, "traced_params": params})]
        for i, (op, settings) in enumerate(mapped):
            if node.op == "call_module" and i == 0:
                lname = names.unique(base)
                if lname != node.target:
                    renames[str(node.target)] = lname
                assert m is not None
                for key in m.state_dict():
                    name_map[f"{node.target}.{key}"] = f"{lname}.{key}"
            else:
                scope = node.meta.get("scope", "")
                lname = names.function(scope, base if i == 0 else op)
                scopes.setdefault(scope, []).append(lname)
            inputs = tuple(values[n] for n in tensor_ins) if i == 0 else (entries[-1].name,)
            full = _settings(op, settings)
            entries.append(Entry(lname, op, full, inputs, "traced at import: not compiled" if op == "opaque"
                                 else ""))
            traced[lname] = out if i == len(mapped) - 1 else (out[0], 1, 1)
            if op == "opaque":
                opaque.append(lname)
                warnings.append(f"{lname}: {_what(node, gm)} kept as an opaque layer (traced shape"
                                f" {out}, {settings['traced_params']:,} parameters); it cannot be compiled")
        values[node] = entries[-1].name
    if not entries:
        raise ImportFailed(f"{type(model).__name__}: nothing to import (its forward returns its input)")
    if len(output) > 1 or (output and output[0] != entries[-1].name):
        raise ImportFailed(f"{type(model).__name__}: only a single output, made by the last layer,"
                           " can be imported")
    short = _module_names(scopes, names)
    if short:
        entries = [replace(e, name=short.get(e.name, e.name), inputs=tuple(short.get(s, s) for s in e.inputs))
                   for e in entries]
        traced = {short.get(k, k): v for k, v in traced.items()}
        opaque = [short.get(k, k) for k in opaque]
    header = Header(name or type(model).__name__, input_shape, source, comments=_comments(
        type(model), input_shape, renames))
    flat = write(header, entries)
    spec = loads(flat, f"<imported {header.name}>")
    _check(spec, traced)
    text = fold(header, entries)
    return Imported(loads(text, f"<imported {header.name}>"), text, name_map, renames, tuple(opaque),
                    tuple(warnings))


def via_export(model: nn.Module, input_shape: Shape, fx_failed: FxFailed, *, name: str | None = None,
               allow_opaque: bool = False, source: str = "") -> Imported:
    """The fallback where torch.fx cannot trace: ``torch.export`` (through torch.onnx's exporter,
    which runs it, un-optimised so BatchNorm stays) captures the graph for this input size — a
    Python-level shape check is decided there — and the ONNX importer maps it. Initializers keep
    the state-dict keys, so the name map is the source model's. Where torch.export fails too (or
    the onnx packages are absent), fx's message stands, with export's reason added."""
    import tempfile

    from .export import _quiet_onnx, onnx_available
    from .onnx_import import from_onnx

    cls = type(model).__name__
    if not onnx_available():
        raise ImportFailed(fx_failed.message, fx_failed.hint + "\n(the torch.export fallback needs the"
                           " optional onnx and onnxscript packages: pip install 'archviz[onnx]')")
    was = model.training
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{cls}.onnx"
        try:
            with _quiet_onnx(), torch.no_grad():
                torch.onnx.export(model, (torch.randn(2, *input_shape),), str(path), dynamo=True,
                                  optimize=False, external_data=False, input_names=["input"], verbose=False)
        except Exception as exc:  # noqa: BLE001 - export raises many kinds on dynamic code
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ImportFailed(fx_failed.message + f"; torch.export cannot either: {reason[:300]}",
                               fx_failed.hint) from None
        finally:
            model.train(was)
        origin = (f"Imported by `archviz import` from {type(model).__module__}.{type(model).__qualname__}:"
                  f" torch.fx could not trace it, captured with torch.export on input"
                  f" {'x'.join(map(str, input_shape))}.")
        try:
            imported = from_onnx(path, input_shape, name=name or cls, allow_opaque=allow_opaque,
                                 origin=origin, source=source or None)
        except ImportFailed as exc:
            raise ImportFailed(f"{cls} (captured with torch.export, torch.fx cannot trace it): {exc.message}",
                               exc.hint) from None
    state = model.state_dict()
    name_map = dict(imported.name_map)
    for key, spec_key in list(name_map.items()):
        if key.endswith(".running_var"):
            name_map[key.rpartition(".")[0] + ".num_batches_tracked"] = \
                spec_key.rpartition(".")[0] + ".num_batches_tracked"
    missing = [k for k in state if k not in name_map]
    if imported.transposed or missing:
        raise ImportFailed(f"{cls}: captured with torch.export, but its weights do not map one to one onto"
                           f" the spec ({'transposed weights' if imported.transposed else 'no layer for'}"
                           f" {(imported.transposed or missing)[0]})")
    return replace(imported, name_map={k: v for k, v in name_map.items() if k in state})


def _module_names(scopes: Mapping[str, list[str]], names: _Names) -> dict[str, str]:
    """A module whose forward made exactly one layer (a merge module calling ``torch.cat``) lends
    that layer its path: ``fire2.cat.cat`` → ``fire2.cat``."""
    out = {}
    for scope, made in scopes.items():
        if scope and len(made) == 1:
            short = layer_name(scope)
            if short not in names.taken:
                names.taken.add(short)
                out[made[0]] = short
    return out


def _settings(op: str, given: dict[str, Any]) -> dict[str, Any]:
    """All of an op's settings: the given ones, defaults for the rest (typed as a loaded spec's)."""
    from ..ops import OPS

    kind = OPS[op]
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items()}
    return kind.settings(kind.make(values))


def _comments(cls: type, input_shape: Shape, renames: Mapping[str, str]) -> tuple[str, ...]:
    lines = [f"Imported by `archviz import` from {cls.__module__}.{cls.__qualname__}, traced with torch.fx"
             f" on input {'x'.join(map(str, input_shape))}.",
             "Layer names are the source's module paths (state-dict keys stay the same)."]
    if renames:
        shown = ", ".join(f"{a} → {b}" for a, b in list(renames.items())[:4])
        more = f" and {len(renames) - 4} more" if len(renames) > 4 else ""
        lines[1] = (f"Layer names are the source's module paths; a path that is not a name is prefixed"
                    f" {PREFIX!r}: {shown}{more}.")
    return tuple(lines)


def _unmapped(node: fx.Node, gm: fx.GraphModule, reason: str) -> ImportFailed:
    scope = node.meta.get("scope", "")
    where = str(node.target) if node.op == "call_module" else \
        (f"{scope} ({node.name})" if scope else node.name)
    detail = f": {reason}" if reason else ""
    return ImportFailed(
        f"{where}: archviz has no op for {_what(node, gm)}{detail}",
        f"supported modules: {supported_modules()}\nsupported functions: {SUPPORTED_FUNCTIONS}\n"
        "hint: --allow-opaque keeps it as an `opaque` layer (traced shape and parameter count; not compiled)")


def _check(spec: Spec, traced: Mapping[str, Shape]) -> None:
    """Every layer's analysed output equals the traced one (a mapping mistake would show here)."""
    analysis = analyze(spec)
    bad = [f"{s.name}: analysed {s.output}, traced {traced[s.name]}" for s in analysis.layers
           if s.name in traced and s.output != traced[s.name]]
    if bad:
        raise ImportFailed("the imported spec disagrees with the trace (a bug in archviz import):\n  "
                           + "\n  ".join(bad[:10]))


# --- weights and the round trip -----------------------------------------------------------------

def load_weights(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                 name_map: Mapping[str, str]) -> nn.Module:
    """Load the source model's ``state_dict`` into the compiled spec through ``name_map``
    (:attr:`Imported.name_map`); strict: every key of both sides must be matched."""
    missing = [k for k in state_dict if k not in name_map]
    if missing:
        raise ImportFailed(f"the name map has no entry for {len(missing)} source keys, e.g. {missing[0]}")
    module.load_state_dict({name_map[k]: v for k, v in state_dict.items()}, strict=True)
    return module


@dataclass(frozen=True)
class RoundTrip:
    """The source model against the compiled imported spec, its weights loaded through the map."""

    max_abs_diff: float
    params: int                  # source model
    spec_params: int             # compiled spec
    analysis_params: int
    flops: int                   # torch.utils.flop_counter, source model, per image
    spec_flops: int              # the same, compiled spec
    analysis_macs: int
    tolerance: float = 1e-5

    @property
    def ok(self) -> bool:
        return (self.max_abs_diff <= self.tolerance
                and self.params == self.spec_params == self.analysis_params
                and self.flops == self.spec_flops == 2 * self.analysis_macs)


def _flops(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model(x)
    return out, counter.get_total_flops() // x.shape[0]


def round_trip(model: nn.Module, imported: Imported, seed: int = 0) -> RoundTrip:
    """Compile the spec, load ``model``'s weights through the name map, compare on random input."""
    from .compile import to_module

    if imported.opaque:
        raise ImportFailed(f"cannot verify: opaque layers ({', '.join(imported.opaque)}) cannot be compiled")
    compiled = load_weights(to_module(imported.spec), model.state_dict(), imported.name_map).eval()
    was = model.training
    model.eval()
    try:
        x = torch.randn(2, *imported.spec.input, generator=torch.Generator().manual_seed(seed))
        want, flops = _flops(model, x)
        got, spec_flops = _flops(compiled, x)
    finally:
        model.train(was)
    analysis = analyze(imported.spec)
    return RoundTrip(float((got - want).abs().max()), sum(p.numel() for p in model.parameters()),
                     sum(p.numel() for p in compiled.parameters()), analysis.totals.params,
                     flops, spec_flops, analysis.totals.macs)
