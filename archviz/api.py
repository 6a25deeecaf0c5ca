"""The Python API: one function per command, each returning the result the CLI shows.

Every function takes a network as the CLI's SPEC does, and more: a bundled spec's name
(``"alexnet"``), a path to a YAML spec or an ONNX file, a :class:`Spec`, a :class:`Graph`, or a
``torch.nn.Module`` (imported with :func:`from_module`; then ``input_shape`` is required). The
results (:mod:`archviz.results`) turn into the CLI's JSON with ``to_dict()``, print as the CLI's
table, and display themselves in Jupyter. Nothing here prints. torch, graphviz and matplotlib are
imported inside the functions that need them, so ``import archviz`` stays light.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .core.graph import Graph
from .core.graph import build as _build
from .errors import ArchvizError
from .spec import Spec
from .spec import load as _load
from .spec import loads as _loads

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .core.analysis import Analysis
    from .ops.lowering import Lowering
    from .results import (
        BenchReport,
        Checks,
        Diagram,
        DiffReport,
        Exported,
        Plot,
        Report,
        VerifyReport,
        View,
    )

Shape = tuple[int, ...]


# ---------------------------------------------------------------------------- reading a network


def load(spec: str | _os.PathLike[str]) -> Spec:
    """Load a spec: a path to a YAML file, or a bundled spec's name.

    >>> sp = archviz.load("alexnet")
    >>> sp.name, len(sp.layers)
    ('AlexNet', 23)
    """
    return _load(_os.fspath(spec))


def loads(text: str, path: str = "<spec>") -> Spec:
    """Parse spec text (``path`` names it in error locations only).

    >>> archviz.loads("name: tiny\\ninput: [4]\\nlayers: [{name: fc, op: linear, out: 2}]").name
    'tiny'
    """
    return _loads(text, path)


def build(spec: Spec) -> Graph:
    """The layer graph of a spec: edges and the topological order.

    >>> archviz.build(archviz.load("resnet18")).outputs
    ('fc',)
    """
    return _build(spec)


def _read(x: Any, input_shape: Shape | None = None, allow_opaque: bool = False, gpus: int | None = None,
          input_dtype: str | None = None) -> tuple[Spec | Graph, Shape | None]:
    """(what the core takes, the input shape still to apply to it).

    A Spec or a Graph as it is; a str or path: a spec file, a bundled spec's name, or an ONNX file
    (imported at ``input_shape`` where the file leaves it open); a ``torch.nn.Module``: imported at
    ``input_shape``, which it needs. An import consumes ``input_shape``.
    """
    if isinstance(x, (Spec, Graph)):
        return x, input_shape
    if isinstance(x, (str, _os.PathLike)):
        path = _os.fspath(x)
        if path.lower().endswith(".onnx"):
            from .runtime.onnx_import import from_onnx

            return from_onnx(path, input_shape, allow_opaque=allow_opaque).spec, None
        from .core.analysis import preflight  # a shape error after a long repeat: found early

        return _load(path, preflight=preflight(input_shape, gpus, input_dtype)), input_shape
    if _is_module(x):
        if input_shape is None:
            raise ArchvizError("a torch.nn.Module needs input_shape, e.g. input_shape=(3, 224, 224)")
        return from_module(x, input_shape, allow_opaque=allow_opaque), None
    raise TypeError(f"expected a bundled spec's name, a path, a Spec, a Graph or a torch.nn.Module,"
                    f" got {type(x).__name__}")


def _is_module(x: Any) -> bool:
    torch = _sys.modules.get("torch")  # a module exists only once torch is imported
    return torch is not None and isinstance(x, torch.nn.Module)


def _spec(x: Spec | Graph) -> Spec:
    return x.spec if isinstance(x, Graph) else x


def _analysis(x: Any, input_shape: Shape | None = None, gpus: int | None = None,
              input_dtype: str | None = None, allow_opaque: bool = False) -> Analysis:
    from .core.analysis import analyze as core_analyze

    src, shape = _read(x, input_shape, allow_opaque, gpus, input_dtype)
    return core_analyze(src, shape, gpus, input_dtype)


def _lowering(value: str | Mapping[str, str] | Lowering | None) -> Lowering:
    """``"lrn=torch"``, ``{"lrn": "torch"}`` or a :class:`Lowering`; None: every op's default."""
    from .ops.lowering import Lowering

    if isinstance(value, Lowering):
        return value
    return Lowering.parse(value or "") if value is None or isinstance(value, str) else Lowering.of(value)


def _max_bytes(value: int | str | None) -> int | None:
    """``max_memory``: bytes, or text such as ``"8G"`` (None: the default share of what is free)."""
    if value is None or isinstance(value, int):
        return value
    from .runtime.compile import parse_bytes

    return parse_bytes(value)


# ---------------------------------------------------------------------------- reading: shapes, checks


def analyze(x: Any, input_shape: Shape | None = None, gpus: int | None = None,
            input_dtype: str | None = None, *, allow_opaque: bool = False) -> Report:
    """Shapes, arithmetic, counts and warnings of every layer (``archviz shapes``).

    ``x``: a bundled spec's name, a path (YAML or ONNX), a :class:`Spec`, a :class:`Graph`, or a
    ``torch.nn.Module`` (imported first; then ``input_shape`` is required and ``allow_opaque=True``
    keeps what archviz cannot map as ``opaque`` layers). ``input_shape`` overrides the spec's
    input, per example and of any rank (``(3, 224, 224)``, ``(1024, 768)``), ``input_dtype`` its
    ``input_dtype:`` (float32, bf16, fp16, int64, int32), ``gpus`` its ``gpus:``.

    >>> a = archviz.analyze("alexnet")
    >>> a.layer("conv1").output
    (96, 55, 55)
    >>> print(a)                                   # the table of `archviz shapes`
    >>> a.to_dict() == json.loads(`archviz shapes alexnet --format json`)
    >>> archviz.analyze(torchvision.models.resnet18(), input_shape=(3, 224, 224), allow_opaque=True)
    """
    from .results import Report

    return Report.of(_analysis(x, input_shape, gpus, input_dtype, allow_opaque))


def check(x: Any, input_shape: Shape | None = None, input_dtype: str | None = None, *,
          allow_opaque: bool = False) -> Checks:
    """Every ``expect:`` shape and ``claims:`` figure against the computation (``archviz check``).

    >>> checks = archviz.check("alexnet")
    >>> checks.ok                                  # the paper's own neuron count is off
    False
    >>> [c for c in checks if not c.ok]
    """
    from .core.check import run_checks
    from .results import Checks

    a = _analysis(x, input_shape, input_dtype=input_dtype, allow_opaque=allow_opaque)
    return Checks(a.name, tuple(run_checks(a)))


def diff(a: Any, b: Any) -> DiffReport:
    """Two networks layer by layer: settings, shapes, parameters, MACs (``archviz diff``).

    >>> d = archviz.diff("alexnet", "alexnet-torchvision")
    >>> d.to_dict()["summary"]
    """
    from .core.diff import diff as core_diff
    from .results import DiffReport

    return DiffReport.of(core_diff(_analysis(a), _analysis(b)))


# ---------------------------------------------------------------------------- the cost model


def _choice(enum: Any, value: Any, name: str) -> Any:
    from .core.cost import CostError
    from .errors import did_you_mean

    try:
        return (value if isinstance(value, enum) else enum(str(value).lower())).value
    except ValueError:
        valid = [e.value for e in enum]
        raise CostError(f"{name}: unknown {name} '{value}'", did_you_mean(str(value), valid)) from None


Many = Any   # a value, or a list of values: one configuration each


def cost(x: Any, device: Many = "h100", *, gpus: Many = None, tp: Many = None, pp: int = 1,
         sp: bool = False, recompute: str = "none", zero: Many = 0,
         batch: Many = 128, grad_accum: int = 1, mode: str = "train", precision: str = "amp",
         dtype: str | None = None, optimizer: str = "momentum", epochs: float | None = None,
         images: int | str | None = None, tokens: int | str | None = None, input_shape: Shape | None = None,
         input_dtype: str | None = None, lowering: str | Mapping[str, str] | Lowering | None = None,
         allow_opaque: bool = False, seq: Many = None, context: int | None = None) -> Any:
    """Memory per GPU (parameters, gradients, optimizer, activations, temporaries: the peak),
    whether it fits on ``device`` with the largest batch that does, and a roofline lower bound on
    a step's and a run's time (``archviz cost``; the keywords are its options: ``device`` a row of
    the device table (gtx580, a100, h100, ...), a capacity ("24GB") or "cpu"; ``gpus`` = tp·dp·pp;
    ``pp`` pipeline stages; ``sp`` sequence parallelism; ``recompute`` none, selective or full;
    ``zero`` 0–3; ``precision`` amp, mixed or megatron; ``optimizer`` sgd, momentum, adam or
    adamw; ``epochs``/``images`` (``"1.2M"``) or ``tokens`` (``"300B"``): a whole run; ``seq``
    tokens per sequence, ``context`` the KV cache's tokens with ``mode="infer"``).

    A list for ``device``, ``batch``, ``seq``, ``gpus``, ``tp`` or ``zero`` sweeps: the result is
    a :class:`~archviz.results.CostSweep`, one row per configuration (``archviz cost --batch
    1,2,4``; its ``to_dict()`` is the CLI's JSON list, an invalid combination a row with its error).

    >>> c = archviz.cost("alexnet", "gtx580", gpus=1)
    >>> c.fits, c.largest_batch, c.peak           # the paper's net on one 3 GB card
    >>> print(c)                                   # the tables of `archviz cost`
    >>> archviz.cost("resnet50", "a100", gpus=8, zero=3, precision="mixed").to_dict()["per_gpu"][0]
    >>> archviz.cost("gpt2", ["a100", "h100"], batch=[1, 2, 4, 8], seq=[512, 1024])   # 16 rows
    """
    from .core.cost import Optimizer
    from .core.cost_layout import Recompute
    from .core.cost_states import Precision
    from .core.devices import Dtype
    from .core.flops import Mode
    from .results import CostReport, CostSweep
    from .runtime.costing import parse_list, sweep

    swept = {"device": device, "batch": batch, "seq": seq, "gpus": gpus, "tp": tp, "zero": zero}
    lists = {k: parse_list(v, k) if isinstance(v, (list, tuple)) else [v] for k, v in swept.items()}
    result = sweep(_analysis(x, input_shape, None, input_dtype, allow_opaque), lists, pp=pp, sp=sp,
                   recompute=_choice(Recompute, recompute, "recompute"), grad_accum=grad_accum,
                   mode=_choice(Mode, mode, "mode"), precision=_choice(Precision, precision, "precision"),
                   dtype=_choice(Dtype, dtype, "dtype") if dtype else None,
                   optimizer=_choice(Optimizer, optimizer, "optimizer"), epochs=epochs,
                   images=None if images is None else str(images),
                   tokens=None if tokens is None else str(tokens), lowering_text=_lowering_text(lowering),
                   context=context)
    if any(isinstance(v, (list, tuple)) for v in swept.values()):
        return CostSweep(result)
    return CostReport.of(*result.costs[0])


def _lowering_text(value: str | Mapping[str, str] | Lowering | None) -> str | None:
    """A lowering as the CLI's ``--lowering`` text."""
    return None if value is None else str(_lowering(value))


# ---------------------------------------------------------------------------- pictures


def _lanes(src: Spec | Graph, split_gpus: bool) -> int | None:
    """The split view's GPUs: the spec's, 2 when it names none (as ``--split-gpus``)."""
    sp = _spec(src)
    return (sp.gpus if sp.gpus and sp.gpus > 1 else 2) if split_gpus else None


def draw(x: Any, split_gpus: bool = False, rankdir: str | None = None, fold: bool = False, *,
         input_shape: Shape | None = None, allow_opaque: bool = False) -> Diagram:
    """The layer graph (``archviz draw``); ``split_gpus``: one lane per GPU (the spec's, else 2);
    ``rankdir`` TB or LR; ``fold``: parameter-free layers inside the node they follow.

    ``.graph`` is the graphviz object, ``.svg()`` the SVG text (needs Graphviz's ``dot``),
    ``.source`` the DOT text, ``.save(path)`` writes svg, png, pdf or dot. A notebook shows the SVG.

    >>> d = archviz.draw("alexnet", split_gpus=True, fold=True)
    >>> d.save("alexnet-split.svg")
    """
    from .core.analysis import analyze as core_analyze
    from .render.dot import diagram
    from .results import Diagram

    src, shape = _read(x, input_shape, allow_opaque)
    direction = rankdir or ("LR" if split_gpus else "TB")
    return Diagram(diagram(core_analyze(src, shape, _lanes(src, split_gpus)), split_gpus, direction, fold))


def plot(x: Any, kind: str = "counts", *, log: bool = False, split_gpus: bool = False, device: Many = "h100",
         batch: Many = None, gpus: Many = None, lowering: str | Mapping[str, str] | Lowering | None = None,
         input_shape: Shape | None = None, allow_opaque: bool = False, **fit: Any) -> Plot:
    """A matplotlib chart (``archviz plot``): ``kind="counts"`` (per-layer parameters, MACs and
    activations; ``log`` axes), ``"blocks"`` (the paper-style boxes; ``split_gpus``: a row per
    GPU), ``"memory"`` (archviz cost's memory per layer and against the batch, on ``device``; batch
    128 by default) or ``"fit"`` (memory per GPU against one swept option, a line per device with
    its capacity and the largest batch marked: ``device``, ``batch``, ``gpus`` and the keywords
    ``seq``, ``tp``, ``zero`` — one of them a list — and ``pp``, ``precision``, ``optimizer``, ``mode``).

    ``.figure`` is the matplotlib Figure, ``.png()``/``.svg()`` its bytes, ``.save(path)`` writes
    png, svg or pdf. A notebook shows the PNG.

    >>> archviz.plot("alexnet", "blocks", split_gpus=True).save("alexnet-blocks.png")
    >>> archviz.plot("alexnet", "memory", device="gtx580", gpus=1)
    >>> archviz.plot("gpt2", "fit", device=["v100", "a100", "h200"], seq=1024)
    """
    from .core.analysis import analyze as core_analyze
    from .render import blocks, plots
    from .results import Plot

    if kind not in ("counts", "blocks", "memory", "fit"):
        raise ArchvizError(f"plot kind: expected counts, blocks, memory or fit, got {kind!r}")
    if split_gpus and kind != "blocks":
        raise ArchvizError("split_gpus applies to kind='blocks'")
    if log and kind != "counts":
        raise ArchvizError("log applies to kind='counts'")
    unknown = sorted(set(fit) - {"seq", "tp", "zero", "pp", "precision", "optimizer", "mode"})
    if unknown:
        raise ArchvizError(f"plot: unknown keyword {', '.join(unknown)}")
    if fit and kind != "fit":
        raise ArchvizError(f"plot: {', '.join(sorted(fit))} apply to kind='fit'")
    src, shape = _read(x, input_shape, allow_opaque)
    a = core_analyze(src, shape, _lanes(src, split_gpus))
    if kind == "fit":
        from .render.cost_fit import fit_figure
        from .runtime.costing import parse_list

        swept = {"device": device, "batch": batch, "gpus": gpus, "seq": fit.pop("seq", None),
                 "tp": fit.pop("tp", None), "zero": fit.pop("zero", None)}
        lists = {k: parse_list(v, k) if isinstance(v, (list, tuple)) else [v] for k, v in swept.items()}
        fig, _ = fit_figure(a, lists, lowering_text=_lowering_text(lowering), **_fit_choices(fit))
    elif kind == "memory":
        from .render.cost_plot import memory_figure
        from .runtime.probe import device_target

        fig = memory_figure(a, device_target(device), 128 if batch is None else batch, gpus,
                            _lowering(lowering))
    elif kind == "counts":
        fig = plots.draw_counts(plots.counts_data(a), log)
    else:
        fig = blocks.draw_blocks(blocks.blocks_data(a, split_gpus, x if isinstance(x, str) else a.name))
    return Plot(fig, a.name, kind)


def _fit_choices(fit: dict[str, Any]) -> dict[str, Any]:
    """``precision``, ``optimizer`` and ``mode`` checked against the cost's choices."""
    from .core.cost import Optimizer
    from .core.cost_states import Precision
    from .core.flops import Mode

    enums = {"precision": Precision, "optimizer": Optimizer, "mode": Mode}
    return {k: _choice(enums[k], v, k) if k in enums else v for k, v in fit.items()}


def view(x: Any, vs: Any = None, *, split_gpus: bool = False, input_shape: Shape | None = None,
         allow_opaque: bool = False) -> View:
    """The offline HTML page of ``archviz view``: the diagram with pan and zoom, every layer's
    settings, arithmetic, counts and checks; ``vs``: a second network, the two compared.

    ``.html`` is the page, ``.save(path)`` writes it; a notebook shows it inline (an iframe whose
    ``srcdoc`` is the page). Needs Graphviz's ``dot``.

    >>> archviz.view("resnet18")                   # in a notebook cell: the interactive view
    >>> archviz.view("alexnet", vs="alexnet-torchvision").save("compare.html")
    """
    from .render import html
    from .results import View

    a = _analysis(x, input_shape, allow_opaque=allow_opaque)
    other = _analysis(vs) if vs is not None else None
    return View(html.view(a, other, split=split_gpus).html)


# ---------------------------------------------------------------------------- PyTorch


def verify(x: Any, input_shape: Shape | None = None, *, input_dtype: str | None = None,
           max_memory: int | str | None = None, lowering: str | Mapping[str, str] | Lowering | None = None,
           allow_opaque: bool = False) -> VerifyReport:
    """Build the PyTorch module and check every layer's real shape and parameters and the MACs
    (torch.utils.flop_counter) against the analysis (``archviz verify``; imports torch). Runs on
    the meta device when every op can, else one example on the CPU under ``max_memory`` (bytes or
    ``"8G"``). ``lowering``: ``"lrn=torch"``, as ``--lowering``.

    >>> v = archviz.verify("alexnet")
    >>> v.ok, v.device
    (True, 'meta')
    """
    from .results import VerifyReport
    from .runtime.compile import verify as run_verify

    src, shape = _read(x, input_shape, allow_opaque)
    return VerifyReport.of(run_verify(_spec(src), shape, _max_bytes(max_memory), _lowering(lowering),
                                      input_dtype))


EXPORT_FORMATS = ("py", "torchscript", "onnx")


def export(x: Any, format: str = "py", *, input_shape: Shape | None = None, input_dtype: str | None = None,
           split_gpus: bool = False, halo: bool = False, max_memory: int | str | None = None,
           lowering: str | Mapping[str, str] | Lowering | None = None,
           allow_opaque: bool = False) -> Exported:
    """The compiled model written out (``archviz export``; imports torch): ``"py"`` readable
    PyTorch source (``split_gpus``: the spec's GPU split as model-parallel towers, ``halo``: LRN
    across them), ``"torchscript"`` or ``"onnx"`` (the optional onnx packages) bytes.

    >>> e = archviz.export("lenet5")
    >>> print(e)                                   # the source, as `archviz export lenet5` prints it
    >>> archviz.export("lenet5", "onnx").save("lenet5.onnx")
    """
    from .results import Exported

    fmt = format.lower()
    if fmt not in EXPORT_FORMATS:
        raise ArchvizError(f"export format: expected one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    if halo and not split_gpus:
        raise ArchvizError("halo applies to split_gpus only")
    if split_gpus and fmt != "py":
        raise ArchvizError(f"split_gpus writes PyTorch source (format 'py'), not {fmt}: the towers run on"
                           " several devices, which one TorchScript or ONNX graph of this exporter does not"
                           " describe")
    src, shape = _read(x, input_shape, allow_opaque)
    sp = _spec(src)
    from .runtime import export as ex

    lower = _lowering(lowering)
    if fmt == "py":
        text = (ex.to_python_split(sp, shape, halo=halo, lowering=lower) if split_gpus
                else ex.to_python(sp, shape, lowering=lower, input_dtype=input_dtype))
        return Exported(sp.name, fmt, text)
    writer = {"torchscript": ex.to_torchscript, "onnx": ex.to_onnx}[fmt]
    return Exported(sp.name, fmt, writer(sp, shape, _max_bytes(max_memory), lowering=lower,
                                         input_dtype=input_dtype))


def _listed(value: Any) -> str | None:
    """A batch or dtype list as the CLI's text: ``8``, ``[1, 8]`` or ``"1,8"`` → ``"1,8"``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(str(v) for v in value)
    return str(value)


def bench(x: Any, device: str = "auto", *, batch: int | Sequence[int] | str | None = None, mode: str = "both",
          dtype: str | Sequence[str] | None = None, warmup: int | None = None, iters: int | None = None,
          layers: bool = False, channels_last: bool = False, compile: bool = False, reference: Any = None,
          input_shape: Shape | None = None, input_dtype: str | None = None,
          max_memory: int | str | None = None, lowering: str | Mapping[str, str] | Lowering | None = None,
          allow_opaque: bool = False) -> BenchReport:
    """Time the compiled model (``archviz bench``; imports torch): ms per batch (median, IQR),
    images/s, TFLOP/s, % of peak and memory for every (mode, dtype, batch). Defaults per device as
    the CLI's (cpu: batch 1,8, fp32, 2 warm-up and 8 timed iterations). ``mode`` infer, train or
    both; ``layers``: per-layer times; ``reference``: a ``torch.nn.Module`` timed beside the spec.

    >>> r = archviz.bench("lenet5", "cpu", batch=1, mode="infer", warmup=0, iters=2)
    >>> print(r)                                   # the table of `archviz bench`
    >>> r.to_dict()["rows"][0]["images_per_s"]
    """
    from dataclasses import replace

    from .core.analysis import analyze as core_analyze
    from .results import BenchReport
    from .runtime import bench as runner
    from .runtime import probe
    from .runtime.bench_rows import Workload
    from .runtime.bench_settings import bench_settings, resolve_device
    from .runtime.compile import to_module as compile_module

    src, shape = _read(x, input_shape, allow_opaque)
    a = core_analyze(src, shape, None, input_dtype)
    if mode not in ("infer", "train", "both"):
        raise ArchvizError(f"bench mode: expected infer, train or both, got {mode!r}")
    dev, lower = resolve_device(device), _lowering(lowering)
    settings = bench_settings(dev, _listed(batch), mode, _listed(dtype), channels_last, compile,
                              False, warmup, iters, layers)
    settings = replace(settings, max_bytes=_max_bytes(max_memory))
    info = probe.describe(dev)
    module = compile_module(a.spec, input_shape=shape, lowering=lower, input_dtype=a.input_dtype)
    works = [replace(Workload.of(a.name, module, a), predict=runner.predictor(a, info, lower))]
    if reference is not None:
        works.append(Workload.of("reference", reference, a))
    peaks = runner.peaks(info, settings.dtypes, None)
    return BenchReport.of(runner.measure(a, settings, works, info, peaks))


def to_module(spec: Any, *, devices: Sequence[Any] | None = None, halo: bool = False,
              **kwargs: Any) -> torch.nn.Module:
    """Compile a spec (a :class:`Spec`, a path or a bundled name) into a ``torch.nn.Module``.

    ``devices=["cuda:0", "cuda:1"]`` builds the spec's GPU split (its ``gpus:``) as model-parallel
    towers, one per device, as in the AlexNet paper (:mod:`archviz.runtime.parallel`; ``halo=True``
    makes LRN exchange its boundary channels so the towers equal the single-device module).
    Keywords: ``input_shape``, ``lowering``, ``input_dtype``.

    >>> model = archviz.to_module("alexnet")
    >>> model(torch.randn(8, 3, 227, 227)).shape
    torch.Size([8, 1000])
    """
    if devices is not None:
        from .runtime.parallel import to_towers

        return to_towers(spec, devices, halo=halo, **kwargs)
    from .runtime.compile import to_module as _to_module

    return _to_module(spec, **kwargs)


def from_module(model: Any, input_shape: tuple[int, ...], **kwargs: Any) -> Spec:
    """A ``torch.nn.Module`` as a spec, traced with torch.fx (torch.export where fx cannot) on
    ``input_shape`` per example (``archviz import``). ``allow_opaque=True`` keeps unmappable layers
    as ``opaque`` (traced shape and parameter count; not compiled). The spec's YAML text, as
    ``archviz import`` writes it, is ``archviz.runtime.importer.from_module(...).text``, with the
    state-dict name map beside it.

    >>> sp = archviz.from_module(torchvision.models.resnet18(), (3, 224, 224))
    >>> archviz.analyze(sp).totals.params
    11689512
    """
    from .runtime.importer import from_module as _from_module

    return _from_module(model, tuple(input_shape), **kwargs).spec


def load_weights(module: Any, state_dict: Any, name_map: Any, transpose: Any = ()) -> Any:
    """Load a source model's ``state_dict`` into a compiled imported spec through its name map;
    ``transpose``: the source keys stored transposed (``Imported.transpose``: transformers' Conv1D).

    >>> imported = archviz.runtime.importer.from_module(net, (3, 32, 32))
    >>> model = archviz.to_module(imported.spec)
    >>> archviz.load_weights(model, net.state_dict(), imported.name_map, imported.transpose)
    """
    from .runtime.importer import load_weights as _load_weights

    return _load_weights(module, state_dict, name_map, transpose)
