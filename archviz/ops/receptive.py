"""Receptive fields: the arithmetic of which input pixels one output unit of a layer can see.

Each op applies it in its ``receptive`` rule (:mod:`archviz.ops.registry`); the analysis
carries the field from layer to layer. The conventions below are documented in
docs/receptive-fields.md.

Per axis (H and W apart) three numbers, the standard recurrence (Dumoulin & Visin, "A guide to
convolution arithmetic", 2016; Araujo et al., "Computing receptive fields of CNNs", Distill 2019)::

    j_out     = j_in · s                                  # jump: input pixels between neighbour units
    r_out     = r_in + (k_eff − 1) · j_in                 # size of the field, k_eff = d·(k − 1) + 1
    start_out = start_in + ((k_eff − 1)/2 − p) · j_in     # centre of the first unit's field

Conventions:

* Coordinates are those of input pixel centres: the first pixel is 0, the last H − 1. The
  network input has r = 1, j = 1, start = 0. A negative start means the first unit is centred
  in the padding. Sizes count padding too (a border unit's field is clipped by the image edge).
* Values are always (h, w) pairs. ``start`` is a number that may be a half (even kernels).
* Elementwise layers (activations, norms, dropout, softmax over channels) keep the field;
  LRN mixes channels only, so it keeps it too.
* ``add`` / ``concat``: a unit sees the union of its inputs' fields at the same position:
  with equal jumps (the usual case) that union is exact; with unequal jumps the union is taken
  for the first unit and the largest jump is kept (then sizes of later units may differ).
* ``adaptive_avgpool``: computed from torch's actual windows (start ⌊i·n/o⌋, end ⌈(i+1)·n/o⌉):
  the size uses the largest window, the jump the mean spacing of the windows (exact when the
  windows are evenly spaced, e.g. 6 → 6 or 12 → 6), the start the first window.
* ``flatten`` keeps the field: each element of the vector is one channel at one position, and
  sees what that position saw (``jump`` and ``start`` refer to the grid before flattening).
* ``linear`` (and every layer after it): each unit reads every position, so it sees the whole
  input: ``rf`` is the input's (H, W), ``start`` its centre ((H − 1)/2, (W − 1)/2) and ``jump``
  is None (no grid). (Input rows that no window reads, e.g. with a stride that does not divide,
  are counted in "the whole input" all the same.)
* A network whose input is a vector (F,) has no receptive fields: all three are None.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..record import record

if TYPE_CHECKING:   # fractions loads when a half or an adaptive pool first needs one
    from fractions import Fraction

    Q = int | Fraction

Shape = tuple[int, ...]
Num = int | float


@record
class Axis:
    """One axis of a receptive field. ``start2`` is twice the start, so that halves stay integers;
    values are ints, or Fractions after an unevenly spaced adaptive pool (see :func:`number`)."""

    size: Q
    jump: Q
    start2: Q

    def through(self, k_eff: int, s: Q, p: int) -> Axis:
        """The field after a window of effective extent ``k_eff``, stride ``s``, left padding ``p``."""
        return Axis(self.size + (k_eff - 1) * self.jump, self.jump * s,
                    self.start2 + (k_eff - 1 - 2 * p) * self.jump)

    @property
    def start(self) -> Q:
        return half(self.start2)

    @property
    def lo2(self) -> Q:
        """Twice the centre of the field's first pixel."""
        return self.start2 - (self.size - 1)

    @property
    def hi2(self) -> Q:
        return self.start2 + (self.size - 1)


@record
class ReceptiveField:
    """A layer's receptive field: ``axes`` (H, W) on a grid, or ``whole`` for vector layers."""

    axes: tuple[Axis, Axis] | None
    whole: tuple[int, int] | None = None   # (H, W) of the network input, for vector layers

    @property
    def size(self) -> tuple[Num, Num] | None:
        if self.whole is not None:
            return self.whole
        return None if self.axes is None else (number(self.axes[0].size), number(self.axes[1].size))

    @property
    def jump(self) -> tuple[Num, Num] | None:
        return None if self.axes is None else (number(self.axes[0].jump), number(self.axes[1].jump))

    @property
    def start(self) -> tuple[Num, Num] | None:
        if self.whole is not None:
            return (number(half(self.whole[0] - 1)), number(half(self.whole[1] - 1)))
        return None if self.axes is None else (number(self.axes[0].start), number(self.axes[1].start))


NONE = ReceptiveField(None)
_UNIT = Axis(1, 1, 0)


def half(q: Q) -> Q:
    """q/2, kept an int when it is whole."""
    if isinstance(q, int) and q % 2 == 0:
        return q // 2
    from fractions import Fraction
    return Fraction(q, 2)


def number(q: Q) -> Num:
    """An int when whole, else a float (a half for even kernels; other fractions after adaptive pools)."""
    if isinstance(q, int):
        return q
    return int(q) if q.denominator == 1 else float(q)


def network_input(shape: Shape) -> ReceptiveField:
    """The field of the network input itself: one pixel, jump 1, centred on pixel 0."""
    return ReceptiveField((_UNIT, _UNIT)) if len(shape) == 3 else NONE


def windowed(f: ReceptiveField, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
             d: tuple[int, int] = (1, 1)) -> ReceptiveField:
    """The field after a conv or pool window (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``)."""
    if f.axes is None:
        return f
    (h, kh, sh, ph, dh), (w, kw, sw, pw, dw) = zip(f.axes, k, s, p, d, strict=True)
    return ReceptiveField((h.through(dh * (kh - 1) + 1, sh, ph), w.through(dw * (kw - 1) + 1, sw, pw)))


def _adaptive_axis(ax: Axis, n: int, o: int) -> Axis:
    """torch's adaptive windows on one axis: [⌊i·n/o⌋, ⌈(i+1)·n/o⌉) for i < o."""
    # Closed forms, not a loop over the o windows (o is a number in the spec). Window i spans
    # ⌈(i+1)n/o⌉ − ⌊in/o⌋ = ⌈f_i + n/o⌉ with f_i = (in mod o)/o; over i < o, in mod o takes every
    # multiple of g = gcd(n, o) below o, so the widest window is ⌈(n + o − g)/o⌉.
    from fractions import Fraction
    k = -(-(n + o - math.gcd(n, o)) // o)
    mean = Fraction((o - 1) * n // o, o - 1) if o > 1 else Fraction(n)
    spacing: Q = int(mean) if mean.denominator == 1 else mean
    first = -(-n // o)
    return Axis(ax.size + (k - 1) * ax.jump, ax.jump * spacing, ax.start2 + (first - 1) * ax.jump)


def adaptive(f: ReceptiveField, ins: Shape, out: Shape) -> ReceptiveField:
    """The field after adaptive pooling from ``ins`` (C, H, W) to ``out`` (C, h, w)."""
    if f.axes is None:
        return f
    h, w = (_adaptive_axis(ax, n, o) for ax, n, o in zip(f.axes, ins[1:], out[1:], strict=True))
    return ReceptiveField((h, w))


def whole(fs: tuple[ReceptiveField, ...], image: Shape) -> ReceptiveField:
    """A unit that reads every position (linear and after): the whole input image."""
    if any(f.axes is None and f.whole is None for f in fs):
        return NONE
    return ReceptiveField(None, (image[1], image[2]))


def _union(axes: tuple[Axis, ...]) -> Axis:
    if len(set(axes)) == 1:
        return axes[0]
    lo2 = min(ax.lo2 for ax in axes)
    hi2 = max(ax.hi2 for ax in axes)
    # lo = lo2/2 and hi = hi2/2: size hi − lo + 1, centre (lo + hi)/2, i.e. start2 = (lo2 + hi2)/2
    return Axis(half(hi2 - lo2) + 1, max(ax.jump for ax in axes), half(lo2 + hi2))


def union(fs: tuple[ReceptiveField, ...], image: Shape) -> ReceptiveField:
    """A merge (add, concat): the union of its inputs' fields at the same position."""
    if any(f.axes is None for f in fs):
        return whole(fs, image)
    axes = [f.axes for f in fs if f.axes is not None]
    return ReceptiveField((_union(tuple(a[0] for a in axes)), _union(tuple(a[1] for a in axes))))
