"""The round trip of ``archviz import --verify`` (torch): the imported spec compiled, the source
model's weights loaded through the name map, both run on one random input and compared (outputs,
parameters, ``torch.utils.flop_counter`` MACs). Failures are located: :class:`VerifyFailed` (a
check that failed, exit 1) names the layer that refuses the weights or the input."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import torch
from torch import fx, nn

from ..core.analysis import analyze
from ..ops.registry import OPS
from ..record import record
from .inputs import example_input, id_bound
from .mapping import Imported, ImportFailed, VerifyFailed, count_flops

__all__ = ["RoundTrip", "load_weights", "no_cache", "round_trip"]


def load_weights(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                 name_map: Mapping[str, str], transpose: Collection[str] = ()) -> nn.Module:
    """Load the source model's ``state_dict`` into the compiled spec through ``name_map``
    (:attr:`Imported.name_map`), the keys in ``transpose`` transposed (:attr:`Imported.transpose`);
    strict: every key of both sides must be matched."""
    missing = [k for k in state_dict if k not in name_map]
    if missing:
        raise ImportFailed(f"the name map has no entry for {len(missing)} source keys, e.g. {missing[0]}")
    module.load_state_dict({name_map[k]: v.T if k in transpose else v for k, v in state_dict.items()},
                           strict=True)
    return module


@contextlib.contextmanager
def no_cache(model: nn.Module) -> Iterator[None]:
    """A transformers model run without its key/value cache (``config.use_cache = False``): a cache
    is no layer, and ``past_key_values`` are dropped from the outputs."""
    config = getattr(model, "config", None)
    cache = getattr(config, "use_cache", None)
    if cache is not None:
        config.use_cache = False
    try:
        yield
    finally:
        if cache is not None:
            config.use_cache = cache


@record
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
    constant_flops: int = 0      # of ``flops``: work that reads no input (a rotary table), no layer's
    uncounted_macs: int = 0      # of ``analysis_macs``: a fused CPU kernel's (SDPA's S×S matmuls)

    @property
    def ok(self) -> bool:
        """Outputs within the tolerance, parameters equal, and flop_counter's count of source and
        compiled equal to the analysis: all of it, or all but exactly the MACs of the fused kernels
        it does not count (SDPA on the CPU)."""
        counted = {2 * self.analysis_macs, 2 * (self.analysis_macs - self.uncounted_macs)}
        return (self.max_abs_diff <= self.tolerance
                and self.params == self.spec_params == self.analysis_params
                and self.flops - self.constant_flops == self.spec_flops and self.spec_flops in counted)


def round_trip(model: nn.Module, imported: Imported, seed: int = 0) -> RoundTrip:
    """Compile the spec, load ``model``'s weights through the name map, compare on random input.
    Raises :class:`VerifyFailed` (a check failed) where the compiled spec cannot take the weights
    or fails on the input, naming the layer; :class:`ImportFailed` where the model itself fails."""
    from .compile import to_module

    if imported.opaque:
        raise ImportFailed(f"cannot verify: opaque layers ({', '.join(imported.opaque)}) cannot be compiled")
    analysis = analyze(imported.spec)
    try:
        compiled = to_module(imported.spec)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise VerifyFailed(f"--verify: the spec does not compile: {_first(exc)}") from None
    try:
        load_weights(compiled, model.state_dict(), imported.name_map, imported.transpose)
    except RuntimeError as exc:   # load_state_dict: "size mismatch for conv.weight: ..."
        raise VerifyFailed(f"--verify: the model's weights do not fit the spec: {_first(exc, 2)}") from None
    compiled.eval()
    was = model.training
    model.eval()
    try:
        x = example_input(analysis.input, analysis.input_dtype, batch=2, random=True,
                          vocab=id_bound(analysis), generator=torch.Generator().manual_seed(seed))
        try:
            with no_cache(model):   # autograd on: torch's fused inference paths hide their FLOPs
                want, flops = count_flops(model, x, grad=True)
        except Exception as exc:  # noqa: BLE001 - the user's forward
            raise ImportFailed(f"--verify: {type(model).__name__} fails on the input:"
                               f" {_first(exc)}") from None
        try:
            got, spec_flops = count_flops(compiled, x)
        except Exception as exc:  # noqa: BLE001 - torch refusing the compiled spec: say where
            raise VerifyFailed(f"--verify: the compiled spec fails {_failing_layer(compiled, x)}:"
                               f" {type(exc).__name__}: {_first(exc)}") from None
    finally:
        model.train(was)
    from .capture import outputs

    # every output: a ModelOutput's or a tuple's tensors (caches dropped), the spec's outputs in order
    wants = [t.detach() for t in outputs(want)]
    gots = list(got) if isinstance(got, (tuple, list)) else [got]
    if len(gots) != len(wants):
        raise VerifyFailed(f"--verify: the compiled spec has {len(gots)} outputs, the model {len(wants)}")
    for i, (g, w) in enumerate(zip(gots, wants, strict=True)):
        if g.shape != w.shape:
            raise VerifyFailed(f"--verify: the compiled spec's output {i} is {tuple(g.shape[1:])},"
                               f" the model's {tuple(w.shape[1:])}")
    diff = max(float((g - w).abs().max()) for g, w in zip(gots, wants, strict=True))
    return RoundTrip(diff, sum(p.numel() for p in model.parameters()),
                     sum(p.numel() for p in compiled.parameters()), analysis.totals.params,
                     flops, spec_flops, analysis.totals.macs, constant_flops=imported.constant_flops,
                     uncounted_macs=uncounted_macs(analysis))


def uncounted_macs(analysis: Any) -> int:
    """The MACs of the analysis that flop_counter does not see: the layers' fused CPU kernels."""
    own = {la.name: la.lowering for la in analysis.spec.layers}
    return sum(OPS[st.op].uncounted_macs(st.op_params, st.in_shapes, st.output, own.get(st.name, ""))
               for st in analysis.layers)


def _first(exc: BaseException, lines: int = 1) -> str:
    return " ".join(str(exc).strip().splitlines()[:lines]) or type(exc).__name__


def _failing_layer(compiled: nn.Module, x: torch.Tensor) -> str:
    """``at layer NAME``: the compiled spec's layer (an fx call_module node) that raises on ``x``."""
    failed: list[str] = []

    class _Find(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            try:
                return super().run_node(n)
            except Exception:
                failed.append(str(n.target))
                raise

    if isinstance(compiled, fx.GraphModule):
        with contextlib.suppress(Exception), torch.no_grad():
            _Find(compiled).run(x)
    return f"at layer {failed[0]}" if failed else "on the input"
