"""``@record``: archviz's frozen dataclasses, made without compiling code.

CPython's ``@dataclass(frozen=True)`` writes ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` as source text and compiles each (CPython 3.11: about 1 ms
and 4 M instructions per class). archviz declares about 120 of them, and ``archviz shapes``
alone used to make 41 before it read its spec (issue 26's start-up). A record is the same
dataclass, with the same ``dataclasses.fields``, ``replace``, ``asdict``, ``__match_args__``,
equality, hash, repr and ``FrozenInstanceError``, whose methods are closures over its fields
instead: about 0.05 ms a class. Its first :data:`HOT` instances are built by a generic
``__init__`` (arguments checked as Python checks them, with Python's messages); after that the
class compiles the ``__init__`` a frozen dataclass has, once, so a record made thousands of times
(a cost sweep's) is built as fast as a dataclass, and one made a few times never pays to compile.

    @record
    class Loc:
        line: int
        col: int = 0

    @record(kw_only=True)        # every field a keyword
    class ConvParams: ...

Not supported: ``InitVar`` fields and a class that defines its own ``__setattr__`` or
``__delattr__`` (refused when the class is made); ``order``, ``slots`` and ``unsafe_hash`` (not
parameters). ``tests/test_record.py`` holds a record to ``@dataclass(frozen=True)``'s behaviour.
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
HOT = 64   # instances after which a record's __init__ is compiled
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


_FACTORY: Any = object()   # a compiled __init__'s default for a field with a default_factory


def _compiled_init(cls: type, inits: list[dataclasses.Field], post_init: bool) -> Callable[..., None]:
    """The ``__init__`` a frozen dataclass compiles, for a record made :data:`HOT` times: each
    field set through ``object.__setattr__`` in declaration order (CPython keeps the instance's
    values inline, without a dict of its own)."""
    ns: dict[str, Any] = {"__record_set__": object.__setattr__, "__record_factory__": _FACTORY}
    params: list[str] = []
    made: list[str] = []
    ordered = [f for f in inits if not f.kw_only] + [f for f in inits if f.kw_only]
    for f in ordered:
        if f.kw_only and "*" not in params:
            params.append("*")
        if f.default is not _MISSING:
            ns[f"__record_d_{f.name}"] = f.default
            params.append(f"{f.name}=__record_d_{f.name}")
        elif f.default_factory is not _MISSING:
            ns[f"__record_f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__record_factory__")
            made.append(f"    if {f.name} is __record_factory__:\n        {f.name} = __record_f_{f.name}()")
        else:
            params.append(f.name)
    lines = [f"def __init__(__record_self__, {', '.join(params)}):", *made]
    lines += [f"    __record_set__(__record_self__, {f.name!r}, {f.name})" for f in inits]
    lines += ["    __record_self__.__post_init__()"] if post_init else ["    pass"]
    exec("\n".join(lines), ns)   # noqa: S102 - names are the class's own identifiers
    fn = ns["__init__"]
    fn.__qualname__ = f"{cls.__qualname__}.__init__"
    if hasattr(fn.__code__, "co_qualname"):   # CPython 3.11+: its error messages name this
        fn.__code__ = fn.__code__.replace(co_qualname=fn.__qualname__)
    return fn


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

    calls = 0

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == HOT:   # a class made often: compile its __init__ once, as dataclass would
            fast = _compiled_init(cls, inits, post_init)
            type.__setattr__(cls, "__init__", fast)
            return fast(self, *args, **kwargs)
        # C-level dict work only, in the common case: defaults, then the arguments over them
        if len(args) > most:
            raise TypeError(f"{qual}.__init__() takes {takes} positional argument{_s(most + 1)} but "
                            f"{len(args) + 1} were given")
        values = self.__dict__
        if defaults:
            values.update(defaults)
        if args:
            values.update(zip(positional, args, strict=False))   # fewer args: the rest below
        if kwargs:
            if not known.issuperset(kwargs):
                key = next(k for k in kwargs if k not in known)
                raise TypeError(f"{qual}.__init__() got an unexpected keyword argument {key!r}")
            if args and not kwargs.keys().isdisjoint(positional[:len(args)]):
                key = next(k for k in kwargs if k in positional[:len(args)])
                raise TypeError(f"{qual}.__init__() got multiple values for argument {key!r}")
            values.update(kwargs)
        if factories:
            for name, make in factories.items():
                if name not in values:
                    values[name] = make()
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
