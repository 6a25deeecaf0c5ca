"""Reshapes of one example beyond ``flatten``: ``permute``, ``transpose``, ``reshape``,
``narrow`` (one piece of a chunk or split) and ``identity``.

Dims are per example, the batch apart (dim 0 of a (C, H, W) example is torch's dim 1); a
negative dim counts from the end. The importers subtract 1 from torch's dims and refuse a
call that moves the batch. None of these saves a tensor for backward: a permute, a narrow and a
view are views of their input; a reshape of a permuted tensor copies it (a new storage, nothing
saved either)."""

from __future__ import annotations

from math import prod
from typing import Any

from . import receptive as rf
from .fields import IntField, IntListField, PosInt, Settings, param
from .registry import Inferred, NoParams, OpError, OpKind, Shape, TorchLayer, fmt_dims, fmt_shape, register
from .saved import Autocast, Saved, Temporaries
from .source import TENSOR, Mapped, Source, Unmapped


def norm_dim(d: int, rank: int, key: str = "dims") -> int:
    """A per-example dim in [0, rank): negatives count from the end."""
    if not -rank <= d < rank:
        raise OpError(f"dim {d} is out of range for a rank-{rank} example (dims are per example,"
                      f" the batch apart: 0 to {rank - 1}, or -1 for the last)", key)
    return d % rank


def batch_dims(dims: Any, rank: int) -> tuple[int, ...]:
    """torch's dims of an (N, *example) tensor → per-example dims; moving the batch is refused."""
    out = []
    for d in (dims if isinstance(dims, (list, tuple)) else (dims,)):
        if not isinstance(d, int):
            raise Unmapped(f"dims computed at run time ({d!r})")
        d = d % (rank + 1)
        if d == 0:
            raise Unmapped("it moves or reduces the batch dimension (dim 0)")
        out.append(d - 1)
    return tuple(out)


class _View(OpKind):
    """A reshape of one example: no arithmetic, nothing saved; the gradient is passed on as a view."""

    family = "reshape"
    keeps_int = True      # token ids stay token ids

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        return Saved((), ac.ins[0], view=True)   # a view of its input (measured: nothing saved)

    def temporaries(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        # the (H, W) grid the field is kept on is gone: each unit is counted as seeing the whole input
        return fs[0] if out == ins[0] else rf.whole(fs, image)


# --- permute, transpose ---------------------------------------------------------------------------

class PermuteParams(Settings):
    """The settings of ``permute``."""
    dims: tuple[int, ...] = param(IntListField(
        doc="the example's dims in their new order (per example, the batch apart): [1, 2, 0] takes"
            " (C, H, W) to (H, W, C)"))


@register
class Permute(_View):
    name = "permute"
    doc = "reorders the dims of each example, (C, H, W) → (H, W, C) with dims [1, 2, 0] (torch.permute)"
    Params = PermuteParams
    example = {"name": "channels_last", "op": "permute", "dims": [1, 2, 0]}
    torch_functions = ("torch.permute",)
    tensor_methods = ("permute",)
    onnx_types = ("Transpose",)

    def infer(self, p: PermuteParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        dims = tuple(norm_dim(d, len(shape)) for d in p.dims)
        if sorted(dims) != list(range(len(shape))):
            raise OpError(f"dims {list(p.dims)} are not an order of the {len(shape)} dims of"
                          f" {fmt_shape(shape)} (each of 0 to {len(shape) - 1} once)", "dims")
        out = tuple(shape[d] for d in dims)
        return Inferred(out, f"{fmt_shape(shape)} → {fmt_shape(out)}, dims ({', '.join(map(str, dims))})")

    def from_call(self, src: Source) -> Mapped:
        rank = len(src.ins[0])
        given = src.args[1:] if len(src.args) > 2 else src.arg(1, "dims")   # x.permute(0, 2, 3, 1) or ((…))
        dims = tuple(given) if isinstance(given, (list, tuple)) else (given,)
        if not dims or dims[0] % (rank + 1) != 0:
            raise Unmapped("it moves the batch dimension (dim 0)")
        return self.layer(dims=batch_dims(dims[1:], rank))

    def from_onnx(self, src: Source) -> Mapped:
        perm = list(src.attrs.get("perm") or reversed(range(len(src.ins[0]) + 1)))
        if perm[0] != 0:
            raise Unmapped("it moves the batch dimension (dim 0)")
        return self.layer(dims=batch_dims(tuple(perm[1:]), len(src.ins[0])))

    def torch(self, p: PermuteParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        dims = tuple(norm_dim(d, len(ins[0])) for d in p.dims)
        shown = ", ".join(str(d + 1) for d in dims)
        return TorchLayer("Permute", (dims,), inline=f"{{xs}}.permute(0, {shown})")

    def label(self, p: PermuteParams) -> str:
        return "(" + ", ".join(map(str, p.dims)) + ")"


class TransposeParams(Settings):
    """The settings of ``transpose``."""
    dim0: int = param(IntField(doc="one dim of the example (per example, the batch apart)"))
    dim1: int = param(IntField(doc="the dim it is swapped with"))


@register
class Transpose(_View):
    name = "transpose"
    doc = "swaps two dims of each example (torch.transpose; ShuffleNet's channel shuffle)"
    Params = TransposeParams
    example = {"name": "swap", "op": "transpose", "dim0": 1, "dim1": 2}
    torch_functions = ("torch.transpose",)
    tensor_methods = ("transpose",)

    def infer(self, p: TransposeParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        a, b = norm_dim(p.dim0, len(shape), "dim0"), norm_dim(p.dim1, len(shape), "dim1")
        out = list(shape)
        out[a], out[b] = shape[b], shape[a]
        return Inferred(tuple(out), f"{fmt_shape(shape)} → {fmt_shape(tuple(out))}, dims {a} ↔ {b}")

    def from_call(self, src: Source) -> Mapped:
        a, b = batch_dims((src.arg(1, "dim0"), src.arg(2, "dim1")), len(src.ins[0]))
        return self.layer(dim0=a, dim1=b)

    def torch(self, p: TransposeParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        rank = len(ins[0])
        dims = list(range(rank))
        a, b = norm_dim(p.dim0, rank), norm_dim(p.dim1, rank)
        dims[a], dims[b] = b, a
        return TorchLayer("Permute", (tuple(dims),), inline=f"{{xs}}.transpose({a + 1}, {b + 1})")

    def label(self, p: TransposeParams) -> str:
        return f"{p.dim0} ↔ {p.dim1}"


# --- reshape --------------------------------------------------------------------------------------

class ReshapeParams(Settings):
    """The settings of ``reshape``."""
    shape: tuple[int, ...] = param(IntListField(lo=-1, doc="each example's new shape (the batch apart);"
                                                           " one size may be -1: what the rest leaves"))


@register
class Reshape(_View):
    name = "reshape"
    doc = "gives each example a new shape of as many elements, one size -1 inferred (torch.reshape, view)"
    Params = ReshapeParams
    example = {"name": "groups", "op": "reshape", "shape": [2, 4, -1]}
    torch_functions = ("torch.reshape",)
    tensor_methods = ("view", "reshape")
    onnx_types = ("Reshape",)

    def infer(self, p: ReshapeParams, ins: tuple[Shape, ...]) -> Inferred:
        shape, want = ins[0], p.shape
        n, free = prod(shape), [i for i, s in enumerate(want) if s == -1]
        if len(free) > 1 or 0 in want:
            raise OpError(f"shape {list(want)}: sizes must be positive, with at most one -1", "shape")
        known = prod(s for s in want if s != -1)
        if n % known or (not free and known != n):
            raise OpError(f"{fmt_dims(shape)} = {n} elements cannot take the shape {list(want)}"
                          f" ({known} elements{' times a whole number' if free else ''})", "shape")
        out = tuple(n // known if s == -1 else s for s in want)
        # 8×12×12 = 1152 → 32×36
        return Inferred(out, f"{fmt_dims(shape)} = {n} → {fmt_dims(out)}")

    def from_call(self, src: Source) -> Mapped:
        # x.view(n, 32, -1), x.reshape(x.size(0), ...): judged by the traced shapes
        if src.out is None or len(src.ins) != 1:
            raise Unmapped("a reshape of unknown size")
        if len(src.ins[0]) > 1 and src.out == (prod(src.ins[0]),):
            return (("flatten", {}),)     # today's flatten: imports stay as they were
        if src.out == src.ins[0]:
            return ()
        return self.layer(shape=src.out)

    def from_onnx(self, src: Source) -> Mapped:
        # a Reshape that merges a run of dims and keeps the rest is what torch.flatten(x, s, e) writes
        merged = _merged_run(src.ins[0], src.out) if src.out is not None and len(src.ins) == 1 else None
        if merged is not None and merged != (0, len(src.ins[0]) - 1):
            start, end = merged
            return (("flatten", {"start": start, "end": -1 if end == len(src.ins[0]) - 1 else end}),)
        return self.from_call(src)

    def torch(self, p: ReshapeParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Reshape", (p.shape,),
                          inline="{xs}.reshape({xs}.shape[0], " + ", ".join(map(str, p.shape)) + ")")

    def label(self, p: ReshapeParams) -> str:
        return "→ " + "×".join(map(str, p.shape))


def _merged_run(shape: Shape, out: Shape) -> tuple[int, int] | None:
    """(s, e) where ``out`` is ``shape`` with dims s…e (two or more) multiplied into one, else None."""
    s = next((i for i, (a, b) in enumerate(zip(shape, out, strict=False)) if a != b), len(out))
    e = s + len(shape) - len(out)
    if e <= s or e >= len(shape) or out != (*shape[:s], prod(shape[s:e + 1]), *shape[e + 1:]):
        return None
    return s, e


# --- narrow: one piece of a chunk or split ----------------------------------------------------------

class NarrowParams(Settings):
    """The settings of ``narrow``."""
    dim: int = param(IntField(doc="the dim it cuts (per example, the batch apart)"), 0)
    start: int = param(IntField(lo=0, doc="the first index it keeps"), 0)
    length: int = param(PosInt(doc="how many it keeps"))


@register
class Narrow(_View):
    name = "narrow"
    doc = ("a slice start:start+length of one dim of each example (torch.narrow); a chunk or split"
           " imports as one narrow per piece used, each reading the same input")
    Params = NarrowParams
    example = {"name": "second_half", "op": "narrow", "dim": 0, "start": 4, "length": 4}
    torch_functions = ("torch.narrow", "torch.chunk", "torch.split", "operator.getitem")
    tensor_methods = ("narrow", "chunk", "split")
    onnx_types = ("Split", "Slice")

    def infer(self, p: NarrowParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        d = norm_dim(p.dim, len(shape), "dim")
        if p.start + p.length > shape[d]:
            raise OpError(f"{p.start} + {p.length} is past the end of dim {d} ({shape[d]} long) of"
                          f" {fmt_shape(shape)}", "length")
        out = (*shape[:d], p.length, *shape[d + 1:])
        return Inferred(out, f"dim {d}: [{p.start}, {p.start + p.length}) of {shape[d]}")

    def receptive(self, p: NarrowParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return fs[0] if p.dim % len(ins[0]) == 0 else rf.whole(fs, image)   # channels: the field stays

    def from_call(self, src: Source) -> Mapped:
        rank = len(src.ins[0])
        if src.target == "operator.getitem":
            return self._index(src)
        if src.target.endswith("narrow"):
            (d,) = batch_dims(src.arg(1, "dim"), rank)
            return self.layer(dim=d, start=int(src.arg(2, "start")), length=int(src.arg(3, "length")))
        if src.piece is None:
            raise Unmapped("its pieces are used other than one by one (x[i])")
        chunked = src.target.endswith("chunk")
        (d,) = batch_dims(src.arg(2, "dim", 0), rank)
        sizes = _pieces(src.ins[0][d], src.arg(1, "chunks" if chunked else "split_size_or_sections"), chunked)
        return self.layer(dim=d, start=sum(sizes[:src.piece]), length=sizes[src.piece])

    def _index(self, src: Source) -> Mapped:
        """``x[:, i]`` (a pooler's first token): position i of each example's dim 0, that dim dropped:
        a narrow of length 1, then a reshape."""
        index, shape = src.arg(1, "index"), src.ins[0]
        if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)
                and isinstance(index[1], int) and len(shape) >= 2 and -shape[0] <= index[1] < shape[0]):
            raise Unmapped(f"an index other than x[:, i], got {index!r}")
        return (self.layer(dim=0, start=index[1] % shape[0], length=1)[0], ("reshape", {"shape": shape[1:]}))

    def from_onnx(self, src: Source) -> Mapped:
        if src.target == "Slice":
            return self._slice(src)
        if src.piece is None:
            raise Unmapped("a Split whose outputs are not known one by one")
        rank = len(src.ins[0])
        (d,) = batch_dims(int(src.attrs.get("axis", 0)), rank)
        given = src.const(1) if src.given(1) else src.attrs.get("split")
        n = len(src.outputs)
        sizes = [int(s) for s in given] if given is not None else _pieces(src.ins[0][d], n, True)
        return self.layer(dim=d, start=sum(sizes[:src.piece]), length=sizes[src.piece])

    def _slice(self, src: Source) -> Mapped:
        """ONNX Slice (starts, ends, axes, steps as constant inputs) along one dim, step 1."""
        shape, consts = src.ins[0], [src.const(i) for i in range(1, 5)]
        if any(c is None and (i < 3 or src.given(i)) for i, c in zip(range(1, 5), consts, strict=True)):
            raise Unmapped("a Slice whose bounds are computed at run time")
        starts, ends = ([int(v) for v in c.reshape(-1)] for c in consts[:2])
        axes = [int(v) for v in consts[2].reshape(-1)] if consts[2] is not None else list(range(len(starts)))
        steps = [int(v) for v in consts[3].reshape(-1)] if consts[3] is not None else [1] * len(starts)
        if len(axes) != 1 or steps != [1]:
            raise Unmapped("a Slice along several dims or with a step (only one dim, step 1)")
        (d,) = batch_dims(axes[0], len(shape))
        n = shape[d]
        start, end = (min(max(v + n if v < 0 else v, 0), n) for v in (starts[0], ends[0]))
        if end <= start:
            raise Unmapped(f"an empty Slice [{start}, {end}) of dim {d}")
        return () if (start, end) == (0, n) else self.layer(dim=d, start=start, length=end - start)

    def torch(self, p: NarrowParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        d = norm_dim(p.dim, len(ins[0]))
        return TorchLayer("Narrow", (d, p.start, p.length),
                          inline=f"{{xs}}.narrow({d + 1}, {p.start}, {p.length})")

    def label(self, p: NarrowParams) -> str:
        return f"dim {p.dim} [{p.start}:{p.start + p.length}]"


def _pieces(n: int, how: Any, chunked: bool) -> list[int]:
    """The sizes of torch.chunk(n, chunks) (⌈n/chunks⌉ each, the last what is left) or of
    torch.split(n, size) (``size`` each, the last what is left; a list: those sizes)."""
    if how is TENSOR or how is None:
        raise Unmapped("piece sizes computed at run time")
    if isinstance(how, (list, tuple)):
        return [int(s) for s in how]
    step = -(-n // int(how)) if chunked else int(how)
    return [min(step, n - i) for i in range(0, n, step)]


# --- identity --------------------------------------------------------------------------------------

@register
class Identity(_View):
    name = "identity"
    doc = ("passes its input on unchanged (torch.nn.Identity): a named point in a spec; an imported"
           " nn.Identity or x.contiguous() becomes no layer")
    example = {"name": "same", "op": "identity"}
    tensor_methods = ("contiguous",)

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        return Inferred(ins[0], "same as input")

    def from_call(self, src: Source) -> Mapped:
        return ()      # x.contiguous(): the same values (a copy at most)

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Identity")
