"""Spec → :class:`Graph`: resolve ``from:`` edges, order the layers, refuse dangling names and cycles."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from ..errors import SpecError, did_you_mean
from ..record import record
from ..spec import INPUT, Layer, Spec


@record
class Graph:
    """A spec's layers as a graph: an order to run them in, who reads each, the outputs."""
    spec: Spec
    order: tuple[Layer, ...]                  # topological; spec order wherever edges allow
    consumers: Mapping[str, tuple[str, ...]]  # layer (or INPUT) -> layers that read it
    outputs: tuple[str, ...]                  # the spec's `outputs:`, else layers nobody reads, in order

    def layer(self, name: str) -> Layer:
        return self.spec.layer(name)


def build(spec: Spec) -> Graph:
    names = {layer.name: i for i, layer in enumerate(spec.layers)}
    consumers: dict[str, list[str]] = {INPUT: [], **{n: [] for n in names}}
    for layer in spec.layers:
        for src in layer.inputs:
            if src not in consumers:
                raise SpecError(f"{layer.name}.from: no layer named '{src}'", layer.loc_of("from"),
                                did_you_mean(src, [n for n in [*names, INPUT] if n != layer.name]))
            if src == layer.name:
                raise SpecError(f"{layer.name}.from: a layer cannot read itself", layer.loc_of("from"))
            consumers[src].append(layer.name)
    order = _toposort(spec, names, consumers)
    for name in spec.outputs:
        if name not in names:
            raise SpecError(f"outputs: no layer named '{name}'", spec.outputs_loc,
                            did_you_mean(name, list(names)))
    outputs = spec.outputs or tuple(la.name for la in spec.layers if not consumers[la.name])
    return Graph(spec, order, {k: tuple(v) for k, v in consumers.items()}, outputs)


def _toposort(spec: Spec, index: dict[str, int], consumers: dict[str, list[str]]) -> tuple[Layer, ...]:
    """Kahn's algorithm with a heap on spec position, so plain chains keep their order."""
    waiting = {la.name: sum(1 for s in la.inputs if s != INPUT) for la in spec.layers}
    ready = [index[n] for n, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    order: list[Layer] = []
    while ready:
        layer = spec.layers[heapq.heappop(ready)]
        order.append(layer)
        for reader in consumers[layer.name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, index[reader])
    if len(order) < len(spec.layers):
        stuck = [la for la in spec.layers if waiting[la.name] > 0]
        cycle = _find_cycle(spec, {la.name for la in stuck})
        first = spec.layer(cycle[0])
        raise SpecError("cycle in the layer graph: " + " → ".join([*cycle, cycle[0]]),
                        first.loc_of("from"),
                        "a layer reads the previous one unless it says 'from:'; check the 'from:' keys")
    return tuple(order)


def _find_cycle(spec: Spec, stuck: set[str]) -> list[str]:
    """Walk back along inputs inside the stuck set until a layer repeats."""
    start = next(la.name for la in spec.layers if la.name in stuck and "from" in la.key_locs) \
        if any("from" in la.key_locs for la in spec.layers if la.name in stuck) \
        else next(la.name for la in spec.layers if la.name in stuck)
    path: list[str] = []
    node = start
    while node not in path:
        path.append(node)
        node = next(s for s in spec.layer(node).inputs if s in stuck)
    cycle = path[path.index(node):]
    cycle.reverse()  # data-flow direction
    return cycle
