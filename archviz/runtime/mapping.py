"""The one mapping pass of both importers (``torch.fx`` in :mod:`.importer`, ONNX in
:mod:`.onnx_import`, and torch.export, which goes through ONNX).

Each op names where it is imported from (``OpKind.torch_modules``, ``torch_functions``,
``tensor_methods``, ``onnx_types``, as strings: :mod:`archviz.ops.source`). :func:`dispatch`
scans :data:`~archviz.ops.OPS` once, resolves those names to the torch classes and functions,
and keeps which op each module type, function, method name and ONNX type belongs to; nothing
else keeps a table of ops. An importer builds a :class:`~archviz.ops.source.Source` of a node
and calls :func:`map_module`, :func:`map_call` or :func:`map_onnx`: the op's facet says which
layers the node becomes, or raises :class:`~archviz.ops.source.Unmapped`.

Also here, shared by both importers: the import's result (:class:`Imported`) and its error
(:class:`ImportFailed`), layer naming (:func:`layer_name`, :class:`Names`), the layers being
written (:class:`Layers`: entries, traced shapes, opaque layers) and the check of the written
spec against the trace. This module imports neither importer, and no torch at module level.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from functools import cache
from typing import Any

from ..errors import ArchvizError
from ..ops import OPS, OpKind
from ..ops.source import Mapped, Source, Unmapped
from ..record import record
from ..spec import INPUT, Spec, loads
from ..spec.write import LOWERING, TIE, Entry, Header, fold, write

Shape = tuple[int, ...]
PREFIX = "layer_"   # for a module path whose first segment is not a name: 0.conv → layer_0.conv
# not ops: a node of these is no layer, its readers read its input
IDENTITY_MODULES = ("torch.nn.Identity",)
IDENTITY_ONNX = ("Identity",)


class ImportFailed(ArchvizError):
    """The target does not import, cannot be traced, or holds something archviz cannot map."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def format(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")


class VerifyFailed(ImportFailed):
    """``--verify``: the compiled spec cannot take the model's weights or run its input (a check
    that failed: exit 1), the layer named."""


@record
class Imported:
    spec: Spec
    text: str                        # the spec's YAML
    name_map: Mapping[str, str]      # source state-dict key → the compiled spec's key
    renames: Mapping[str, str]       # module path → layer name, where they differ
    opaque: tuple[str, ...] = ()     # layers kept as `opaque` (--allow-opaque)
    warnings: tuple[str, ...] = ()
    # per example: the source's work that reads no input (captured models); keyword-only, so a
    # subclass's positional fields (OnnxImported.transposed) stay where they were
    constant_flops: int = field(default=0, kw_only=True)
    # source state-dict keys stored transposed to the spec's (transformers' Conv1D): transposed on load
    transpose: frozenset[str] = field(default=frozenset(), kw_only=True)


# --- which op a node belongs to -------------------------------------------------------------------

@record
class Dispatch:
    """The ops' import names resolved: torch module class / function → (op, its declared name);
    method name and ONNX type → op. An op of None is an identity (``nn.Identity``)."""

    modules: Mapping[Any, tuple[OpKind | None, str]]
    functions: Mapping[Any, tuple[OpKind, str]]
    methods: Mapping[str, OpKind]
    onnx: Mapping[str, OpKind | None]


def resolve(qualified: str) -> Any:
    """``"torch.nn.functional.relu"`` → that object (the longest importable module, then attributes)."""
    parts = qualified.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualified)


def resolvable(qualified: str) -> Any:
    """:func:`resolve`, or None where the name's package is not installed (an op may name
    ``torchvision.ops.StochasticDepth``, timm's ``DropPath`` or transformers' classes: matched only
    where present)."""
    try:
        return resolve(qualified)
    except (ImportError, AttributeError):
        if qualified.startswith(("torch.", "operator.")):
            raise          # torch's own names must resolve: a typo in ops/
        return None


@cache
def dispatch() -> Dispatch:
    """Built once, on first use, from every registered op (a name claimed twice is a bug)."""
    modules: dict[Any, tuple[OpKind | None, str]] = {resolve(n): (None, n) for n in IDENTITY_MODULES}
    functions: dict[Any, tuple[OpKind, str]] = {}
    methods: dict[str, OpKind] = {}
    onnx: dict[str, OpKind | None] = dict.fromkeys(IDENTITY_ONNX)

    def claim(table: dict[Any, Any], key: Any, value: Any, name: str) -> None:
        if key in table:
            raise AssertionError(f"{name} is claimed by two ops")  # pragma: no cover - a bug in ops/
        table[key] = value

    for op in OPS.values():
        for n in op.torch_modules:
            if (obj := resolvable(n)) is not None:   # another library's class, where it is installed
                claim(modules, obj, (op, n), n)
        for n in op.torch_functions:
            if (obj := resolvable(n)) is not None:
                claim(functions, obj, (op, n), n)
        for n in op.tensor_methods:
            claim(methods, n, op, f"Tensor.{n}")
        for n in op.onnx_types:
            claim(onnx, n, op, f"ONNX {n}")
    return Dispatch(modules, functions, methods, onnx)


def is_mapped_module(module: Any) -> bool:
    """A module archviz maps whole (the fx tracer keeps it a leaf)."""
    return type(module) in dispatch().modules


def onnx_op(op_type: str) -> OpKind | None:
    return dispatch().onnx.get(op_type)


def onnx_bias_add() -> frozenset[str]:
    """ONNX types whose bias comes as a following Add of a constant (MatMul)."""
    return frozenset(t for op in OPS.values() for t in op.onnx_bias_add)


def module_attrs(module: Any) -> dict[str, Any]:
    """A module's public attributes, its own parameters as their shapes (None where absent), its
    child modules as their own attributes (a dict: BERT's ``dropout`` → ``{"p": 0.1, ...}``)."""
    attrs = {k: v for k, v in vars(module).items() if not k.startswith("_")}
    attrs.update({k: (None if p is None else tuple(p.shape)) for k, p in module._parameters.items()})
    attrs.update({k: module_attrs(c) for k, c in module._modules.items() if c is not None and k not in attrs})
    attrs.update({f"{c}.{k}": (None if p is None else tuple(p.shape))   # its children's: "qkv.bias"
                  for c, child in module.named_children() for k, p in child._parameters.items()})
    return attrs


def map_module(module: Any, ins: tuple[Shape, ...], out: Shape,
               kwargs: Mapping[str, Any] | None = None) -> Mapped:
    """A leaf module → the layers it becomes (() for an identity); Unmapped if no op has it.
    ``kwargs``: the call's keyword arguments that are plain values (``need_weights=False``)."""
    found = dispatch().modules.get(type(module))
    if found is None:
        raise Unmapped()
    op, name = found
    src = Source(name, module_attrs(module), kwargs=dict(kwargs or {}), ins=ins, out=out)
    return () if op is None else op.from_module(src)


def module_layer(module: Any, mapped: Mapped) -> int:
    """Which of a mapped module's layers is its own (takes its path and its state-dict keys): the
    first of the op that claims the module (Swin's window attention: the attention between its
    window moves), else the first."""
    op = dispatch().modules.get(type(module), (None, ""))[0]
    return next((i for i, (name, _) in enumerate(mapped) if op is not None and name == op.name), 0)


def module_transposed(module: Any) -> tuple[str, ...]:
    """A mapped module's state-dict keys stored transposed to the compiled layer's (its op says)."""
    op, name = dispatch().modules.get(type(module), (None, ""))
    return () if op is None else op.module_transposed(Source(name, module_attrs(module)))


def map_call(target: Any, method: bool, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             ins: tuple[Shape, ...], out: Shape, piece: int | None = None) -> Mapped:
    """A function call or a tensor method call (``args``: tensors written TENSOR, parameters as
    their :class:`~archviz.ops.source.Weight`) → layers; ``piece``: which of a call's several
    outputs the node reads (``x.chunk(2, 1)[1]``: 1)."""
    d = dispatch()
    if method:
        op, name = (d.methods[target], str(target)) if target in d.methods else (None, "")
    else:
        op, name = d.functions.get(target, (None, "")) if _hashable(target) else (None, "")
    if op is None:
        raise Unmapped()
    return op.from_call(Source(name, args=args, kwargs=kwargs, ins=ins, out=out, piece=piece))


def map_onnx(src: Source) -> Mapped:
    """An ONNX node (``src.target`` its type) → layers."""
    d = dispatch()
    if src.target not in d.onnx:
        raise Unmapped()
    op = d.onnx[src.target]
    return () if op is None else op.from_onnx(src)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


# --- the supported lists of the error hints, from the ops ---------------------------------------

def _short(name: str) -> str:
    return name.replace("torch.nn.functional.", "F.").replace("torch.nn.", "nn.")


def supported_modules() -> str:
    return ", ".join(sorted(_short(n) for _, n in dispatch().modules.values()))


def supported_functions() -> str:
    """Per op, its functions and tensor methods: ``relu (F.relu, torch.relu, x.relu(), x.relu_())``,
    ``concat (torch.cat(dim=1))``."""
    out = []
    for op in OPS.values():
        args = f"({op.call_args})" if op.call_args else ""
        names = [_short(n) + args for n in op.torch_functions]
        names += [f"x.{m}({op.call_args})" for m in op.tensor_methods]
        if names:
            out.append(f"{op.name} ({', '.join(names)})")
    return "; ".join(out)


def supported_onnx() -> str:
    return ", ".join([t for op in OPS.values() for t in op.onnx_types] + list(IDENTITY_ONNX))


# --- naming -------------------------------------------------------------------------------------

def layer_name(path: str) -> str:
    """A module path as a layer name: a first segment that starts with a digit gets ``layer_``
    (``0.conv`` → ``layer_0.conv``); characters outside letters, digits and _ become _."""
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", p) or "_" for p in path.split(".")]
    if parts[0][0].isdigit():
        parts[0] = PREFIX + parts[0]
    return ".".join(parts)


class Names:
    """The layer names taken so far; a name taken twice gets ``_1``, ``_2``."""

    def __init__(self) -> None:
        self.taken: set[str] = {INPUT}

    def unique(self, base: str) -> str:
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name

    def function(self, scope: str, base: str) -> str:
        return self.unique(layer_name(f"{scope}.{base}") if scope else base)


_NUMBERED = re.compile(r"(.*\D)(\d+)")


def numbered_children(entries: list[Entry]) -> dict[str, str]:
    """Layer renames that number a container's children where the source names them prefix + index
    (torchvision's ``encoder.layers.encoder_layer_0`` … → ``encoder.layers.0`` …), so that folding
    (:func:`archviz.spec.write.fold`) can write them as one block with ``repeat:``. Only where the
    indices run 0…N−1 (N ≥ 2) and every child holds the same layers (op and settings)."""
    groups: dict[tuple[str, str], dict[int, list[tuple[str, str, Any]]]] = {}
    for e in entries:
        parts = e.name.split(".")
        for i, part in enumerate(parts[:-1]):
            if (m := _NUMBERED.fullmatch(part)) is not None and not part[0].isdigit():
                group = groups.setdefault((".".join(parts[:i]), m.group(1)), {})
                child = group.setdefault(int(m.group(2)), [])
                child.append((".".join(parts[i + 1:]), e.op, sorted(e.settings.items(), key=str)))
    short = {}
    for (parent, prefix), children in groups.items():
        if len(children) < 2 or set(children) != set(range(len(children))) \
                or any(c != children[0] for c in children.values()):
            continue
        head = f"{parent}." if parent else ""
        for k in children:
            old, new = f"{head}{prefix}{k}.", f"{head}{k}."
            short |= {e.name: new + e.name[len(old):] for e in entries if e.name.startswith(old)}
    return short if not set(short.values()) & {e.name for e in entries} else {}


# --- the layers being written ---------------------------------------------------------------------

def settings_of(op: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """All of an op's settings: the given ones, defaults for the rest (typed as a loaded spec's);
    the layer keys ``lowering`` (the source runs torch's implementation) and ``tie`` (its weight
    is another layer's), if given, kept beside them for the writer."""
    kind = OPS[op]
    keys = (LOWERING, TIE)
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items() if k not in keys}
    own = {k: given[k] for k in keys if k in given}
    return {**kind.settings(kind.make(values)), **own}


class Layers:
    """The spec's layers as the importer writes them, with each one's traced output shape, the
    layers kept opaque and the warnings to print."""

    def __init__(self) -> None:
        self.names = Names()
        self.entries: list[Entry] = []
        self.traced: dict[str, Shape] = {}
        self.output: Shape | None = None     # the model's traced output (the last layer's)
        self.opaque: list[str] = []
        self.warnings: list[str] = []

    def add(self, mapped: Mapped, name: Callable[[int, str], str], inputs: tuple[str, ...], out: Shape | None,
            note: str, warning: Callable[[str], str]) -> list[str]:
        """The layers of one node, chained: the first reads ``inputs``, each next the one before;
        ``name(i, op)`` names the i-th; only the last has the node's output shape, checked against
        the trace (a mean's pool before its flatten, an attention before its residual dropout).
        Returns the names."""
        made = []
        for i, (op, settings) in enumerate(mapped):
            lname = name(i, op)
            reads = inputs if i == 0 else (self.entries[-1].name,)
            opaque = op == "opaque"
            self.entries.append(Entry(lname, op, settings_of(op, settings), reads, note if opaque else ""))
            if out is not None and i == len(mapped) - 1:   # the layers before: checked through it
                self.traced[lname] = out
            if opaque:
                self.opaque.append(lname)
                self.warnings.append(warning(lname))
            made.append(lname)
        return made

    def rename(self, short: Mapping[str, str]) -> None:
        """Give layers new names (readers follow)."""
        def follow(e: Entry) -> Entry:   # readers and ties follow
            settings = {k: short.get(v, v) if k == TIE else v for k, v in e.settings.items()}
            return replace(e, name=short.get(e.name, e.name), inputs=tuple(short.get(s, s) for s in e.inputs),
                           settings=settings)

        self.entries = [follow(e) for e in self.entries]
        self.traced = {short.get(k, k): v for k, v in self.traced.items()}
        self.opaque = [short.get(k, k) for k in self.opaque]

    def spec(self, header: Header) -> tuple[Spec, str]:
        """The written spec, checked against the trace, and its (folded) text."""
        flat = loads(write(header, self.entries), f"<imported {header.name}>")
        inexact = check(flat, self.traced, self.output)
        self.entries = [replace(e, allow=("inexact",)) if e.name in inexact else e for e in self.entries]
        text = fold(header, self.entries)
        return loads(text, f"<imported {header.name}>"), text


def follow_renames(name_map: Mapping[str, str], short: Mapping[str, str]) -> dict[str, str]:
    """A name map whose layers were renamed (:meth:`Layers.rename`): a weight a call reads (``add``
    of wpe's rows, now ``transformer``) follows its layer, as do a module's keys below it
    (``self_attention.out_proj.weight`` of a renamed ``self_attention``)."""
    def follow(key: str) -> str:
        parts = key.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if (layer := ".".join(parts[:i])) in short:
                return ".".join([short[layer], *parts[i:]])
        return key

    return {k: follow(v) for k, v in name_map.items()}


def check(spec: Spec, traced: Mapping[str, Shape], output: Shape | None = None) -> set[str]:
    """Every layer's analysed output equals the traced one, and the network's output (its last
    layer's) the model's traced output (a mapping mistake would show here); raises ImportFailed
    naming each layer that differs and both shapes. Returns the layers whose sliding window
    divides inexactly: the source module floors them itself (torch does), so the written spec
    accepts them (``allow: [inexact]``) and ``--strict`` agrees with the source."""
    from ..core.analysis import analyze

    try:
        analysis = analyze(spec)
    except ArchvizError as exc:
        raise ImportFailed(f"the imported spec does not analyse (a bug in archviz import): {exc}") from None
    bad = [f"{s.name}: analysed {s.output}, traced {traced[s.name]}" for s in analysis.layers
           if s.name in traced and s.output != traced[s.name]]
    last = analysis.layers[-1]
    if output is not None and last.output != output and last.name not in {b.split(":")[0] for b in bad}:
        bad.append(f"{last.name} (the network's output): analysed {last.output}, the model's {output}")
    if bad:
        raise ImportFailed("the imported spec disagrees with the trace (a bug in archviz import):\n  "
                           + "\n  ".join(bad[:10]))
    return {s.name for s in analysis.layers if OPS[s.op].infer(s.op_params, s.in_shapes).inexact}


def count_flops(model: Any, x: Any, grad: bool = False) -> tuple[Any, int]:
    """``model(x)`` and its FLOPs per example by ``torch.utils.flop_counter`` (the round trips' count).
    ``grad``: with autograd on (in eval mode ``nn.TransformerEncoderLayer`` and
    ``nn.MultiheadAttention`` otherwise take a fused fast path whose work the counter does not see)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.set_grad_enabled(grad):
        out = model(x)
    return out, counter.get_total_flops() // x.shape[0]
