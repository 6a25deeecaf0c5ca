"""Merges of several inputs: ``add``, ``concat``, ``mul``."""

from __future__ import annotations

from math import prod

from . import receptive as rf
from .position import is_sinusoidal
from .registry import OPS, Inferred, NoParams, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor, Temporaries
from .saved import promote as _promote
from .source import Mapped, Source, Split, Unmapped, Weight

# --- merges -------------------------------------------------------------------------------------

class _Merge(OpKind):
    family = "merge"
    multi_input = True
    keeps_int = True      # torch adds, multiplies and concatenates integer tensors too

    def receptive(self, p: NoParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.union(fs, image)


@register
class Add(_Merge):
    name = "add"
    doc = "elementwise sum of its inputs (residual connections); shapes broadcast as in torch"
    example = {"name": "sum", "op": "add", "from": ["a", "b"]}
    torch_functions = ("operator.add", "operator.iadd", "torch.add")
    tensor_methods = ("add", "add_")
    onnx_types = ("Add",)

    def from_call(self, src: Source) -> Mapped:
        if len(src.ins) == 2 and src.ins[0] == src.ins[1] and len(src.args) == 2:
            return self.layer()
        rows = [a for a in src.args[:2] if isinstance(a, Weight) and a.start is not None]
        if len(src.ins) == 1 and len(src.args) == 2 and rows and len(rows[0].shape) == 2 \
                and src.ins[0][-1] == rows[0].shape[1]:
            # x + wpe(arange(S)): rows start… of a learned table (GPT-2's, BERT's positions)
            table = rows[0]
            # looked up by the source's embedding (lowering: lookup)
            return (("pos_embedding", {"kind": "learned", "length": table.shape[0], "start": table.start,
                                       "lowering": "lookup"}),)
        whole = [a for a in src.args[:2] if isinstance(a, Weight) and a.start is None and a.row is None]
        if len(src.ins) == 1 and len(src.args) == 2 and whole and len(src.ins[0]) == 2 \
                and whole[0].shape in (src.ins[0], (1, *src.ins[0])):
            # x + pos_embedding, a (1, S, D) parameter: ViT's learned positions (torchvision's, HF's)
            return (("pos_embedding", {"kind": "learned", "length": src.ins[0][0]}),)
        row = [a for a in src.args[:2] if isinstance(a, Weight) and a.row is not None]
        if len(src.ins) == 1 and len(src.args) == 2 and row and len(row[0].shape) == 2 \
                and src.ins[0][-1] == row[0].shape[1]:
            # x + tte(zeros): one row of a table at every position (BERT's token types)
            return (("type_embedding", {"types": row[0].shape[0], "type": row[0].row}),)
        raise Unmapped("add of tensors of one shape only, or of rows of a table (no constants, no broadcast)")

    def from_onnx(self, src: Source) -> Mapped:
        if len(src.ins) == 2 and broadcast(src.ins[0], src.ins[1]) is not None:
            return self.layer()   # two tensors of one shape, or shapes that broadcast
        table = next((a for a in src.args[:2] if a is not None and hasattr(a, "shape")), None)
        if len(src.ins) == 1 and table is not None and len(src.ins[0]) == 2 \
                and tuple(table.shape) == src.ins[0]:
            # x + an (S, D) initializer: a position table (GPT-2's wpe, ViT's, sliced to S rows);
            # sinusoidal where its values are Vaswani et al.'s, learned otherwise
            return (("pos_embedding", {"kind": "sinusoidal" if is_sinusoidal(table) else "learned"}),)
        raise Unmapped("Add of two tensors that broadcast, or of an (S, D) table to an (S, D) input"
                       " (no other constants)")

    def split(self, p: NoParams, ins: tuple[Shape, ...]) -> Split:
        return Split(kind="merge")   # each tower adds its shares of the inputs

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        out: Shape | None = ins[0]
        for shape in ins[1:]:
            out = broadcast(out, shape) if out is not None else None
        if out is None:
            raise OpError("add needs inputs of one shape, got " + " and ".join(map(fmt_shape, ins)),
                          "from", "hint: or shapes that broadcast: one rank, each size equal or 1")
        return Inferred(out, " + ".join(map(fmt_shape, ins)))

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Add", inline="{plus}")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), _promote(ac.ins))  # the gradient of a sum needs no tensor

    def temporaries(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)  # AddBackward hands the same gradient to each input

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return (len(ins) - 1) * prod(out)


@register
class Concat(_Merge):
    name = "concat"
    doc = "concatenation of its inputs along axis 0, the channels (Inception branches)"
    example = {"name": "cat", "op": "concat", "from": ["a", "b"]}
    torch_functions = ("torch.cat",)
    call_args = "dim=1"
    onnx_types = ("Concat",)

    def split(self, p: NoParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="concat layers cannot run split over towers yet (each tower's share of the"
                     " result would not be a contiguous channel range)")

    def from_call(self, src: Source) -> Mapped:
        first = (src.arg(0, "tensors") or (None,))[0]
        if isinstance(first, Weight) and len(src.ins) == 1 and len(src.ins[0]) == 2 \
                and first.shape == (1, 1, src.ins[0][1]) and src.arg(1, "dim", 0) in (1, -2):
            # cat([token.expand(N, -1, -1), x], 1): ViT's class token (torchvision's, Hugging Face's)
            return (("cls_token", {}),)
        if src.arg(1, "dim", 0) not in (1, -3):
            raise Unmapped("concatenation along a dim other than channels (1)")
        return self.layer() if len(src.ins) > 1 else ()   # one tensor: an identity

    def from_onnx(self, src: Source) -> Mapped:
        if int(src.attrs.get("axis", 0)) % 4 != 1:
            raise Unmapped(f"axis={src.attrs.get('axis')} (only the channels, 1)")
        return self.layer() if len(src.ins) > 1 else ()

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len({s[1:] for s in ins}) != 1 or len({len(s) for s in ins}) != 1:
            raise OpError("concat needs inputs that differ only in channels, got "
                          + " and ".join(map(fmt_shape, ins)), "from")
        c = sum(s[0] for s in ins)
        return Inferred((c, *ins[0][1:]), " + ".join(str(s[0]) for s in ins) + f" = {c} channels")

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Concat", inline="torch.cat([{xs}], dim=1)")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), _promote(ac.ins))  # cat's backward slices the gradient: nothing saved

    def temporaries(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)  # the slices are views of the output's gradient

def broadcast(a: Shape, b: Shape) -> Shape | None:
    """Two per-example shapes broadcast elementwise (torch's rule, sizes of 1 stretch); None when
    they do not. Their ranks must be equal: both tensors carry the batch in front, so torch's
    right-aligned rule would set one's batch against the other's first axis ((N, S, D) + (N, D)
    fails in torch unless N = S), which a per-example shape cannot say."""
    if len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


@register
class Mul(_Merge):
    name = "mul"
    doc = ("elementwise product of two inputs, broadcast as in torch (squeeze-and-excitation:"
           " (C, H, W) × (C, 1, 1))")
    example = {"name": "scale", "op": "mul", "from": ["a", "b"]}
    torch_functions = ("operator.mul", "operator.imul", "torch.mul")
    tensor_methods = ("mul", "mul_")
    onnx_types = ("Mul",)

    def from_call(self, src: Source) -> Mapped:
        if len(src.ins) == 2 and len(src.args) == 2:
            return self.layer()
        if len(src.ins) == 1 and any(isinstance(a, Weight) for a in src.args):
            return OPS["scale"].from_call(src)     # γ * x, γ a parameter: layer scale
        if len(src.ins) == 1 and len(src.args) == 2:
            return OPS["mul_const"].from_call(src)  # x * c, c a Python number
        raise Unmapped("multiply by a constant")

    def from_onnx(self, src: Source) -> Mapped:
        if len(src.ins) == 2:
            return self.layer()
        if len(src.ins) == 1 and sum(src.const(i) is not None for i in range(len(src.args))) == 1:
            return OPS["scale"].from_onnx(src)     # x times an initializer: layer scale
        raise Unmapped("Mul by a constant")

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(ins) != 2:
            raise OpError(f"mul takes two inputs, got {len(ins)}", "from")
        out = broadcast(ins[0], ins[1])
        if out is None:
            raise OpError("mul needs inputs that broadcast (equal sizes, or 1), got "
                          + " and ".join(map(fmt_shape, ins)), "from")
        return Inferred(out, " × ".join(map(fmt_shape, ins)))

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Mul", inline="torch.mul({xs})")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # each factor's gradient is the other factor: both inputs are saved (measured)
        factors = tuple(SavedTensor(f"input {i}", prod(s), ac.ins[i], "input", i) for i, s in enumerate(ins))
        return Saved(factors, _promote(ac.ins))

    def work(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)
