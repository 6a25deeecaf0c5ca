"""The paper's model parallelism, run: a spec's GPU lanes built as towers, one per device.

AlexNet (Krizhevsky et al. 2012, Section 3.2) put half of every layer on each of two GPUs:
conv1's 48 kernels per GPU, conv2/conv4/conv5 reading only their own GPU's maps (their
``groups: 2``), conv3 and the fully connected layers reading both. :class:`Towers` builds that
from the spec: device ``g`` holds the rows of every layer that the split view
(:class:`~archviz.core.analysis.GpuSplit`, :func:`~archviz.core.analysis.channel_share`) gives
GPU ``g``, and an activation moves between devices only for a layer the analysis lists in
``crossing`` — each device then receives the other devices' shares of that layer's input,
``split.cross_elements[layer]`` elements per image in all.

Every copy between towers goes through :func:`transfer`, which :func:`count_transfers` counts
(elements, per layer), so a test can hold the towers to the analysis' traffic. Two things move
besides the crossing layers, both kept apart in the count: the returned output is gathered on
the first device (counted as ``"output"``; :meth:`Towers.shards` returns it unassembled), and
with ``halo=True`` the LRN layers exchange their neighbouring channels (counted as
``"<layer> (halo)"``). The input batch is handed to every device, as the paper's data loader
did; it is not a copy between towers.

LRN at the boundary between towers: the paper normalises each GPU's kernel maps on that GPU
(the split view agrees: LRN crosses nothing), whereas the single-device module normalises
channel 47 with channels 48 and 49. ``halo=False`` (the default) is the paper; ``halo=True``
sends those few channels across so the towers compute exactly the single-device module.

Weights: :func:`split_weights` copies a single-device module's (or state dict's) weights into
the towers, :func:`gather_weights` gives them back as a single-device state dict.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..core.analysis import Analysis, LayerStats, channel_share
from ..core.graph import Graph
from ..errors import ArchvizError
from ..ops import OPS
from ..ops.lowering import Lowering
from ..ops.source import Split
from ..record import record
from ..spec import INPUT, Spec
from ..spec.doc import Layer
from .compile import Made, compile_graph, install, prepare
from .modnames import module_path

Shard = list[torch.Tensor]   # one (N, C_g, ...) tensor per tower
_COUNTERS: list[Counter[str]] = []


class SplitError(ArchvizError):
    """The spec cannot be split over the given devices (a wrong count, a layer that cannot split)."""


@contextmanager
def count_transfers() -> Iterator[Counter[str]]:
    """Count the elements :func:`transfer` copies between towers, per reason (a layer name)."""
    seen: Counter[str] = Counter()
    _COUNTERS.append(seen)
    try:
        yield seen
    finally:
        _COUNTERS.remove(seen)


def transfer(t: torch.Tensor, device: torch.device, reason: str) -> torch.Tensor:
    """The one place a tensor moves from one tower to another (counted even between two CPU
    "devices", where ``.to`` copies nothing)."""
    for seen in _COUNTERS:
        seen[reason] += t.numel() // t.shape[0]   # per image
    return t.to(device, non_blocking=True)


@record
class Part:
    """How one layer runs split: ``rows[g]`` its output rows (dim 0 of its weights) on tower g."""

    name: str
    inputs: tuple[str, ...]
    kind: str                          # "local", "gather" (a crossing layer), "lrn", "merge"
    rows: tuple[tuple[int, int], ...]  # per tower: [start, stop) of the layer's output channels
    halo: tuple[int, int] = (0, 0)     # LRN with halo: channels wanted before / after
    whole_input: bool = False          # reads every channel of the (replicated) input: conv1


def ranges(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    out, start = [], 0
    for n in sizes:
        out.append((start, start + n))
        start += n
    return tuple(out)


class Towers(nn.Module):
    """One tower per device; ``forward(x)`` returns what the single-device module returns, on
    the first device. ``towers[g]`` holds device g's modules under the spec's layer names."""

    def __init__(self, parts: Sequence[Part], towers: Sequence[nn.Module], devices: Sequence[torch.device],
                 outputs: Sequence[str]) -> None:
        super().__init__()
        self.parts = tuple(parts)
        self.towers = nn.ModuleList(towers)
        self.devices = tuple(devices)
        self.outputs = tuple(outputs)

    def shards(self, x: torch.Tensor) -> list[Shard]:
        """Every output as its per-tower shards (nothing gathered)."""
        values: dict[str, Shard | torch.Tensor] = {INPUT: x}
        for part in self.parts:
            ins = [values[s] for s in part.inputs]
            values[part.name] = self._run(part, ins)
        return [values[n] for n in self.outputs]  # type: ignore[misc]  # outputs are layers: shards

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        first = self.devices[0]
        outs = [torch.cat([t if g == 0 else transfer(t, first, "output") for g, t in enumerate(s)], dim=1)
                for s in self.shards(x)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _module(self, g: int, name: str) -> nn.Module:
        return self.towers[g].get_submodule(module_path(name))

    def _run(self, part: Part, ins: list[Shard | torch.Tensor]) -> Shard:
        g_range = range(len(self.devices))
        if part.kind == "gather":
            full = [self._gather(ins[0], g, part.name) for g in g_range]
            out = [self._module(g, part.name)(full[g]) for g in g_range]
            # a parameter-free crossing layer (softmax) computes every row: each keeps its own
            return [y if y.shape[1] == b - a else y[:, a:b] for y, (a, b) in zip(out, part.rows, strict=True)]
        if part.kind == "merge":
            shards = [self._local(v, part) for v in ins]
            return [self._module(g, part.name)([s[g] for s in shards]) for g in g_range]
        shard = self._local(ins[0], part)
        if part.kind == "lrn" and part.halo != (0, 0):
            return self._lrn_halo(part, shard)
        return [self._module(g, part.name)(shard[g]) for g in g_range]

    def _local(self, value: Shard | torch.Tensor, part: Part) -> Shard:
        """The tower's own share: a shard as it is; the (replicated) input as each device's copy,
        whole for a layer that reads all its channels (conv1), else sliced."""
        if isinstance(value, list):
            return value
        if part.whole_input:
            return [value.to(d) for d in self.devices]
        return [value.to(d)[:, a:b] for d, (a, b) in zip(self.devices, part.rows, strict=True)]

    def _gather(self, value: Shard | torch.Tensor, g: int, name: str) -> torch.Tensor:
        """All towers' shares on tower g: the other towers' shares cross."""
        if not isinstance(value, list):
            return value.to(self.devices[g])
        dev = self.devices[g]
        return torch.cat([t if h == g else transfer(t, dev, name) for h, t in enumerate(value)], dim=1)

    def _lrn_halo(self, part: Part, shard: Shard) -> Shard:
        """LRN with the neighbouring towers' edge channels borrowed, so the window at a boundary
        sees what the single-device module sees; torch's zero padding still applies at the ends."""
        before, after = part.halo
        out = []
        for g, t in enumerate(shard):
            dev, why = self.devices[g], f"{part.name} (halo)"
            pieces = []
            if g > 0 and before:
                pieces.append(transfer(shard[g - 1][:, -before:], dev, why))
            pieces.append(t)
            if g + 1 < len(shard) and after:
                pieces.append(transfer(shard[g + 1][:, :after], dev, why))
            lo = pieces[0].shape[1] if g > 0 and before else 0
            y = self._module(g, part.name)(torch.cat(pieces, dim=1))
            out.append(y[:, lo:lo + t.shape[1]])
        return out


# --- building ------------------------------------------------------------------------------------

def to_towers(spec: Spec | str | Path, devices: Sequence[str | torch.device], *,
              input_shape: tuple[int, ...] | None = None, halo: bool = False,
              lowering: Lowering = Lowering()) -> Towers:
    """Compile ``spec`` as towers over ``devices`` (one per GPU of the spec's ``gpus:``); the
    weights are initialised as the single-device module's are, then split."""
    graph, analysis = prepare(spec, input_shape)
    check_devices(analysis, devices)
    model = compile_graph(graph, analysis, lowering=lowering)
    return split_module(model, graph, analysis, devices, halo=halo)


def check_devices(analysis: Analysis, devices: Sequence[str | torch.device]) -> None:
    gpus = analysis.gpus or 1
    if len(devices) != gpus:
        names = ", ".join(str(d) for d in devices) or "none"
        raise SplitError(
            f"{analysis.name}: devices= names {len(devices)} device(s) ({names}) but the spec is split"
            f" over {gpus} GPU(s) (its `gpus:`): give exactly {gpus}, e.g. "
            + repr([f"cuda:{i}" for i in range(gpus)]))


def split_module(model: nn.Module, graph: Graph, analysis: Analysis,
                 devices: Sequence[str | torch.device], *, halo: bool = False) -> Towers:
    """Towers holding ``model``'s weights, each tower's share on its device."""
    check_devices(analysis, devices)
    devs = [torch.device(d) for d in devices]
    n = len(devs)
    stats = {s.name: s for s in analysis.layers}
    rows: dict[str, tuple[tuple[int, int], ...]] = {}
    parts: list[Part] = []
    towers = [nn.Module() for _ in devs]
    for layer in graph.order:
        st = stats[layer.name]
        full = model.get_submodule(module_path(layer.name))
        part = _part(st, OPS[layer.op].split(layer.params, st.in_shapes), rows, n, halo)
        rows[layer.name] = part.rows
        parts.append(part)
        for g, tower in enumerate(towers):
            install(tower, module_path(layer.name), _shard_module(full, layer, part, st, g, n))
    for tower, dev in zip(towers, devs, strict=True):
        tower.to(dev)
    result = Towers(parts, towers, devs, graph.outputs)
    split_weights(result, model)
    return result


def _part(st: LayerStats, rule: Split, rows: dict[str, tuple[tuple[int, int], ...]], n: int,
          halo: bool) -> Part:
    """Which output rows each tower computes, from the analysis (``gpu_local``, ``channel_share``)
    and the op's split rule (:meth:`~archviz.ops.OpKind.split`)."""
    reads_input = st.inputs == (INPUT,)
    if not st.gpu_local:
        return Part(st.name, st.inputs, "gather", _even(st.output[0], n))
    if rule.refuse:
        raise SplitError(f"{st.name}: {rule.refuse}")
    if reads_input:
        if rule.grouped:
            raise SplitError(f"{st.name}: a grouped layer that reads the input cannot be split over towers")
        return Part(st.name, st.inputs, "local", _even(st.output[0], n), whole_input=rule.whole_input)
    src = [rows[s] for s in st.inputs if s != INPUT]
    if any(r != src[0] for r in src):
        raise SplitError(f"{st.name}: its inputs are split over the towers differently")
    c_in, c_out = st.in_shapes[0][0], st.output[0]
    sizes = [(b - a) * c_out // c_in for a, b in src[0]]
    if sum(sizes) != c_out or any((b - a) * c_out % c_in for a, b in src[0]):
        raise SplitError(f"{st.name}: its {c_in} input channels do not split evenly over {n} towers")
    if rule.even_inputs and any(b - a != c_in // n for a, b in src[0]):
        raise SplitError(f"{st.name}: a grouped conv needs its {c_in} input channels split evenly"
                         f" over {n} towers")
    wants = (rule.window // 2, (rule.window - 1) // 2) if rule.kind == "lrn" and halo else (0, 0)
    return Part(st.name, st.inputs, rule.kind, ranges(sizes), wants)


def _even(channels: int, n: int) -> tuple[tuple[int, int], ...]:
    return ranges([channel_share(channels, n, g) for g in range(n)])


def _shard_module(full: nn.Module, layer: Layer, part: Part, st: LayerStats, g: int, n: int) -> nn.Module:
    """Tower g's module for this layer: the op's shard with its share of the rows (weights are
    filled by :func:`split_weights`); a parameter-free layer is copied."""
    a, b = part.rows[g]
    shard = OPS[layer.op].shard(layer.params, st.in_shapes, b - a, n)
    if shard is not None:
        return Made.of(shard).build()
    if any(True for _ in full.parameters(recurse=False)) or any(True for _ in full.buffers(recurse=False)):
        raise SplitError(f"{st.name}: {type(full).__name__} layers cannot be split over towers yet")
    return copy.deepcopy(full)


def _own_state(m: nn.Module) -> dict[str, torch.Tensor]:
    """A module's own parameters and buffers (not its children's, which are layers of their own)."""
    own: dict[str, torch.Tensor] = dict(m.named_parameters(recurse=False))
    own.update(dict(m.named_buffers(recurse=False)))
    return own


@torch.no_grad()
def split_weights(towers: Towers, source: nn.Module | Mapping[str, torch.Tensor]) -> None:
    """Copy a single-device module's weights (or its state dict) into ``towers``: tower g gets
    rows ``part.rows[g]`` (dim 0) of every weight, bias and BatchNorm statistic; scalars
    (``num_batches_tracked``) are copied whole. The name map: ``towers.{g}.{layer}.{tensor}``
    ← ``{layer}.{tensor}[start:stop]`` (a layer by its module path, ``modnames.module_path``)."""
    state = source.state_dict() if isinstance(source, nn.Module) else source
    for part in towers.parts:
        for g, (a, b) in enumerate(part.rows):
            for key, dst in _own_state(towers.towers[g].get_submodule(module_path(part.name))).items():
                src = state[f"{module_path(part.name)}.{key}"]
                dst.copy_(src[a:b] if src.dim() else src)


@torch.no_grad()
def gather_weights(towers: Towers) -> dict[str, torch.Tensor]:
    """The towers' weights as the single-device module's state dict (on the CPU): the inverse of
    :func:`split_weights`."""
    out: dict[str, torch.Tensor] = {}
    for part in towers.parts:
        per = [_own_state(t.get_submodule(module_path(part.name))) for t in towers.towers]
        for key, first in per[0].items():
            tensors = [p[key].detach().cpu() for p in per]
            out[f"{module_path(part.name)}.{key}"] = torch.cat(tensors) if first.dim() else tensors[0].clone()
    return out
