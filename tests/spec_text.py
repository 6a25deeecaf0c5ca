"""A small spec from its layers' flow-style YAML lines, as the op tests write them."""

from __future__ import annotations

import archviz


def spec_of(input_: str, *layers: str, dtype: str = "") -> archviz.Spec:
    """``name: t``, ``input: input_`` (and ``input_dtype: dtype`` if given), then ``layers``."""
    head = f"name: t\ninput: {input_}\n" + (f"input_dtype: {dtype}\n" if dtype else "") + "layers:\n"
    return archviz.loads(head + "".join(f"  - {la}\n" for la in layers), "t.yaml")
