"""The ``claims:`` section: what a paper states, parsed into values with a tolerance.

Forms accepted (values may use K / M / G suffixes and thousands separators)::

    claims:
      params: 60M ±5%                      # total, within 5 %
      neurons: {value: 650K, tol: 5%, source: "Section 1"}
      input_elements: 150528               # exact
      layer_neurons: {conv1: 253440, conv2: 186624}
      layer_kernels: {conv2: 5x5x48}       # one kernel's size: kh × kw × input channels it reads
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import did_you_mean
from .doc import Doc, show

TOTAL_KEYS = ("params", "neurons", "activations", "macs", "flops", "input_elements")
LAYER_KEYS = ("layer_params", "layer_neurons", "layer_activations", "layer_macs", "layer_kernels")
_NUM = re.compile(r"^\s*([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([KMGT]?)\s*"
                  r"(?:(?:±|\+-|\+/-)\s*([0-9.]+)\s*%)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@dataclass(frozen=True)
class Claim:
    """One stated figure: ``key`` (e.g. 'neurons'), ``layer`` for per-layer claims."""

    key: str
    text: str                    # as written in the spec
    value: float | tuple[int, ...]
    rel_tol: float               # 0.05 for ±5 %; 0 = exact
    loc: Any                     # errors.Loc
    layer: str | None = None
    source: str = ""


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
    parts = text if isinstance(text, list) else re.split(r"\s*[x×]\s*", str(text).strip())
    try:
        dims = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(text) from None
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(text)
    return dims


def parse_claims(doc: Doc, node: yaml.Node) -> tuple[Claim, ...]:
    out: list[Claim] = []
    for key, (knode, vnode) in doc.mapping(node, "claims").items():
        if key in TOTAL_KEYS:
            out.append(_one(doc, key, vnode, None))
        elif key in LAYER_KEYS:
            for layer, (_, lv) in doc.mapping(vnode, f"claims.{key}").items():
                out.append(_one(doc, key, lv, layer))
        else:
            raise doc.error(knode, f"claims: unknown claim '{key}'",
                            did_you_mean(key, TOTAL_KEYS + LAYER_KEYS))
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
        value, tol = parse_number(raw)
    except ValueError:
        form = "a kernel size such as 5x5x48" if key == "layer_kernels" else \
            "a number such as 60M, 650K ±5% or 253440"
        raise doc.error(value_node, f"{where}: expected {form}, got {show(raw)}") from None
    return Claim(key, str(raw), value, tol, doc.loc(value_node), layer, source)
