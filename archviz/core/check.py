"""Compare a spec's ``expect:`` shapes and ``claims:`` with the computation, saying how each
computed value was obtained."""

from __future__ import annotations

import re
from dataclasses import replace
from math import prod

from ..errors import Loc, SpecError, did_you_mean
from ..ops import OPS, fmt_shape
from ..record import record
from ..spec.claims import Claim
from .analysis import Analysis, LayerStats


@record
class CheckResult:
    what: str           # "conv1 output", "params", "conv1 neurons", ...
    claimed: str
    computed: str
    how: str            # the arithmetic or sum behind `computed`
    ok: bool
    loc: Loc | None = None
    source: str = ""
    explanation: str = ""   # a failing claim's one short explanation, e.g. "one 55 read as 48?"


def _n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.4g}"


def run_checks(analysis: Analysis) -> list[CheckResult]:
    """The analysed spec's ``expect:`` shapes and ``claims:``, each against the computation."""
    results = [_expect(analysis, s) for s in analysis.layers if s.expect is not None]
    for claim in analysis.spec.claims:
        results.append(_claim(claim, analysis))
    return results


def _expect(a: Analysis, s: LayerStats) -> CheckResult:
    assert s.expect is not None
    return CheckResult(f"{s.name} output", fmt_shape(s.expect), fmt_shape(s.output),
                       s.formula or "same as input", tuple(s.expect) == s.output,
                       a.graph.layer(s.name).loc_of("expect"))


_TOTAL_FIELD = {"params": "params", "neurons": "neurons", "activations": "activations",
                "macs": "macs", "flops": "macs"}


def _claim(c: Claim, a: Analysis) -> CheckResult:
    if c.key in ("memory", "train_time"):
        return _cost_claim(c, a)
    if c.key == "train_days":
        return _days_claim(c, a)
    if c.layer is not None:
        return _layer_claim(c, a)
    if c.key == "lrn":
        return _lrn_claim(c, a)
    if c.key == "input_elements":
        value = prod(a.input)
        how = " × ".join(map(str, a.input)) + f" = {value:,} (input {fmt_shape(a.input)})"
        result = _compare(c, c.key, value, how)
        return result if result.ok else replace(result, explanation=_explain_input(c.value, a.input))
    else:
        field = _TOTAL_FIELD[c.key]
        parts = [s for s in a.layers if getattr(s, field)]
        value = sum(getattr(s, field) for s in parts) * (2 if c.key == "flops" else 1)
        over = f"Σ over {len(parts)} layer{'s' if len(parts) != 1 else ''}"
        if len(parts) <= 8:
            how = f"{over}: " + " + ".join(_n(getattr(s, field)) for s in parts)
        else:
            how = f"{over} ({', '.join(s.name for s in parts[:3])}, …)"
        if c.key == "flops":
            how = "2 × MACs; " + how
    return _compare(c, c.key, value, how)


def _lrn_claim(c: Claim, a: Analysis) -> CheckResult:
    """The paper's LRN constants against every LRN layer of the spec, and against what the compiled
    torch layer computes: torch divides its alpha by n, so its alpha / n must be the claimed α."""
    assert isinstance(c.value, tuple)
    k, n, alpha, beta = c.value
    lrns = [s for s in a.layers if s.op == "lrn"]
    found: dict[str, list[str]] = {}   # what a layer computes → the layers that compute it
    ok = bool(lrns)
    for la in lrns:
        p = la.op_params
        kw = dict(OPS["lrn"].torch(p, la.in_shapes).kwargs)
        computes = kw["alpha"] / p.size  # torch's (alpha/n)·Σa², in the paper's terms
        text = (f"torch's LocalResponseNorm alpha {kw['alpha']:g} / n {p.size} = {computes:g},"
                f" k {kw['k']:g}, beta {kw['beta']:g}")
        found.setdefault(text, []).append(la.name)
        same = (kw["k"], p.size, kw["beta"]) == (k, n, beta)
        ok = ok and same and _close(p.alpha, alpha) and _close(computes, alpha)
    how = "; ".join(f"{', '.join(names)}: {text}" for text, names in found.items())
    computed = "; ".join(f"k={la.op_params.k:g}, n={la.op_params.size}, alpha={la.op_params.alpha:g},"
                         f" beta={la.op_params.beta:g}" for la in lrns)
    computed = "; ".join(dict.fromkeys(computed.split("; "))) if computed else "no lrn layer"
    return CheckResult("LRN formula", c.text, computed, how or "the spec has no lrn layer", ok, c.loc,
                       c.source)


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-12 * max(abs(x), abs(y))


def _compare(c: Claim, what: str, value: float, how: str) -> CheckResult:
    assert isinstance(c.value, float)
    ok = abs(value - c.value) <= c.rel_tol * abs(c.value) if c.rel_tol else value == c.value
    diff = (value - c.value) / c.value * 100 if c.value else 0.0
    shown = f"{int(c.value):,}" if re.fullmatch(r"[0-9,]+", c.text) else c.text
    delta = f"{diff:+.1f}%".replace("-", "−")
    claimed = shown + ("" if ok or not c.value else f" (computed {delta})")
    return CheckResult(what, claimed, _n(value), how, ok, c.loc, c.source)


def _layer_claim(c: Claim, a: Analysis) -> CheckResult:
    names = [s.name for s in a.layers]
    if c.layer not in names:
        raise SpecError(f"claims.{c.key}: no layer named '{c.layer}'", c.loc,
                        did_you_mean(str(c.layer), names))
    s = a.layer(str(c.layer))
    what = f"{s.name} {c.key.removeprefix('layer_')}"
    if c.key == "layer_kernels":
        return _kernel_claim(c, s, what)
    field = c.key.removeprefix("layer_")
    value = getattr(s, field)
    result = _compare(c, what, value, _layer_how(s, field, value))
    if result.ok or field not in ("neurons", "activations") or not value:
        return result
    return replace(result, explanation=_explain_dims(c.value, s.output, network_numbers(a)))


def _layer_how(s: LayerStats, field: str, value: int) -> str:
    """How a per-layer figure comes about, in words and numbers."""
    counted = OPS[s.op].counts_neurons  # conv and linear: the layers with neurons and MACs
    if field in ("neurons", "macs") and not counted:
        return f"0: {s.op} layers have no {field} (only conv and linear layers count)"
    if field in ("neurons", "activations"):
        if len(s.output) == 1:
            return f"{value:,} outputs"
        return " × ".join(map(str, s.output)) + f" = {value:,}"
    if field == "params":
        return f"{s.op} {s.label}: {value:,} weights and biases"
    fan_in = value // prod(s.output)
    return f"{prod(s.output):,} outputs × {fan_in:,} multiply-accumulates each = {value:,}"


def _kernel_claim(c: Claim, s: LayerStats, what: str) -> CheckResult:
    if s.family != "conv":
        raise SpecError(f"claims.layer_kernels: {s.name} is a {s.op} layer, not conv", c.loc)
    sizes = tuple(s.op_params.kernel)   # (kh, kw); (k,) for conv1d, (kd, kh, kw) for conv3d
    groups = s.op_params.groups
    cin = s.in_shapes[0][0]
    kernel = (*sizes, cin // groups)
    how = "×".join(map(str, sizes)) + f"×({cin} input channels"
    how += f" / {groups} groups)" if groups > 1 else ")"
    text = "×".join(map(str, kernel))
    return CheckResult(what, "×".join(map(str, c.value)) if isinstance(c.value, tuple) else c.text,
                       text, how, kernel == c.value, c.loc, c.source)


# ---- a failing claim's short explanation ----------------------------------------------------
# A stated count is often the right product with one factor misread: the paper's 253,440
# neurons for conv1 is 96 × 55 × 48, a 55 read as 48 (the kernels per GPU); its
# "150,528-dimensional" input is 3 × 224 × 224, the 224 input that does not divide. The search
# tries exactly those single changes and says something only when exactly one fits.

COMMON_INPUT_SIZES = (28, 32, 64, 96, 112, 128, 224, 227, 231, 256, 299, 320, 331, 384, 448, 512)


def network_numbers(a: Analysis) -> frozenset[int]:
    """The numbers a reader of the network sees: channel counts (also per group and per GPU),
    spatial sizes and kernel sizes."""
    shapes = [a.input, *(s.output for s in a.layers)]
    nums = {d for shape in shapes if len(shape) == 3 for d in shape}          # (C, H, W)
    for s in a.layers:
        params = s.op_params
        kernel = getattr(params, "kernel", None)
        if isinstance(kernel, tuple):
            nums.update(k for k in kernel if isinstance(k, int))
        groups = getattr(params, "groups", None)
        if isinstance(groups, int) and groups > 1 and len(s.in_shapes[0]) == 3:
            nums.add(s.in_shapes[0][0] // groups)                               # kernel depth
    if a.gpus and a.gpus > 1:
        nums.update(s[0] // a.gpus for s in shapes if len(s) == 3 and s[0] % a.gpus == 0)
    return frozenset(n for n in nums if n > 1)


def _explain_dims(claimed: float | tuple[float, ...], dims: tuple[int, ...],
                  numbers: frozenset[int]) -> str:
    """``claimed`` as ``dims`` with one factor replaced by one of ``numbers``, if exactly one
    (old value → new value) replacement gives it; else ''."""
    if not isinstance(claimed, float) or not claimed.is_integer() or len(dims) < 2:
        return ""
    target = int(claimed)
    found: dict[tuple[int, int], tuple[int, ...]] = {}
    for i, old in enumerate(dims):
        rest = prod(dims) // old
        if rest and target % rest == 0 and (new := target // rest) != old and new in numbers:
            found[(old, new)] = dims[:i] + (new,) + dims[i + 1:]   # the last position wins
    if len(found) != 1:
        return ""
    (old, new), shown = next(iter(found.items()))
    which = "one " if dims.count(old) > 1 else ""
    return f"{target:,} = {' × '.join(map(str, shown))}: {which}{old} read as {new}?"


def _explain_input(claimed: float | tuple[float, ...], shape: tuple[int, ...]) -> str:
    """``claimed`` as the input with another common square size, if exactly one fits; else ''."""
    if not isinstance(claimed, float) or not claimed.is_integer() or len(shape) != 3:
        return ""
    fits = [n for n in COMMON_INPUT_SIZES if shape[0] * n * n == claimed and (n, n) != shape[1:]]
    if len(fits) != 1:
        return ""
    n = fits[0]
    return f"{int(claimed):,} = {shape[0]} × {n} × {n}: the {n} input"


# ---- cost claims: memory per GPU and a run's time (archviz/core/cost.py) ---------------------

def _cost_claim(c: Claim, a: Analysis) -> CheckResult:
    from .analysis import analyze
    from .cost import GIB, CostError, Mode, Optimizer, Settings, estimate, parse_images, target
    from .devices import Dtype

    given = dict(c.settings)
    try:
        gpus = int(given.get("gpus", a.gpus or 1))
        settings = Settings(mode=Mode(str(given.get("mode", "train"))), batch=int(given.get("batch", 128)),
                            dtype=Dtype(str(given.get("dtype", "fp32"))),
                            optimizer=Optimizer(str(given.get("optimizer", "momentum"))))
        device = target(str(given.get("device", "h100")))
        images = parse_images(str(given.get("images", "1.2M")))
        cost = estimate(analyze(a.graph, a.input, gpus) if gpus != (a.gpus or 1) else a, settings,
                        device, gpus)
    except (CostError, ValueError) as exc:
        hint = exc.hint if isinstance(exc, CostError) else ""
        raise SpecError(f"claims.{c.key}: {str(exc).removeprefix('--')}", c.loc, hint) from None
    at = f"batch {settings.batch}, {settings.dtype.value}, {settings.optimizer.value}"
    assert isinstance(c.value, float)
    if c.key == "memory":
        used = cost.peak
        each = f"each of {gpus} GPUs" if gpus > 1 else "one GPU"
        parts = [f"{k} {v / GIB:.2f}" for k, v in cost.per_gpu[0].as_dict().items()
                 if k not in ("total", "cross", "model_states", "peak", "kv_cache") and v]
        how = (f"{each} at {at}: " + " + ".join(parts)
               + f" = {used / GIB:.2f} GiB on {device.name}; largest batch that fits: {cost.largest_batch}")
        return CheckResult(f"memory, {c.layer}", c.text, f"{used / GIB:.2f} GiB", how,
                           used <= c.value * GIB, c.loc, c.source)
    epochs = float(given.get("epochs", 1))
    if cost.time is None:
        raise SpecError(f"claims.train_time: no peak FLOP/s or bandwidth for {device.name}", c.loc)
    secs = cost.time.run_seconds(epochs, images, settings.batch)
    flops = epochs * images * cost.time.train_flops_per_image
    peak = gpus * (device.tflops(settings.dtype) or 0.0) * 1e12
    days = [d for d in (c.low, c.value) if d is not None]
    implied = " – ".join(f"{flops / (d * 86400) / peak:.0%}" for d in sorted(days, reverse=True))
    how = (f"roofline lower bound: {epochs:g} epochs × {images:,} images, {gpus} × {device.name} at {at}:"
           f" {secs / 86400:.2f} days ({flops:.3g} FLOPs); the claimed time implies {implied} of the"
           f" GPUs' peak {peak / 1e12:.3g} TFLOP/s")
    return CheckResult("training time", c.text, f"≥ {secs / 86400:.2f} days", how,
                       secs <= c.value * 86400, c.loc, c.source)


def _days_claim(c: Claim, a: Analysis) -> CheckResult:
    """Narayanan et al. 2021 (Section 5.1): 8·T·P / (n·X): 6 FLOPs per parameter per token for
    forward and backward, 2 more for recomputing forward, T tokens, n GPUs at X FLOP/s each."""
    given = dict(c.settings)
    tokens, gpus, x = given["tokens"], given["gpus"], given["flops_per_gpu"]
    p = sum(s.params for s in a.layers)
    days = 8 * tokens * p / (gpus * x) / 86400
    how = (f"8 · T · P / (n · X) = 8 × {tokens:.3g} tokens × {p:,} parameters / ({gpus:g} GPUs ×"
           f" {x / 1e12:g} TFLOP/s) = {days:.1f} days (6 FLOPs per parameter and token forward and"
           " backward, 2 recomputing forward)")
    result = _compare(c, "training days (8TP/nX)", days, how)
    return replace(result, computed=f"{days:.1f} days")
