"""``archviz.record.record`` behaves as ``@dataclass(frozen=True)`` does: the same class made both
ways gives equal results for construction, errors, equality, hash, repr, ``dataclasses`` helpers,
pickling and frozenness. The oracle is CPython's own dataclass."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from archviz.record import HOT, record


def _pair(body: dict[str, Any], *, kw_only: bool = False,
          base: tuple[type, type] | None = None) -> tuple[type, type]:
    """The class ``body`` declares, made by ``@dataclass(frozen=True)`` and by ``@record``."""
    made = []
    for deco, parent in ((dataclass(frozen=True, kw_only=kw_only), base[0] if base else object),
                         (record(kw_only=kw_only), base[1] if base else object)):
        ns = dict(body)
        ns["__annotations__"] = dict(body["__annotations__"])
        made.append(deco(type("R", (parent,), ns)))
    return made[0], made[1]


MANY = {"__annotations__": {"a": int, "b": int, "c": int, "d": int}, "d": 0}
PLAIN = {"__annotations__": {"a": int, "b": str, "c": float, "d": tuple},
         "b": "x", "c": 0.5, "d": field(default_factory=tuple)}
HIDDEN = {"__annotations__": {"a": int, "n": int, "k": ClassVar[int]},
          "n": field(default=3, repr=False, compare=False), "k": 7}

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}), ((1, "y"), {}), ((1, "y", 2.0, (3,)), {}), ((), {"a": 1, "d": (1, 2)}),
    ((1,), {"c": 9.0}), ((), {}), ((1, 2, 3, 4, 5), {}), ((1,), {"a": 2}), ((1,), {"zz": 1}),
]


def _outcome(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        obj = cls(*args, **kwargs)
    except TypeError as err:   # the message names the class: compare what follows its name
        return ("TypeError", str(err).split(".__init__() ", 1)[-1])
    return dataclasses.astuple(obj)


@pytest.mark.parametrize("hot", [False, True])
@pytest.mark.parametrize("args,kwargs", CALLS)
def test_construction_and_its_errors(args: tuple[Any, ...], kwargs: dict[str, Any], hot: bool) -> None:
    """Before and after the record is made ``HOT`` times (its __init__ is then compiled)."""
    stock, ours = _pair(PLAIN)
    if hot:
        init = ours.__init__
        for i in range(HOT):
            ours(i)
        assert ours.__init__ is not init and ours(7, "z") == ours(7, "z")
    assert _outcome(ours, args, kwargs) == _outcome(stock, args, kwargs)


@pytest.mark.parametrize("hot", [False, True])
@pytest.mark.parametrize("kw_only", [False, True])
@pytest.mark.parametrize("args,kwargs", [((), {}), ((1,), {}), ((1, 2), {}), ((), {"d": 1})])
def test_missing_arguments_are_named_as_python_names_them(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                            kw_only: bool, hot: bool) -> None:
    stock, ours = _pair(MANY, kw_only=kw_only)
    for _ in range(HOT if hot else 0):
        ours(a=1, b=2, c=3)
    assert _outcome(ours, args, kwargs) == _outcome(stock, args, kwargs)


def test_equality_hash_repr_and_helpers() -> None:
    stock, ours = _pair(PLAIN)
    s, o = stock(1, "y"), ours(1, "y")
    assert repr(o) == repr(s)
    assert o == ours(1, "y") and o != ours(2, "y") and o != s   # another class: not equal
    assert hash(o) == hash(ours(1, "y")) and len({o, ours(1, "y"), ours(2)}) == 2
    assert dataclasses.asdict(o) == dataclasses.asdict(s)
    assert dataclasses.replace(o, c=2.0) == ours(1, "y", 2.0)
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(stock)]
    assert ours.__match_args__ == stock.__match_args__
    assert dataclasses.is_dataclass(o)
    assert copy.deepcopy(o) == o and copy.copy(o) == o


@record(kw_only=True)
class Pickled:
    a: int
    b: tuple[int, ...] = ()


def test_pickle() -> None:
    obj = Pickled(a=1, b=(2,))
    assert pickle.loads(pickle.dumps(obj)) == obj


def test_repr_compare_and_classvar_follow_the_field_flags() -> None:
    stock, ours = _pair(HIDDEN)
    assert repr(ours(1, 4)) == repr(stock(1, 4)) == "R(a=1)"
    assert (ours(1, 4) == ours(1, 5)) == (stock(1, 4) == stock(1, 5)) is True
    assert ours.k == 7 and [f.name for f in dataclasses.fields(ours)] == ["a", "n"]


def test_frozen() -> None:
    _, ours = _pair(PLAIN)
    obj = ours(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.a = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del obj.a
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.new = 1
    assert obj.a == 1


@pytest.mark.parametrize("hot", [False, True])
def test_kw_only_inheritance_factories_and_post_init(hot: bool) -> None:
    base = _pair({"__annotations__": {"a": int, "b": int, "t": list}, "b": 2,
                  "t": field(default_factory=list)})
    body = {"__annotations__": {"c": int}, "c": 5,
            "__post_init__": lambda self: object.__setattr__(self, "c", self.c * 10)}
    stock, ours = _pair(body, kw_only=True, base=base)
    for _ in range(HOT if hot else 0):
        ours(1)
    for call in (((1,), {}), ((1, 3), {"c": 4}), ((1, 3, [5]), {}), ((1, 3, [5], 4), {}),
                 ((), {"a": 1, "c": 2})):
        assert _outcome(ours, *call) == _outcome(stock, *call)
    assert ours(1, c=2).c == 20 and ours(1).t == [] and ours(1).t is not ours(1).t


def test_what_the_class_defines_itself_is_kept() -> None:
    @record
    class Own:
        a: int

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Own(1)) == "own" and Own(1) == Own(2)
    assert hash(Own(1)) == hash(Own(1))   # an __eq__ of its own: the fields' hash, as dataclass does


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument 'a'"):
        record(type("Bad", (), {"__annotations__": {"a": int, "b": int}, "a": 1}))


def test_what_records_do_not_support_is_refused() -> None:
    with pytest.raises(TypeError, match="InitVar"):
        record(type("Iv", (), {"__annotations__": {"a": dataclasses.InitVar[int]}}))
    with pytest.raises(TypeError, match="__setattr__"):
        record(type("Sa", (), {"__annotations__": {"a": int}, "__setattr__": lambda *a: None}))
