"""Graph + input shape → :class:`Analysis`: per-layer shapes, arithmetic, counts, warnings, GPU split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field, replace
from math import prod
from typing import Any

from ..errors import ArchvizError, ShapeError, did_you_mean
from ..limits import MAX_GPUS
from ..ops import OPS, OpError, fmt_dims, fmt_shape
from ..ops.dtypes import DTYPES, FLOAT
from ..ops.receptive import NONE, ReceptiveField, network_input
from ..record import record
from ..spec import INPUT, Layer, Origin, Spec
from ..spec.load import Spans
from .graph import Graph, build

Shape = tuple[int, ...]


@record
class LayerStats:
    """One layer analysed: its shapes, counts, arithmetic and receptive field."""
    name: str
    op: str
    family: str
    label: str                   # key settings, e.g. "11×11 /4, 96"
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    output: Shape                # per example, any rank: (F,), (S, D), (C, H, W), ...
    params: int
    buffers: int
    neurons: int                 # output elements of conv / linear layers, else 0
    activations: int             # output elements of every layer
    macs: int
    formula: str
    warnings: tuple[str, ...]
    gpu_local: bool              # under a channel split, needs only its own GPU's share
    expect: Shape | None = None
    # receptive field (see archviz/ops/receptive.py): (h, w) pairs; None for a vector network input
    rf: tuple[int | float, int | float] | None = None          # size in input pixels
    rf_jump: tuple[int | float, int | float] | None = None     # input pixels between neighbour units
    rf_start: tuple[int | float, int | float] | None = None    # centre of the first unit's field
    accepted: tuple[str, ...] = ()  # warnings the spec accepts (`allow: [inexact]`): shown, not failing
    dtype: str = FLOAT           # the output's dtype (archviz.ops.dtypes): float32, or int64 / int32 ids
    op_params: Any = None           # the op's typed, frozen params (OpKind.Params), as the spec gave them
    origin: Origin | None = None    # inside a block: its use, block and copy; None at top level
    note: str = ""                  # the spec's `note:` on the layer
    tie: str = ""                   # `tie:`: the layer whose weight this one shares (its params exclude it)

    @property
    def flops(self) -> int:
        return 2 * self.macs


@record
class Totals:
    """The network's counts, summed over its layers."""
    params: int
    buffers: int
    neurons: int
    activations: int
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


@record
class GpuLane:
    """One GPU's share of the counts under :class:`GpuSplit`."""
    gpu: int
    params: int
    macs: int
    neurons: int
    activations: int


@record
class GpuSplit:
    """The paper's model parallelism: every layer's channels divided over ``gpus`` GPUs."""

    gpus: int
    lanes: tuple[GpuLane, ...]
    crossing: tuple[str, ...]          # layers that read every GPU's share
    cross_elements: dict[str, int]     # per crossing layer: elements sent between GPUs per image

    @property
    def cross_elements_total(self) -> int:
        return sum(self.cross_elements.values())

    def cross_bytes(self, batch: int = 1, bytes_per_element: int = 4) -> int:
        return self.cross_elements_total * batch * bytes_per_element


@record
class Analysis:
    """A spec analysed: each layer's :class:`LayerStats`, the totals and the warnings."""
    name: str
    source: str
    path: str
    input: Shape
    layers: tuple[LayerStats, ...]
    totals: Totals
    warnings: tuple[tuple[str, str], ...]   # (layer, message)
    outputs: tuple[str, ...]
    gpus: int | None = None
    split: GpuSplit | None = None
    accepted: tuple[tuple[str, str], ...] = ()   # (layer, message): warnings the spec accepts
    input_dtype: str = FLOAT                     # the network input's dtype (archviz.ops.dtypes)
    # the graph analysed (and through it the spec: claims, locations); not compared, not shown
    graph: Graph = field(kw_only=True, compare=False, repr=False)

    def layer(self, name: str) -> LayerStats:
        return next(s for s in self.layers if s.name == name)

    @property
    def spec(self) -> Spec:
        """The spec analysed (its claims, description and the locations of its keys)."""
        return self.graph.spec


def analyze(spec: Spec | Graph, input_shape: Shape | None = None,
            gpus: int | None = None, input_dtype: str | None = None) -> Analysis:
    """Shapes, dtypes and counts of every layer.

    ``input_shape`` overrides the spec's ``input`` (per example, any rank); ``input_dtype`` its
    ``input_dtype`` (float32, bf16, fp16, int64, int32); ``gpus`` its ``gpus`` (the split view of
    a spec that names no GPUs asks for 2).
    """
    graph = spec if isinstance(spec, Graph) else build(spec)
    sp = graph.spec
    shape_in = tuple(input_shape) if input_shape else sp.input
    dtype_in = input_dtype or sp.input_dtype
    if dtype_in not in DTYPES:
        raise ArchvizError(f"input dtype: expected one of {', '.join(DTYPES)}, got {dtype_in!r}")
    shapes: dict[str, Shape] = {INPUT: shape_in}
    dtypes: dict[str, str] = {INPUT: dtype_in}
    fields: dict[str, ReceptiveField] = {INPUT: network_input(shape_in)}
    stats: dict[str, LayerStats] = {}
    n_gpus = gpus or sp.gpus or 1
    if not 1 <= n_gpus <= MAX_GPUS:
        raise ArchvizError(f"--gpus: expected 1 to {MAX_GPUS} GPUs, got {n_gpus} (docs/limits.md)")
    for layer in graph.order:
        st, fields[layer.name] = _layer_stats(layer, tuple(shapes[s] for s in layer.inputs), n_gpus,
                                              tuple(fields[s] for s in layer.inputs), shape_in,
                                              layer.allow | sp.allow, tuple(dtypes[s] for s in layer.inputs))
        shapes[layer.name], dtypes[layer.name] = st.output, st.dtype
        stats[layer.name] = st
    for layer in graph.order:
        if layer.tie:
            stats[layer.name] = tied(layer, stats)
    ordered = tuple(stats[la.name] for la in sp.layers)
    last = sp.layers[-1].name
    unused = {la.name for la in sp.layers if not graph.consumers[la.name] and la.name != last
              and la.name not in sp.outputs}
    note = ("output never read by another layer",)
    ordered = tuple(replace(s, warnings=s.warnings + note) if s.name in unused else s for s in ordered)
    ordered = _format_notes(sp, ordered)
    totals = Totals(*map(sum, zip(*((s.params, s.buffers, s.neurons, s.activations, s.macs)
                                    for s in ordered), strict=True)))
    warnings = input_notes(shape_in) + tuple((s.name, w) for s in ordered for w in s.warnings)
    accepted = tuple((s.name, w) for s in ordered for w in s.accepted)
    split = gpu_split(ordered, n_gpus) if n_gpus > 1 else None
    return Analysis(sp.name, sp.source, sp.path, shape_in, ordered, totals, warnings,
                    graph.outputs, n_gpus if n_gpus > 1 else None, split, accepted, dtype_in, graph=graph)


def preflight(input_shape: Shape | None = None, gpus: int | None = None,
              input_dtype: str | None = None) -> Callable[[Spec, Spans], None]:
    """For :func:`archviz.spec.load`'s ``preflight``: analyse the preview of a network whose long
    ``repeat:`` uses keep their first and last copies only, and raise the shape error the whole
    network's analysis would raise, where that is certain without expanding every copy.

    The analysis runs in spec order (a layer reads earlier ones); each copy of a use computes the
    same thing from the same input shape. So where the last copy kept of a use maps its input's
    shape and dtype to themselves, every copy between does too and reaches that same shape; an
    error after such uses (or before them, or in a first copy) is then the whole network's first
    error, word for word. Otherwise (an error inside a last copy, a use that changes the shape,
    any other kind of error) this raises nothing and the whole network is expanded as always."""
    def check(sp: Spec, spans: Spans) -> None:
        error = _first_error(sp, input_shape, gpus, input_dtype)
        if error is None:
            return
        at, (shapes, dtypes) = error[0], error[1]
        for before, after, start in spans:
            if start > at:
                continue
            if after not in shapes or shapes[before] != shapes[after] or dtypes[before] != dtypes[after]:
                return
        raise error[2]

    return check


def _first_error(sp: Spec, input_shape: Shape | None, gpus: int | None, input_dtype: str | None
                 ) -> tuple[int, tuple[dict[str, Shape], dict[str, str]], ShapeError] | None:
    """(the failing layer's position, the shapes and dtypes found before it, the error) of a spec's
    first shape error, if its layers run in spec order; None: no such error."""
    try:
        graph = build(sp)
    except ArchvizError:
        return None
    if any(a is not b for a, b in zip(graph.order, sp.layers, strict=True)):
        return None
    shape_in = tuple(input_shape) if input_shape else sp.input
    dtype_in = input_dtype or sp.input_dtype
    n_gpus = gpus or sp.gpus or 1
    if dtype_in not in DTYPES or not 1 <= n_gpus <= MAX_GPUS:
        return None
    shapes: dict[str, Shape] = {INPUT: shape_in}
    dtypes: dict[str, str] = {INPUT: dtype_in}
    fields: dict[str, ReceptiveField] = {INPUT: network_input(shape_in)}
    for at, layer in enumerate(graph.order):
        ins, in_dtypes = tuple(shapes[s] for s in layer.inputs), tuple(dtypes[s] for s in layer.inputs)
        try:
            st, fields[layer.name] = _layer_stats(layer, ins, n_gpus, tuple(fields[s] for s in layer.inputs),
                                                  shape_in, layer.allow | sp.allow, in_dtypes)
        except ShapeError as exc:
            return at, (shapes, dtypes), exc
        shapes[layer.name], dtypes[layer.name] = st.output, st.dtype
    return None


def _layer_stats(layer: Layer, ins: tuple[Shape, ...], gpus: int, in_fields: tuple[ReceptiveField, ...],
                 image: Shape, allow: frozenset[str] = frozenset(),
                 in_dtypes: tuple[str, ...] = ()) -> tuple[LayerStats, ReceptiveField]:
    kind = OPS[layer.op]
    p = layer.params
    try:
        kind.check_ranks(ins)
        dtype = kind.out_dtype(p, in_dtypes or (FLOAT,) * len(ins))
        inferred = kind.infer(p, ins)
    except OpError as exc:
        raise ShapeError(layer.name, str(exc), layer.loc_of(exc.key), exc.hint, layer.use_site) from None
    out = inferred.shape
    accepted = inferred.inexact if "inexact" in allow else ()
    warnings = inferred.warnings + (() if accepted else inferred.inexact)
    if layer.expect is not None and tuple(layer.expect) != out:
        warnings += (f"expected {fmt_shape(layer.expect)}, computed {fmt_shape(out)}",)
    rf = kind.receptive(p, in_fields, ins, out, image) if len(image) == 3 else NONE
    return LayerStats(
        name=layer.name, op=layer.op, family=kind.family, label=kind.label(p),
        inputs=layer.inputs, in_shapes=ins, output=out,
        params=kind.params(p, ins, out), buffers=kind.buffers(p, ins, out),
        neurons=prod(out) if kind.counts_neurons else 0, activations=prod(out),
        macs=kind.macs(p, ins, out), formula=inferred.formula, warnings=warnings,
        # the network input is replicated on every GPU, so a layer that reads only it is local
        gpu_local=gpus == 1 or set(layer.inputs) == {INPUT} or kind.gpu_local(p, gpus),
        expect=layer.expect, rf=rf.size, rf_jump=rf.jump, rf_start=rf.start, accepted=accepted,
        dtype=dtype, op_params=p, origin=layer.origin, note=layer.note,
    ), rf


def tied(layer: Layer, stats: dict[str, LayerStats]) -> LayerStats:
    """``tie: wte``: the layer's weight is ``wte``'s, so its parameters leave it out (tied weights
    counted once, as ``sum(p.numel() for p in model.parameters())`` does). Refused, located at
    ``tie:``: a name that is no layer, a layer without a weight, or weights of different shapes."""
    st, target = stats[layer.name], stats.get(layer.tie)

    def refuse(message: str, hint: str = "") -> ShapeError:
        return ShapeError(layer.name, f"tie: {message}", layer.loc_of("tie"), hint, layer.use_site)

    if target is None:
        others = [n for n in stats if n != layer.name]
        raise refuse(f"no layer named '{layer.tie}'", did_you_mean(layer.tie, others))
    if target.tie:
        raise refuse(f"{layer.tie} shares {target.tie}'s weight itself", f"hint: tie: {target.tie}")
    mine = OPS[layer.op].tied_weight(layer.params, st.in_shapes)
    theirs = OPS[target.op].tied_weight(target.op_params, target.in_shapes)
    for name, shape in ((layer.name, mine), (layer.tie, theirs)):
        if shape is None:
            raise refuse(f"{name} ({stats[name].op}) has no weight to share")
    if mine != theirs:
        raise refuse(f"this layer's weight {fmt_shape(mine)} is not the shape of {layer.tie}'s"
                     f" {fmt_shape(theirs)}")
    # the weight is counted on the layer that owns it; this one keeps the rest (a bias)
    return replace(st, params=st.params - prod(mine), tie=layer.tie,
                   formula=f"{st.formula}; weight {fmt_dims(mine)} shared with {layer.tie}")


def input_notes(shape: Shape) -> tuple[tuple[str, str], ...]:
    """An input written H×W×C ([32, 32, 3]): archviz reads C×H×W, so say what it took it for."""
    if len(shape) != 3 or shape[2] not in (1, 3, 4) or shape[0] <= 4 or shape[1] <= 4:
        return ()
    c, h, w = shape
    return ((INPUT, f"input is C×H×W: [{c}, {h}, {w}] is read as {c} channels of {h}×{w}; an image of"
                    f" {c}×{h} with {w} channel{'s' if w > 1 else ''} is [{w}, {c}, {h}]"),)


LRN_FORMAT_NOTE = ("alpha read as the α of the paper's formula b = a / (k + α·Σa²)^β, not divided by"
                   " size (torch's LocalResponseNorm gets alpha = α·size); if this spec was written for"
                   " torch, Caffe or ONNX, divide its alpha by size. Mark the spec `format: 2` to say"
                   " it uses the paper's α and silence this warning")


def _format_notes(sp: Spec, layers: tuple[LayerStats, ...]) -> tuple[LayerStats, ...]:
    """A spec of format 1 (no `format:` key) with an LRN: warn, on its first LRN, how alpha was read."""
    if sp.format >= 2:
        return layers
    first = next((s.name for s in layers if s.op == "lrn"), None)
    return tuple(replace(s, warnings=(*s.warnings, LRN_FORMAT_NOTE)) if s.name == first else s
                 for s in layers)


def channel_share(channels: int, gpus: int, gpu: int) -> int:
    """GPU ``gpu``'s share of ``channels``: an even split, the first GPUs taking one extra."""
    return channels // gpus + (1 if gpu < channels % gpus else 0)


def gpu_split(layers: tuple[LayerStats, ...], gpus: int) -> GpuSplit:
    """Divide every layer's output channels (axis 0) over ``gpus``; counts follow the channels.

    ``layers`` must have been analysed for the same number of GPUs (their ``gpu_local``).

    A layer that is not GPU-local (ungrouped conv, linear, softmax) needs the other GPUs'
    shares of its input: with G GPUs each receives (G-1)/G of it, so (G-1) × input elements
    cross between GPUs per image (AlexNet, G=2: conv3 reads 256·13·13 = 43,264).
    """
    sums = [[0, 0, 0, 0] for _ in range(gpus)]
    for s in layers:
        c = s.output[0]
        for i, total in enumerate((s.params, s.macs, s.neurons, s.activations)):
            shares = [total * channel_share(c, gpus, g) // c for g in range(gpus)]
            shares[0] += total - sum(shares)  # rounding remainder (a bias, ...) on GPU 0
            for g in range(gpus):
                sums[g][i] += shares[g]
    crossing = tuple(s.name for s in layers if not s.gpu_local)
    cross = {s.name: (gpus - 1) * sum(prod(x) for x in s.in_shapes)
             for s in layers if s.name in crossing}
    lanes = tuple(GpuLane(g, *sums[g]) for g in range(gpus))
    return GpuSplit(gpus, lanes, crossing, cross)
