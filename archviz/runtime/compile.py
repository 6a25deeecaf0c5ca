"""Spec → ``torch.nn.Module``: each op's torch description built, layer names kept as module names.

Every op describes its torch layer itself (``OpKind.torch``: a class name and its arguments,
from the layer's typed params and input shapes); :class:`Made` resolves that description to a
torch class, which both :func:`to_module` (instantiate it) and :mod:`archviz.runtime.export`
(write it as source) use, so the two never disagree.

The forward pass is a ``torch.fx.GraphModule`` generated once from the layer graph: a plain
chain becomes straight-line code (``x = self.conv1(x)`` ...), as fast as ``nn.Sequential``;
``from:``, ``add`` and ``concat`` become real data flow, never an interpreter over the YAML.
A layer named ``layer2.0.conv1`` becomes a nested module (state-dict key
``layer2.0.conv1.weight``); a name part that a torch module already has as an attribute
(``half``, ``train``, ``to``, ``_modules``) gets a trailing ``_`` (``modnames.module_path``),
which the state dict, exported source and the import name maps follow. Layers that nobody reads
are the outputs: one is returned as a tensor, several as a tuple in spec order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import field, replace
from math import prod
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from ..core.analysis import Analysis, analyze
from ..core.graph import Graph, build
from ..errors import ArchvizError, ShapeError
from ..ops import OPS, OpError, OpKind, TorchLayer
from ..ops.lowering import Lowering
from ..record import record
from ..spec import INPUT, Spec, load
from .attention import OWN as ATTENTION_OWN
from .attention import Attention, GatedMLP, MatMul
from .inputs import example_input
from .layers import LAYERS as OWN_LAYERS
from .lrn import LRN
from .modnames import module_path

Shape = tuple[int, ...]


class ModelTooLarge(ArchvizError):
    """The parameters would not fit in memory: refused before anything is allocated."""


class Add(nn.Module):
    """Elementwise sum of its inputs (a residual connection); no parameters."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Concatenation of its inputs along axis 0 of each example (dim 1 of an (N, C, ...) batch)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)


@record
class Made:
    """A torch module class and its constructor arguments (defaults left out, for readable source),
    from the op's :class:`~archviz.ops.TorchLayer` description."""

    cls: type[nn.Module]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    inline: str | None = None    # merges: the expression template of exported source

    @classmethod
    def of(cls, t: TorchLayer) -> Made:
        module = MERGES.get(t.cls) or LAYERS.get(t.cls) or getattr(nn, t.cls)
        return cls(module, t.args, dict(t.kwargs), t.inline)

    def build(self) -> nn.Module:
        return self.cls(*self.args, **self.kwargs)

    def source(self) -> str:
        """``nn.Conv2d(3, 96, kernel_size=(11, 11), stride=(4, 4))``. archviz's own layers are
        written as the torch class they subclass (LRN: ``nn.LocalResponseNorm``, the same maths
        and arguments), so exported source imports only torch."""
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.own:   # archviz's own module: exported source defines it (export.py)
            return f"{self.cls.__name__}({', '.join(parts)})"
        cls = next(c for c in self.cls.__mro__ if c.__module__.startswith("torch.nn"))
        if cls is nn.Module:   # an own module export.py does not define: no torch class to name
            raise ArchvizError(f"{self.cls.__name__}: exported Python source cannot write archviz's own"
                               f" {self.cls.__name__} module yet; export --format torchscript or onnx")
        return f"nn.{cls.__name__}({', '.join(parts)})"

    @property
    def own(self) -> bool:
        """One of archviz's own modules, no torch layer's subclass (Scale, StochasticDepth,
        Attention, GatedMLP)."""
        return self.cls in OWN_LAYERS.values() or self.cls in ATTENTION_OWN

    def expression(self, xs: list[str]) -> str:
        """A merge written over its input variables (exported source)."""
        assert self.inline is not None
        return self.inline.format(xs=", ".join(xs), plus=" + ".join(xs))


class Mul(nn.Module):
    """Elementwise product of two inputs, sizes of 1 broadcast (squeeze-and-excitation's scaling)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.mul(xs[0], xs[1])


MERGES: dict[str, type[nn.Module]] = {"Add": Add, "Concat": Concat, "Mul": Mul, "MatMul": MatMul}
# archviz's subclass of a torch layer (LRN) and its own small modules (archviz/runtime/layers.py,
# archviz/runtime/attention.py)
LAYERS: dict[str, type[nn.Module]] = {"LRN": LRN, **OWN_LAYERS, "Attention": Attention, "GatedMLP": GatedMLP}


def prepare(spec: Spec | str | Path, input_shape: Shape | None = None,
            input_dtype: str | None = None) -> tuple[Graph, Analysis]:
    """Load (a path or bundled name), build the graph and analyse it: shapes checked first."""
    sp = spec if isinstance(spec, Spec) else load(spec)
    graph = build(sp)
    return graph, analyze(graph, tuple(input_shape) if input_shape else None, input_dtype=input_dtype)


def made(analysis: Analysis, lowering: Lowering = Lowering()) -> dict[str, Made]:
    """Layer name → what to build, in topological order; each layer lowered as it says (its
    ``lowering:``), else as ``lowering`` says, else its op's default."""
    stats = {s.name: s for s in analysis.layers}
    out = {}
    for la in analysis.graph.order:
        try:
            out[la.name] = Made.of(OPS[la.op].torch(la.params, stats[la.name].in_shapes,
                                                    lowering=lowering.choice(la.op, la.lowering)))
        except OpError as exc:  # an op with no torch module (opaque): a located refusal
            raise ShapeError(la.name, str(exc), la.loc_of(exc.key), exc.hint) from None
    return out


def to_module(spec: Spec | str | Path, *, input_shape: tuple[int, ...] | None = None,
              lowering: Lowering = Lowering(), input_dtype: str | None = None) -> nn.Module:
    """Compile a spec into a module whose forward takes an (N, *input) tensor.

    ``input_shape`` overrides the spec's ``input`` (per example, any rank, without the batch),
    ``input_dtype`` its ``input_dtype`` (the layers' dtypes are checked by the analysis);
    ``lowering`` chooses how ops with several torch implementations are built (LRN: fast or torch;
    a layer's own ``lowering:`` wins). Raises
    :class:`ModelTooLarge` before allocating when the parameters, buffers and the activations of
    a one-image forward pass would need more than 80% of the available memory.
    """
    graph, analysis = prepare(spec, input_shape, input_dtype)
    return compile_graph(graph, analysis, lowering=lowering)


def compile_graph(graph: Graph, analysis: Analysis, *, device: str | torch.device | None = None,
                  max_bytes: int | None = None, batch: int = 1,
                  lowering: Lowering = Lowering()) -> fx.GraphModule:
    """The GraphModule of an analysed graph; on ``device`` "meta" nothing is allocated (no guard).

    The guard counts the activations of a forward pass at ``batch`` (1 unless the caller runs a
    larger one), as the module is built to be run."""
    where = torch.device(device) if device is not None else torch.get_default_device()
    if where.type != "meta":   # a meta build (also under `with torch.device("meta")`) allocates nothing
        check_memory(analysis, max_bytes, batch=batch, device=device or "cpu")
    root = nn.Module()
    with torch.device(device) if device is not None else nullcontext():
        builds = made(analysis, lowering)
        for name in parents_first(list(builds)):
            install(root, module_path(name), _build(graph, name, builds[name]))
    tie(root, graph)
    return fx.GraphModule(root, _fx_graph(graph), class_name=class_name(graph.spec.name))


def _build(graph: Graph, name: str, make: Made) -> nn.Module:
    """One layer's module; torch refusing its sizes (a storage overflow, ...) is a located error."""
    try:
        return make.build()
    except (RuntimeError, ValueError, OverflowError) as exc:
        reason = str(exc).splitlines()[0]
        raise ShapeError(name, f"torch cannot build this layer: {reason}", graph.layer(name).loc) from None


def tie(root: nn.Module, graph: Graph) -> None:
    """``tie: wte``: the layer's ``weight`` becomes ``wte``'s Parameter, one tensor (GPT-2's
    lm_head; ``model.parameters()`` yields it once, the state dict under both keys)."""
    for layer in graph.order:
        if layer.tie:
            owner = root.get_submodule(module_path(layer.tie))
            root.get_submodule(module_path(layer.name)).weight = owner.weight


def _fx_graph(graph: Graph) -> fx.Graph:
    g = fx.Graph()
    values: dict[str, fx.Node] = {INPUT: g.placeholder("x")}
    for layer in graph.order:
        args = [values[s] for s in layer.inputs]
        values[layer.name] = g.call_module(module_path(layer.name),
                                           (args,) if OPS[layer.op].multi_input else tuple(args))
    outs = [values[n] for n in graph.outputs]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    return g


def parents_first(names: list[str]) -> list[str]:
    """``names`` in order, except that a layer named ``a.b`` comes after a layer named ``a``."""
    present, done, out = set(names), set(), []  # type: ignore[var-annotated]

    def visit(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in present and parent not in done:
                visit(parent)
        if name not in done:
            done.add(name)
            out.append(name)

    for name in names:
        visit(name)
    return out


def install(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """``root.layer2.0.conv1 = module``, creating plain containers on the way; a container made
    earlier for ``layer2.0`` hands its children to a layer that turns out to be named so."""
    *path, leaf = dotted.split(".")
    parent = root
    for part in path:
        if part not in parent._modules:
            parent.add_module(part, nn.Module())
        parent = parent._modules[part]  # type: ignore[assignment]
    old = parent._modules.get(leaf)
    if old is not None:
        for name, child in old.named_children():
            module.add_module(name, child)
    parent.add_module(leaf, module)


def class_name(spec_name: str) -> str:
    """``AlexNet (one GPU)`` → ``AlexNetOneGPU``: a Python class name from a spec's name."""
    words = re.findall(r"[A-Za-z0-9]+", spec_name)
    name = "".join(w[0].upper() + w[1:] for w in words) or "Net"
    return name if name[0].isalpha() else f"Net{name}"


# --- memory guard -------------------------------------------------------------------------------

DEFAULT_SHARE = 0.8   # without --max-memory: at most 80% of what the device has available now


def bytes_needed(analysis: Analysis, batch: int = 1, training: bool = False) -> int:
    """Parameters and buffers, plus the forward activations at ``batch`` (every layer's output
    elements, and the input's, times the batch), at torch's default dtype (float32: 4 bytes each).

    Inference keeps at most every activation alive at once (an upper bound: torch frees what
    no later layer reads). ``training`` doubles the activations, a rough allowance for gradients
    of the activations during backward, until a training-memory model exists (it is not one:
    optimizer state and saved-tensor rules are not counted)."""
    per = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    t = analysis.totals
    acts = (t.activations + prod(analysis.input)) * batch * (2 if training else 1)
    return (t.params + t.buffers + acts) * per


def available_memory(device: str | torch.device = "cpu") -> int:
    """Memory the device can give now: for CUDA the allocator's free memory
    (``torch.cuda.mem_get_info``); for the host MemAvailable (Linux), else free pages, else
    physical pages."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            continue
    return 1 << 62  # unknown: do not refuse


def memory_limit(max_bytes: int | None, device: str | torch.device = "cpu") -> int:
    """``max_bytes`` when given, else 80% of what ``device`` has available now."""
    return max_bytes if max_bytes is not None else int(DEFAULT_SHARE * available_memory(device))


def check_memory(analysis: Analysis, max_bytes: int | None = None, *, batch: int = 1,
                 training: bool = False, device: str | torch.device = "cpu") -> None:
    """Refuse, before anything is allocated, a model whose parameters, buffers and activations at
    ``batch`` need more than ``max_bytes`` (default: 80% of what ``device`` has available)."""
    need = bytes_needed(analysis, batch, training)
    limit = memory_limit(max_bytes, device)
    if need > limit:
        where = "GPU memory" if torch.device(device).type == "cuda" else "host memory"
        what = "the --max-memory limit" if max_bytes is not None else f"80% of the available {where}"
        t = analysis.totals
        mode = " (training: activations counted twice)" if training else ""
        raise ModelTooLarge(
            f"{analysis.name}: {t.params:,} parameters, {t.buffers:,} buffer elements and"
            f" {t.activations + prod(analysis.input):,} activation elements per image at batch {batch}"
            f"{mode} need {fmt_bytes(need)} at {torch.get_default_dtype()}, more than {what}"
            f" ({fmt_bytes(limit)}); refused before allocating\n"
            "hint: a smaller --input or batch, or a higher --max-memory (docs/limits.md)")


def fmt_bytes(n: float) -> str:
    """232.6 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def parse_bytes(text: str) -> int:
    """``8G``, ``512MiB``, ``1.5GB``, ``1000000`` → bytes (K/M/G/T as powers of 1024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ArchvizError(f"--max-memory: expected a size such as 8G or 512M, got {text!r}")
    scale = 1024 ** " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * scale)


# --- verify: the analysis against the compiled module ------------------------------------------

@record
class LayerCheck:
    name: str
    op: str
    shape: Shape              # analysed output, per image
    real_shape: Shape | None  # from a forward hook; None if the layer never ran
    params: int
    real_params: int

    @property
    def ok(self) -> bool:
        return self.shape == self.real_shape and self.params == self.real_params


@record
class FormulaCheck:
    """A parameter-free layer with a published formula (LRN): the compiled layer against the
    formula written out (``OpKind.reference``) on random input of activation-like size."""

    name: str
    op: str
    max_rel_error: float        # max |torch − formula| / |formula| over the test input
    tolerance: float = 1e-5     # fp32

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance


@record
class Verification:
    name: str
    input: Shape
    device: str                 # "meta" (nothing allocated) or "cpu" (a batch of one)
    layers: tuple[LayerCheck, ...]
    macs: int                   # analysis: conv + linear multiply-accumulates per image
    torch_flops: int            # torch.utils.flop_counter on the same forward pass
    params: int
    real_params: int
    error: str = ""             # torch refused the forward pass (the analysis accepted it)
    formulas: tuple[FormulaCheck, ...] = ()
    input_dtype: str = "float32"

    @property
    def macs_ok(self) -> bool:
        return 2 * self.macs == self.torch_flops

    @property
    def ok(self) -> bool:
        return (not self.error and all(c.ok for c in self.layers) and self.macs_ok
                and self.params == self.real_params and all(f.ok for f in self.formulas))


def verify(spec: Spec | str | Path, input_shape: Shape | None = None,
           max_bytes: int | None = None, lowering: Lowering = Lowering(),
           input_dtype: str | None = None) -> Verification:
    """Build the module (on the meta device when every op runs there, else on the CPU under the
    memory guard), run one example through it with forward hooks and FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    graph, analysis = prepare(spec, input_shape, input_dtype)
    for device in ("meta", "cpu"):
        model = compile_graph(graph, analysis, device=device, max_bytes=max_bytes, lowering=lowering).eval()
        seen: dict[str, Shape] = {}
        counter = FlopCounterMode(display=False)
        try:
            with _hooks(model, graph, seen), counter, torch.no_grad():
                model(example_input(analysis.input, analysis.input_dtype, device=device))
        except (NotImplementedError, RuntimeError) as exc:
            if device == "meta":
                continue  # an op without a meta kernel, or a real refusal: ask the CPU
            return _verification(analysis, model, seen, device, 0, str(exc).splitlines()[0])
        return replace(_verification(analysis, model, seen, device, counter.get_total_flops()),
                       formulas=formula_checks(analysis, lowering=lowering))
    raise AssertionError("unreachable")  # pragma: no cover


def formula_checks(analysis: Analysis, seed: int = 0,
                   lowering: Lowering = Lowering()) -> tuple[FormulaCheck, ...]:
    """Each parameter-free layer whose op writes out its formula (``OpKind.reference``): the layer
    as compiled, on the CPU, against that formula. The input is normal noise of standard deviation
    30 (conv1's outputs on raw pixels are in that range, where α vs α/n differ by ~50%) on at most
    4×4 positions: the formula is per position."""
    stats = {s.name: s for s in analysis.layers}
    gen = torch.Generator().manual_seed(seed)
    out = []
    for layer in analysis.graph.order:
        kind = OPS[layer.op]
        shape = stats[layer.name].in_shapes[0]
        if len(shape) != 3 or type(kind).reference is OpKind.reference:
            continue
        x = 30 * torch.randn((2, shape[0], min(shape[1], 4), min(shape[2], 4)), generator=gen)
        with torch.no_grad():
            lowered = kind.torch(layer.params, (shape,), lowering=lowering.choice(layer.op, layer.lowering))
            got = Made.of(lowered).build()(x)
            want = kind.reference(layer.params, x)
        rel = ((got - want).abs() / want.abs().clamp_min(1e-30)).max().item()
        out.append(FormulaCheck(layer.name, layer.op, rel))
    return tuple(out)


def _hooks(model: nn.Module, graph: Graph, seen: dict[str, Shape]) -> Any:
    from contextlib import ExitStack

    stack = ExitStack()
    for layer in graph.order:
        def hook(m: nn.Module, args: Any, out: torch.Tensor, name: str = layer.name) -> None:
            seen[name] = tuple(out.shape[1:])
        stack.callback(model.get_submodule(module_path(layer.name)).register_forward_hook(hook).remove)
    return stack


def _verification(analysis: Analysis, model: nn.Module, seen: dict[str, Shape], device: str,
                  flops: int, error: str = "") -> Verification:
    names = {s.name for s in analysis.layers}
    checks = tuple(LayerCheck(s.name, s.op, s.output, seen.get(s.name), s.params,
                              own_params(model, s, names)) for s in analysis.layers)
    return Verification(analysis.name, analysis.input, device, checks, analysis.totals.macs, flops,
                        analysis.totals.params, sum(p.numel() for p in model.parameters()), error,
                        input_dtype=analysis.input_dtype)


def own_params(model: nn.Module, s: Any, layers: set[str]) -> int:
    """The parameters a layer's module holds itself: its own and its children's (PatchEmbed's
    ``proj``), leaving out the other layers nested under its name (``layer2.0`` holds
    ``layer2.0.conv1``) and, where it says ``tie:``, the weight it shares (counted on the layer
    that owns it)."""
    m = model.get_submodule(module_path(s.name))
    paths = {module_path(n) for n in layers}
    others = {id(p) for path, sub in m.named_modules() if path and f"{module_path(s.name)}.{path}" in paths
              for p in sub.parameters()}
    if s.tie:
        others.add(id(m.weight))
    return sum(p.numel() for p in m.parameters() if id(p) not in others)
