"""A ``torch.nn.Module`` → a spec (``archviz import``, ``archviz.from_module``).

The module is traced with ``torch.fx`` (a tracer that remembers, for every node, the module
whose ``forward`` made it), its shapes measured by one forward pass (``ShapeProp``), and every
node mapped onto the archviz op that names its module type (``torch.nn.Conv2d`` → conv, ...),
function or tensor method (archviz.runtime.mapping: one pass shared with the ONNX importer):
``F.relu``, ``torch.flatten``, ``operator.add``, ``torch.cat``, ``x.view(n, -1)``,
``x.mean((2, 3), keepdim=True)`` ...). Module paths become layer names; a first path segment
that is not a name (``0`` of a bare ``nn.Sequential``) is prefixed ``layer_`` (``layer_0.conv``),
and :attr:`Imported.name_map` maps every source state-dict key to the spec's. The written
spec is checked against the trace: every layer's analysed output shape must equal the traced one.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from ..limits import MAX_RANK
from ..ops import OPS
from ..ops.source import TENSOR, Mapped, Unmapped, Weight
from ..spec import INPUT
from ..spec.write import TIE, Header
from .fx_trace import FxFailed, _node_shape, _number, _refusal, _shape, _tuple_head, refused, trace
from .inputs import example_input
from .mapping import (
    PREFIX,
    Imported,
    ImportFailed,
    Layers,
    VerifyFailed,
    follow_renames,
    layer_name,
    map_call,
    map_module,
    module_layer,
    module_transposed,
    numbered_children,
    supported_functions,
    supported_modules,
)
from .modnames import compiled_keys
from .roundtrip import RoundTrip, load_weights, no_cache, round_trip
from .target import load_target, written_as  # noqa: F401  (load_target: the import's API)

Shape = tuple[int, ...]
__all__ = ["FxFailed", "ImportFailed", "Imported", "RoundTrip", "VerifyFailed", "from_module", "load_target",
           "load_weights", "round_trip", "trace", "via_export"]


def _first_item(node: fx.Node, values: Mapping[fx.Node, str]) -> bool:
    """``t[0]`` of such a tuple (the module's layer already stands for it)."""
    return (node.op == "call_function" and node.target is operator.getitem and len(node.args) == 2
            and node.args[1] == 0 and isinstance(node.args[0], fx.Node) and node.args[0] in values
            and _tuple_head(node.args[0]) is not None)


# --- one node ---------------------------------------------------------------------------------

def _map(node: fx.Node, gm: fx.GraphModule, ins: list[Shape], out: Shape, piece: int | None = None) -> Mapped:
    """A node → the layers it becomes, by its op (archviz.runtime.mapping); raises Unmapped.
    ``piece``: the node is one output of a call with several (``x.chunk(2, 1)[piece]``)."""
    if node.op == "call_module":
        plain = {k: v for k, v in node.kwargs.items() if isinstance(v, (bool, int, float, str))}
        return map_module(gm.get_submodule(str(node.target)), tuple(ins), out, plain)

    def value(n: fx.Node) -> Any:   # a parameter read as an attribute (self.gamma * x): its key and shape
        n = _expanded(n) or n        # token.expand(N, -1, -1): the parameter, over the batch
        if n.op == "get_attr" and isinstance(p := _attr(gm, str(n.target)), torch.Tensor):
            return Weight(str(n.target), tuple(p.shape), n.meta.get("start"), n.meta.get("row"))
        number = _number(n)   # a number from sizes per example (a head size's square root)
        return TENSOR if number is None else number

    args = fx.node.map_arg(node.args, value)
    kwargs = fx.node.map_arg(node.kwargs, value)
    return map_call(node.target, node.op == "call_method", tuple(args), dict(kwargs), tuple(ins), out, piece)


def _expanded(n: fx.Node) -> fx.Node | None:
    """The parameter (a get_attr node) that ``n`` expands over the batch, keeping its other sizes
    (``token.expand(N, -1, -1)``: ViT's class token); None for anything else."""
    if n.op == "call_method" and n.target == "expand" and n.args and isinstance(n.args[0], fx.Node) \
            and n.args[0].op == "get_attr" and all(a == -1 for a in n.args[2:]):
        return n.args[0]
    return None


def _attr(gm: fx.GraphModule, dotted: str) -> Any:
    obj: Any = gm
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def _params_read(node: fx.Node) -> list[str]:
    """The state-dict keys of the parameters a call reads as attributes (``self.gamma * x``), or
    expanded over the batch (``cat([token.expand(N, -1, -1), x], 1)``)."""
    return [str(m.target) for n in node.all_input_nodes if (m := _expanded(n) or n).op == "get_attr"]


def _piece(node: fx.Node) -> tuple[fx.Node, int] | None:
    """``(call, i)`` where ``node`` is ``call(...)[i]`` of a call with several outputs (chunk, split)."""
    if node.op == "call_function" and node.target is operator.getitem and len(node.args) == 2:
        call, i = node.args
        if isinstance(call, fx.Node) and isinstance(i, int) and call.op != "placeholder" \
                and isinstance(call.meta.get("tensor_meta"), (tuple, list)):
            return call, i
    return None


def _opaque(node: fx.Node, what: str, out: Shape, params: int) -> Mapped:
    """The ``opaque`` layer of a node archviz cannot map: its traced shape (any rank a spec holds)
    and dtype (floats as float32, the analysis's float; bool and narrow integers as int32)."""
    if not 1 <= len(out) <= MAX_RANK:
        scope = node.meta.get("scope", "")
        raise ImportFailed(f"{scope + '.' if scope else ''}{node.name} ({what}): its output has"
                           f" {len(out)} sizes per example ({out}); a spec's layers hold 1 to {MAX_RANK}")
    dtype = getattr(node.meta.get("tensor_meta"), "dtype", torch.float32)
    traced = "float32" if dtype.is_floating_point else "int64" if dtype == torch.int64 else "int32"
    return (("opaque", {"module": what, "traced_shape": out, "traced_params": params,
                        "traced_dtype": traced}),)


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    """The nodes a call reads, in argument order and each as often as it is passed
    (``torch.cat([x, x], 1)`` reads x twice; fx's ``all_input_nodes`` would give it once)."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)
    return found


def _what(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        return f"{type(m).__module__}.{type(m).__qualname__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    t = node.target
    return f"{getattr(t, '__module__', None) or ''}.{getattr(t, '__name__', str(t))}".lstrip(".")


_BASE = re.compile(r"_\d+$")


# --- the import ---------------------------------------------------------------------------------

def from_module(model: nn.Module, input_shape: Shape, *, name: str | None = None, source: str = "",
                allow_opaque: bool = False, input_dtype: str = "float32") -> Imported:
    """Trace ``model`` on a (2, *input_shape) input (of ``input_dtype``: token ids for int64) and
    describe it as a spec (see the module doc)."""
    input_shape = tuple(input_shape)
    if not 1 <= len(input_shape) <= MAX_RANK:
        raise ImportFailed(f"input: expected 1 to {MAX_RANK} sizes, got {input_shape}")
    how = "traced with torch.fx"
    try:
        gm = trace(model, input_shape, input_dtype)
    except FxFailed as fx_failed:
        if not _capture_first(model):
            try:
                return via_export(model, input_shape, fx_failed, name=name, allow_opaque=allow_opaque,
                                  source=source, input_dtype=input_dtype)
            except ImportFailed as export_failed:
                gm = _run_capture(model, input_shape, input_dtype, export_failed)
        else:
            gm = _run_capture(model, input_shape, input_dtype, fx_failed)
        how = "captured by running it once (torch.fx cannot trace it)"
    walk = _Walk(gm, allow_opaque)
    walk.run(type(model).__name__)
    layers = walk.layers
    if not layers.entries:
        raise ImportFailed(f"{type(model).__name__}: nothing to import (its forward returns its input)")
    if INPUT in walk.output or len(set(walk.output)) != len(walk.output):
        raise ImportFailed(f"{type(model).__name__}: an output that is its input, or one tensor returned"
                           " twice, cannot be imported (a spec's outputs are distinct layers)")
    comments = _comments(type(model), input_shape, walk.renames, how)
    outputs, note = walk.rename()   # several outputs (a ModelOutput's): each kept, in order
    header = Header(name or type(model).__name__, input_shape, source, comments=comments + note,
                    input_dtype=input_dtype, outputs=outputs if outputs != (layers.entries[-1].name,) else ())
    spec, text = layers.spec(header)
    keys = compiled_keys(walk.name_map, (e.name for e in layers.entries))
    return Imported(spec, text, keys, walk.renames, tuple(layers.opaque), tuple(layers.warnings),
                    constant_flops=gm.meta.get("constant_flops", 0), transpose=frozenset(walk.transpose))


class _Walk:
    """One pass over a traced graph: each node mapped (:func:`_map`) and written as layers named
    after its module path, or its function's scope and name."""

    def __init__(self, gm: fx.GraphModule, allow_opaque: bool) -> None:
        self.gm, self.allow_opaque = gm, allow_opaque
        self.layers = Layers()
        self.values: dict[fx.Node, str] = {}
        self.name_map: dict[str, str] = {}
        self.transpose: set[str] = set()           # source keys stored transposed (Conv1D's weight)
        self.renames: dict[str, str] = {}
        self.called: dict[str, int] = {}
        self.scopes: dict[str, list[str]] = {}     # module path → the function layers its forward made
        self.owners: dict[int, str] = {}           # id of a module's weight → the layer that holds it first
        self.constant: dict[fx.Node, set[str]] = {}  # tensors made from parameters alone → their keys
        self.counted: set[str] = set()               # parameters an opaque layer has counted
        self.params = dict(gm.named_parameters())
        self.output: list[str] = []

    def run(self, cls: str) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if self.values:
                    raise ImportFailed(f"{cls}.forward takes more than one input")
                self.values[node] = INPUT
            elif node.op == "output":
                outs = _tensor_args(node)
                self.output = [self.values[n] for n in outs if n in self.values]
                self.layers.output = _shape(outs[0]) if len(outs) == 1 else None
            elif _first_item(node, self.values):   # mha(x, x, x)[0]: the layer itself
                self.values[node] = self.values[node.args[0]]
            elif node.op != "get_attr" and (out := _node_shape(node)) is not None:
                self.node(node, out)  # not sizes, shapes, parameters read as attributes

    def rename(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Layers renamed after their module (:func:`_module_names`), numbered children renamed so
        that they fold (``encoder_layer_0`` → ``0``), the name map following; → the outputs' layer
        names and the header's note of the numbered renames."""
        layers = self.layers
        short = _module_names(self.scopes, layers)
        layers.rename(short)
        numbered = numbered_children(layers.entries)
        layers.rename(numbered)
        short = {**{k: numbered.get(v, v) for k, v in short.items()}, **numbered}
        self.name_map = follow_renames(self.name_map, short)
        self.renames = {p: numbered.get(n, n) for p, n in self.renames.items()} | {
            n: new for n, new in numbered.items() if any(k.startswith(f"{n}.") for k in self.name_map)}
        note: tuple[str, ...] = ()
        if numbered:
            old, new = (n.split(".") for n in next(iter(numbered.items())))
            while len(old) > 1 and old[-1] == new[-1]:   # the renamed child itself
                old, new = old[:-1], new[:-1]
            note = (f"Numbered children are renamed so that they fold: {'.'.join(old)} → {'.'.join(new)},"
                    " ...",)
        return tuple(short.get(n, n) for n in self.output), note

    def node(self, node: fx.Node, out: Shape) -> None:
        source, piece = (node, None)
        if (found := _piece(node)) is not None:   # x.chunk(2, 1)[i]: the chunk call, as its i-th piece
            source, piece = found
        tensor_ins = [n for n in _tensor_args(source) if n in self.values]
        if source.op == "call_module":   # a module given one tensor twice (mha(x, x, x)) reads it once;
            tensor_ins = list(dict.fromkeys(tensor_ins))   # a call's repeats stay (torch.cat([x, x]))
        if not tensor_ins:   # computed from parameters and constants alone (a class token expanded, a
            self.constant[node] = self._keys(source)   # position bias table): no layer; its parameters
            return                                      # are counted by the opaque layer that reads it
        mapped = self._mapped(node, source, piece, tensor_ins, out)
        if mapped == ():
            self.values[node] = self.values[tensor_ins[0]]  # an identity: readers read its input
            return
        m = self._module(node)
        mapped = self._tie(m, mapped)
        own = module_layer(m, mapped) if m is not None and mapped is not None else 0
        what, params = _what(node, self.gm), 0
        if mapped is None:  # --allow-opaque
            params = self._opaque_params(source)
            mapped = _opaque(node, what, out, params)
        reads = [self.values[n] for n in tensor_ins]
        note = "traced at import: not compiled"
        if mapped[0][0] == "opaque" and len(reads) > 1:   # an opaque layer reads one: the rest, named
            note += f"; also reads {', '.join(dict.fromkeys(reads[1:]))}"
            reads = reads[:1]
        made = self.layers.add(
            mapped, lambda i, op: self._name(source, m, i, op, own), tuple(reads), out, note,
            lambda lname: f"{lname}: {what} kept as an opaque layer (traced"
            f" shape {out}, {params:,} parameters); it cannot be compiled")
        self.values[node] = made[-1]
        if m is not None and isinstance(m._parameters.get("weight"), nn.Parameter):
            self.owners.setdefault(id(m._parameters["weight"]), made[own])
        if m is None and mapped[0][0] != "opaque":   # parameters read as attributes: the op's weight keys
            for key, weight in zip(OPS[mapped[0][0]].onnx_weights, _params_read(source), strict=False):
                self.name_map[weight] = f"{made[0]}.{key}"

    def _tie(self, m: nn.Module | None, mapped: Mapped | None) -> Mapped | None:
        """A module whose ``weight`` is the very Parameter of a module mapped before it (Hugging
        Face's lm_head and wte): its first layer says ``tie:`` that layer (the weight counted once)."""
        w = m._parameters.get("weight") if m is not None else None
        if not mapped or w is None or id(w) not in self.owners:
            return mapped
        (op, settings), *rest = mapped
        return ((op, {**settings, TIE: self.owners[id(w)]}), *rest)
    def _mapped(self, node: fx.Node, source: fx.Node, piece: int | None, tensor_ins: list[fx.Node],
                out: Shape) -> Mapped | None:
        """The node's layers; None where it is kept opaque (--allow-opaque), else Unmapped raised as
        a located error. A node that reads a tensor computed from parameters alone, or an identity
        that would change the shape (``torch.cat`` of one traced input and a class token), is not
        mapped: the spec could not say what it adds."""
        try:
            if any(n in self.constant and not _expanded(n) for n in _tensor_args(source)):
                raise Unmapped("it reads a tensor computed from parameters alone (no layer holds it)")
            mapped = _map(source, self.gm, [_shape(n) or () for n in tensor_ins], out, piece)
            if mapped == () and _shape(tensor_ins[0]) != out:
                raise Unmapped(f"an identity from {_shape(tensor_ins[0])} to {out}")
            return mapped
        except Unmapped as exc:
            if not self.allow_opaque:
                raise _unmapped(node, self.gm, exc.reason) from None
            return None

    def _opaque_params(self, source: fx.Node) -> int:
        """The parameters an opaque layer holds: its module's, or those its call reads (through
        tensors computed from them too); each parameter counted once, buffers not at all."""
        named = self.params
        if source.op == "call_module":   # (x, weights) = attention(x, x, x)[0]: the module's own
            keys = {k for k in named if k.startswith(f"{source.target}.")}
        else:
            keys = {k for k in self._keys(source) if k in named}
        keys -= self.counted
        self.counted |= keys
        return sum(named[k].numel() for k in keys)

    def _keys(self, node: fx.Node) -> set[str]:
        """The state-dict keys of the parameters a call reads, directly or through tensors computed
        from parameters alone (a module's own too: Swin V2's bias MLP run on a constant table)."""
        keys = set(_params_read(node))
        if node.op == "call_module":
            keys |= {k for k in self.params if k.startswith(f"{node.target}.")}
        for n in _tensor_args(node):
            keys |= self.constant.get(n, set())
        return keys

    def _module(self, node: fx.Node) -> nn.Module | None:
        """The module a call_module node calls (one with weights may be called once only)."""
        if node.op != "call_module":
            return None
        path = str(node.target)
        self.called[path] = self.called.get(path, 0) + 1
        m = self.gm.get_submodule(path)
        if self.called[path] > 1 and any(True for _ in m.parameters()):
            raise ImportFailed(f"{path} ({_what(node, self.gm)}) is called {self.called[path]} times:"
                               " shared weights cannot be written as a spec (one layer, one module)")
        return m

    def _name(self, node: fx.Node, m: nn.Module | None, i: int, op: str, own: int = 0) -> str:
        """A module's own layer (its first, or the one of its op: :func:`.mapping.module_layer`):
        its path (state-dict keys mapped); a function's, or a module's other layers (a mean's
        flatten, Swin's window moves): its scope and name."""
        names = self.layers.names
        if m is not None and i == own:
            path = str(node.target)
            lname = names.unique(layer_name(path))
            if lname != path:
                self.renames[path] = lname
            for key in m.state_dict():
                self.name_map[f"{path}.{key}"] = f"{lname}.{key}"
            self.transpose.update(f"{path}.{key}" for key in module_transposed(m))
            return lname
        base = layer_name(str(node.target)) if m is not None else _BASE.sub("", node.name)
        scope = node.meta.get("scope", "")
        lname = names.function(scope, base if i == 0 and m is None else op)
        self.scopes.setdefault(scope, []).append(lname)
        return lname


def via_export(model: nn.Module, input_shape: Shape, fx_failed: FxFailed, *, name: str | None = None,
               allow_opaque: bool = False, source: str = "", input_dtype: str = "float32") -> Imported:
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
            x = example_input(input_shape, input_dtype, batch=2)
            with _quiet_onnx(), torch.no_grad():
                torch.onnx.export(model, (x,), str(path), dynamo=True,
                                  optimize=False, external_data=False, input_names=["input"], verbose=False)
        except Exception as exc:  # noqa: BLE001 - export raises many kinds on dynamic code
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ImportFailed(fx_failed.message + f"; torch.export cannot either: {reason[:300]}",
                               fx_failed.hint) from None
        finally:
            model.train(was)
        origin = (f"Imported by `archviz import` from {written_as(type(model))}:"
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


def _module_names(scopes: Mapping[str, list[str]], layers: Layers) -> dict[str, str]:
    """A module whose forward made exactly one layer (a merge module calling ``torch.cat``) lends
    that layer its path: ``fire2.cat.cat`` → ``fire2.cat``. Not a module with layers of its own
    children (a ResNet bottleneck's ``add`` stays ``layer1.0.add``: ``layer1.0`` is the copy of a
    stage, which folding into blocks reads as one)."""
    out = {}
    for scope, made in scopes.items():
        if scope and len(made) == 1:
            short = layer_name(scope)
            if short not in layers.names.taken and not any(
                    e.name.startswith(short + ".") and e.name != made[0] for e in layers.entries):
                layers.names.taken.add(short)
                out[made[0]] = short
    return out


def _capture_first(model: nn.Module) -> bool:
    """A Hugging Face ``transformers`` model, or torch's own layer (``nn.TransformerEncoderLayer``):
    fx cannot trace its forward (masks, caches, ``**kwargs``, fast-path checks; transformers' own fx
    tracer fails on torch 2.13) and torch.export's ONNX graph spells attention out op by op, so it
    is captured by running, before torch.export is tried."""
    return any(c.__module__.startswith(("transformers.", "torch.nn.")) for c in type(model).__mro__[:-2])


def _run_capture(model: nn.Module, input_shape: Shape, input_dtype: str,
                 failed: ImportFailed) -> fx.GraphModule:
    """:func:`.capture.capture` on a (2, *input) example in eval mode, without the cache; where it
    fails, ``failed`` (fx's or torch.export's message) stands with the reason added."""
    from .capture import ValueRead, capture

    was = model.training
    model.eval()
    try:
        with no_cache(model):
            return capture(model, example_input(input_shape, input_dtype, batch=2, random=True))
    except ValueRead as exc:
        raise ImportFailed(f"{failed.message}; it cannot be captured by running either: {exc}",
                           failed.hint) from None
    except Exception as exc:  # noqa: BLE001 - the user's forward
        if not _runs(model, input_shape, input_dtype):   # the model itself refuses this input
            raise refused(model, input_shape, input_dtype, exc) from None
        raise ImportFailed(f"{failed.message}; running it to capture its graph failed too:"
                           f" {_refusal(exc)}", failed.hint) from None
    finally:
        model.train(was)


def _runs(model: nn.Module, input_shape: Shape, input_dtype: str) -> bool:
    """Whether ``model`` runs at all, uncaptured, on a (2, *input) example."""
    try:
        with torch.no_grad(), no_cache(model):
            model(example_input(input_shape, input_dtype, batch=2, random=True))
    except Exception:  # noqa: BLE001 - the user's forward
        return False
    return True


def _comments(cls: type, input_shape: Shape, renames: Mapping[str, str],
              how: str = "traced with torch.fx") -> tuple[str, ...]:
    lines = [f"Imported by `archviz import` from {written_as(cls)}, {how}"
             f" on input {'x'.join(map(str, input_shape))}.",
             "Layer names are the source's module paths (state-dict keys stay the same)."]
    prefixed = {a: b for a, b in renames.items() if b.startswith(PREFIX) and not a.startswith(PREFIX)}
    if prefixed:
        shown = ", ".join(f"{a} → {b}" for a, b in list(prefixed.items())[:4])
        more = f" and {len(prefixed) - 4} more" if len(prefixed) > 4 else ""
        lines[1] = (f"Layer names are the source's module paths; a path that is not a name is prefixed"
                    f" {PREFIX!r}: {shown}{more}.")
    if len(prefixed) < len(renames):
        lines.append("A module called more than once (one ReLU module used three times) names its later"
                     " layers _1, _2, ...")
    return tuple(lines)


def _unmapped(node: fx.Node, gm: fx.GraphModule, reason: str) -> ImportFailed:
    scope = node.meta.get("scope", "")
    where = str(node.target) if node.op == "call_module" else \
        (f"{scope} ({node.name})" if scope else node.name)
    detail = f": {reason}" if reason else ""
    return ImportFailed(
        f"{where}: archviz has no op for {_what(node, gm)}{detail}",
        f"supported modules: {supported_modules()}\nsupported functions: {supported_functions()}\n"
        "hint: --allow-opaque keeps it as an `opaque` layer (traced shape and parameter count; not compiled)")
