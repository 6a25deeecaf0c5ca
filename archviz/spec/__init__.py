"""The spec format: YAML text → a validated :class:`Spec` (layers with typed params, claims)."""

from .doc import INPUT, NAME_RE, Doc, Layer, Origin
from .load import LAYER_KEYS, TOP_KEYS, Spec, load, loads, parse_layer

__all__ = ["INPUT", "LAYER_KEYS", "NAME_RE", "TOP_KEYS", "Doc", "Layer", "Origin", "Spec", "load", "loads",
           "parse_layer"]
