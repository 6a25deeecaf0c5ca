"""Lowering choices: how an op with several torch implementations is built, as a value.

An op with more than one way to run in torch lists them in its class attribute
``OpKind.lowerings``, the default first (LRN: ``("fast", "torch")``; later attention:
``("eager", "sdpa")``). A :class:`Lowering` carries the choices for a whole run (compile, verify,
export, bench and cost take one; the CLI builds it from ``--lowering lrn=torch``); a layer of a
spec may state its own (``lowering: torch``), which beats the run's value
(:meth:`Lowering.choice`). Nothing reads the environment: the choice is always a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ArchvizError, did_you_mean
from ..record import record
from .registry import OPS

__all__ = ["Lowering", "LoweringError", "lowering_ops"]


class LoweringError(ArchvizError):
    """A lowering choice that names an op without choices, or a choice the op does not have."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def format(self) -> str:
        return str(self) + (f"\n{self.hint}" if self.hint else "")


def lowering_ops() -> dict[str, tuple[str, ...]]:
    """Op name → its lowerings (default first), for the ops that have a choice."""
    return {name: kind.lowerings for name, kind in OPS.items() if kind.lowerings}


def _checked(op: str, choice: str) -> str:
    """``choice`` if ``op`` has that lowering, else a :class:`LoweringError` naming the allowed."""
    ops = lowering_ops()
    if op not in ops:
        what = f"unknown op {op!r}" if op not in OPS else f"op {op} has no choice of lowering"
        close = _close(op, ops) if op not in OPS else ""
        hint = (close + "\n" if close else "") + f"ops with a choice: {_menu(ops)}"
        raise LoweringError(f"lowering {op}={choice}: {what}", hint)
    if choice not in ops[op]:
        raise LoweringError(f"lowering {op}={choice}: expected one of {', '.join(ops[op])}"
                            f" ({op}'s lowerings, {ops[op][0]} the default)", _close(choice, ops[op]))
    return choice


def _close(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'torch'?`` when a close match exists, else "" (the message lists them)."""
    hint = did_you_mean(word, choices)
    return hint if hint.startswith("did") else ""


def _menu(ops: Mapping[str, tuple[str, ...]]) -> str:
    """``lrn: fast (default) | torch``."""
    return "; ".join(f"{op}: {' | '.join(ch)} ({ch[0]} the default)" for op, ch in ops.items())


@record
class Lowering:
    """The lowering chosen for each op that has a choice; an op not named takes its default.

    ``choices``: (op, lowering) pairs, sorted, each checked against the op's ``lowerings``.
    ``Lowering()`` is every op's default; ``Lowering.of({"lrn": "torch"})`` or
    ``Lowering.parse("lrn=torch")`` choose."""

    choices: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        pairs = dict(self.choices)
        for op, choice in pairs.items():
            _checked(op, choice)
        object.__setattr__(self, "choices", tuple(sorted(pairs.items())))

    @classmethod
    def of(cls, choices: Mapping[str, str] | None = None) -> Lowering:
        return cls(tuple((choices or {}).items()))

    @classmethod
    def parse(cls, text: str) -> Lowering:
        """``"lrn=torch,attention=sdpa"`` (commas or spaces between choices; case ignored); an
        empty text is every default."""
        pairs: dict[str, str] = {}
        for item in text.replace(",", " ").split():
            op, eq, choice = item.partition("=")
            if not eq or not op or not choice:
                raise LoweringError(f"lowering {item!r}: expected op=choice, e.g. lrn=torch",
                                    f"ops with a choice: {_menu(lowering_ops())}")
            pairs[op.strip().lower()] = choice.strip().lower()
        return cls.of(pairs)

    def choice(self, op: str, own: str = "") -> str:
        """The lowering a layer of ``op`` is built with: its own (a spec's ``lowering:``) if it
        states one, else this value's, else the op's default; "" for an op without a choice."""
        if own:
            return own
        lowerings = OPS[op].lowerings
        return dict(self.choices).get(op, lowerings[0] if lowerings else "")

    def as_dict(self) -> dict[str, str]:
        """Every op with a choice → the lowering this value gives it (JSON, reports)."""
        return {op: self.choice(op) for op in lowering_ops()}

    def __str__(self) -> str:
        """``lrn=torch``: the choices that differ from the defaults ("" for none)."""
        return ",".join(f"{op}={ch}" for op, ch in self.choices if ch != OPS[op].lowerings[0])
