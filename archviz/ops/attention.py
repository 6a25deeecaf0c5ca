"""Attention: ``attention``, multi-head self-attention with its q, k, v and output projections
(Vaswani et al. 2017, section 3.2; GPT-2's attn block, ``nn.MultiheadAttention``; grouped-query
heads, Ainslie et al. 2023; rotary position embedding, Su et al. 2021, as Llama applies it).

Per example, an input (S, D) (or (..., S, D): the leading dims are more sequences, Swin's
windows) gives (S, D). A second input, the memory (S_kv, D_kv), makes it cross-attention (the
Transformer's decoder): k and v project the memory, so S_kv and D_kv replace S and D in their
terms below. With H query heads, KV key/value heads and head size hd:

    q = x·W_q (S, H·hd)   k = x·W_k, v = x·W_v (S, KV·hd)   per head h, its K/V head g = h·KV/H:
    A_h = softmax(q_h·k_gᵀ / √hd + mask) (S, S)   y = [A_1·v_1, …, A_H·v_H]·W_o (S, D)

MACs (multiply-accumulates, bias adds not counted): the projections S·D·H·hd + 2·S·D·KV·hd +
S·H·hd·D, and the attention's two matmuls H·S·S·hd (QKᵀ) + H·S·S·hd (·V). A causal mask does
not halve them here: the full square is the convention of FlopCounterMode and Megatron-LM
(DESIGN.md), which the eager lowering really computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from . import receptive as rf
from .fields import BoolField, FloatField, PosInt, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped

GPT2 = "transformers.models.gpt2.modeling_gpt2.GPT2Attention"


class AttentionParams(Settings):
    """The settings of ``attention``."""
    heads: int = param(PosInt(doc="H, query heads"))
    kv_heads: int | None = param(PosInt(doc="KV, key/value heads (grouped-query: H/KV query heads share"
                                            " one; 1 = multi-query); default: heads"), None)
    head_dim: int | None = param(PosInt(doc="hd, the size of each head; default: D / heads"), None)
    causal: bool = param(BoolField(doc="mask later positions (a decoder); MACs still count the full S×S"),
                         False)
    dropout: float = param(FloatField(lo=0.0, hi=1.0, doc="dropout p on the attention probabilities"), 0.0)
    bias: bool = param(BoolField(doc="biases on the q, k, v (and output) projections"), True)
    out_bias: bool | None = param(BoolField(doc="a bias on the output projection; default: bias"), None)
    rope: bool = param(BoolField(doc="rotary position embedding of q and k (Su et al. 2021; Llama's"
                                     " rotate-half layout)"), False)
    rope_theta: float = param(FloatField(lo=1.0, doc="θ, RoPE's base: frequencies θ^(−2i/hd)"), 10000.0)


@dataclass(frozen=True)
class Dims:
    """A layer's sizes: sequences B (the leading dims' product), length S, model width D, heads H,
    K/V heads KV, head size hd; the keys' and values' length S_kv and width D_kv (S and D, or
    cross-attention's memory's)."""

    b: int
    s: int
    d: int
    h: int
    kv: int
    hd: int
    t: int
    dkv: int

    @property
    def cross(self) -> bool:
        return (self.t, self.dkv) != (self.s, self.d)


@register
class Attention(OpKind):
    name, family = "attention", "attention"
    doc = ("multi-head attention with its q, k, v and output projections (S, D) → (S, D); a second"
           " input (from: [x, memory]) is cross-attention's keys and values; grouped-query heads,"
           " causal mask, rotary embedding (nn.MultiheadAttention, GPT-2, Llama)")
    Params = AttentionParams
    example = {"name": "attn", "op": "attention", "heads": 4}
    counts_neurons = False
    inputs = (1, 2)   # a second input: cross-attention's memory (keys and values), (S_kv, D_kv)
    # eager: the paper's arithmetic as separate torch ops (S×S scores saved); sdpa:
    # F.scaled_dot_product_attention (a fused kernel where one applies)
    lowerings = ("eager", "sdpa")
    torch_modules = ("torch.nn.MultiheadAttention", "transformers.models.llama.modeling_llama.LlamaAttention",
                     GPT2)

    @staticmethod
    def dims(p: AttentionParams, ins: tuple[Shape, ...]) -> Dims:
        *lead, s, d = ins[0]
        t, dkv = ins[-1][-2:]
        kv = p.kv_heads or p.heads
        return Dims(prod(lead), s, d, p.heads, kv, p.head_dim or d // p.heads, t, dkv)

    def infer(self, p: AttentionParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        if len(shape) < 2:
            raise OpError(f"attention needs an (S, D) input, got ({shape[0]},)",
                          hint="hint: token ids go through an embedding first")
        if len(ins) == 2 and (len(ins[1]) != len(shape) or ins[1][:-2] != shape[:-2]):
            raise OpError(f"cross-attention's memory {fmt_shape(ins[1])} must be (S_kv, D_kv) with the"
                          f" leading dims of the queries {fmt_shape(shape)}", "from")
        d = shape[-1]
        if p.head_dim is None and d % p.heads:
            raise OpError(f"heads {p.heads} does not divide the model width D = {d}", "heads",
                          "hint: or give head_dim")
        if (p.kv_heads or p.heads) > p.heads or p.heads % (p.kv_heads or p.heads):
            raise OpError(f"kv_heads {p.kv_heads} does not divide heads {p.heads}", "kv_heads",
                          "hint: each key/value head serves heads / kv_heads query heads")
        x = self.dims(p, ins)
        if p.rope and x.hd % 2:
            raise OpError(f"rope needs an even head size, got {x.hd}", "rope")
        return Inferred(shape, self.arithmetic(p, x))

    def arithmetic(self, p: AttentionParams, x: Dims) -> str:
        """``q, k, v 768 → 12×64; QKᵀ: 12 heads × (1024×64)·(64×1024) → 12×1024×1024; ·V → 1024×768;
        out 768 → 768; K/V 1,536 values a token``."""
        kv = f"q {x.d} → {x.h}×{x.hd}, k, v {x.dkv} → {x.kv}×{x.hd} ({x.h // x.kv} query heads a K/V head)" \
            if x.kv != x.h or x.dkv != x.d else f"q, k, v {x.d} → {x.h}×{x.hd}"
        if x.cross:
            kv = f"cross: k, v from the memory ({x.t}, {x.dkv}); {kv}"
        qk = f"QKᵀ: {x.h} heads × ({x.s}×{x.hd})·({x.hd}×{x.t}) → {x.h}×{x.s}×{x.t}"
        mask = " (causal mask; MACs count the full square)" if p.causal else ""
        each = f", for each of {x.b:,}" if x.b > 1 else ""
        return (f"{kv}; {qk}{mask}; ·V → {x.s}×{x.h * x.hd}; out {x.h * x.hd} → {x.d};"
                f" K/V {2 * x.kv * x.hd:,} values a token{each}")

    def kv_bytes_per_token(self, p: AttentionParams, ins: tuple[Shape, ...], dtype_bytes: int) -> int:
        """Bytes the KV cache holds per token (per sequence, per layer): K and V, 2·KV·hd elements."""
        x = self.dims(p, ins)
        return 2 * x.kv * x.hd * dtype_bytes

    def params(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        weights = x.d * x.h * x.hd + 2 * x.dkv * x.kv * x.hd + x.h * x.hd * x.d   # W_q, W_k, W_v, W_o
        biases = (x.h * x.hd + 2 * x.kv * x.hd if p.bias else 0) + (x.d if self._out_bias(p) else 0)
        return weights + biases

    def macs(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        proj = x.s * x.d * x.h * x.hd + 2 * x.t * x.dkv * x.kv * x.hd + x.s * x.h * x.hd * x.d
        scores = 2 * x.h * x.s * x.t * x.hd   # QKᵀ and ·V, S·S_kv·hd each per head: the full square
        return x.b * (proj + scores)

    def work(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        rope = 3 * (x.s * x.h + x.t * x.kv) * x.hd if p.rope else 0   # q·cos + rotate(q)·sin, q and k
        return x.b * (7 * x.h * x.s * x.t + rope)   # scale, mask, softmax (5) per score

    @staticmethod
    def _out_bias(p: AttentionParams) -> bool:
        return p.bias if p.out_bias is None else p.out_bias

    def receptive(self, p: AttentionParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image) if len(image) == 3 else fs[0]   # each position reads every position

    def torch(self, p: AttentionParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        # archviz's module (archviz/runtime/attention.py): q_proj, k_proj, v_proj, o_proj
        x = self.dims(p, ins)
        kw = TorchLayer.given({"causal": False, "dropout": 0.0, "bias": True, "out_bias": True, "rope": False,
                               "rope_theta": 10000.0, "sdpa": False, "kv_dim": 0, "kv_seq": 0},
                              causal=p.causal, dropout=p.dropout, bias=p.bias, out_bias=self._out_bias(p),
                              rope=p.rope, rope_theta=p.rope_theta, sdpa=(lowering or "eager") == "sdpa",
                              kv_dim=x.dkv if x.cross else 0, kv_seq=x.t if x.cross else 0)
        return TorchLayer("Attention", (x.d, x.h, x.kv, x.hd, x.s), kw)

    def saved(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        x = self.dims(p, ins)
        low = ac.low
        tensors = self._projections_saved(x, ac)
        fused = (lowering or "eager") == "sdpa" and (ac.device == "cuda" or p.dropout == 0)
        if fused:
            # the fused kernel (CPU flash attention; CUDA flash / memory-efficient) saves q, k, v (the
            # projections' outputs, KV heads), its output and the log-sum-exp per row, fp32; the
            # output, laid out (S, H·hd), is also the output projection's input
            kv = x.b * x.kv * x.t * x.hd
            tensors += (SavedTensor("q", x.b * x.h * x.s * x.hd, low), SavedTensor("k", kv, low),
                        SavedTensor("v", kv, low),
                        SavedTensor("logsumexp", x.b * x.h * x.s, "fp32"),
                        SavedTensor("attention output", x.b * x.h * x.s * x.hd, low))
            return Saved(tensors, low)
        # eager (and SDPA's math fallback: with dropout on the CPU, which computes a half input in
        # fp32): the matmuls' contiguous copies of q and kᵀ (H heads: K/V repeated), the softmax's
        # output (S×S per head, also ·V's input without dropout), dropout's mask and output, v, then
        # the heads' output laid out (S, H·hd) for the output projection
        core = "fp32" if lowering == "sdpa" else low
        square, head, keys = x.b * x.h * x.s * x.t, x.b * x.h * x.s * x.hd, x.b * x.h * x.t * x.hd
        tensors += (SavedTensor("q (copy)", head, core), SavedTensor("kᵀ (copy)", keys, core),
                    SavedTensor("probabilities (S×S_kv a head)", square, core))
        if p.dropout > 0:
            mask = "bool" if ac.device == "cuda" else core
            tensors += (SavedTensor("dropout mask", square, mask),
                        SavedTensor("dropped probabilities", square, core))
        tensors += (SavedTensor("v (copy)", keys, core), SavedTensor("heads' output", head, low))
        return Saved(tensors, low)

    @staticmethod
    def _projections_saved(x: Dims, ac: Autocast) -> tuple[SavedTensor, ...]:
        """The q, k, v projections save their input: shared where it comes in the compute dtype, else
        (autocast) one low-precision copy each, as autocast caches no activation casts; under
        autocast the weight copies (q, k, v only where the input carries a gradient), as linear's."""
        low, n = ac.low, x.b * x.s * x.d
        tensors: tuple[SavedTensor, ...]
        if len(ac.ins) == 2:   # cross-attention: q reads the input, k and v the memory (input 1)
            m = x.b * x.t * x.dkv
            tensors = ((SavedTensor("input", n, low, "input"),) if ac.ins[0] == low
                       else (SavedTensor("input (q copy)", n, low),))
            tensors += ((SavedTensor("memory", m, low, "input", 1),) if ac.ins[1] == low
                        else tuple(SavedTensor(f"memory ({w} copy)", m, low) for w in "kv"))
        elif ac.ins[0] == low:
            tensors = (SavedTensor("input", n, low, "input"),)
        else:
            tensors = tuple(SavedTensor(f"input ({w} copy)", n, low) for w in "qkv")
        if ac.compute:
            if ac.grad_in:
                tensors += (SavedTensor("W_q copy", x.d * x.h * x.hd, low, per_image=False),
                            SavedTensor("W_k, W_v copies", 2 * x.dkv * x.kv * x.hd, low, per_image=False))
            tensors += (SavedTensor("W_o copy", x.h * x.hd * x.d, low, per_image=False),)
        return tensors

    def gpu_local(self, p: AttentionParams, gpus: int) -> bool:
        return False

    def split(self, p: AttentionParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="attention splits by heads (Megatron-LM), not by output rows: not yet")

    def from_module(self, src: Source) -> Mapped:
        # nn.MultiheadAttention, called as mha(x, x, x): self-attention, batch first, packed q, k, v
        a = src.attrs
        if src.target == GPT2:
            return self._from_gpt2(a)
        if "config" in a:
            return self._from_config(a["config"], bool(a.get("is_causal", True)))
        if not a.get("batch_first"):
            raise Unmapped("batch_first=False (archviz's sequences are batch first: (N, S, D))")
        if a.get("kdim") != a["embed_dim"] or a.get("vdim") != a["embed_dim"]:
            raise Unmapped("kdim or vdim other than embed_dim")
        if a.get("bias_k") is not None or a.get("add_zero_attn"):
            raise Unmapped("add_bias_kv or add_zero_attn")
        if len(src.ins) != 1:
            raise Unmapped("cross-attention (query and key/value from different tensors)")
        return self.layer(heads=a["num_heads"], dropout=float(a["dropout"]),
                          bias=a.get("in_proj_bias") is not None)

    def _from_config(self, config: Any, causal: bool) -> Mapped:
        """transformers' LlamaAttention, read from its config: heads, K/V heads, head size, biases,
        dropout, RoPE's θ and the attention implementation the model runs (eager or sdpa)."""
        impl = getattr(config, "_attn_implementation", None) or "eager"
        if impl not in self.lowerings:
            raise Unmapped(f"attention implementation {impl!r} (archviz lowers to eager or sdpa)")
        scaling = getattr(config, "rope_scaling", None) or {}
        if scaling.get("rope_type", "default") != "default":
            raise Unmapped(f"rope_scaling {scaling.get('rope_type')!r} (archviz's RoPE is the default one)")
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        theta = getattr(config, "rope_theta", None) or scaling.get("rope_theta", 10000.0)
        return self.layer(heads=heads, kv_heads=config.num_key_value_heads, head_dim=head_dim, causal=causal,
                          dropout=float(config.attention_dropout), bias=bool(config.attention_bias),
                          rope=True, rope_theta=float(theta), lowering=impl)

    def _from_gpt2(self, a: Mapping[str, Any]) -> Mapped:
        """transformers' GPT2Attention: heads, head size, causal, attn_pdrop, q·k scaled by 1/√hd,
        biases on the packed ``c_attn`` and on ``c_proj`` (split into q, k, v, o on load:
        archviz/runtime/attention.py); its ``resid_dropout`` after c_proj, a dropout layer."""
        config = a["config"]
        impl = getattr(config, "_attn_implementation", None) or "eager"
        if impl not in self.lowerings:
            raise Unmapped(f"attention implementation {impl!r} (archviz lowers to eager or sdpa)")
        if a["is_cross_attention"] or not a["scale_attn_weights"] or a["scale_attn_by_inverse_layer_idx"]:
            raise Unmapped("cross-attention, or a scale other than 1/√head_dim")
        if a["reorder_and_upcast_attn"] or a.get("pruned_heads"):
            raise Unmapped("reorder_and_upcast_attn or pruned heads")
        layers = self.layer(heads=a["num_heads"], kv_heads=a["num_heads"], head_dim=a["head_dim"],
                            causal=bool(a["is_causal"]), dropout=float(config.attn_pdrop), bias=True,
                            lowering=impl)
        p = float(config.resid_pdrop)
        return layers + ((("dropout", {"p": p}),) if p else ())

    def label(self, p: AttentionParams) -> str:
        parts = [f"{p.heads} heads"] + ([f"{p.kv_heads} kv"] if p.kv_heads not in (None, p.heads) else [])
        return ", ".join(parts + [w for w, on in (("causal", p.causal), ("rope", p.rope)) if on])
