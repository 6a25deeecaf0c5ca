"""Typed fields of a layer: each one checks and normalises one YAML value.

A field's ``parse`` returns the normalised value or raises :class:`FieldError` with a
message that reads after ``layer.key:`` (``expected a positive integer, got 0``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import field as dc_field
from dataclasses import fields as dc_fields
from dataclasses import replace
from typing import Any

from ..record import record

Pair = tuple[int, int]
# a number written as text (quoted, or a form YAML 1.1 reads as text, such as 1e-4): signed or not
NUMBER_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
UNSIGNED_TEXT = r"^\s*\+?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


class FieldError(ValueError):
    """A value of the wrong type or range; the spec loader adds the location."""


def show(value: Any) -> str:
    """A value as a message shows it: text quoted, None as ``nothing``, booleans as YAML spells them."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _quoted(value: Any) -> str:
    """A hint for a number written in quotes (``kernel: "3"``), which YAML reads as text."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (text, not a number: write {value.strip()} without quotes)"
    return ""


MAX_INT = 2**31 - 1  # torch's sizes are int32 (archviz.limits.MAX_INT; ops sit below it)
MAX_RANK = 8         # dimensions of a per-example shape (archviz.limits.MAX_RANK)


def _int(value: Any, lo: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise FieldError(f"expected {what}, got {show(value)}{_quoted(value)}")
    if value > MAX_INT:
        raise FieldError(f"expected {what} of at most {MAX_INT} (2^31 − 1, torch's limit), got {value}")
    return value


@record
class Field:
    """Base: a required field has ``default`` None and ``required`` True. A subclass that adds no
    setting of its own is a plain subclass (it inherits the generated ``__init__``, ``__eq__``,
    ``__repr__`` and frozenness): creating a dataclass costs about a millisecond at start-up."""

    required: bool = False
    default: Any = None
    doc: str = ""

    def parse(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:  # pragma: no cover - overridden
        """The JSON Schema of the values ``parse`` accepts (archviz schema)."""
        raise NotImplementedError

    def documented_schema(self) -> dict[str, Any]:
        """:meth:`json_schema` with this field's description and default."""
        out = dict(self.json_schema())
        out["description"] = f"{self.doc}: {self.describe()}" if self.doc else self.describe()
        if self.default is not None:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return out


class PosInt(Field):
    def parse(self, value: Any) -> int:
        return _int(value, 1, "a positive integer")

    def describe(self) -> str:
        return "positive integer"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1}


@record
class PairField(Field):
    """An int or an [h, w] pair of ints, >= ``lo``; normalised to a (h, w) tuple."""

    lo: int = 1

    def parse(self, value: Any) -> Pair:
        what = "a positive integer" if self.lo == 1 else "a non-negative integer"
        if isinstance(value, list):
            if len(value) != 2:
                raise FieldError(f"expected {what} or a pair [h, w], got a list of {len(value)}")
            return (_int(value[0], self.lo, what), _int(value[1], self.lo, what))
        if isinstance(value, (int, bool)) and not isinstance(value, bool):
            v = _int(value, self.lo, what)
            return (v, v)
        raise FieldError(f"expected {what} or a pair [h, w], got {show(value)}{_quoted(value)}")

    def describe(self) -> str:
        return "int or [h, w]" + (" (>= 0)" if self.lo == 0 else " (>= 1)")

    def json_schema(self) -> dict[str, Any]:
        one = {"type": "integer", "minimum": self.lo}
        return {"anyOf": [one, {"type": "array", "items": one, "minItems": 2, "maxItems": 2}]}


class PaddingField(Field):
    """An int, an [h, w] pair, or 'same' / 'valid' (as torch's Conv2d)."""

    def parse(self, value: Any) -> Pair | str:
        if isinstance(value, str):
            if value in ("same", "valid"):
                return value
            raise FieldError(f"expected an integer, [h, w], 'same' or 'valid', got {show(value)}"
                             + _quoted(value))
        return PairField(lo=0).parse(value)

    def describe(self) -> str:
        return "int, [h, w], 'same' or 'valid'"

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [*PairField(lo=0).json_schema()["anyOf"], {"enum": ["same", "valid"]}]}


class BoolField(Field):
    def parse(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldError(f"expected true or false, got {show(value)}")
        return value

    def describe(self) -> str:
        return "true or false"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@record
class FloatField(Field):
    """A number in [lo, hi]. Text such as ``1e-4`` (which YAML 1.1 reads as text) is accepted
    where the JSON Schema can check it too: on a field without bounds, and (unsigned) on one
    that is only >= 0; a field bounded above (dropout's p) takes numbers only."""

    lo: float = float("-inf")
    hi: float = float("inf")

    def text_pattern(self) -> str | None:
        """The number-as-text this field accepts, as a regular expression; None: no text."""
        if self.hi != float("inf"):
            return None
        return NUMBER_TEXT if self.lo == float("-inf") else UNSIGNED_TEXT if self.lo == 0 else None

    def parse(self, value: Any) -> float:
        if isinstance(value, str):
            pattern = self.text_pattern()
            if pattern is None:
                hint = _quoted(value) and f" (text, not a number: write {float(value)!r} without quotes)"
                raise FieldError(f"expected {self._range()}, got {show(value)}{hint}")
            if not re.match(pattern, value):
                raise FieldError(f"expected a number{'' if self.lo < 0 else ' >= 0'}, got {show(value)}")
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError(f"expected a number, got {show(value)}")
        if not self.lo <= value <= self.hi:  # show(): an int too large for a float prints too
            raise FieldError(f"expected {self._range()}, got {show(value)}")
        return float(value)

    def _range(self) -> str:
        return f"a number in [{self.lo:g}, {self.hi:g}]"

    def describe(self) -> str:
        return f"number in [{self.lo:g}, {self.hi:g}]"

    def json_schema(self) -> dict[str, Any]:
        number: dict[str, Any] = {"type": "number"}
        if self.lo != float("-inf"):
            number["minimum"] = self.lo
        if self.hi != float("inf"):
            number["maximum"] = self.hi
        text = self.text_pattern()  # number-as-text exactly where the loader accepts it
        return {"anyOf": [number, {"type": "string", "pattern": text}]} if text else number


_NO_DEFAULT: Any = object()


def param(parser: Field, default: Any = _NO_DEFAULT) -> Any:
    """A field of an op's params dataclass: ``parser`` checks the YAML value; without ``default``
    the key is required. ``kernel: Pair = param(PairField(doc="kernel size"))``."""
    required = default is _NO_DEFAULT
    spec = replace(parser, required=required, default=None if required else default)
    if required:
        return dc_field(metadata={"field": spec})
    return dc_field(default=default, metadata={"field": spec})


def fields_of(params_type: type) -> dict[str, Field]:
    """key → its parser (required flag and default filled), in declaration order."""
    return {f.name: f.metadata["field"] for f in dc_fields(params_type)}


_MAKING: set[type] = set()
_MAKE_LOCK = threading.RLock()


def _made(cls: type) -> None:
    """Make ``cls`` (a :class:`Settings` subclass) the frozen, keyword-only dataclass it declares."""
    with _MAKE_LOCK:
        if "__dataclass_fields__" not in cls.__dict__ and cls not in _MAKING:
            _MAKING.add(cls)
            try:
                record(kw_only=True)(cls)
            finally:
                _MAKING.discard(cls)


class _OnFirstUse(type):
    """:class:`Settings`' metaclass: a subclass becomes its dataclass when it is first called or
    its dataclass fields are first read (``dataclasses.fields``, ``is_dataclass``), not when its
    module is imported."""

    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> None:
        super().__init__(name, bases, ns)
        if any(b is not Settings and isinstance(b, _OnFirstUse) for b in bases):
            _made(cls)   # a subclass of params: made now (its fields would read its base's)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "__dataclass_fields__" not in cls.__dict__:
            _made(cls)
        return super().__call__(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:   # only for what the class does not have yet
        if name.startswith("__dataclass_") and cls is not Settings and cls not in _MAKING \
                and "__dataclass_fields__" not in cls.__dict__:
            _made(cls)
            return getattr(cls, name)
        raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


class Settings(metaclass=_OnFirstUse):
    """The base of an op's params: ``class ConvParams(Settings)`` with :func:`param` fields is a
    frozen, keyword-only dataclass, made when the class is first used (CPython 3.11 spends about
    4 M instructions on each; ``archviz shapes`` of a CNN need not make those of the ops it does
    not use, such as the other ops of the families it imports)."""

    __slots__ = ()


class Count(Field):
    """A non-negative integer (a traced parameter count may be 0)."""

    def parse(self, value: Any) -> int:
        return _int(value, 0, "a non-negative integer")

    def describe(self) -> str:
        return "non-negative integer"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0}


class ShapeField(Field):
    """A per-example shape of any rank ([F], [S, D], [C, H, W], ...) of positive integers; a tuple."""

    def parse(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_RANK:
            raise FieldError(f"expected a list of 1 to {MAX_RANK} sizes ([F], [S, D], [C, H, W], ...),"
                             f" got {show(value)}")
        return tuple(_int(v, 1, "positive sizes") for v in value)

    def describe(self) -> str:
        return f"[F], [S, D], [C, H, W], ... (1 to {MAX_RANK} sizes)"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                "maxItems": MAX_RANK}


class TextField(Field):
    """Printable text (a module type or function name, as traced)."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise FieldError(f"expected printable text, got {show(value)}")
        return value

    def describe(self) -> str:
        return "text"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}


@record
class IntField(Field):
    """An integer >= ``lo`` (a dimension: negative counts from the end, -1 the last)."""

    lo: int = -MAX_RANK

    def parse(self, value: Any) -> int:
        return _int(value, self.lo, f"an integer >= {self.lo}")

    def describe(self) -> str:
        return f"integer >= {self.lo}"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo}


@record
class IntListField(Field):
    """A list of 1 to MAX_RANK integers >= ``lo`` (dimensions, or a target shape with one -1); a tuple."""

    lo: int = -MAX_RANK

    def parse(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_RANK:
            raise FieldError(f"expected a list of 1 to {MAX_RANK} integers, got {show(value)}")
        return tuple(_int(v, self.lo, f"integers >= {self.lo}") for v in value)

    def describe(self) -> str:
        return f"list of 1 to {MAX_RANK} integers >= {self.lo}"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "integer", "minimum": self.lo}, "minItems": 1,
                "maxItems": MAX_RANK}
AXES = {1: "l", 2: "h, w", 3: "d, h, w"}   # a size list's axes, by spatial rank


@record
class SizesField(Field):
    """An int or a list of ``n`` ints (one per spatial axis: [l], [d, h, w]), >= ``lo``;
    normalised to an n-tuple. ``words``: also 'same' and 'valid' (a convolution's padding)."""

    n: int = 1
    lo: int = 1
    words: bool = False

    def parse(self, value: Any) -> Any:
        what = "a positive integer" if self.lo == 1 else "a non-negative integer"
        form = f"[{AXES[self.n]}]"
        if self.words and isinstance(value, str):
            if value in ("same", "valid"):
                return value
            raise FieldError(f"expected an integer, {form}, 'same' or 'valid', got {show(value)}"
                             + _quoted(value))
        if isinstance(value, list):
            if len(value) != self.n:
                raise FieldError(f"expected {what} or a list {form}, got a list of {len(value)}")
            return tuple(_int(v, self.lo, what) for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return (_int(value, self.lo, what),) * self.n
        raise FieldError(f"expected {what} or a list {form}, got {show(value)}{_quoted(value)}")

    def describe(self) -> str:
        words = ", 'same' or 'valid'" if self.words else ""
        return f"int or [{AXES[self.n]}]{words}" + (" (>= 0)" if self.lo == 0 else " (>= 1)")

    def json_schema(self) -> dict[str, Any]:
        one = {"type": "integer", "minimum": self.lo}
        forms: list[dict[str, Any]] = [one, {"type": "array", "items": one, "minItems": self.n,
                                             "maxItems": self.n}]
        return {"anyOf": forms + ([{"enum": ["same", "valid"]}] if self.words else [])}


@record
class ChoiceField(Field):
    """One of a few words (``mode: row``)."""

    choices: tuple[str, ...] = ()

    def parse(self, value: Any) -> str:
        if value not in self.choices:
            raise FieldError(f"expected one of {', '.join(self.choices)}, got {show(value)}")
        return str(value)

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


class ScaleField(Field):
    """A positive number (a resampling factor)."""

    def parse(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < MAX_INT:
            raise FieldError(f"expected a positive number, got {show(value)}{_quoted(value)}")
        return float(value)

    def describe(self) -> str:
        return "positive number"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": 0}


class SizeListField(Field):
    """An int (every spatial axis) or a list of 1 to 3 positive ints (one per axis: [l], [h, w],
    [d, h, w]); the list becomes a tuple, matched against the input's rank by the op."""

    def parse(self, value: Any) -> int | tuple[int, ...]:
        if isinstance(value, list):
            if not 1 <= len(value) <= 3:
                raise FieldError(f"expected a positive integer or a list of 1 to 3,"
                                 f" got a list of {len(value)}")
            return tuple(_int(v, 1, "a positive integer") for v in value)
        return _int(value, 1, "a positive integer or a list [h, w]")

    def describe(self) -> str:
        return "int or [l], [h, w], [d, h, w] (>= 1)"

    def json_schema(self) -> dict[str, Any]:
        one = {"type": "integer", "minimum": 1}
        return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 3}]}
