"""The ``claims:`` section: what a paper states, parsed into values with a tolerance.

Forms accepted (values may use K / M / G suffixes and thousands separators)::

    claims:
      params: 60M ±5%                      # total, within 5 %
      neurons: {value: 650K, tol: 5%, source: "Section 1"}
      input_elements: 150528               # exact
      layer_neurons: {conv1: 253440, conv2: 186624}
      layer_kernels: {conv2: 5x5x48}       # one kernel's size: kh × kw × input channels it reads
      lrn: "k=2, n=5, alpha=1e-4, beta=0.75"   # the LRN formula's constants (the paper's α)
      memory:                              # per GPU, at the settings given: computed ≤ claimed
        one GPU: {value: 3 GiB, device: gtx580, gpus: 1, batch: 128, dtype: fp32, optimizer: momentum}
      train_time:                          # a run's roofline lower bound ≤ the claimed time
        {value: 5-6 days, device: gtx580, gpus: 2, batch: 128, epochs: 90, images: 1.2M}
      train_days:                          # Narayanan et al. 2021's 8TP/(nX), P the spec's parameters
        {value: 34, tol: 5%, tokens: 300G, gpus: 1024, flops_per_gpu: 140T}
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from ..chars import Pattern
from ..errors import did_you_mean
from ..record import record
from .doc import Doc, show

TOTAL_KEYS = ("params", "neurons", "activations", "macs", "flops", "input_elements", "lrn")
LAYER_KEYS = ("layer_params", "layer_neurons", "layer_activations", "layer_macs", "layer_kernels")
# the text forms, also used by the JSON Schema (so no regex flags: the suffix's case is spelled out)
NUMBER_TEXT = (r"^\s*([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([KkMmGgTt]?)\s*"
               r"(?:(?:±|\+-|\+/-)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%)?\s*$")
KERNEL_TEXT = r"^\s*0*[1-9][0-9]*\s*[x×]\s*0*[1-9][0-9]*\s*[x×]\s*0*[1-9][0-9]*\s*$"
_NUM = re.compile(NUMBER_TEXT)
COST_KEYS = ("memory", "train_time", "train_days")
# train_days: 8·T·P / (n·X) days, T tokens, n GPUs at X FLOP/s each (all three required)
DAYS_SETTINGS = ("tokens", "gpus", "flops_per_gpu")
# the settings a cost claim may name (archviz cost's options; checked when the claim is checked)
COST_SETTINGS = ("device", "gpus", "batch", "dtype", "optimizer", "mode", "epochs", "images")
_GIB = Pattern(r"(?i)^\s*([0-9.]+)\s*(GiB|GB|G)\s*$")      # compiled where a spec claims a cost
_DAYS = Pattern(r"(?i)^\s*([0-9.]+)\s*(?:(?:-|–|to)\s*([0-9.]+))?\s*days?\s*$")
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@record
class Claim:
    """One stated figure: ``key`` (e.g. 'neurons'), ``layer`` for per-layer claims."""

    key: str
    text: str                    # as written in the spec
    value: float | tuple[float, ...]  # a kernel claim: ints
    rel_tol: float               # 0.05 for ±5 %; 0 = exact
    loc: Any                     # errors.Loc
    layer: str | None = None
    source: str = ""
    settings: tuple[tuple[str, Any], ...] = ()   # cost claims: device, gpus, batch, ... as written
    low: float | None = None                      # a range's lower end ("5-6 days": 5)


def parse_number(text: Any) -> tuple[float, float]:
    """``'60M ±5%'`` → (60e6, 0.05); ``253440`` → (253440, 0). Raises ValueError."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, float)):
        return _finite(float(text)), 0.0
    m = _NUM.match(str(text))
    if not m:
        raise ValueError(text)
    value = float(m.group(1).replace(",", "").replace("_", "")) * _SCALE[m.group(2).upper()]
    return _finite(value), _finite(float(m.group(3))) / 100 if m.group(3) else 0.0


def _finite(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(value)
    return value


def parse_kernel(text: Any) -> tuple[int, ...]:
    """``'5x5x48'`` or ``[5, 5, 48]`` → (5, 5, 48)."""
    if isinstance(text, list):
        if len(text) != 3 or not all(isinstance(p, int) and not isinstance(p, bool) for p in text):
            raise ValueError(text)
        dims = tuple(text)
    elif isinstance(text, str) and re.match(KERNEL_TEXT, text):
        dims = tuple(int(p) for p in re.split(r"\s*[x×]\s*", text.strip()))
    else:
        raise ValueError(text)
    if min(dims) < 1:
        raise ValueError(text)
    return dims


LRN_TEXT = r"^\s*k\s*=\s*(\S+?)\s*,\s*n\s*=\s*(\S+?)\s*,\s*alpha\s*=\s*(\S+?)\s*,\s*beta\s*=\s*(\S+?)\s*$"


def parse_lrn(text: Any) -> tuple[float, ...]:
    """``'k=2, n=5, alpha=1e-4, beta=0.75'`` → (2.0, 5.0, 0.0001, 0.75): the formula's constants."""
    m = re.match(LRN_TEXT, text) if isinstance(text, str) else None
    if not m:
        raise ValueError(text)
    values = tuple(float(v) for v in m.groups())
    if not all(math.isfinite(v) for v in values) or not values[1].is_integer() or values[1] < 1:
        raise ValueError(text)
    return values


def parse_claims(doc: Doc, node: yaml.Node) -> tuple[Claim, ...]:
    out: list[Claim] = []
    for key, (knode, vnode) in doc.mapping(node, "claims").items():
        if key in TOTAL_KEYS:
            out.append(_one(doc, key, vnode, None))
        elif key == "memory":
            for label, (_, lv) in doc.mapping(vnode, "claims.memory").items():
                out.append(_cost(doc, key, lv, label))
        elif key == "train_time":
            out.append(_cost(doc, key, vnode, None))
        elif key == "train_days":
            out.append(_days(doc, vnode))
        elif key in LAYER_KEYS:
            for layer, (_, lv) in doc.mapping(vnode, f"claims.{key}").items():
                out.append(_one(doc, key, lv, layer))
        else:
            raise doc.error(knode, f"claims: unknown claim '{key}'",
                            did_you_mean(key, TOTAL_KEYS + LAYER_KEYS + COST_KEYS))
    return tuple(out)


def _one(doc: Doc, key: str, node: yaml.Node, layer: str | None) -> Claim:
    where = f"claims.{key}" + (f".{layer}" if layer else "")
    source = ""
    raw = doc.value(node)
    value_node = node
    if isinstance(raw, dict):
        entries = doc.mapping(node, where)
        for k, (kn, _) in entries.items():
            if k not in ("value", "tol", "source"):
                raise doc.error(kn, f"{where}: unknown key '{k}'",
                                did_you_mean(k, ("value", "tol", "source")))
        if "value" not in entries:
            raise doc.error(node, f"{where}: missing 'value'")
        value_node = entries["value"][1]
        raw = doc.value(value_node)
        source = str(doc.value(entries["source"][1])) if "source" in entries else ""
        if "tol" in entries:
            raw = f"{raw} ±{str(doc.value(entries['tol'][1])).rstrip('%')}%"
    try:
        if key == "layer_kernels":
            return Claim(key, str(raw), parse_kernel(raw), 0.0, doc.loc(value_node), layer, source)
        if key == "lrn":
            return Claim(key, str(raw), parse_lrn(raw), 0.0, doc.loc(value_node), layer, source)
        value, tol = parse_number(raw)
    except ValueError:
        form = {"layer_kernels": "a kernel size such as 5x5x48",
                "lrn": "the formula's constants as 'k=2, n=5, alpha=1e-4, beta=0.75'"}.get(
                    key, "a number such as 60M, 650K ±5% or 253440")
        raise doc.error(value_node, f"{where}: expected {form}, got {show(raw)}") from None
    return Claim(key, str(raw), value, tol, doc.loc(value_node), layer, source)


def _cost(doc: Doc, key: str, node: yaml.Node, label: str | None) -> Claim:
    """A memory claim (``3 GiB``) or a time claim (``5-6 days``) with the settings it holds at."""
    where = f"claims.{key}" + (f".{label}" if label else "")
    entries = doc.mapping(node, where)
    allowed = ("value", "source", *COST_SETTINGS)
    for k, (kn, _) in entries.items():
        if k not in allowed:
            raise doc.error(kn, f"{where}: unknown key '{k}'", did_you_mean(k, allowed))
    if "value" not in entries:
        raise doc.error(node, f"{where}: missing 'value'")
    vnode = entries["value"][1]
    raw = str(doc.value(vnode))
    m = (_GIB if key == "memory" else _DAYS).match(raw)
    if not m:
        form = "a memory size such as 3 GiB" if key == "memory" else "a time such as 5-6 days or 6 days"
        raise doc.error(vnode, f"{where}: expected {form}, got {raw!r}")
    low = None if key == "memory" or not m.group(2) else float(m.group(1))
    value = float(m.group(2) or m.group(1)) if key == "train_time" else float(m.group(1))
    settings = tuple((k, doc.value(v)) for k, (_, v) in entries.items() if k in COST_SETTINGS)
    source = str(doc.value(entries["source"][1])) if "source" in entries else ""
    return Claim(key, raw, value, 0.0, doc.loc(vnode), label, source, settings, low)


def _days(doc: Doc, node: yaml.Node) -> Claim:
    """Narayanan et al.'s estimate: ``{value: 34, tol: 5%, tokens: 300G, gpus: 1024,
    flops_per_gpu: 140T}``; numbers with K/M/G/T suffixes or in e-notation (``300e9``)."""
    where = "claims.train_days"
    entries = doc.mapping(node, where)
    allowed = ("value", "tol", "source", *DAYS_SETTINGS)
    for k, (kn, _) in entries.items():
        if k not in allowed:
            raise doc.error(kn, f"{where}: unknown key '{k}'", did_you_mean(k, allowed))
    for k in ("value", *DAYS_SETTINGS):
        if k not in entries:
            raise doc.error(node, f"{where}: missing '{k}'",
                            "hint: {value: 34, tol: 5%, tokens: 300G, gpus: 1024, flops_per_gpu: 140T}")
    numbers = {}
    for k in ("value", *DAYS_SETTINGS):
        raw = doc.value(entries[k][1])
        try:
            numbers[k] = _plain(raw)
        except ValueError:
            raise doc.error(entries[k][1], f"{where}.{k}: expected a positive number such as 300G or"
                            f" 140e12, got {show(raw)}") from None
    tol, shown = 0.0, f"{doc.value(entries['value'][1])} days"
    if "tol" in entries:
        traw = doc.value(entries["tol"][1])
        try:
            tol = _finite(float(str(traw).strip().rstrip("%"))) / 100
            shown += f" ±{tol * 100:g}%"
        except ValueError:
            raise doc.error(entries["tol"][1], f"{where}.tol: expected a percentage such as 5%,"
                            f" got {show(traw)}") from None
    vnode = entries["value"][1]
    source = str(doc.value(entries["source"][1])) if "source" in entries else ""
    settings = tuple((k, numbers[k]) for k in DAYS_SETTINGS)
    return Claim("train_days", shown, numbers["value"], tol, doc.loc(vnode), None,
                 source, settings)


def _plain(raw: Any) -> float:
    """A positive number: 300G, 1,024, 140e12 (YAML 1.1 reads e-notation without a dot as text)."""
    try:
        value = parse_number(raw)[0]
    except ValueError:
        value = _finite(float(str(raw).replace(",", "").replace("_", "")))
    if value <= 0:
        raise ValueError(raw)
    return value
