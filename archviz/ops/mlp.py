"""Gated MLPs: ``gated_mlp``, the SwiGLU feed-forward block of Llama (Shazeer 2020, "GLU Variants
Improve Transformer"): down(act(gate(x)) · up(x)), three bias-free linears on the last dim."""

from __future__ import annotations

from math import prod

from . import receptive as rf
from .fields import BoolField, ChoiceField, PosInt, Settings, param
from .registry import Inferred, OpKind, Shape, TorchLayer, fmt_dims, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped

_ACTS = {"silu": "silu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}


class GatedMLPParams(Settings):
    """The settings of ``gated_mlp``."""
    hidden: int = param(PosInt(doc="the gate's and up projection's width (Llama's intermediate_size)"))
    act: str = param(ChoiceField(choices=("silu", "gelu", "gelu_tanh"),
                                 doc="the gate's activation (silu: SwiGLU, gelu: GeGLU)"), "silu")
    bias: bool = param(BoolField(doc="biases on the three projections (Llama: none)"), False)


@register
class GatedMLP(OpKind):
    name, family = "gated_mlp", "linear"
    doc = "gated MLP down(act(gate(x)) · up(x)) on the last dim (SwiGLU: Llama's MLP)"
    Params = GatedMLPParams
    example = {"name": "mlp", "op": "gated_mlp", "hidden": 32}
    torch_modules = tuple(f"transformers.models.{m}.modeling_{m}.{c}MLP"
                          for m, c in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2")))

    def infer(self, p: GatedMLPParams, ins: tuple[Shape, ...]) -> Inferred:
        *lead, d = ins[0]
        each = f", for each of {fmt_dims(tuple(lead))}" if lead else ""
        return Inferred(ins[0], f"gate, up {d} → {p.hidden}; {p.act}(gate) · up; down {p.hidden} → {d}{each}")

    def params(self, p: GatedMLPParams, ins: tuple[Shape, ...], out: Shape) -> int:
        d = ins[0][-1]   # W_gate, W_up (hidden, D), W_down (D, hidden) + biases
        return 3 * d * p.hidden + ((2 * p.hidden + d) if p.bias else 0)

    def macs(self, p: GatedMLPParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 3 * prod(ins[0]) * p.hidden   # each position: 3·D·hidden (gate, up, down)

    def work(self, p: GatedMLPParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(ins[0][:-1]) * p.hidden * 9   # the activation (~8) and the product

    def receptive(self, p: GatedMLPParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return fs[0]   # each position on its own

    def torch(self, p: GatedMLPParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        # archviz's module (archviz/runtime/attention.py): gate_proj, up_proj, down_proj as Llama's
        kw = TorchLayer.given({"act": "silu", "bias": False}, act=p.act, bias=p.bias)
        return TorchLayer("GatedMLP", (ins[0][-1], p.hidden), kw)

    def saved(self, p: GatedMLPParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # measured (saved_tensors_hooks, CPU, fp32 and bf16): gate and up save their input (under
        # autocast a fp32 input is cast once for each), the activation its input (gate's output), the
        # product both factors, down its input; under autocast the weight copies, as linear's
        low, d, n = ac.low, ins[0][-1], prod(ins[0][:-1])
        x = (SavedTensor("input", n * d, low, "input"),) if ac.ins[0] == low else \
            tuple(SavedTensor(f"input ({w} copy)", n * d, low) for w in ("gate", "up"))
        hidden = tuple(SavedTensor(w, n * p.hidden, low)
                       for w in ("gate(x)", "act(gate(x))", "up(x)", "product"))
        weights: tuple[SavedTensor, ...] = ()
        if ac.compute:
            weights = (SavedTensor("W_down copy", d * p.hidden, low, per_image=False),)
            if ac.grad_in:
                weights += (SavedTensor("W_gate, W_up copies", 2 * d * p.hidden, low, per_image=False),)
        return Saved(x + hidden + weights, low)

    def gpu_local(self, p: GatedMLPParams, gpus: int) -> bool:
        return False

    def split(self, p: GatedMLPParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="a gated MLP splits by its hidden units (Megatron-LM), not by output rows:"
                     " not yet")

    def from_module(self, src: Source) -> Mapped:
        # transformers' LlamaMLP: hidden_size, intermediate_size, its config's hidden_act and mlp_bias
        a, config = src.attrs, src.attrs.get("config")
        act = _ACTS.get(getattr(config, "hidden_act", "silu"))
        if act is None:
            raise Unmapped(f"hidden_act={getattr(config, 'hidden_act', None)!r}")
        return self.layer(hidden=int(a["intermediate_size"]), act=act,
                          bias=bool(getattr(config, "mlp_bias", False)))

    def label(self, p: GatedMLPParams) -> str:
        return f"{p.hidden}, {p.act}"
