"""Attention: ``attention``, multi-head self-attention with its q, k, v and output projections
(Vaswani et al. 2017, section 3.2; GPT-2's attn block, ``nn.MultiheadAttention``; grouped-query
heads, Ainslie et al. 2023; rotary position embedding, Su et al. 2021, as Llama applies it).

Per example, an input (S, D) (or (..., S, D): the leading dims are more sequences, Swin's
windows) gives (S, D). With H query heads, KV key/value heads and head size hd:

    q = x·W_q (S, H·hd)   k = x·W_k, v = x·W_v (S, KV·hd)   per head h, its K/V head g = h·KV/H:
    A_h = softmax(q_h·k_gᵀ / √hd + mask) (S, S)   y = [A_1·v_1, …, A_H·v_H]·W_o (S, D)

MACs (multiply-accumulates, bias adds not counted): the projections S·D·H·hd + 2·S·D·KV·hd +
S·H·hd·D, and the attention's two matmuls H·S·S·hd (QKᵀ) + H·S·S·hd (·V). A causal mask does
not halve them here: the full square is the convention of FlopCounterMode and Megatron-LM
(DESIGN.md), which the eager lowering really computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from . import receptive as rf
from .fields import BoolField, FloatField, PosInt, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped


@dataclass(frozen=True, kw_only=True)
class AttentionParams:
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
    K/V heads KV, head size hd."""

    b: int
    s: int
    d: int
    h: int
    kv: int
    hd: int


@register
class Attention(OpKind):
    name, family = "attention", "attention"
    doc = ("multi-head self-attention with its q, k, v and output projections (S, D) → (S, D);"
           " grouped-query heads, causal mask, rotary embedding (nn.MultiheadAttention, GPT-2, Llama)")
    Params = AttentionParams
    example = {"name": "attn", "op": "attention", "heads": 4}
    counts_neurons = False
    # eager: the paper's arithmetic as separate torch ops (S×S scores saved); sdpa:
    # F.scaled_dot_product_attention (a fused kernel where one applies)
    lowerings = ("eager", "sdpa")
    torch_modules = ("torch.nn.MultiheadAttention",)

    @staticmethod
    def dims(p: AttentionParams, ins: tuple[Shape, ...]) -> Dims:
        *lead, s, d = ins[0]
        kv = p.kv_heads or p.heads
        return Dims(prod(lead), s, d, p.heads, kv, p.head_dim or d // p.heads)

    def infer(self, p: AttentionParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        if len(shape) < 2:
            raise OpError(f"attention needs an (S, D) input, got ({shape[0]},)",
                          hint="hint: token ids go through an embedding first")
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
        kv = f"q {x.d} → {x.h}×{x.hd}, k, v {x.d} → {x.kv}×{x.hd} ({x.h // x.kv} query heads a K/V head)" \
            if x.kv != x.h else f"q, k, v {x.d} → {x.h}×{x.hd}"
        qk = f"QKᵀ: {x.h} heads × ({x.s}×{x.hd})·({x.hd}×{x.s}) → {x.h}×{x.s}×{x.s}"
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
        weights = x.d * x.h * x.hd + 2 * x.d * x.kv * x.hd + x.h * x.hd * x.d   # W_q, W_k, W_v, W_o
        biases = (x.h * x.hd + 2 * x.kv * x.hd if p.bias else 0) + (x.d if self._out_bias(p) else 0)
        return weights + biases

    def macs(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        proj = x.s * x.d * x.h * x.hd + 2 * x.s * x.d * x.kv * x.hd + x.s * x.h * x.hd * x.d
        scores = 2 * x.h * x.s * x.s * x.hd   # QKᵀ and ·V, S·S·hd each per head: the full square
        return x.b * (proj + scores)

    def work(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        rope = 3 * x.s * (x.h + x.kv) * x.hd if p.rope else 0   # q·cos + rotate(q)·sin, for q and k
        return x.b * (7 * x.h * x.s * x.s + rope)   # scale, mask, softmax (5) per score

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
                               "rope_theta": 10000.0, "sdpa": False},
                              causal=p.causal, dropout=p.dropout, bias=p.bias, out_bias=self._out_bias(p),
                              rope=p.rope, rope_theta=p.rope_theta, sdpa=(lowering or "eager") == "sdpa")
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
            kv = x.b * x.kv * x.s * x.hd
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
        square, head = x.b * x.h * x.s * x.s, x.b * x.h * x.s * x.hd
        tensors += (SavedTensor("q (copy)", head, core), SavedTensor("kᵀ (copy)", head, core),
                    SavedTensor("probabilities (S×S a head)", square, core))
        if p.dropout > 0:
            mask = "bool" if ac.device == "cuda" else core
            tensors += (SavedTensor("dropout mask", square, mask),
                        SavedTensor("dropped probabilities", square, core))
        tensors += (SavedTensor("v (copy)", head, core), SavedTensor("heads' output", head, low))
        return Saved(tensors, low)

    @staticmethod
    def _projections_saved(x: Dims, ac: Autocast) -> tuple[SavedTensor, ...]:
        """The q, k, v projections save their input: shared where it comes in the compute dtype, else
        (autocast) one low-precision copy each, as autocast caches no activation casts; under
        autocast the weight copies (q, k, v only where the input carries a gradient), as linear's."""
        low, n = ac.low, x.b * x.s * x.d
        if ac.ins[0] == low:
            tensors: tuple[SavedTensor, ...] = (SavedTensor("input", n, low, "input"),)
        else:
            tensors = tuple(SavedTensor(f"input ({w} copy)", n, low) for w in "qkv")
        if ac.compute:
            if ac.grad_in:
                tensors += (SavedTensor("W_q copy", x.d * x.h * x.hd, low, per_image=False),
                            SavedTensor("W_k, W_v copies", 2 * x.d * x.kv * x.hd, low, per_image=False))
            tensors += (SavedTensor("W_o copy", x.h * x.hd * x.d, low, per_image=False),)
        return tensors

    def gpu_local(self, p: AttentionParams, gpus: int) -> bool:
        return False

    def split(self, p: AttentionParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="attention splits by heads (Megatron-LM), not by output rows: not yet")

    def from_module(self, src: Source) -> Mapped:
        # nn.MultiheadAttention, called as mha(x, x, x): self-attention, batch first, packed q, k, v
        a = src.attrs
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

    def label(self, p: AttentionParams) -> str:
        parts = [f"{p.heads} heads"] + ([f"{p.kv_heads} kv"] if p.kv_heads not in (None, p.heads) else [])
        return ", ".join(parts + [w for w, on in (("causal", p.causal), ("rope", p.rope)) if on])
