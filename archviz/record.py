"""``@record``: archviz's frozen dataclasses, made without compiling code.

CPython's ``@dataclass(frozen=True)`` writes ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` as source text and compiles each (CPython 3.11: about 1 ms
and 4 M instructions per class). archviz declares about 120 of them, and ``archviz shapes``
alone used to make 41 before it read its spec (issue 26's start-up). A record is the same
dataclass, with the same ``dataclasses.fields``, ``replace``, ``asdict``, ``__match_args__``,
equality, hash, repr and ``FrozenInstanceError``, whose methods are closures over its fields
instead: about 0.15 ms a class, and no slower to build an instance (a frozen dataclass sets each
field through ``object.__setattr__``; a record fills ``__dict__`` at once).

    @record
    class Loc:
        line: int
        col: int = 0

    @record(kw_only=True)        # every field a keyword
    class ConvParams: ...

Not supported (refused when the class is made): ``InitVar`` fields, ``order=True``, ``slots``,
and a class that defines its own ``__setattr__``/``__delattr__``. ``tests/test_record.py`` holds
a record to ``@dataclass(frozen=True)``'s behaviour.
"""

from __future__ import annotations

import dataclasses
import reprlib
import sys
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - type checkers only
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda f: f

T = TypeVar("T", bound=type)
_MISSING = dataclasses.MISSING


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj → (obj.a, obj.b, …)``, a tuple for any number of names."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _missing(qual: str, names: list[str], kind: str) -> TypeError | None:
    """CPython's own message for missing arguments (``'a', 'b', and 'c'``)."""
    if not names:
        return None
    quoted = [repr(n) for n in names]
    if len(quoted) <= 2:
        listed = " and ".join(quoted)
    else:
        listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    return TypeError(f"{qual}.__init__() missing {len(names)} required {kind} "
                     f"argument{_s(len(names))}: {listed}")


def _init(cls: type, inits: list[dataclasses.Field]) -> Callable[..., None]:
    qual = cls.__qualname__
    names = tuple(f.name for f in inits)
    positional = tuple(f.name for f in inits if not f.kw_only)
    known = frozenset(names)
    defaults = {f.name: f.default for f in inits if f.default is not _MISSING}
    factories = {f.name: f.default_factory for f in inits if f.default_factory is not _MISSING}
    seen_default = ""
    for f in inits:
        if f.kw_only:
            continue
        if f.name in defaults or f.name in factories:
            seen_default = f.name
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument {seen_default!r}")
    post_init = hasattr(cls, "__post_init__")
    count, most = len(names), len(positional)
    least = sum(1 for f in positional if f not in defaults and f not in factories)
    takes = f"{most + 1}" if least == most else f"from {least + 1} to {most + 1}"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > most:
            raise TypeError(f"{qual}.__init__() takes {takes} positional argument{_s(most + 1)} but "
                            f"{len(args) + 1} were given")
        values = self.__dict__
        values.update(zip(positional, args, strict=False))   # fewer args: the rest below
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{qual}.__init__() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{qual}.__init__() got multiple values for argument {key!r}")
            values[key] = value
        if len(values) < count:
            for name in names:
                if name not in values:
                    if name in defaults:
                        values[name] = defaults[name]
                    elif name in factories:
                        values[name] = factories[name]()
            if len(values) < count:
                raise (_missing(qual, [n for n in positional if n not in values], "positional")
                       or _missing(qual, [n for n in names if n not in values], "keyword-only"))
        if post_init:
            self.__post_init__()

    return __init__


def _methods(cls: type, fields: tuple[dataclasses.Field, ...], repr_: bool) -> dict[str, Any]:
    compared = _getter(tuple(f.name for f in fields if f.compare))
    hashed = _getter(tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)))

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    methods: dict[str, Any] = {"__init__": _init(cls, [f for f in fields if f.init]),
                               "__eq__": __eq__, "__hash__": __hash__}
    if repr_:
        shown = tuple(f.name for f in fields if f.repr)

        @reprlib.recursive_repr()
        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
            return f"{self.__class__.__qualname__}({inner})"

        methods["__repr__"] = __repr__
    return methods


@overload
def record(cls: T, /) -> T: ...
@overload
def record(*, kw_only: bool = False, repr: bool = True) -> Callable[[T], T]: ...


@dataclass_transform(frozen_default=True, kw_only_default=False, field_specifiers=(dataclasses.field,))
def record(cls: Any = None, /, *, kw_only: bool = False, repr: bool = True) -> Any:
    """Make ``cls`` a frozen dataclass (see the module's docstring); ``kw_only`` and ``repr`` mean
    what they mean to ``@dataclass``."""

    def make(cls: T) -> T:
        own = cls.__dict__
        for name in ("__setattr__", "__delattr__"):
            if name in own:
                raise TypeError(f"cannot overwrite attribute {name} in record {cls.__qualname__}")
        doc = own.get("__doc__")
        if doc is None:
            cls.__doc__ = cls.__name__   # spares dataclass an inspect.signature; set properly below
        dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
        every = cls.__dict__["__dataclass_fields__"].values()
        if any(isinstance(f.type, dataclasses.InitVar) or f.type is dataclasses.InitVar
               or (isinstance(f.type, str) and "InitVar" in f.type) for f in every):
            raise TypeError(f"record {cls.__qualname__}: InitVar fields are not supported")
        fields = dataclasses.fields(cls)
        methods = _methods(cls, fields, repr)
        for name, method in methods.items():
            if name not in own or (name == "__hash__" and own[name] is None):
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, method)
        cls.__setattr__ = _frozen_setattr   # type: ignore[method-assign, assignment]
        cls.__delattr__ = _frozen_delattr   # type: ignore[method-assign, assignment]
        if doc is None:
            cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields if f.init)})"
        return cls

    return make if cls is None else make(cls)
