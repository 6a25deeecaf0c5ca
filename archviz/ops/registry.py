"""The op registry: the base class :class:`OpKind` and :data:`OPS`. Each op is one subclass, in
its family module (``conv.py``, ``pool.py``, ``norm.py``, ...), the one home of everything
archviz knows about it.

An op class holds:

* ``Params``: a frozen, typed dataclass of its settings (a :class:`~archviz.ops.fields.Settings`
  subclass: the dataclass is made when the class is first used). Each field carries the parser that
  checks its YAML value (:func:`archviz.ops.fields.param`); defaults are filled and derived
  defaults resolved (a pool's stride = its kernel, ``padding: valid`` = 0) when the spec loads,
  so no other module re-derives them. A family's rarer variants may give it as
  :class:`ParamsOnUse`, which makes the class when the op is first used.
* ``infer``: the shape rule and its arithmetic text; ``params``/``buffers``/``macs``: counts.
* ``receptive``: the receptive-field rule (arithmetic in :mod:`archviz.ops.receptive`).
* ``torch``: a :class:`TorchLayer` description (a class name and its arguments): the core
  never imports torch; :mod:`archviz.runtime.compile` and :mod:`archviz.runtime.export` build
  and write it.
* ``family``: its drawing family (colour and legend in :mod:`archviz.render.dot`).
* ``settings``: its params as a plain mapping, for diff and JSON; ``label``: a short text.
* ``schema``: its branch of the spec format's JSON Schema (:mod:`archviz.spec.schema`).
* where it is imported from (``torch_modules``, ``torch_functions``, ``tensor_methods``,
  ``onnx_types``, by name) and how (``from_module``, ``from_call``, ``from_onnx``: a
  :class:`~archviz.ops.source.Source` → the layers it becomes), read by
  :mod:`archviz.runtime.mapping`; ``split``/``shard``: its GPU-split rule, read by
  :mod:`archviz.runtime.parallel` and :mod:`archviz.runtime.export`.

Shapes are per example, without the batch, of any rank: ``(F,)`` vectors, ``(S, D)`` sequences,
``(C, L)``, ``(C, H, W)`` and ``(C, D, H, W)`` channels-first feature maps, ``(S,)`` token ids.
An op states the ranks it takes (``ranks``; None = any), which the analysis checks before
``infer`` (:meth:`OpKind.check_ranks`), and the dtype of its output (:meth:`OpKind.out_dtype`;
:mod:`archviz.ops.dtypes`). Counting conventions (README, "What the numbers mean"):

* params  = weights + biases (+ BatchNorm's affine weight and bias); buffers apart.
* MACs    = multiply-accumulates of conv and linear layers, bias adds not counted;
            FLOPs = 2 × MACs, which is what ``torch.utils.flop_counter`` reports.
* neurons = output elements of conv and linear layers (the AlexNet paper's sense).

Adding an op means adding one class to its family module (and its test); tests/test_ops.py
checks that every registered op has every facet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from importlib import import_module
from typing import Any, ClassVar

from ..record import record
from . import receptive as rf
from .arith import Window
from .dtypes import FLOAT, is_integer
from .dtypes import promote as promote_dtypes
from .fields import Field, Pair, fields_of
from .saved import Autocast, Saved, Temporaries
from .source import Mapped, Source, Split

Shape = tuple[int, ...]


class OpError(ValueError):
    """A shape rule refused its input; ``key`` names the field to point at, if any."""

    def __init__(self, message: str, key: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.hint = hint


@record
class Inferred:
    """What a shape rule gives: the output shape, its arithmetic, warnings and inexact divisions."""
    shape: Shape
    formula: str = ""
    warnings: tuple[str, ...] = ()
    inexact: tuple[str, ...] = ()   # divisions that are not whole: a spec may accept them (allow: [inexact])


@record
class TorchLayer:
    """How an op is built in torch, without importing it: ``torch.nn.<cls>(*args, **kwargs)``, or
    for ``cls`` "Add"/"Concat" archviz's merge modules. ``kwargs`` leaves torch's defaults out
    (readable exported source). ``inline``: for merges, a template over the inputs for exported
    source (``{xs}`` is the comma-joined inputs, ``{plus}`` them joined by `` + ``)."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    inline: str | None = None

    @staticmethod
    def given(defaults: Mapping[str, Any], **kwargs: Any) -> tuple[tuple[str, Any], ...]:
        """The keyword arguments that differ from torch's defaults."""
        return tuple((k, v) for k, v in kwargs.items() if k not in defaults or defaults[k] != v)


@record
class NoParams:
    """The settings of an op that has none."""


class ParamsOnUse:
    """``Params = ParamsOnUse(make, n)``: the class ``make(n)`` gives (``make`` is cached, so every
    read gives the same class), made when the op is first used rather than when its family is
    imported. A dataclass costs about a millisecond to create; the 1-d and 3-d variants of a
    family need not cost that to ``archviz shapes`` of a network that does not use them."""

    def __init__(self, make: Callable[[int], type], n: int) -> None:
        self._make, self._n = make, n

    def __get__(self, obj: object, owner: type | None = None) -> type:
        return self._make(self._n)


class OpKind:
    """Base class. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    family: ClassVar[str]          # conv, pool, norm, act, linear, reshape, merge, regularise
    doc: ClassVar[str]
    Params: ClassVar[type] = NoParams
    example: ClassVar[dict[str, Any]] = {}
    # the input the example reads, as a spec writes it: (input, input_dtype); None: a (8, 12, 12) map
    example_input: ClassVar[tuple[tuple[int, ...], str] | None] = None
    multi_input: ClassVar[bool] = False   # a merge: its module is called with the list of its inputs
    # how many inputs it reads (fewest, most; None: no bound); None: (2, None) for a merge, else
    # (1, 1). An op reading one or two (attention: a second is cross-attention's memory) says
    # (1, 2); its module is called with them as separate arguments
    inputs: ClassVar[tuple[int, int | None] | None] = None
    counts_neurons: ClassVar[bool] = False
    # the ways this op can be built in torch, the default first (LRN: fast, torch); () for one way.
    # ``torch`` and ``saved`` receive the chosen one as ``lowering`` (archviz/ops/lowering.py)
    lowerings: ClassVar[tuple[str, ...]] = ()
    ranks: ClassVar[tuple[int, ...] | None] = None   # the input ranks it takes; None: any
    rank_text: ClassVar[str] = ""                     # those ranks in words ("a (C, H, W)"); "" = derived
    keeps_int: ClassVar[bool] = False                 # integer inputs pass (a view, a merge)

    # where it is imported from, by name (archviz/ops/source.py; archviz.runtime.mapping resolves them)
    torch_modules: ClassVar[tuple[str, ...]] = ()     # "torch.nn.Conv2d"
    torch_functions: ClassVar[tuple[str, ...]] = ()   # "torch.nn.functional.relu", "torch.relu"
    tensor_methods: ClassVar[tuple[str, ...]] = ()    # "relu" (x.relu())
    onnx_types: ClassVar[tuple[str, ...]] = ()        # "Relu"
    onnx_weights: ClassVar[tuple[str, ...]] = ()      # state-dict keys of an ONNX node's constant inputs
    onnx_bias_add: ClassVar[tuple[str, ...]] = ()     # ONNX types whose bias is a following Add (MatMul)
    call_args: ClassVar[str] = ""                     # the arguments a call must have, for the hint: "dim=1"

    @property
    def fields(self) -> dict[str, Field]:
        """Setting name → its parser (required flag, default, doc), in declaration order."""
        found = self.__dict__.get("_fields")
        if found is None:   # read from Params on first use (it may be made then: ParamsOnUse)
            found = self.__dict__["_fields"] = fields_of(self.Params)
        return found  # type: ignore[no-any-return]

    def make(self, values: Mapping[str, Any]) -> Any:
        """The typed params from parsed values (missing keys take their defaults)."""
        return self.Params(**values)

    def settings(self, p: Any) -> dict[str, Any]:
        """The params as a plain mapping (diff, JSON)."""
        return asdict(p)

    def input_range(self) -> tuple[int, int | None]:
        """(fewest, most) inputs the op reads; most None: any number (a merge)."""
        if self.inputs is not None:
            return self.inputs
        return (2, None) if self.multi_input else (1, 1)

    def check_ranks(self, ins: tuple[Shape, ...]) -> None:
        """Refuse an input of a rank the op does not take (the analysis calls it before ``infer``):
        ``conv needs a (C, H, W) input, got (48, 16)``."""
        if self.ranks is None:
            return
        for shape in ins:
            if len(shape) not in self.ranks:
                forms = (RANK_FORMS.get(r, f"rank-{r}") for r in self.ranks)
                wanted = self.rank_text or "a " + " or ".join(forms)
                raise OpError(f"{self.name} needs {wanted} input, got {fmt_shape(shape)}")

    def out_dtype(self, p: Any, ins: tuple[str, ...]) -> str:
        """The output's dtype from the inputs': float32 (the analysis's float, whatever float comes
        in); an integer input is refused unless the op ``keeps_int`` (then torch's promotion)."""
        ints = [d for d in ins if is_integer(d)]
        if not ints:
            return FLOAT
        if not self.keeps_int:
            raise OpError(f"{self.name} needs a floating-point input, got {ints[0]}",
                          hint="hint: integer token ids go through an embedding first")
        return promote_dtypes(ins)

    def infer(self, p: Any, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(ins[0], "same as input")

    def params(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def buffers(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def macs(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return 0

    def uncounted_macs(self, p: Any, ins: tuple[Shape, ...], out: Shape, lowering: str = "") -> int:
        """Of :meth:`macs`, those a fused CPU kernel of this lowering does that
        ``torch.utils.flop_counter`` has no formula for (the round trip's count lacks them)."""
        return 0

    def buffer_bytes(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        """Bytes of the buffers: fp32 unless the op says otherwise."""
        return 4 * self.buffers(p, ins, out)

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        """Forward FLOPs per image besides MACs (the roofline's own column: LRN, pooling,
        normalisation, activations); conv and linear count theirs as MACs."""
        return 0

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        """What the torch lowering (:meth:`torch`) saves for backward, per image, measured with
        ``torch.autograd.graph.saved_tensors_hooks`` (tests/test_cost_torch.py keeps it true).
        ``lowering``: one of :attr:`lowerings` ("" for the default; ops without a choice ignore it).
        The base rule is unknown: totals that include such a layer are lower bounds."""
        return Saved((), ac.ins[0], known=False)

    def temporaries(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        """Working buffers of the torch lowering beyond its output, saved tensors and gradients
        (per image, bytes); checked as part of the training peak against MemTracker
        (tests/test_cost_peak.py). The base: none; the gradient is allocated afresh."""
        return Temporaries()

    def tied_weight(self, p: Any, ins: tuple[Shape, ...]) -> Shape | None:
        """The shape of the layer's ``weight``, which ``tie:`` may share with another layer's
        (GPT-2's lm_head and wte); None: the op has no weight to tie."""
        return None

    def id_bound(self, p: Any) -> int | None:
        """For an op that takes integer ids: one past the largest id it accepts (an embedding's
        vocabulary), so example inputs stay valid; None for every other op."""
        return None

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        """The field of one output unit from its inputs' fields; elementwise ops keep it."""
        return fs[0]

    def torch(self, p: Any, ins: tuple[Shape, ...], *,
              lowering: str = "") -> TorchLayer:  # pragma: no cover - overridden
        """The torch layer, described; ``lowering``: one of :attr:`lowerings` ("" for the default;
        ops without a choice ignore it)."""
        raise NotImplementedError(self.name)

    def gpu_local(self, p: Any, gpus: int) -> bool:
        """True when, split over ``gpus`` GPUs by channels, each GPU needs only its own share."""
        return True

    def reference(self, p: Any, a: Any) -> Any:
        """For a parameter-free op with a published formula: that formula written out over an
        (N, C, H, W) tensor ``a`` with tensor methods only (no torch import), which ``verify``
        compares with the compiled layer. None: the op has no such check."""
        return None

    def label(self, p: Any) -> str:
        """Key settings in a few characters, for tables and diagrams."""
        return ""

    # --- import: a source node → the layers it becomes ---------------------------------------

    def layer(self, **settings: Any) -> Mapped:
        """One layer of this op with ``settings`` (the rest take their defaults)."""
        return ((self.name, settings),)

    def from_module(self, src: Source) -> Mapped:
        """A module of one of :attr:`torch_modules` (``src.attrs``: its attributes) → layers;
        raise :class:`~archviz.ops.source.Unmapped` for a variant archviz cannot describe."""
        return self.layer()

    def from_call(self, src: Source) -> Mapped:
        """A call of one of :attr:`torch_functions` or :attr:`tensor_methods` → layers."""
        return self.layer()

    def from_onnx(self, src: Source) -> Mapped:
        """An ONNX node of one of :attr:`onnx_types` → layers."""
        return self.layer()

    def onnx_transposed(self, src: Source) -> tuple[str, ...]:
        """The :attr:`onnx_weights` this node stores transposed to torch's layout."""
        return ()

    def module_transposed(self, src: Source) -> tuple[str, ...]:
        """The state-dict keys of a module of :attr:`torch_modules` stored transposed to the
        compiled layer's (transformers' Conv1D: (in, out)); the import transposes them on load."""
        return ()

    # --- GPU split: the layer's rows per tower -------------------------------------------------

    def split(self, p: Any, ins: tuple[Shape, ...]) -> Split:
        """How the layer runs split over towers by output channels (see :class:`Split`)."""
        return Split()

    def shard(self, p: Any, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer | None:
        """The torch layer of one tower's share (``rows`` output channels) of a layer with
        weights; None: the op has none, and each tower builds the whole layer."""
        return None

    def schema(self) -> dict[str, Any]:
        """This op's part of the spec format's JSON Schema: its settings and which are required
        (:mod:`archviz.spec.schema` adds the keys every layer has: name, from, expect, note)."""
        return {"properties": {key: f.documented_schema() for key, f in self.fields.items()},
                "required": [key for key, f in self.fields.items() if f.required]}


class Registry(dict[str, OpKind]):
    """:data:`OPS`, filled on demand: looking an op up (``OPS["conv"]``, ``"conv" in OPS``,
    ``OPS.get``) imports the family modules one at a time, in :mod:`archviz.ops`'s order, until
    the op is there; anything that lists the ops (iteration, ``len``, ``keys``/``values``/
    ``items``) imports them all first. So ``archviz shapes`` of a CNN never builds the attention
    or embedding ops, and ``--help`` builds none. The order is what importing every family at
    once gives: the families' order, each op where its family's import registered it (an op
    registered from outside that import, say a family module imported directly, is moved to its
    family's place once all are loaded; an op from no family module comes last)."""

    def __init__(self) -> None:
        super().__init__()
        self._package = ""
        self._families: Callable[[], list[str]] | None = None
        self._order: list[str] = []              # the family modules, in order
        self._pending: list[str] | None = None   # those not imported yet; None: not listed yet
        self._loading: int | None = None         # the position of the family being imported
        self._rank: dict[str, int] = {}          # op name → its family's position
        self._lock = threading.RLock()

    def load_from(self, package: str, families: Callable[[], list[str]]) -> None:
        """The family modules of ``package``: ``families()`` lists them (called on first need)."""
        self._package, self._families = package, families

    def _listed(self) -> list[str]:
        if self._pending is None:
            self._order = self._families() if self._families is not None else []
            self._pending = list(self._order)
        return self._pending

    def _place(self, name: str, module: str) -> None:
        """Where ``name`` (registered by ``module``) goes in the order."""
        if self._loading is not None:
            self._rank[name] = self._loading
            return
        self._listed()
        short = module.rpartition(".")[2] if module.startswith(self._package + ".") else ""
        self._rank[name] = self._order.index(short) if short in self._order else len(self._order)

    def _more(self, name: str | None) -> bool:
        """Import pending families until ``name`` is registered (None: all of them)."""
        with self._lock:
            pending = self._listed()
            while pending:
                if name is not None and dict.__contains__(self, name):
                    return True
                module = pending.pop(0)
                outer = self._loading is None
                if outer:
                    self._loading = self._order.index(module)
                try:
                    import_module(f"{self._package}.{module}")
                finally:
                    if outer:
                        self._loading = None
            if name is None:
                self._settle()
            return name is not None and dict.__contains__(self, name)

    def _settle(self) -> None:
        """Every family loaded: put an op registered out of turn at its family's place."""
        end = len(self._order)
        ranks = [self._rank.get(k, end) for k in dict.keys(self)]
        if ranks != sorted(ranks):
            items = sorted(dict.items(self), key=lambda kv: self._rank.get(kv[0], end))
            dict.clear(self)
            dict.update(self, items)

    def _all(self) -> None:
        if self._pending is None or self._pending:
            self._more(None)

    def __missing__(self, name: str) -> OpKind:
        if self._more(name):
            return dict.__getitem__(self, name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and self._more(name))

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[name] if name in self else default

    def __iter__(self) -> Iterator[str]:
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._all()
        return dict.__len__(self)

    def keys(self):  # type: ignore[no-untyped-def]  # noqa: ANN201 - dict's views
        self._all()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]  # noqa: ANN201
        self._all()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]  # noqa: ANN201
        self._all()
        return dict.items(self)

    def copy(self) -> dict[str, OpKind]:
        self._all()
        return dict(dict.items(self))

    def __repr__(self) -> str:
        self._all()
        return dict.__repr__(self)

    def __eq__(self, other: object) -> bool:
        self._all()
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


OPS: Registry = Registry()


def register(cls: type[OpKind]) -> type[OpKind]:
    OPS[cls.name] = cls()
    OPS._place(cls.name, cls.__module__)
    return cls


# how messages name an input of each rank (channels first; sequences batch-first, as torch)
RANK_FORMS = {1: "(F,)", 2: "(S, D)", 3: "(C, H, W)", 4: "(C, D, H, W)"}


def spatial(ins: tuple[Shape, ...], op: str) -> Shape:
    shape = ins[0]
    if len(shape) != 3:
        raise OpError(f"{op} needs a (C, H, W) input, got {fmt_shape(shape)}")
    return shape


def fmt_dims(s: Shape) -> str:
    """``96×55×55``; a vector as ``9216``."""
    return "×".join(map(str, s))


def fmt_shape(s: Shape) -> str:
    """``(96, 55, 55)``; a vector as ``(9216,)``."""
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def pair_text(v: tuple[int, int], sep: str = "×") -> str:
    return str(v[0]) if v[0] == v[1] else f"{v[0]}{sep}{v[1]}"


def windows(n: Shape, k: Pair, s: Pair, p: Pair, d: Pair = (1, 1),
             ceil: bool = False) -> tuple[Window, Window]:
    return (Window(n[1], k[0], s[0], p[0], d[0], ceil), Window(n[2], k[1], s[1], p[1], d[1], ceil))


