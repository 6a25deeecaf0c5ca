"""Normalisation over each example's own statistics: ``groupnorm`` (Wu & He 2018) and
``instancenorm`` (Ulyanov et al. 2016). Channels on axis 0, as the conv family; the statistics of
each example are its own, so training and inference compute alike."""

from __future__ import annotations

from dataclasses import replace
from math import prod

from .fields import BoolField, FloatField, PosInt, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped

CHANNELS_FIRST = "a (C, L), (C, H, W) or (C, D, H, W)"


class GroupNormParams(Settings):
    """The settings of ``groupnorm``."""
    groups: int = param(PosInt(doc="G, groups of channels that share a mean and variance"))
    eps: float = param(FloatField(lo=0.0), 1e-5)
    affine: bool = param(BoolField(doc="a learned weight and bias per channel"), True)


@register
class GroupNorm(OpKind):
    name, family = "groupnorm", "norm"
    doc = ("group normalisation: each example's channels in G groups, each group normalised over its"
           " channels and positions (torch.nn.GroupNorm; G = 1 normalises over (C, H, W) together)")
    Params = GroupNormParams
    ranks = (1, 2, 3, 4)
    rank_text = "a (C,), " + CHANNELS_FIRST
    example = {"name": "gn1", "op": "groupnorm", "groups": 2}
    torch_modules = ("torch.nn.GroupNorm",)
    onnx_types = ("GroupNormalization",)
    onnx_weights = ("weight", "bias")

    def infer(self, p: GroupNormParams, ins: tuple[Shape, ...]) -> Inferred:
        c = ins[0][0]
        if c % p.groups:
            raise OpError(f"{c} channels of {fmt_shape(ins[0])} do not split into {p.groups} groups",
                          "groups")
        rest = prod(ins[0][1:])
        return Inferred(ins[0], f"same as input; {p.groups} groups of {c // p.groups} channels × {rest}"
                                f" positions = {c // p.groups * rest} values each")

    def params(self, p: GroupNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p.affine else 0  # weight (C,) + bias (C,)

    def work(self, p: GroupNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])  # statistics (2) and the affine normalisation (2) per element

    def saved(self, p: GroupNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # native_group_norm saves its input (and the weight: a parameter) and the mean and 1/std
        # of each (example, group) in fp32, under CPU autocast too; the output keeps the input's dtype
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),
                      SavedTensor("mean", p.groups, "fp32"), SavedTensor("rstd", p.groups, "fp32")),
                     ac.ins[0])

    def torch(self, p: GroupNormParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"eps": 1e-5, "affine": True}, eps=p.eps, affine=p.affine)
        return TorchLayer("GroupNorm", (p.groups, ins[0][0]), kw)

    def gpu_local(self, p: GroupNormParams, gpus: int) -> bool:
        return p.groups % gpus == 0   # each GPU's channels hold whole groups

    def shard(self, p: GroupNormParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        # a tower's rows hold groups / towers whole groups (weight, bias: (rows,))
        return self.torch(replace(p, groups=max(1, p.groups // towers)), ((rows, *ins[0][1:]),))

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        return self.layer(groups=a["num_groups"], eps=a["eps"], affine=a["affine"])

    def from_onnx(self, src: Source) -> Mapped:
        scale, c = src.const(1), src.ins[0][0]
        if scale is None or scale.size != c:   # opset 18 has a scale per group: not torch's layer
            raise Unmapped("GroupNormalization with a scale per group (opset 18)")
        return self.layer(groups=int(src.attrs["num_groups"]), eps=float(src.attrs.get("epsilon", 1e-5)))

    def label(self, p: GroupNormParams) -> str:
        return f"G={p.groups}"


_INSTANCENORM = {2: "InstanceNorm1d", 3: "InstanceNorm2d", 4: "InstanceNorm3d"}


class InstanceNormParams(Settings):
    """The settings of ``instancenorm``."""
    eps: float = param(FloatField(lo=0.0), 1e-5)
    momentum: float = param(FloatField(lo=0.0), 0.1)
    affine: bool = param(BoolField(doc="a learned weight and bias per channel"), False)
    track_running_stats: bool = param(BoolField(doc="keep running statistics and use them in eval"), False)


@register
class InstanceNorm(OpKind):
    name, family = "instancenorm", "norm"
    doc = ("instance normalisation: each channel of each example normalised over its positions"
           " (torch.nn.InstanceNorm1d/2d/3d by rank)")
    Params = InstanceNormParams
    ranks = (2, 3, 4)
    rank_text = CHANNELS_FIRST
    example = {"name": "in1", "op": "instancenorm"}
    torch_modules = ("torch.nn.InstanceNorm1d", "torch.nn.InstanceNorm2d", "torch.nn.InstanceNorm3d")
    onnx_types = ("InstanceNormalization",)
    onnx_weights = ("weight", "bias")

    def infer(self, p: InstanceNormParams, ins: tuple[Shape, ...]) -> Inferred:
        rest = prod(ins[0][1:])
        return Inferred(ins[0], f"same as input; each of {ins[0][0]} channels over its {rest} positions")

    def params(self, p: InstanceNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p.affine else 0  # weight (C,) + bias (C,)

    def buffers(self, p: InstanceNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] + 1 if p.track_running_stats else 0  # running mean, var + num_batches_tracked

    def buffer_bytes(self, p: InstanceNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * 2 * ins[0][0] + 8 if p.track_running_stats else 0

    def work(self, p: InstanceNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])

    def saved(self, p: InstanceNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # F.instance_norm runs batch_norm on the (1, N·C, ...) view of its input: it saves the input,
        # the mean and 1/std per (example, channel), and the weight and running statistics repeated
        # N times (new tensors). The statistics are fp32, or the input's dtype with running ones
        # (measured under CPU autocast: the running stats follow the input)
        c = ins[0][0]
        stat = ac.ins[0] if p.track_running_stats else "fp32"
        extra = tuple(SavedTensor(w, c, stat) for w in ("running mean", "running var")
                      if p.track_running_stats)
        weight = (SavedTensor("weight repeated", c, "fp32"),) if p.affine else ()
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"), *weight, *extra,
                      SavedTensor("mean", c, stat), SavedTensor("invstd", c, stat)), ac.ins[0])

    def torch(self, p: InstanceNormParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False},
                              eps=p.eps, momentum=p.momentum, affine=p.affine,
                              track_running_stats=p.track_running_stats)
        return TorchLayer(_INSTANCENORM[len(ins[0])], (ins[0][0],), kw)

    def shard(self, p: InstanceNormParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        return self.torch(p, ((rows, *ins[0][1:]),))   # weight, bias, running stats: (rows,)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["momentum"] is None:
            raise Unmapped("momentum=None")
        return self.layer(eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                          track_running_stats=a["track_running_stats"])

    def from_onnx(self, src: Source) -> Mapped:
        return self.layer(eps=float(src.attrs.get("epsilon", 1e-5)), affine=True)   # ONNX's scale and B
