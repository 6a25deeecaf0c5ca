"""Activations: elementwise nonlinearities and softmax."""

from __future__ import annotations

from math import prod
from typing import Any, ClassVar

from .fields import ChoiceField, FloatField, IntField, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Unmapped

F = "torch.nn.functional."

# --- activations --------------------------------------------------------------------------------

class _Elementwise(OpKind):
    """An activation with no settings: ``torch.nn.<torch_class>()``, imported from that module
    (and the functions, methods and ONNX types it names) with nothing to map."""

    family = "act"
    torch_class: ClassVar[str]
    saves: ClassVar[str] = "output"   # what its backward reads: "output" or "input"

    def torch(self, p: Any, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer(self.torch_class)

    def saved(self, p: Any, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # relu, tanh and sigmoid save their output (their gradient is a function of it); gelu,
        # relu6, silu, hardswish and hardsigmoid their input (measured with saved_tensors_hooks)
        return Saved((SavedTensor(self.saves, prod(out), ac.ins[0], self.saves),), ac.ins[0])

    def work(self, p: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * (1 if self.name == "relu" else 8)  # a compare; a transcendental ~8


def _activation(op: str, torch_class: str, functions: tuple[str, ...], methods: tuple[str, ...] = (),
                onnx: tuple[str, ...] = ()) -> None:
    register(type(torch_class, (_Elementwise,), {
        "name": op, "torch_class": torch_class, "doc": f"{_ACTIVATIONS[op]} (torch.nn.{torch_class})",
        "example": {"name": op, "op": op}, "torch_modules": (f"torch.nn.{torch_class}",),
        "torch_functions": functions, "tensor_methods": methods, "onnx_types": onnx,
    }))


_ACTIVATIONS = {"relu": "rectified linear unit", "tanh": "hyperbolic tangent", "sigmoid": "logistic sigmoid"}
_activation("relu", "ReLU", (F + "relu", "torch.relu"), ("relu", "relu_"), ("Relu",))
_activation("tanh", "Tanh", ("torch.tanh", F + "tanh"), ("tanh",), ("Tanh",))
_activation("sigmoid", "Sigmoid", ("torch.sigmoid", F + "sigmoid"), ("sigmoid", "sigmoid_"), ("Sigmoid",))


class GELUParams(Settings):
    """The settings of ``gelu``."""
    approximate: str = param(ChoiceField(choices=("none", "tanh"), doc="none: x·Φ(x) exactly; tanh: GPT-2's"
                                    " 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))"), "none")


TANH_GELU = "transformers.activations.NewGELUActivation"


@register
class GELU(_Elementwise):
    name, torch_class, saves = "gelu", "GELU", "input"
    doc = "Gaussian error linear unit (torch.nn.GELU; approximate: tanh as GPT-2 and BERT write it)"
    Params = GELUParams
    example = {"name": "gelu", "op": "gelu"}
    # transformers' tanh forms: GPT-2's gelu_new written out op by op, and the fused one
    torch_modules = ("torch.nn.GELU", TANH_GELU, "transformers.activations.GELUTanh")
    torch_functions = (F + "gelu",)
    onnx_types = ("Gelu",)
    # torch: nn.GELU's one kernel; formula: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) op by op,
    # as transformers' NewGELUActivation (GPT-2's gelu_new) runs it: the same values, more saved
    lowerings = ("torch", "formula")

    def torch(self, p: GELUParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        if lowering == "formula" and p.approximate == "tanh":    # the formula is the tanh form's
            return TorchLayer("GeluFormula")
        return TorchLayer("GELU", (), TorchLayer.given({"approximate": "none"}, approximate=p.approximate))

    def saved(self, p: GELUParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        if lowering != "formula" or p.approximate != "tanh":
            return super().saved(p, ins, out, ac, lowering=lowering)
        # autograd's record of NewGELUActivation (CPU, fp32 and bf16 autocast): pow saves x, tanh its
        # output, the last product both factors (0.5·x and 1 + tanh); scalar products save nothing.
        # CUDA autocast runs pow in fp32 (its fp32 list): a fp32 copy of x, and everything after
        # it but 0.5·x is fp32, the output too (not measured: no GPU)
        n, x = prod(out), ac.ins[0]
        up = "fp32" if ac.device == "cuda" and ac.compute and x != "fp32" else x
        first = SavedTensor("x (fp32 copy)", n, up) if up != x else SavedTensor("x", n, x, "input")
        return Saved((first, SavedTensor("tanh(…)", n, up), SavedTensor("0.5·x", n, x),
                      SavedTensor("1 + tanh(…)", n, up)), up)

    def from_module(self, src: Source) -> Mapped:
        if src.target == TANH_GELU:      # written out op by op: its saved tensors are the formula's
            return self.layer(approximate="tanh", lowering="formula")
        return self.layer(approximate=src.attrs.get("approximate", "tanh"))   # transformers': tanh

    def from_call(self, src: Source) -> Mapped:
        return self.layer(approximate=src.arg(1, "approximate", "none"))

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs.get("approximate", b"none")
        return self.layer(approximate=a.decode() if isinstance(a, bytes) else a)

    def label(self, p: GELUParams) -> str:
        return "tanh" if p.approximate == "tanh" else ""


class LeakyParams(Settings):
    """The settings of ``leaky_relu``."""
    negative_slope: float = param(FloatField(), 0.01)


@register
class LeakyReLU(OpKind):
    name, family = "leaky_relu", "act"
    doc = "leaky ReLU (torch.nn.LeakyReLU)"
    Params = LeakyParams
    example = {"name": "leaky_relu", "op": "leaky_relu"}
    torch_modules = ("torch.nn.LeakyReLU",)
    torch_functions = (F + "leaky_relu",)
    onnx_types = ("LeakyRelu",)

    def from_module(self, src: Source) -> Mapped:
        return self.layer(negative_slope=src.attrs["negative_slope"])

    def from_call(self, src: Source) -> Mapped:
        return self.layer(negative_slope=float(src.arg(1, "negative_slope", 0.01)))

    def from_onnx(self, src: Source) -> Mapped:
        return self.layer(negative_slope=float(src.attrs.get("alpha", 0.01)))

    def torch(self, p: LeakyParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("LeakyReLU", (p.negative_slope,))

    def saved(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: LeakyParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * prod(out)


class SoftmaxParams(Settings):
    """The settings of ``softmax``."""
    dim: int = param(IntField(doc="the axis of each example it normalises over (0: channels or features,"
                                  " -1: the last; torch's dim is this + 1 for dim >= 0)"), 0)


@register
class Softmax(OpKind):
    name, family = "softmax", "act"
    doc = ("softmax over one axis of each example (default 0: channels, features, or a sequence's"
           " positions; torch.nn.Softmax(dim=1)); dim: -1 for the last")
    Params = SoftmaxParams
    example = {"name": "prob", "op": "softmax"}
    torch_modules = ("torch.nn.Softmax",)
    torch_functions = (F + "softmax", "torch.softmax")
    tensor_methods = ("softmax",)
    call_args = "dim"
    onnx_types = ("Softmax",)

    def infer(self, p: SoftmaxParams, ins: tuple[Shape, ...]) -> Inferred:
        rank = len(ins[0])
        if not -rank <= p.dim < rank:
            raise OpError(f"dim {p.dim} is not an axis of the input {fmt_shape(ins[0])}", "dim",
                          f"hint: 0 to {rank - 1}, or -1 to -{rank} from the end (the batch is not an axis)")
        return Inferred(ins[0], f"normalised over axis {p.dim % rank} ({ins[0][p.dim]:,})")

    @staticmethod
    def _per_example(dim: object, rank: int) -> Mapped:
        """torch's dim (the batch is 0) → the layer's, or refused."""
        if not isinstance(dim, int) or dim == 0 or dim < -rank:
            raise Unmapped(f"softmax over dim={dim} (the batch, or implicit)")
        return ((Softmax.name, {"dim": dim - 1 if dim > 0 else dim}),)

    def from_module(self, src: Source) -> Mapped:
        return self._per_example(src.attrs["dim"], len(src.ins[0]) if src.ins else 1)

    def from_call(self, src: Source) -> Mapped:
        return self._per_example(src.arg(1, "dim"), len(src.ins[0]) if src.ins else 1)

    def from_onnx(self, src: Source) -> Mapped:
        return self._per_example(int(src.attrs.get("axis", -1)), len(src.ins[0]))

    def torch(self, p: SoftmaxParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Softmax", (), (("dim", p.dim + 1 if p.dim >= 0 else p.dim),))

    def saved(self, p: SoftmaxParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # _softmax saves its output; CPU autocast keeps the input's dtype
        return Saved((SavedTensor("output", prod(out), ac.ins[0], "output"),), ac.ins[0])

    def work(self, p: SoftmaxParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 5 * prod(out)  # max, subtract, exp, sum, divide

    def gpu_local(self, p: SoftmaxParams, gpus: int) -> bool:
        return p.dim != 0  # over the channels it needs all GPUs' shares; another axis stays local

    def label(self, p: SoftmaxParams) -> str:
        return f"dim {p.dim}" if p.dim else ""


# --- ops for imported models (archviz import) ---------------------------------------------------

@register
class ReLU6(_Elementwise):
    name, torch_class, saves = "relu6", "ReLU6", "input"
    doc = "ReLU clipped at 6, min(max(x, 0), 6) (torch.nn.ReLU6; MobileNetV2)"
    example = {"name": "relu6", "op": "relu6"}
    torch_modules = ("torch.nn.ReLU6",)
    torch_functions = (F + "relu6", F + "hardtanh")
    onnx_types = ("Clip",)

    def from_call(self, src: Source) -> Mapped:
        if src.target.endswith("hardtanh"):   # F.hardtanh(x, 0, 6) is relu6
            bounds = (src.arg(1, "min_val", -1.0), src.arg(2, "max_val", 1.0))
            if bounds != (0, 6):
                raise Unmapped(f"hardtanh{bounds} (only (0, 6), relu6)")
        return self.layer()

    def from_onnx(self, src: Source) -> Mapped:
        lo = src.scalar(1) if src.given(1) else src.attrs.get("min")
        hi = src.scalar(2) if src.given(2) else src.attrs.get("max")
        if lo == 0 and hi == 6:
            return self.layer()
        raise Unmapped(f"Clip({lo}, {hi}) (only Clip(0, 6), relu6)")


@register
class SiLU(_Elementwise):
    name, torch_class, saves = "silu", "SiLU", "input"
    doc = "sigmoid-weighted linear unit x·σ(x), a.k.a. swish (torch.nn.SiLU; EfficientNet)"
    example = {"name": "silu", "op": "silu"}
    torch_modules = ("torch.nn.SiLU",)
    torch_functions = (F + "silu",)


@register
class Hardswish(_Elementwise):
    name, torch_class, saves = "hardswish", "Hardswish", "input"
    doc = "hard swish x·min(max(x + 3, 0), 6)/6 (torch.nn.Hardswish; MobileNetV3)"
    example = {"name": "hardswish", "op": "hardswish"}
    torch_modules = ("torch.nn.Hardswish",)
    torch_functions = (F + "hardswish",)
    onnx_types = ("HardSwish",)


@register
class Hardsigmoid(_Elementwise):
    name, torch_class, saves = "hardsigmoid", "Hardsigmoid", "input"
    doc = "hard sigmoid min(max(x + 3, 0), 6)/6 (torch.nn.Hardsigmoid; MobileNetV3)"
    example = {"name": "hardsigmoid", "op": "hardsigmoid"}
    torch_modules = ("torch.nn.Hardsigmoid",)
    torch_functions = (F + "hardsigmoid",)
    onnx_types = ("HardSigmoid",)

    def from_onnx(self, src: Source) -> Mapped:
        if abs(src.attrs.get("alpha", 0.2) - 1 / 6) > 1e-6 or src.attrs.get("beta", 0.5) != 0.5:
            raise Unmapped("HardSigmoid other than torch's (alpha 1/6, beta 0.5)")
        return self.layer()


class ELUParams(Settings):
    """The settings of ``elu``."""
    alpha: float = param(FloatField(doc="α: the value it tends to for x → −∞, α·(eˣ − 1) below 0"), 1.0)


@register
class ELU(OpKind):
    name, family = "elu", "act"
    doc = "exponential linear unit, x above 0 and α·(eˣ − 1) below (torch.nn.ELU; Clevert et al. 2016)"
    Params = ELUParams
    example = {"name": "elu", "op": "elu"}
    torch_modules = ("torch.nn.ELU",)
    torch_functions = (F + "elu",)
    onnx_types = ("Elu",)

    def from_module(self, src: Source) -> Mapped:
        return self.layer(alpha=float(src.attrs["alpha"]))

    def from_call(self, src: Source) -> Mapped:
        return self.layer(alpha=float(src.arg(1, "alpha", 1.0)))

    def from_onnx(self, src: Source) -> Mapped:
        return self.layer(alpha=float(src.attrs.get("alpha", 1.0)))

    def torch(self, p: ELUParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("ELU", (), TorchLayer.given({"alpha": 1.0}, alpha=p.alpha))

    def saved(self, p: ELUParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # elu (not in place) saves its input (measured with saved_tensors_hooks)
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),), ac.ins[0])

    def work(self, p: ELUParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 8 * prod(out)  # a transcendental ~8

    def label(self, p: ELUParams) -> str:
        return "" if p.alpha == 1.0 else f"α={p.alpha:g}"


@register
class Mish(_Elementwise):
    name, torch_class, saves = "mish", "Mish", "input"
    doc = "x·tanh(softplus(x)) (torch.nn.Mish; Misra 2019)"
    example = {"name": "mish", "op": "mish"}
    torch_modules = ("torch.nn.Mish",)
    torch_functions = (F + "mish",)
    onnx_types = ("Mish",)
