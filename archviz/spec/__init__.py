"""The spec format: YAML text → a validated :class:`Spec` (layers with typed params, claims)."""

from .load import INPUT, LAYER_KEYS, NAME_RE, TOP_KEYS, Doc, Layer, Spec, load, loads, parse_layer

__all__ = ["INPUT", "LAYER_KEYS", "NAME_RE", "TOP_KEYS", "Doc", "Layer", "Spec", "load", "loads",
           "parse_layer"]
