"""Resampling: ``upsample`` (torch.nn.Upsample / F.interpolate), ``pixel_shuffle`` and
``pixel_unshuffle`` (torch.nn.PixelShuffle / PixelUnshuffle; ONNX DepthToSpace / SpaceToDepth)."""

from __future__ import annotations

from math import floor, prod
from typing import Any

from . import receptive as rf
from .fields import BoolField, ChoiceField, PosInt, ScaleField, Settings, SizeListField, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved
from .source import Mapped, Source, Split, Unmapped

# --- upsample -------------------------------------------------------------------------------------

MODES = ("nearest", "linear", "bilinear", "trilinear")
_MODE_RANK = {"linear": 2, "bilinear": 3, "trilinear": 4}   # the input rank each linear mode takes
_LINEAR = {2: "linear", 3: "bilinear", 4: "trilinear"}


class UpsampleParams(Settings):
    """The settings of ``upsample``."""
    scale: float | None = param(ScaleField(doc="scale_factor: out = ⌊n × scale⌋"), None)
    size: Any = param(SizeListField(doc="the output size instead of a scale"), None)
    mode: str = param(ChoiceField(choices=MODES, doc="interpolation"), "nearest")
    align_corners: bool = param(BoolField(doc="linear modes: corner pixels aligned (torch's flag)"), False)


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def _joined(texts: list[str], axes: str) -> str:
    """One text when every axis reads the same, else ``H: …; W: …``."""
    if len(set(texts)) == 1:
        return texts[0]
    return "; ".join(f"{a}: {t}" for a, t in zip(axes, texts, strict=True))


@register
class Upsample(OpKind):
    name, family = "upsample", "resample"
    doc = "upsampling by a scale or to a size, nearest or (bi/tri)linear (torch.nn.Upsample, F.interpolate)"
    ranks = (2, 3, 4)
    rank_text = "a (C, L), (C, H, W) or (C, D, H, W)"
    Params = UpsampleParams
    example = {"name": "up", "op": "upsample", "scale": 2, "mode": "bilinear"}
    torch_modules = ("torch.nn.Upsample", "torch.nn.UpsamplingNearest2d", "torch.nn.UpsamplingBilinear2d")
    torch_functions = ("torch.nn.functional.interpolate",)
    onnx_types = ("Resize", "Upsample")

    def infer(self, p: UpsampleParams, ins: tuple[Shape, ...]) -> Inferred:
        c, *sizes = ins[0]
        axes = {1: "L", 2: "HW", 3: "DHW"}[len(sizes)]
        if (p.scale is None) == (p.size is None):
            raise OpError("give either scale or size (as torch)", "scale")
        if p.mode != "nearest" and _MODE_RANK[p.mode] != len(ins[0]):
            raise OpError(f"mode {p.mode} needs a {_LINEAR_FORM[p.mode]} input, got {fmt_shape(ins[0])}",
                          "mode", f"hint: mode: {_LINEAR[len(ins[0])]}")
        if p.mode == "nearest" and p.align_corners:
            raise OpError("align_corners is for the linear modes only (as in torch)", "align_corners")
        if p.scale is not None:
            # torch: out = ⌊n · scale⌋ on each axis (F.interpolate, recompute_scale_factor unset)
            out = tuple(floor(n * p.scale) for n in sizes)
            if min(out) < 1:
                raise OpError(f"scale {_num(p.scale)} makes an empty output from {fmt_shape(ins[0])}",
                              "scale")
            texts = [f"{n} × {_num(p.scale)} = {o}" if n * p.scale == o else f"⌊{n} × {_num(p.scale)}⌋ = {o}"
                     for n, o in zip(sizes, out, strict=True)]
            return Inferred((c, *out), _joined(texts, axes))
        size = (p.size,) * len(sizes) if isinstance(p.size, int) else p.size
        if len(size) != len(sizes):
            raise OpError(f"size {list(size)} has {len(size)} sizes for a {fmt_shape(ins[0])} input"
                          f" ({len(sizes)} spatial)", "size")
        return Inferred((c, *size), f"size {'×'.join(map(str, size))}")

    def saved(self, p: UpsampleParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # upsample_nearest*d / upsample_*linear*d backward needs only the sizes and scales: nothing
        # saved; the output keeps the input's dtype (autocast leaves them alone; tests/test_ops_cnn1.py)
        return Saved((), ac.ins[0])

    def work(self, p: UpsampleParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # nearest copies one input per output; an n-linear interpolation mixes 2^n of them
        return prod(out) * (1 if p.mode == "nearest" else 2 ** (len(out) - 1))

    def receptive(self, p: UpsampleParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        # neighbouring outputs read the same or different inputs: no regular grid of fields
        return rf.NONE

    def torch(self, p: UpsampleParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw: list[tuple[str, Any]] = []
        if p.size is not None:
            kw.append(("size", p.size))
        if p.scale is not None:
            kw.append(("scale_factor", p.scale))
        if p.mode != "nearest":
            kw += [("mode", p.mode), ("align_corners", p.align_corners)]
        return TorchLayer("Upsample", (), tuple(kw))

    def _settings(self, size: Any, scale: Any, mode: Any, align: Any, recompute: Any, src: Source) -> Mapped:
        if mode not in MODES:
            raise Unmapped(f"mode={mode!r} (only {', '.join(MODES)})")
        if recompute:
            raise Unmapped("recompute_scale_factor=True")
        if isinstance(scale, (tuple, list)):
            if len(set(scale)) != 1:
                raise Unmapped(f"per-axis scale factors {tuple(scale)}")
            scale = scale[0]
        if size is not None:
            assert src.out is not None
            size = tuple(src.out[1:])   # the traced size
            size = size[0] if len(set(size)) == 1 else size
        settings: dict[str, Any] = {"scale": float(scale)} if size is None else {"size": size}
        if mode != "nearest":
            settings.update(mode=mode, align_corners=bool(align))
        return self.layer(**settings)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        return self._settings(a["size"], a["scale_factor"], a["mode"], a["align_corners"],
                              a.get("recompute_scale_factor"), src)

    def from_call(self, src: Source) -> Mapped:
        if src.arg(6, "antialias", False):
            raise Unmapped("antialias=True")
        return self._settings(src.arg(1, "size"), src.arg(2, "scale_factor"), src.arg(3, "mode", "nearest"),
                              src.arg(4, "align_corners"), src.arg(5, "recompute_scale_factor"), src)

    def from_onnx(self, src: Source) -> Mapped:
        a = {k: v.decode() if isinstance(v, bytes) else v for k, v in src.attrs.items()}
        rank = len(src.ins[0]) if src.ins else 3
        mode = a.get("mode", "nearest")
        if src.target == "Upsample":   # opset 7-9: asymmetric coordinates, floor: torch's nearest
            if mode != "nearest":
                raise Unmapped("Upsample mode linear (asymmetric coordinates, not torch's)")
            scales = src.const(1) if len(src.args) > 1 else a.get("scales")
            return self._onnx_scales(scales, None, "nearest", False, src)
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        if a.get("antialias", 0) or mode not in ("nearest", "linear"):
            raise Unmapped(f"Resize mode {mode!r}" + (" with antialias" if a.get("antialias", 0) else ""))
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if mode == "nearest" and (ctm != "asymmetric" or nearest != "floor"):
            raise Unmapped("nearest Resize other than torch's (asymmetric coordinates, floor)")
        if mode == "linear" and ctm not in ("align_corners", "half_pixel", "pytorch_half_pixel"):
            raise Unmapped(f"coordinate_transformation_mode {ctm!r}")
        torch_mode = "nearest" if mode == "nearest" else _LINEAR.get(rank, "")
        return self._onnx_scales(src.const(2), src.const(3), torch_mode, ctm == "align_corners", src)

    def _onnx_scales(self, scales: Any, sizes: Any, mode: str, align: bool, src: Source) -> Mapped:
        if scales is not None and len(scales) > 2 and sizes is None:
            if any(float(x) != 1 for x in list(scales)[:2]):
                raise Unmapped("a resize of the batch or channel axis")
            return self._settings(None, [float(x) for x in list(scales)[2:]], mode, align, False, src)
        if sizes is None:
            raise Unmapped("scales or sizes that are not constants")
        return self._settings(tuple(int(x) for x in list(sizes)[2:]), None, mode, align, False, src)

    def label(self, p: UpsampleParams) -> str:
        how = f"×{_num(p.scale)}" if p.scale is not None else "→ " + (
            str(p.size) if isinstance(p.size, int) else "×".join(map(str, p.size)))
        return f"{how} {p.mode}" + (", align corners" if p.align_corners else "")


_LINEAR_FORM = {"linear": "(C, L)", "bilinear": "(C, H, W)", "trilinear": "(C, D, H, W)"}


# --- pixel shuffle --------------------------------------------------------------------------------

class ShuffleParams(Settings):
    """The settings of ``pixel_shuffle`` and ``pixel_unshuffle``."""
    factor: int = param(PosInt(doc="r: each channel block of r² becomes an r×r patch"))


def _spatial_text(h: int, w: int, r: int, op: str) -> str:
    oh, ow = (h * r, w * r) if op == "×" else (h // r, w // r)
    sym = "×" if op == "×" else "/"
    if h == w:
        return f"{h} {sym} {r} = {oh}"
    return f"H {h} {sym} {r} = {oh}, W {w} {sym} {r} = {ow}"


@register
class PixelShuffle(OpKind):
    name, family = "pixel_shuffle", "resample"
    doc = ("(C·r², H, W) → (C, H·r, W·r) (torch.nn.PixelShuffle; ONNX DepthToSpace, mode CRD):"
           " sub-pixel upsampling")
    ranks = (3,)
    Params = ShuffleParams
    example = {"name": "shuffle", "op": "pixel_shuffle", "factor": 2}
    torch_modules = ("torch.nn.PixelShuffle",)
    torch_functions = ("torch.nn.functional.pixel_shuffle",)
    onnx_types = ("DepthToSpace",)

    def infer(self, p: ShuffleParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = ins[0]
        r = p.factor
        if c % (r * r):
            raise OpError(f"{c} channels are not divisible by factor² = {r}² = {r * r}", "factor")
        return Inferred((c // (r * r), h * r, w * r), f"{c}/{r}² = {c // (r * r)} channels, "
                        + _spatial_text(h, w, r, "×"))

    def saved(self, p: ShuffleParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), ac.ins[0])   # a permutation: its backward is the inverse one, nothing saved

    def receptive(self, p: ShuffleParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.NONE   # r neighbouring outputs read one input position: no regular grid

    def torch(self, p: ShuffleParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("PixelShuffle", (p.factor,))

    def from_module(self, src: Source) -> Mapped:
        return self.layer(factor=int(src.attrs["upscale_factor"]))

    def from_call(self, src: Source) -> Mapped:
        return self.layer(factor=int(src.arg(1, "upscale_factor")))

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        r, mode = int(a["blocksize"]), a.get("mode", b"DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        # DCR orders the channels block-first; it is PixelShuffle's CRD only for one output channel
        if mode != "CRD" and not (src.ins and src.ins[0][0] == r * r):
            raise Unmapped(f"DepthToSpace mode {mode} (PixelShuffle is mode CRD)")
        return self.layer(factor=r)

    def split(self, p: ShuffleParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="pixel shuffles cannot run split over towers yet")

    def label(self, p: ShuffleParams) -> str:
        return f"×{p.factor}"


@register
class PixelUnshuffle(OpKind):
    name, family = "pixel_unshuffle", "resample"
    doc = "(C, H·r, W·r) → (C·r², H, W) (torch.nn.PixelUnshuffle): space to depth"
    ranks = (3,)
    Params = ShuffleParams
    example = {"name": "unshuffle", "op": "pixel_unshuffle", "factor": 2}
    torch_modules = ("torch.nn.PixelUnshuffle",)
    torch_functions = ("torch.nn.functional.pixel_unshuffle",)
    onnx_types = ("SpaceToDepth",)

    def infer(self, p: ShuffleParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = ins[0]
        r = p.factor
        if h % r or w % r:
            raise OpError(f"the input {h}×{w} is not divisible by the factor {r}", "factor")
        return Inferred((c * r * r, h // r, w // r), f"{c}·{r}² = {c * r * r} channels, "
                        + _spatial_text(h, w, r, "/"))

    def saved(self, p: ShuffleParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), ac.ins[0])   # a permutation: nothing saved

    def receptive(self, p: ShuffleParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        r = (p.factor, p.factor)   # each output position reads an r×r patch: a window of stride r
        return rf.windowed(fs[0], r, r, (0, 0))

    def torch(self, p: ShuffleParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("PixelUnshuffle", (p.factor,))

    def from_module(self, src: Source) -> Mapped:
        return self.layer(factor=int(src.attrs["downscale_factor"]))

    def from_call(self, src: Source) -> Mapped:
        return self.layer(factor=int(src.arg(1, "downscale_factor")))

    def from_onnx(self, src: Source) -> Mapped:
        # SpaceToDepth orders the channels block-first; PixelUnshuffle channel-first: equal for C = 1
        if not (src.ins and src.ins[0][0] == 1):
            raise Unmapped("SpaceToDepth of more than one channel"
                           " (its channel order is not PixelUnshuffle's)")
        return self.layer(factor=int(src.attrs["blocksize"]))

    def split(self, p: ShuffleParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="pixel unshuffles cannot run split over towers yet")

    def label(self, p: ShuffleParams) -> str:
        return f"/{p.factor}"
