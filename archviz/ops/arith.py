"""Output-size arithmetic of sliding windows (convolution and pooling), written out.

The rule is PyTorch's (``torch.nn.Conv2d`` / ``MaxPool2d`` docs, and
``aten/src/ATen/native/Pool.h: pooling_output_shape``)::

    out = floor((n + 2p - d*(k-1) - 1) / s) + 1            # d = dilation; with d = 1: (n + 2p - k)/s + 1
    ceil_mode: ceil instead of floor, then one less if the last window would start in the right padding

Besides the size, each call returns the arithmetic as text with the numbers filled in
(``⌊(227 + 2·0 − 11)/4⌋ + 1 = 55``) and, when the division is not whole, a warning saying
which input rows or columns are never read and what input size or padding would be exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..record import record

if TYPE_CHECKING:   # fractions loads when an inexact division is first written out
    from fractions import Fraction


@record
class Window:
    """One axis of a sliding window: input size n, kernel k, stride s, padding p, dilation d."""

    n: int
    k: int
    s: int
    p: int
    d: int = 1
    ceil: bool = False

    @property
    def span(self) -> int:
        """Effective kernel extent, d*(k-1) + 1."""
        return self.d * (self.k - 1) + 1

    @property
    def numerator(self) -> int:
        return self.n + 2 * self.p - self.span

    @property
    def out(self) -> int:
        num, s = self.numerator, self.s
        if self.ceil:
            out = -(-num // s) + 1
            if (out - 1) * s >= self.n + self.p:  # last window would start in the padding
                out -= 1
            return out
        return num // s + 1

    @property
    def exact(self) -> bool:
        return self.numerator % self.s == 0

    def formula(self) -> str:
        """The arithmetic with numbers filled in, e.g. ``⌊(227 + 2·0 − 11)/4⌋ + 1 = 55``."""
        kpart = str(self.k) if self.d == 1 else f"{self.d}·({self.k} − 1) − 1"
        lo, hi = ("⌈", "⌉") if self.ceil else ("⌊", "⌋")
        return f"{lo}({self.n} + 2·{self.p} − {kpart})/{self.s}{hi} + 1 = {self.out}"


def _fmt(q: Fraction) -> str:
    return str(int(q)) if q.denominator == 1 else f"{float(q):.4g}"


def inexact_warning(w: Window, one: str, many: str) -> str | None:
    """Explain a division that is not whole on one axis (``one``/``many``: 'row'/'rows', ...)."""
    if w.exact or w.numerator < 0:
        return None
    from fractions import Fraction
    r = w.numerator % w.s
    quotient = _fmt(Fraction(w.numerator, w.s) + 1)
    kpart = str(w.k) if w.d == 1 else f"{w.span}"
    head = f"({w.n} + 2·{w.p} − {kpart})/{w.s} + 1 = {quotient} is not whole"
    if w.ceil:
        extra = w.s - r
        body = f"ceil_mode adds a last window that reaches {extra} {one if extra == 1 else many}" \
               " past the padded input"
    elif w.d == 1 and w.k < w.s:  # windows narrower than the stride leave gaps (1×1, stride 2)
        read = rows_read(w)
        body = (f"a window {w.k} wide with stride {w.s} reads {read} of the {w.n} input {many};"
                f" the other {w.n - read} (the last among them) are never read")
    else:
        what = f"last {one}" if r == 1 else f"last {r} {many}"
        verb = "is" if r == 1 and " and " not in one else "are"
        if w.p == 0:
            body = f"the {what} of the input {verb} never read"
        else:
            real = max(0, r - w.p)
            body = (f"the {what} of the padded input {verb} never read"
                    f" ({real} of input, {r - real} of padding)")
    return f"{head}: {body}; {fixes(w)} would make it exact"


def rows_read(w: Window) -> int:
    """How many of the n input rows (not padding) some window reads (dilation 1)."""
    read = 0
    end = w.p  # first input row not yet counted, in padded coordinates
    for i in range(w.out):
        lo, hi = max(i * w.s, end), min(i * w.s + w.k, w.p + w.n)
        if hi > lo:
            read += hi - lo
            end = hi
    return read


def fixes(w: Window) -> str:
    """Nearest input sizes (and a symmetric padding, if any) for which the division is whole."""
    r = w.numerator % w.s
    sizes = [w.n - r, w.n + (w.s - r)]
    parts = [f"input {' or '.join(str(n) for n in sizes if n >= w.span)}"]
    best = exact_padding(w)
    if best is not None:
        parts.append(f"padding {best}")
    return " or ".join(parts)


def exact_padding(w: Window) -> int | None:
    """The padding p in [0, k], other than ``w.p``, nearest to it (the smaller on a tie) for which
    (n + 2p − span) is divisible by s; None if there is none.

    Solved, not searched (the kernel is a number in the spec, so a loop over it would let a spec
    set the work): 2p ≡ span − n (mod s) has solutions iff gcd(2, s) divides span − n, and then
    they are p ≡ p0 (mod m) with m = s / gcd(2, s).
    """
    g = 2 if w.s % 2 == 0 else 1
    rhs = w.span - w.n
    if rhs % g:
        return None
    m = w.s // g
    # g == 2: p ≡ rhs/2 (mod m); g == 1 (s odd): p ≡ rhs · 2⁻¹ where 2⁻¹ = (s + 1)/2 (mod s)
    p0 = (rhs // 2) % m if g == 2 else (rhs * ((w.s + 1) // 2)) % m
    below = min(w.k, w.p - 1)
    above = max(0, w.p + 1)
    found = [below - (below - p0) % m, above + (p0 - above) % m]
    found = [p for p in found if 0 <= p <= w.k]
    return min(found, key=lambda p: (abs(p - w.p), p)) if found else None


def pair_formula(h: Window, w: Window) -> str:
    """One formula when both axes do the same arithmetic, else ``H: …; W: …``."""
    if h == w:
        return h.formula()
    return f"H: {h.formula()}; W: {w.formula()}"


def pair_warnings(h: Window, w: Window) -> tuple[str, ...]:
    if h == w:
        msg = inexact_warning(h, "row and column", "rows and columns")
        return (msg,) if msg else ()
    found = (inexact_warning(h, "row", "rows"), inexact_warning(w, "column", "columns"))
    return tuple(f"{axis}: {m}" for axis, m in zip("HW", found, strict=True) if m)


def nd_formula(wins: tuple[Window, ...], axes: str) -> str:
    """:func:`pair_formula` at any spatial rank: ``axes`` names them ("L", "DHW")."""
    if len(set(wins)) == 1:
        return wins[0].formula()
    return "; ".join(f"{a}: {w.formula()}" for a, w in zip(axes, wins, strict=True))


def nd_warnings(wins: tuple[Window, ...], axes: str) -> tuple[str, ...]:
    if len(set(wins)) == 1:
        msg = inexact_warning(wins[0], "position", "positions")
        return (msg,) if msg else ()
    found = (inexact_warning(w, "position", "positions") for w in wins)
    return tuple(f"{a}: {m}" for a, m in zip(axes, found, strict=True) if m)


@record
class TWindow:
    """One axis of a transposed convolution (torch.nn.ConvTranspose2d's docs)::

        out = (n − 1)·s − 2p + d·(k − 1) + output_padding + 1
    """

    n: int
    k: int
    s: int
    p: int
    d: int = 1
    op: int = 0

    @property
    def out(self) -> int:
        return (self.n - 1) * self.s - 2 * self.p + self.d * (self.k - 1) + self.op + 1

    def formula(self) -> str:
        """``(13 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 27``."""
        return (f"({self.n} − 1)·{self.s} − 2·{self.p} + {self.d}·({self.k} − 1) + {self.op} + 1"
                f" = {self.out}")
