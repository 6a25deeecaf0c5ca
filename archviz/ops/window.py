"""Window moves of Swin's shifted windows (Liu et al. 2021): ``roll`` (torch.roll: a cyclic shift
along some dims) and ``pad`` (F.pad with a constant: sizes grow at both ends of the last dims).

Dims are per example, the batch apart; ``pad`` lists its amounts in F.pad's order (the last dim
first: left, right, then top, bottom, ...). Neither has parameters or MACs. Measured against
autograd (tests/test_window.py): neither saves a tensor for backward (roll's backward rolls the
gradient back, constant_pad_nd's cuts it out), and each output is a new tensor, not a view."""

from __future__ import annotations

from typing import Any

from . import receptive as rf
from .fields import FloatField, IntListField, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .reshape import batch_dims, norm_dim
from .saved import Autocast, Saved
from .source import TENSOR, Mapped, Source, Unmapped


class _Window(OpKind):
    family = "reshape"
    keeps_int = True

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *, lowering: str = "") -> Saved:
        return Saved((), ac.ins[0])   # a new tensor; nothing saved (measured)

    def receptive(self, p: Any, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...], out: Shape,
                  image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image)    # wrapped or shifted: each unit counted as seeing the whole input


# --- roll ------------------------------------------------------------------------------------------

class RollParams(Settings):
    """The settings of ``roll``."""
    shifts: tuple[int, ...] = param(IntListField(lo=-(2**31), doc="the shift along each of `dims`"
                                                 " (Swin: [-3, -3], half a 7-window back)"))
    dims: tuple[int, ...] = param(IntListField(doc="the dims it rolls, per example (the batch apart)"))


@register
class Roll(_Window):
    name = "roll"
    doc = ("a cyclic shift of each example along some dims, what falls off one end coming back at the"
           " other (torch.roll; Swin's shifted windows): the shape is kept")
    Params = RollParams
    example = {"name": "shift", "op": "roll", "shifts": [-3, -3], "dims": [1, 2]}
    torch_functions = ("torch.roll",)
    tensor_methods = ("roll",)

    def infer(self, p: RollParams, ins: tuple[Shape, ...]) -> Inferred:
        if len(p.shifts) != len(p.dims):
            raise OpError(f"{len(p.shifts)} shifts for {len(p.dims)} dims: give one shift a dim", "shifts")
        dims = [norm_dim(d, len(ins[0])) for d in p.dims]
        if len(set(dims)) != len(dims):
            raise OpError(f"dims {list(p.dims)} name a dim twice", "dims")
        moves = ", ".join(f"dim {d} by {s}" for d, s in zip(dims, p.shifts, strict=True))
        return Inferred(ins[0], f"rolled {moves} (cyclic)")

    def from_call(self, src: Source) -> Mapped:
        shifts, dims = src.arg(1, "shifts"), src.arg(2, "dims", None)
        if dims is None or dims == ():
            raise Unmapped("a roll of the flattened tensor (no dims)")
        shifts = tuple(shifts) if isinstance(shifts, (list, tuple)) else (shifts,)
        if any(not isinstance(s, int) for s in shifts):
            raise Unmapped("shifts computed at run time")
        return self.layer(shifts=[int(s) for s in shifts], dims=list(batch_dims(dims, len(src.ins[0]))))

    def torch(self, p: RollParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        dims = tuple(norm_dim(d, len(ins[0])) + 1 for d in p.dims)
        return TorchLayer("Roll", (p.shifts, dims), inline=f"{{xs}}.roll({p.shifts}, {dims})")

    def label(self, p: RollParams) -> str:
        return f"by {list(p.shifts)} on dims {list(p.dims)}"


# --- pad -------------------------------------------------------------------------------------------

class PadParams(Settings):
    """The settings of ``pad``."""
    pad: tuple[int, ...] = param(IntListField(lo=-(2**31), doc="F.pad's amounts: (left, right) of the last"
                                              " dim, then (top, bottom) of the one before, ...; negative"
                                              " cuts"))
    value: float = param(FloatField(doc="the value written in the new places"), 0.0)


@register
class Pad(_Window):
    name = "pad"
    doc = ("pads the last dims of each example with a constant, amounts in F.pad's order (the last"
           " dim first): (H, W, C) with pad [0, 0, 0, 1, 0, 1] → (H + 1, W + 1, C)")
    Params = PadParams
    example = {"name": "pad", "op": "pad", "pad": [0, 2, 1, 1]}
    # torchvision's Swin patch merging: pad to even sizes, then each 2×2 patch's four positions
    # side by side on the last dim (written as window moves: _patch_merging)
    torch_functions = ("torch.nn.functional.pad", "torchvision.models.swin_transformer._patch_merging_pad")
    onnx_types = ("Pad",)

    def infer(self, p: PadParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = list(ins[0])
        if len(p.pad) % 2:
            raise OpError(f"{len(p.pad)} amounts: pad takes pairs (before, after), one a dim", "pad")
        if len(p.pad) // 2 > len(shape):
            raise OpError(f"{len(p.pad) // 2} dims padded of a rank-{len(shape)} example"
                          f" {fmt_shape(ins[0])} (the batch is never padded)", "pad")
        parts = []
        for i in range(len(p.pad) // 2):
            d = len(shape) - 1 - i
            before, after = p.pad[2 * i], p.pad[2 * i + 1]
            n = shape[d] + before + after
            if n <= 0:
                raise OpError(f"dim {d}: {shape[d]} + {before} + {after} = {n} is not positive", "pad")
            parts.append(f"dim {d}: {before} + {shape[d]} + {after} = {n}")
            shape[d] = n
        fill = "" if p.value == 0 else f", filled with {p.value:g}"
        return Inferred(tuple(shape), "; ".join(reversed(parts)) + fill)

    def from_call(self, src: Source) -> Mapped:
        if src.target.endswith("_patch_merging_pad"):
            return _patch_merging(src.ins[0])
        pad, mode, value = src.arg(1, "pad"), src.arg(2, "mode", "constant"), src.arg(3, "value", None)
        if mode != "constant":
            raise Unmapped(f"mode {mode!r} (only constant padding)")
        if pad is TENSOR or not isinstance(pad, (list, tuple)) or any(not isinstance(v, int) for v in pad):
            raise Unmapped("pad amounts computed at run time")
        if value is TENSOR:
            raise Unmapped("a pad value computed at run time")
        if len(pad) // 2 > len(src.ins[0]):
            raise Unmapped("it pads the batch dimension")
        return self.layer(pad=list(pad), value=float(value or 0.0))

    def from_onnx(self, src: Source) -> Mapped:
        """``Pad(x, pads, value, axes)``: pads (all begins, then all ends, over the axes: every dim,
        the batch first, where none are given) in F.pad's order, the last dim first."""
        mode = src.attrs.get("mode", "constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads, axes = src.const(1), src.const(3)
        if mode != "constant":
            raise Unmapped(f"mode {mode!r} (only constant padding)")
        if pads is None or (src.given(2) and src.scalar(2) is None) or (src.given(3) and axes is None):
            raise Unmapped("pad amounts or value computed at run time")
        rank, n = len(src.ins[0]) + 1, len(pads) // 2
        dims = [int(a) % rank for a in axes] if axes is not None else list(range(n))
        amount = {d: (int(pads[i]), int(pads[n + i])) for i, d in enumerate(dims)}
        if amount.get(0, (0, 0)) != (0, 0):
            raise Unmapped("it pads the batch dimension")
        low = min((d for d, a in amount.items() if a != (0, 0)), default=rank - 1)
        out = [v for d in range(rank - 1, low - 1, -1) for v in amount.get(d, (0, 0))]
        return self.layer(pad=out, value=src.scalar(2) or 0.0)

    def torch(self, p: PadParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        value = f", value={p.value!r}" if p.value else ""
        return TorchLayer("Pad", (p.pad, p.value),
                          inline=f"torch.nn.functional.pad({{xs}}, {list(p.pad)}{value})")

    def label(self, p: PadParams) -> str:
        return f"{list(p.pad)}" + (f" with {p.value:g}" if p.value else "")


def _patch_merging(shape: Shape) -> Mapped:
    """torchvision's ``_patch_merging_pad`` of an (H, W, C) map: zero-padded to even H and W, then
    ``cat([x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]], -1)``, (H/2, W/2, 4·C). The
    same as a reshape to (H/2, 2, W/2, 2, C) (row parity a, column parity b), the parities moved
    last, column first (piece a + 2·b), and a reshape to (H/2, W/2, 4·C)."""
    if len(shape) != 3:
        raise Unmapped(f"an input {shape} (patch merging reads a channels-last map (H, W, C))")
    h, w, c = shape
    layers: list[tuple[str, dict[str, Any]]] = []
    if h % 2 or w % 2:
        layers.append(("pad", {"pad": [0, 0, 0, w % 2, 0, h % 2]}))
    h, w = h + h % 2, w + w % 2
    layers += [("reshape", {"shape": [h // 2, 2, w // 2, 2, c]}), ("permute", {"dims": [0, 2, 3, 1, 4]}),
               ("reshape", {"shape": [h // 2, w // 2, 4 * c]})]
    return tuple(layers)
