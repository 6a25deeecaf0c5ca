"""Attention: ``attention``, multi-head self-attention with its q, k, v and output projections
(Vaswani et al. 2017, section 3.2; GPT-2's attn block, ``nn.MultiheadAttention``; grouped-query
heads, Ainslie et al. 2023; rotary position embedding, Su et al. 2021, as Llama applies it;
Swin's relative position bias and shifted-window mask, Liu et al. 2021, eq. 4 and section 3.2).

Per example, an input (S, D) (or (..., S, D): the leading dims are more sequences, Swin's
windows) gives (S, D). A second input, the memory (S_kv, D_kv), makes it cross-attention (the
Transformer's decoder): k and v project the memory, so S_kv and D_kv replace S and D in their
terms below. With H query heads, KV key/value heads and head size hd:

    q = x·W_q (S, H·hd)   k = x·W_k, v = x·W_v (S, KV·hd)   per head h, its K/V head g = h·KV/H:
    A_h = softmax(q_h·k_gᵀ / √hd + B_h + mask) (S, S)   y = [A_1·v_1, …, A_H·v_H]·W_o (S, D)

B_h, with ``rel_pos: [Wh, Ww]`` (a window of S = Wh·Ww positions): Swin's learned relative position
bias, B_h[i, j] = T[idx(i, j), h] from a table T of (2Wh−1)·(2Ww−1) × H parameters, idx a fixed
buffer of the S² offsets (Δrow + Wh − 1)·(2Ww − 1) + (Δcol + Ww − 1). ``shift: [sh, sw]``: Swin's
shifted-window mask for an input (nh, nw, S, D), the windows of a map rolled back by (sh, sw):
−100 between positions from different regions of the unrolled map (torchvision's value).

MACs (multiply-accumulates, bias adds not counted): the projections S·D·H·hd + 2·S·D·KV·hd +
S·H·hd·D, and the attention's two matmuls H·S·S·hd (QKᵀ) + H·S·S·hd (·V). A causal mask does
not halve them here: the full square is the convention of FlopCounterMode and Megatron-LM
(DESIGN.md), which the eager lowering really computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod
from typing import Any

from ..record import record
from . import receptive as rf
from .fields import BoolField, FloatField, PairField, PosInt, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor
from .source import Mapped, Source, Split, Unmapped

GPT2 = "transformers.models.gpt2.modeling_gpt2.GPT2Attention"
# q, k, v alone (``query``, ``key``, ``value``); W_o is the next module's (BertSelfOutput's dense)
BERT = {"transformers.models.bert.modeling_bert.BertSelfAttention": "eager",
        "transformers.models.bert.modeling_bert.BertSdpaSelfAttention": "sdpa",
        "transformers.models.vit.modeling_vit.ViTSelfAttention": ""}   # ViT: its config says
SWIN = "torchvision.models.swin_transformer.ShiftedWindowAttention"
# Llama's layout read from the config (q_proj ... o_proj, RoPE); Mistral's and Qwen2's differ from it
# only by a sliding window (and Qwen2's biases on q, k, v alone)
LLAMA_LIKE = tuple(f"transformers.models.{m}.modeling_{m}.{c}Attention"
                   for m, c in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2")))


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
    out_proj: bool = param(BoolField(doc="the output projection W_o; false: the heads' output (S, H·hd) is"
                                         " the result (BERT's and ViT's W_o is a module of its own)"), True)
    packed: bool = param(BoolField(doc="q, k, v from one matmul (GPT-2's c_attn, nn.MultiheadAttention's"
                                       " in_proj): under autocast one low-precision copy of the input,"
                                       " not three (saved for backward)"), False)
    rel_pos: tuple[int, int] | None = param(PairField(doc="Swin's learned relative position bias over a"
                                                          " window of Wh×Ww = S positions: a table of"
                                                          " (2Wh−1)(2Ww−1) × H parameters added to the"
                                                          " scores"), None)
    shift: tuple[int, int] | None = param(PairField(lo=0, doc="Swin's shifted-window mask (needs rel_pos):"
                                                              " the input (nh, nw, S, D) holds the windows of"
                                                              " a map rolled back by [sh, sw]"), None)


@record
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
    torch_modules = ("torch.nn.MultiheadAttention", *LLAMA_LIKE, GPT2, *BERT, SWIN)

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
        self._check_window(p, shape, x)
        return Inferred(shape if p.out_proj else (*shape[:-1], x.h * x.hd), self.arithmetic(p, x))

    @staticmethod
    def _check_window(p: AttentionParams, shape: Shape, x: Dims) -> None:
        """rel_pos: S (and S_kv) = Wh·Ww; shift: rel_pos given, the input (nh, nw, S, D), 0 < shift
        < window; neither with a causal mask."""
        if p.shift is not None and p.rel_pos is None:
            raise OpError("shift needs rel_pos (the window the mask is built for)", "shift")
        if p.rel_pos is None:
            return
        wh, ww = p.rel_pos
        if x.s != wh * ww or x.t != x.s:
            raise OpError(f"rel_pos {wh}×{ww} needs S = {wh * ww} positions (a window), got"
                          f" {fmt_shape(shape)}", "rel_pos")
        if p.causal:
            raise OpError("rel_pos with a causal mask: one additive term at a time", "causal")
        shift = p.shift or (1, 1)
        inside = all(0 <= s < w for s, w in zip(shift, p.rel_pos, strict=True)) and any(shift)
        if p.shift is not None and (len(shape) < 4 or not inside):
            raise OpError(f"shift {list(p.shift)} needs an input (nh, nw, S, D) (a grid of windows) and"
                          f" 0 ≤ shift < the window {wh}×{ww} (not both 0), got {fmt_shape(shape)}", "shift")

    def arithmetic(self, p: AttentionParams, x: Dims) -> str:
        """``q, k, v 768 → 12×64; QKᵀ: 12 heads × (1024×64)·(64×1024) → 12×1024×1024; ·V → 1024×768;
        out 768 → 768; K/V 1,536 values a token``."""
        kv = f"q {x.d} → {x.h}×{x.hd}, k, v {x.dkv} → {x.kv}×{x.hd} ({x.h // x.kv} query heads a K/V head)" \
            if x.kv != x.h or x.dkv != x.d else f"q, k, v {x.d} → {x.h}×{x.hd}"
        if x.cross:
            kv = f"cross: k, v from the memory ({x.t}, {x.dkv}); {kv}"
        qk = f"QKᵀ: {x.h} heads × ({x.s}×{x.hd})·({x.hd}×{x.t}) → {x.h}×{x.s}×{x.t}"
        mask = " (causal mask; MACs count the full square)" if p.causal else ""
        if p.rel_pos is not None:
            (wh, ww), t = p.rel_pos, self._table(p)
            mask += (f" + relative position bias (a (2·{wh}−1)·(2·{ww}−1) = {t // x.h:,} × {x.h} table,"
                     f" indexed by the {x.s}² pairs' offsets)")
        if p.shift is not None:
            mask += f" + shifted-window mask (rolled by {p.shift[0]}×{p.shift[1]}: −100 across regions)"
        each = f", for each of {x.b:,}" if x.b > 1 else ""
        out = f" out {x.h * x.hd} → {x.d};" if p.out_proj else " no output projection;"
        return (f"{kv}; {qk}{mask}; ·V → {x.s}×{x.h * x.hd};{out}"
                f" K/V {2 * x.kv * x.hd:,} values a token{each}")

    def kv_bytes_per_token(self, p: AttentionParams, ins: tuple[Shape, ...], dtype_bytes: int) -> int:
        """Bytes the KV cache holds per token (per sequence, per layer): K and V, 2·KV·hd elements."""
        x = self.dims(p, ins)
        return 2 * x.kv * x.hd * dtype_bytes

    def params(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        w_o = x.h * x.hd * x.d if p.out_proj else 0
        weights = x.d * x.h * x.hd + 2 * x.dkv * x.kv * x.hd + w_o   # W_q, W_k, W_v, W_o
        biases = (x.h * x.hd + 2 * x.kv * x.hd if p.bias else 0) + (x.d if self._out_bias(p) else 0)
        return weights + biases + self._table(p)

    @staticmethod
    def _table(p: AttentionParams) -> int:
        """Swin's relative position bias table: (2Wh − 1)·(2Ww − 1) offsets × H heads (Liu et al. 2021)."""
        if p.rel_pos is None:
            return 0
        wh, ww = p.rel_pos
        return (2 * wh - 1) * (2 * ww - 1) * p.heads

    def buffers(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # rel_pos: the index of each of the S² pairs' offsets (int64, kept in the state dict)
        return 0 if p.rel_pos is None else (p.rel_pos[0] * p.rel_pos[1]) ** 2

    def buffer_bytes(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 8 * self.buffers(p, ins, out)

    def macs(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        w_o = x.s * x.h * x.hd * x.d if p.out_proj else 0
        proj = x.s * x.d * x.h * x.hd + 2 * x.t * x.dkv * x.kv * x.hd + w_o
        scores = 2 * x.h * x.s * x.t * x.hd   # QKᵀ and ·V, S·S_kv·hd each per head: the full square
        return x.b * (proj + scores)

    def uncounted_macs(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape,
                       lowering: str = "") -> int:
        # torch's CPU flash kernel for F.scaled_dot_product_attention: flop_counter sees neither S×S matmul
        x = self.dims(p, ins)
        return x.b * 2 * x.h * x.s * x.t * x.hd if lowering == "sdpa" else 0

    def work(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape) -> int:
        x = self.dims(p, ins)
        rope = 3 * (x.s * x.h + x.t * x.kv) * x.hd if p.rope else 0   # q·cos + rotate(q)·sin, q and k
        return x.b * (7 * x.h * x.s * x.t + rope)   # scale, mask, softmax (5) per score

    @staticmethod
    def _out_bias(p: AttentionParams) -> bool:
        return p.out_proj and (p.bias if p.out_bias is None else p.out_bias)

    def receptive(self, p: AttentionParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.whole(fs, image) if len(image) == 3 else fs[0]   # each position reads every position

    def torch(self, p: AttentionParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        # archviz's module (archviz/runtime/attention.py): q_proj, k_proj, v_proj, o_proj
        x = self.dims(p, ins)
        kw = TorchLayer.given({"causal": False, "dropout": 0.0, "bias": True, "out_bias": True, "rope": False,
                               "rope_theta": 10000.0, "sdpa": False, "kv_dim": 0, "kv_seq": 0,
                               "out_proj": True, "packed": False, "rel_pos": None, "shift": None,
                               "grid": None},
                              causal=p.causal, dropout=p.dropout, bias=p.bias, out_bias=self._out_bias(p),
                              rope=p.rope, rope_theta=p.rope_theta, sdpa=(lowering or "eager") == "sdpa",
                              kv_dim=x.dkv if x.cross else 0, kv_seq=x.t if x.cross else 0,
                              out_proj=p.out_proj, packed=p.packed and not x.cross,
                              rel_pos=p.rel_pos, shift=p.shift,
                              grid=tuple(ins[0][-4:-2]) if p.shift is not None else None)
        return TorchLayer("Attention", (x.d, x.h, x.kv, x.hd, x.s), kw)

    def saved(self, p: AttentionParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        x = self.dims(p, ins)
        low = ac.low
        tensors = self._projections_saved(x, ac, p.out_proj, p.packed)
        # without W_o the heads' output is the layer's output: the next layer saves it if it needs it
        heads_out = (SavedTensor("heads' output", x.b * x.h * x.s * x.hd, low),) if p.out_proj else ()
        sdpa = (lowering or "eager") == "sdpa"
        if sdpa and p.rel_pos is not None and ac.device == "cuda":
            # CUDA's memory-efficient kernel with an additive bias: not measured here
            return Saved(tensors, low, known=False)
        # with an additive bias (rel_pos) the CPU runs SDPA's math fallback (measured)
        fused = sdpa and (ac.device == "cuda" or p.dropout == 0) and p.rel_pos is None
        if fused:
            # the fused kernel (CPU flash attention; CUDA flash / memory-efficient) saves q, k, v (the
            # projections' outputs, KV heads), its output and the log-sum-exp per row, fp32; the
            # output, laid out (S, H·hd), is also the output projection's input
            kv = x.b * x.kv * x.t * x.hd
            tensors += (SavedTensor("q", x.b * x.h * x.s * x.hd, low), SavedTensor("k", kv, low),
                        SavedTensor("v", kv, low),
                        SavedTensor("logsumexp", x.b * x.h * x.s, "fp32"),
                        # without W_o, the layer's output itself (a view of this storage)
                        SavedTensor("attention output", x.b * x.h * x.s * x.hd, low,
                                    "" if p.out_proj else "output"))
            return Saved(tensors, low)
        # eager (and SDPA's math fallback: with dropout on the CPU, which computes a half input in
        # fp32): the matmuls' contiguous copies of q and kᵀ (H heads: K/V repeated), the softmax's
        # output (S×S per head, also ·V's input without dropout), dropout's mask and output, v, then
        # the heads' output laid out (S, H·hd) for the output projection
        core = "fp32" if lowering == "sdpa" else low
        square, head, keys = x.b * x.h * x.s * x.t, x.b * x.h * x.s * x.hd, x.b * x.h * x.t * x.hd
        # eager under autocast with rel_pos: the fp32 bias promotes the scores, so softmax (and
        # dropout) run in fp32 and ·V saves its own low-precision copy of the probabilities
        promoted = p.rel_pos is not None and not sdpa and ac.compute is not None
        probs = "fp32" if promoted else core
        tensors += (SavedTensor("q (copy)", head, core), SavedTensor("kᵀ (copy)", keys, core),
                    SavedTensor("probabilities (S×S_kv a head)", square, probs))
        if p.dropout > 0:
            mask = "bool" if ac.device == "cuda" else probs
            tensors += (SavedTensor("dropout mask", square, mask),)
            if not promoted:
                tensors += (SavedTensor("dropped probabilities", square, core),)
        if promoted:
            tensors += (SavedTensor("probabilities (copy for ·V)", square, low),)
        tensors += (SavedTensor("v (copy)", keys, core), *heads_out)
        return Saved(tensors, low)

    @staticmethod
    def _projections_saved(x: Dims, ac: Autocast, out_proj: bool = True,
                           packed: bool = False) -> tuple[SavedTensor, ...]:
        """The q, k, v projections save their input: shared where it comes in the compute dtype, else
        (autocast) one low-precision copy each, as autocast caches no activation casts, or one for
        all three where they are one matmul (``packed``); under autocast the weight copies (q, k, v
        only where the input carries a gradient), as linear's."""
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
        elif packed:
            tensors = (SavedTensor("input (one copy for q, k, v)", n, low),)
        else:
            tensors = tuple(SavedTensor(f"input ({w} copy)", n, low) for w in "qkv")
        if ac.compute:
            if ac.grad_in:
                tensors += (SavedTensor("W_q copy", x.d * x.h * x.hd, low, per_image=False),
                            SavedTensor("W_k, W_v copies", 2 * x.dkv * x.kv * x.hd, low, per_image=False))
            if out_proj:
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
        if src.target in BERT:
            return self._from_bert(a, BERT[src.target])
        if src.target == SWIN:
            return self._from_swin(a, src.ins[0])
        if "config" in a:
            return self._from_config(a, src.ins[0])
        if not a.get("batch_first"):
            raise Unmapped("batch_first=False (archviz's sequences are batch first: (N, S, D))")
        if a.get("kdim") != a["embed_dim"] or a.get("vdim") != a["embed_dim"]:
            raise Unmapped("kdim or vdim other than embed_dim")
        if a.get("bias_k") is not None or a.get("add_zero_attn"):
            raise Unmapped("add_bias_kv or add_zero_attn")
        if len(src.ins) != 1:
            raise Unmapped("cross-attention (query and key/value from different tensors)")
        # called with need_weights=False (nn.TransformerEncoderLayer does) it runs SDPA
        sdpa = {"lowering": "sdpa"} if src.kwargs.get("need_weights") is False else {}
        return self.layer(heads=a["num_heads"], dropout=float(a["dropout"]),
                          bias=a.get("in_proj_bias") is not None, packed=a.get("in_proj_weight") is not None,
                          **sdpa)

    def _from_config(self, a: Mapping[str, Any], shape: Shape) -> Mapped:
        """transformers' LlamaAttention (and Mistral's, Qwen2's), read from its config: heads, K/V
        heads, head size, dropout, RoPE's θ and the attention implementation the model runs (eager or
        sdpa); the biases from its projections. A sliding window is the causal mask where the window
        holds the whole sequence (S ≤ window); a longer sequence is refused."""
        config = a["config"]
        impl = getattr(config, "_attn_implementation", None) or "eager"
        if impl not in self.lowerings:
            raise Unmapped(f"attention implementation {impl!r} (archviz lowers to eager or sdpa)")
        scaling = getattr(config, "rope_scaling", None) or {}
        if scaling.get("rope_type", "default") != "default":
            raise Unmapped(f"rope_scaling {scaling.get('rope_type')!r} (archviz's RoPE is the default one)")
        window = a.get("sliding_window", getattr(config, "sliding_window", None))
        if window is not None and len(shape) >= 2 and shape[-2] > window:
            raise Unmapped(f"a sliding window of {window} positions over S = {shape[-2]} (archviz's causal"
                           " mask covers the whole sequence: import with S ≤ the window)")
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        theta = getattr(config, "rope_theta", None) or scaling.get("rope_theta", 10000.0)
        bias, out_bias = a.get("q_proj.bias") is not None, a.get("o_proj.bias") is not None
        return self.layer(heads=heads, kv_heads=config.num_key_value_heads, head_dim=head_dim,
                          causal=bool(a.get("is_causal", True)), dropout=float(config.attention_dropout),
                          bias=bias, out_bias=None if out_bias == bias else out_bias,
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
                            packed=True, lowering=impl)
        p = float(config.resid_pdrop)
        return layers + ((("dropout", {"p": p}),) if p else ())

    def _from_bert(self, a: Mapping[str, Any], impl: str) -> Mapped:
        """transformers' BertSelfAttention (eager), BertSdpaSelfAttention and ViTSelfAttention (the
        implementation its config names): ``query``, ``key``, ``value`` and no output projection
        (BertSelfOutput's and ViTSelfOutput's ``dense`` is a linear layer after it); q·k scaled by
        1/√hd, no mask (archviz's input has no padding); dropout p on the probabilities."""
        config = a.get("config")
        impl = impl or getattr(config, "_attn_implementation", None) or "eager"
        if impl not in self.lowerings:
            raise Unmapped(f"attention implementation {impl!r} (archviz lowers to eager or sdpa)")
        if a.get("position_embedding_type", "absolute") != "absolute" or a.get("is_decoder"):
            raise Unmapped("relative position embeddings or a decoder (is_decoder)")
        p = a["dropout_prob"] if "dropout_prob" in a else a["dropout"]["p"]   # sdpa and ViT keep p itself
        return self.layer(heads=a["num_attention_heads"], head_dim=a["attention_head_size"], out_proj=False,
                          dropout=float(p), bias=a["query"]["bias"] is not None, lowering=impl)

    def _from_swin(self, a: Mapping[str, Any], shape: Shape) -> Mapped:
        """torchvision's ShiftedWindowAttention (Swin V1) on a channels-last map (H, W, C), as its
        ``shifted_window_attention`` computes it: pad to whole windows, roll back by the shift,
        partition into an (nh, nw) grid of Wh·Ww-position windows, attention with the relative
        position bias (and the shifted-window mask), the output dropout, then the windows put
        back, rolled forward and the padding cut off. The attention layer holds the weights."""
        if len(shape) != 3:
            raise Unmapped(f"an input {shape} (a channels-last map (H, W, C) per example)")
        (h, w, c), (wh, ww) = shape, a["window_size"]
        ph, pw = h + (wh - h % wh) % wh, w + (ww - w % ww) % ww
        sh, sw = (s if win < n else 0 for s, win, n in zip(a["shift_size"], (wh, ww), (ph, pw), strict=True))
        nh, nw, shifted = ph // wh, pw // ww, sh + sw > 0
        layers: list[tuple[str, dict[str, Any]]] = []
        if (ph, pw) != (h, w):
            layers.append(("pad", {"pad": [0, 0, 0, pw - w, 0, ph - h]}))
        if shifted:
            layers.append(("roll", {"shifts": [-sh, -sw], "dims": [0, 1]}))
        layers += [("reshape", {"shape": [nh, wh, nw, ww, c]}), ("permute", {"dims": [0, 2, 1, 3, 4]}),
                   ("reshape", {"shape": [nh, nw, wh * ww, c]})]
        bias, out_bias = a.get("qkv.bias") is not None, a.get("proj.bias") is not None
        layers += self.layer(heads=a["num_heads"], bias=bias, out_bias=None if out_bias == bias else out_bias,
                             dropout=float(a["attention_dropout"]), rel_pos=[wh, ww],
                             **({"shift": [sh, sw]} if shifted else {}))
        if a["dropout"]:
            layers.append(("dropout", {"p": float(a["dropout"])}))
        layers += [("reshape", {"shape": [nh, nw, wh, ww, c]}), ("permute", {"dims": [0, 2, 1, 3, 4]}),
                   ("reshape", {"shape": [ph, pw, c]})]
        if shifted:
            layers.append(("roll", {"shifts": [sh, sw], "dims": [0, 1]}))
        layers += [("narrow", {"dim": d, "start": 0, "length": n})   # the padding cut off
                   for d, n, padded in ((0, h, ph), (1, w, pw)) if n != padded]
        return tuple(layers)

    def label(self, p: AttentionParams) -> str:
        parts = [f"{p.heads} heads"] + ([f"{p.kv_heads} kv"] if p.kv_heads not in (None, p.heads) else [])
        parts += [w for w, on in (("causal", p.causal), ("rope", p.rope)) if on]
        if p.rel_pos is not None:   # Swin: its window, and whether the windows are shifted
            shifted = ", shifted" if p.shift is not None else ""
            parts.append(f"window {p.rel_pos[0]}×{p.rel_pos[1]}{shifted}")
        return ", ".join(parts)
