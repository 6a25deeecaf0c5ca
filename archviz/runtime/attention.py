"""archviz's torch modules for the attention-era ops: :class:`Attention` (multi-head
self-attention with its projections; grouped-query, causal, rotary) and :class:`GatedMLP`
(SwiGLU, Llama's MLP). torch has no module for either in this form (``nn.MultiheadAttention``
packs q, k and v in one weight and has no rotary embedding or grouped-query heads).

Parameter names follow Hugging Face's Llama (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``;
``gate_proj``, ``up_proj``, ``down_proj``), so an imported model's state dict maps key to key. An
``nn.MultiheadAttention``'s packed keys (``in_proj_weight``, ``in_proj_bias``, ``out_proj.*``) load
too: a load-time hook splits them into the three projections (:meth:`Attention._packed`).

Two lowerings (``archviz/ops/attention.py``): ``eager`` writes the paper's arithmetic as separate
torch ops (QKᵀ, scale, mask, softmax, dropout, ·V: the S×S scores and probabilities saved for
backward), ``sdpa`` calls ``F.scaled_dot_product_attention`` (a fused kernel where one applies).
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head attention over (N, ..., S, D): q, k, v projections, optional rotary embedding of
    q and k, softmax(QKᵀ/√hd + mask)·V per head, the output projection. Called with one input it
    is self-attention; with a second (``memory``, (N, ..., S_kv, D_kv)) it is cross-attention:
    queries from the first, keys and values from the memory (Vaswani et al. 2017's decoder).

    ``heads`` query heads, ``kv_heads`` key/value heads (grouped-query: each serves heads/kv_heads
    query heads), ``head_dim`` hd, ``kv_dim`` D_kv (the memory's width; default ``dim``). ``seq``:
    the sequence length the rotary tables and the causal mask are built for (non-persistent
    buffers: the state dict holds only the projections). Written with ``torch`` and ``nn`` alone:
    exported source copies this class."""

    def __init__(self, dim: int, heads: int, kv_heads: int, head_dim: int, seq: int, *,
                 causal: bool = False, dropout: float = 0.0, bias: bool = True, out_bias: bool = True,
                 rope: bool = False, rope_theta: float = 10000.0, sdpa: bool = False,
                 kv_dim: int = 0, kv_seq: int = 0, out_proj: bool = True, packed: bool = False,
                 rel_pos: tuple[int, int] | None = None, shift: tuple[int, int] | None = None,
                 grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.packed = heads, kv_heads, head_dim, packed
        self.causal, self.dropout, self.sdpa, self.rope = causal, dropout, sdpa, rope
        self.q_proj = nn.Linear(dim, heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(kv_dim or dim, kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(kv_dim or dim, kv_heads * head_dim, bias=bias)
        # out_proj False: the heads' output is the result (BERT's W_o is a module of its own)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=out_bias) if out_proj else nn.Identity()
        if rope:
            cos, sin = self.rope_tables(max(seq, kv_seq), head_dim, rope_theta)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)
        if causal and not sdpa:   # True above the diagonal: a query never reads a later key
            mask = torch.ones(seq, kv_seq or seq, dtype=torch.bool).triu(1)
            self.register_buffer("mask", mask, persistent=False)
        self.rel_pos = rel_pos
        if rel_pos is not None:   # Swin: a learned table of offsets × heads, a fixed index of the pairs
            wh, ww = rel_pos
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            self.register_buffer("relative_position_index", self.offsets(wh, ww))
        if shift is not None and grid is not None:
            mask = self.window_mask(grid, rel_pos or (1, 1), shift)
            self.register_buffer("shift_mask", mask, persistent=False)
        self.register_load_state_dict_pre_hook(self._packed)

    @staticmethod
    def offsets(wh: int, ww: int) -> torch.Tensor:
        """(Wh·Ww)², the index into the bias table of each pair (i, j) of a window's positions:
        (Δrow + Wh − 1)·(2Ww − 1) + Δcol + Ww − 1 (Liu et al. 2021; torchvision's layout)."""
        rows, cols = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        r, c = rows.flatten(), cols.flatten()
        rel = (r[:, None] - r[None, :] + wh - 1) * (2 * ww - 1) + c[:, None] - c[None, :] + ww - 1
        return rel.flatten()

    @staticmethod
    def window_mask(grid: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
        """(nh·nw, S, S): 0 between positions of one region of the map rolled back by ``shift``,
        −100 across regions (Swin's shifted-window mask, as torchvision builds it)."""
        (nh, nw), (wh, ww), (sh, sw) = grid, window, shift
        label = torch.zeros(nh * wh, nw * ww)
        for i, hs in enumerate((slice(0, -wh), slice(-wh, -sh), slice(-sh, None))):
            for j, ws in enumerate((slice(0, -ww), slice(-ww, -sw), slice(-sw, None))):
                label[hs, ws] = 3 * i + j
        label = label.view(nh, wh, nw, ww).permute(0, 2, 1, 3).reshape(nh * nw, wh * ww)
        diff = label.unsqueeze(1) - label.unsqueeze(2)
        return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)

    @staticmethod
    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        """(x1, x2) → (−x2, x1) over the last dim's halves: Llama's / Hugging Face's RoPE convention."""
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    @staticmethod
    def rope_tables(seq: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin, (S, hd): position m, frequency θ^(−2i/hd) for i < hd/2, each repeated for
        the two halves (Su et al. 2021, eq. 34, in the rotate-half layout)."""
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)   # (S, hd/2)
        emb = torch.cat((angles, angles), dim=-1)                                # (S, hd)
        return emb.cos(), emb.sin()

    @staticmethod
    def _packed(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
        """nn.MultiheadAttention's keys: ``in_proj_weight`` (3·D, D) → q, k, v (or its separate
        ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` where kdim differs); ``out_proj`` → o;
        transformers' BERT and ViT ``query``, ``key``, ``value`` → q, k, v."""
        for kind in ("weight", "bias"):
            packed = state.pop(f"{prefix}in_proj_{kind}", None)
            if packed is None:   # torchvision's ShiftedWindowAttention: qkv (3·D, D), proj
                packed = state.pop(f"{prefix}qkv.{kind}", None)
                if f"{prefix}proj.{kind}" in state:
                    state[f"{prefix}out_proj.{kind}"] = state.pop(f"{prefix}proj.{kind}")
            if packed is not None:
                for name, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3), strict=True):
                    state[f"{prefix}{name}.{kind}"] = part
            out = state.pop(f"{prefix}out_proj.{kind}", None)
            if out is not None:
                state[f"{prefix}o_proj.{kind}"] = out
        Attention._conv1d(state, prefix)
        for name, ours in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):   # BERT's, ViT's
            for kind in ("weight", "bias"):
                if (t := state.pop(f"{prefix}{name}.{kind}", None)) is not None:
                    state[f"{prefix}{ours}.{kind}"] = t
        for name in ("q_proj", "k_proj", "v_proj"):
            separate = state.pop(f"{prefix}{name}_weight", None)
            if separate is not None:
                state[f"{prefix}{name}.weight"] = separate

    @staticmethod
    def _conv1d(state: dict, prefix: str) -> None:
        """transformers' GPT2Attention: ``c_attn`` a Conv1D, weight (D, 3·D) stored (in, out), and
        its bias (3·D) → q, k, v; ``c_proj`` (Conv1D) → o."""
        for kind in ("weight", "bias"):
            packed = state.pop(f"{prefix}c_attn.{kind}", None)
            if packed is not None:
                parts = (packed.T if kind == "weight" else packed).chunk(3)
                for name, part in zip(("q_proj", "k_proj", "v_proj"), parts, strict=True):
                    state[f"{prefix}{name}.{kind}"] = part
            out = state.pop(f"{prefix}c_proj.{kind}", None)
            if out is not None:
                state[f"{prefix}o_proj.{kind}"] = out.T if kind == "weight" else out

    def _heads(self, t: torch.Tensor, n: int) -> torch.Tensor:
        """(B, S, n·hd) → (B, n, S, hd)."""
        return t.view(t.shape[0], t.shape[1], n, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        lead, (s, d) = x.shape[:-2], x.shape[-2:]
        x = x.reshape(-1, s, d)                                   # (B, S, D), B = N·(leading dims)
        if self.packed and memory is None and torch.is_autocast_enabled(x.device.type):
            # q, k, v as one matmul (GPT-2's c_attn, nn.MultiheadAttention's in_proj): one cast of
            # the input, kept for all three, where three linears would each cast and keep their own
            x = x.to(torch.get_autocast_dtype(x.device.type))
        m = x if memory is None else memory.reshape(-1, memory.shape[-2], memory.shape[-1])
        t = m.shape[1]                                            # S_kv: S, or the memory's length
        q = self._heads(self.q_proj(x), self.heads)               # (B, H, S, hd)
        k = self._heads(self.k_proj(m), self.kv_heads)            # (B, KV, S_kv, hd)
        v = self._heads(self.v_proj(m), self.kv_heads)
        if self.rope:
            q = q * self.cos[:s] + self.rotate_half(q) * self.sin[:s]
            k = k * self.cos[:t] + self.rotate_half(k) * self.sin[:t]
        p = self.dropout if self.training else 0.0
        if self.sdpa:
            bias = self._additive()
            if bias is not None and bias.dim() == 4:   # per window: (N, nW, H, S, hd) against (nW, H, S, S)
                q, k, v = (t.view(-1, *bias.shape[:2], *t.shape[-2:]) for t in (q, k, v))
            y = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=p, is_causal=self.causal,
                enable_gqa=self.kv_heads != self.heads).reshape(x.shape[0], self.heads, s, self.head_dim)
        else:
            y = self._eager(q, k, v, s, t, p)
        y = y.transpose(1, 2).reshape(x.shape[0], s, self.heads * self.head_dim)
        y = self.o_proj(y)
        return y.reshape(*lead, s, y.shape[-1])

    def _eager(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s: int, t: int,
               p: float) -> torch.Tensor:
        """softmax(QKᵀ/√hd + mask)·V as separate ops (Vaswani et al. 2017, eq. 1)."""
        rep = self.heads // self.kv_heads
        if rep > 1:   # each key/value head serves `rep` query heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / self.head_dim ** 0.5)   # (B, H, S, S_kv)
        if self.causal:
            scores = scores.masked_fill(self.mask[:s, :t], float("-inf"))
        bias = self._additive()
        if bias is not None:   # Swin: + B (H, S, S), or + B + mask per window (nW, H, S, S)
            scores = (scores.view(-1, *bias.shape) + bias).view(scores.shape)
        att = torch.nn.functional.dropout(scores.softmax(dim=-1), p)
        return att @ v                                                     # (B, H, S, hd)


    def _additive(self) -> torch.Tensor | None:
        """The term added to the scores: the relative position bias B (H, S, S), plus the
        shifted-window mask per window ((nW, H, S, S)); None without rel_pos."""
        if self.rel_pos is None:
            return None
        n = self.rel_pos[0] * self.rel_pos[1]
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1)
        mask = getattr(self, "shift_mask", None)
        return bias if mask is None else bias + mask.unsqueeze(1)


class GatedMLP(nn.Module):
    """down(act(gate(x)) · up(x)) (Shazeer 2020, "GLU variants"; Llama's MLP with act = SiLU)."""

    ACTS = {"silu": nn.SiLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh")}

    def __init__(self, dim: int, hidden: int, act: str = "silu", bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=bias)
        self.up_proj = nn.Linear(dim, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, dim, bias=bias)
        self.act = self.ACTS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class MatMul(nn.Module):
    """The matrix product of two inputs (the ``matmul`` op)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.matmul(xs[0], xs[1])


rotate_half, rope_tables = Attention.rotate_half, Attention.rope_tables
ACTS = GatedMLP.ACTS
# the modules exported source defines (archviz/runtime/export.py); MatMul is written inline
OWN = (Attention, GatedMLP)
