"""The limits that keep a hostile spec from costing unbounded time or memory (docs/limits.md).

Every number here bounds work that a number written inside a spec could otherwise set; the work
archviz does grows with the expanded network and no faster. The limits that a real network may
reach are configurable through an environment variable (read when a spec is loaded); the others
are the ranges torch itself accepts.
"""

from __future__ import annotations

import os

MAX_GPUS = 64                 # `gpus:` and `--gpus`: a list per GPU is made for the split view
MAX_INT = 2**31 - 1           # sizes, channels, kernels, strides, padding: torch's int32 sizes
MAX_RANK = 8                  # dimensions of a per-example shape ((C, D, H, W) is 4; torch allows more)
MAX_LANES = 8                 # GPU lanes a split diagram draws: every crossing layer has lanes² edges
MAX_DEPTH = 64                # nesting of YAML mappings and lists, aliases expanded (specs use < 10)

_DEFAULTS = {
    "ARCHVIZ_MAX_LAYERS": 1_000_000,         # layers after blocks and repeat are expanded
    "ARCHVIZ_MAX_SPEC_BYTES": 16 * 2**20,    # the size of a spec file
    "ARCHVIZ_MAX_ALIAS_NODES": 100_000,      # YAML nodes that aliases may add to a document
}


def _setting(name: str) -> int:
    text = os.environ.get(name, "")
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    return _DEFAULTS[name]


def max_layers() -> int:
    """Layers of the expanded network (ARCHVIZ_MAX_LAYERS; default 1,000,000, 10× the scale benchmark)."""
    return _setting("ARCHVIZ_MAX_LAYERS")


def max_spec_bytes() -> int:
    """The size of a spec file in bytes (ARCHVIZ_MAX_SPEC_BYTES; default 16 MiB)."""
    return _setting("ARCHVIZ_MAX_SPEC_BYTES")


def max_alias_nodes() -> int:
    """YAML nodes that aliases may add beyond those written (ARCHVIZ_MAX_ALIAS_NODES; default 100,000)."""
    return _setting("ARCHVIZ_MAX_ALIAS_NODES")
