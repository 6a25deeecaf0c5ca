"""The bundled transformers written by hand in torch, independently of archviz, as oracles for the
specs (specs/gpt2.yaml, gpt3-175b, bert-base, vit-b16, transformer-base, llama3-8b).

Each model is built from a small config dict, so the same code gives the full size (on the meta
device, to count parameters) and a scaled-down one that runs. Every spec layer has a module of the
same dotted name (``h.3.attn``, ``layers.0.mlp``, ``encoder.layers.encoder_layer_0.ln_1``), so that
forward hooks can compare output shapes and parameter counts layer by layer; the stateless steps
the originals write inline (``x + y``, slicing the token stream, taking the class token) are
modules here. Attention is written out as its matmuls (q·kᵀ, softmax, ·v) so that FlopCounterMode
sees them (it counts CPU ``scaled_dot_product_attention`` as 0, pytorch/pytorch#195460). The
parameter counts are those of Hugging Face's GPT2LMHeadModel, BertModel and LlamaForCausalLM and
of torchvision's vit_b_16.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - torch's convention
from torch import nn

Config = dict[str, Any]


class Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Row(nn.Module):
    """One row of a (B, rows, S) stack of token streams, kept as (B, 1, S) (BERT's segment ids, a
    decoder's target tokens); a Flatten after it gives (B, S)."""

    def __init__(self, row: int) -> None:
        super().__init__()
        self.row = row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.row:self.row + 1]


class First(nn.Module):
    """The first position of (B, S, D), kept as (B, 1, D) (BERT's pooler, ViT's class token)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary embedding of (B, H, S, hd), the rotate-half layout of Hugging Face's Llama."""
    s, hd = x.shape[-2:]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=x.device) / hd)
    ang = torch.outer(torch.arange(s, dtype=torch.float32, device=x.device), inv)
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    rot = torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), -1)
    return x * cos + rot * sin


class Attention(nn.Module):
    """Multi-head attention with q, k, v, o projections; ``kv_heads`` < ``heads`` is grouped-query.
    Called with one input (self-attention) or two (queries from the first, keys and values from
    the second: a decoder's cross-attention)."""

    def __init__(self, d: int, heads: int, kv_heads: int | None = None, *, bias: bool = True,
                 causal: bool = False, p: float = 0.0, theta: float | None = None) -> None:
        super().__init__()
        self.h, self.kv, self.hd = heads, kv_heads or heads, d // heads
        self.causal, self.p, self.theta = causal, p, theta
        self.q_proj = nn.Linear(d, heads * self.hd, bias=bias)
        self.k_proj = nn.Linear(d, self.kv * self.hd, bias=bias)
        self.v_proj = nn.Linear(d, self.kv * self.hd, bias=bias)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        mem = x if memory is None else memory
        b, s, _ = x.shape
        t = mem.shape[1]
        q = self.q_proj(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(mem).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(mem).view(b, t, self.kv, self.hd).transpose(1, 2)
        if self.theta is not None:
            q, k = rope(q, self.theta), rope(k, self.theta)
        k, v = k.repeat_interleave(self.h // self.kv, 1), v.repeat_interleave(self.h // self.kv, 1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.hd)                  # (B, H, S, T)
        if self.causal:
            later = torch.ones(s, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(later, -math.inf)
        y = F.dropout(scores.softmax(-1), self.p, self.training) @ v           # (B, H, S, hd)
        return self.o_proj(y.transpose(1, 2).reshape(b, s, self.h * self.hd))


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LearnedPositions(nn.Module):
    """x + W[:S] (GPT-2's wpe, BERT's position_embeddings, ViT's pos_embedding)."""

    def __init__(self, length: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(length, d) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class Sinusoids(nn.Module):
    """x + PE (Vaswani et al. 2017, §3.5): sin at even, cos at odd features; no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, d = x.shape[1:]
        pos = torch.arange(s, dtype=torch.float32, device=x.device)[:, None]
        even = torch.arange(0, d, 2, dtype=torch.float32, device=x.device)
        freq = torch.exp(even * (-math.log(10000.0) / d))
        pe = torch.zeros(s, d, device=x.device)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return x + pe


class TiedEmbedding(nn.Module):
    """ids → rows of another layer's embedding table (a decoder reading the encoder's table)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.table = (embedding,)   # a tuple: not a submodule, its weight is counted once

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.table[0].weight)


class TiedHead(nn.Module):
    """logits = x·Eᵀ with the embedding's own matrix (GPT-2's lm_head): no parameter of its own."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.table = (embedding,)   # a tuple: not a submodule, its weight is counted once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.table[0].weight)


# ---- GPT-2 and GPT-3 (pre-norm decoder; Hugging Face GPT2LMHeadModel's names) -------------------

class GPTBlock(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d, p = c["d"], c["dropout"]
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, c["heads"], causal=True, p=p)
        self.drop_1 = nn.Dropout(p)
        self.add_1 = Add()
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(d, 4 * d)
        self.mlp.act = nn.GELU(approximate="tanh")
        self.mlp.c_proj = nn.Linear(4 * d, d)
        self.mlp.drop = nn.Dropout(p)
        self.add_2 = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.add_1(x, self.drop_1(self.attn(self.ln_1(x))))
        m = self.mlp
        return self.add_2(h, m.drop(m.c_proj(m.act(m.c_fc(self.ln_2(h))))))


class GPT(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.wte = nn.Embedding(c["vocab"], c["d"])
        self.wpe = LearnedPositions(c["context"], c["d"])
        self.drop = nn.Dropout(c["dropout"])
        self.h = nn.ModuleList(GPTBlock(c) for _ in range(c["layers"]))
        self.ln_f = nn.LayerNorm(c["d"], eps=1e-5)
        self.lm_head = TiedHead(self.wte)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wpe(self.wte(ids)))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


GPT2 = {"vocab": 50257, "context": 1024, "d": 768, "layers": 12, "heads": 12, "dropout": 0.1}
GPT3 = {"vocab": 50257, "context": 2048, "d": 12288, "layers": 96, "heads": 96, "dropout": 0.1}


# ---- Llama 3 (pre-norm, RMSNorm, GQA with RoPE, SwiGLU; Hugging Face LlamaForCausalLM's names) ---

class LlamaBlock(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d = c["d"]
        self.input_layernorm = nn.RMSNorm(d, eps=1e-5)
        self.self_attn = Attention(d, c["heads"], c["kv_heads"], bias=False, causal=True, theta=c["theta"])
        self.add_1 = Add()
        self.post_attention_layernorm = nn.RMSNorm(d, eps=1e-5)
        self.mlp = SwiGLU(d, c["hidden"])
        self.add_2 = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.add_1(x, self.self_attn(self.input_layernorm(x)))
        return self.add_2(h, self.mlp(self.post_attention_layernorm(h)))


class Llama(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["d"])
        self.layers = nn.ModuleList(LlamaBlock(c) for _ in range(c["layers"]))
        self.norm = nn.RMSNorm(c["d"], eps=1e-5)
        self.lm_head = nn.Linear(c["d"], c["vocab"], bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        for block in self.layers:
            x = block(x)
        return self.lm_head(self.norm(x))


LLAMA3_8B = {"vocab": 128256, "d": 4096, "layers": 32, "heads": 32, "kv_heads": 8, "hidden": 14336,
             "theta": 500000.0, "context": 8192}


# ---- BERT-base (post-norm encoder; Hugging Face BertModel's names, with the pooler) -------------

class BertLayer(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d, p = c["d"], c["dropout"]
        self.attention = Attention(d, c["heads"], p=p)
        self.attention_dropout = nn.Dropout(p)
        self.attention_add = Add()
        self.attention_norm = nn.LayerNorm(d, eps=1e-12)
        self.intermediate = nn.Linear(d, 4 * d)
        self.act = nn.GELU()
        self.output = nn.Linear(4 * d, d)
        self.output_dropout = nn.Dropout(p)
        self.output_add = Add()
        self.output_norm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attention_norm(self.attention_add(x, self.attention_dropout(self.attention(x))))
        y = self.output_dropout(self.output(self.act(self.intermediate(h))))
        return self.output_norm(self.output_add(h, y))


class Bert(nn.Module):
    """Input (B, 2, S): the token ids and the segment (token type) ids, stacked."""

    def __init__(self, c: Config) -> None:
        super().__init__()
        d = c["d"]
        self.tokens_row, self.tokens, self.segments_row, self.segments = Row(0), Flatten(), Row(1), Flatten()
        self.word_embeddings = nn.Embedding(c["vocab"], d, padding_idx=0)
        self.position_embeddings = LearnedPositions(c["context"], d)
        self.token_type_embeddings = nn.Embedding(2, d)
        self.embeddings_add = Add()
        self.embeddings_norm = nn.LayerNorm(d, eps=1e-12)
        self.embeddings_dropout = nn.Dropout(c["dropout"])
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c["layers"]))
        self.first = First()
        self.pooler = nn.Linear(d, d)
        self.pooler_act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        words = self.position_embeddings(self.word_embeddings(self.tokens(self.tokens_row(x))))
        h = self.embeddings_add(words, self.token_type_embeddings(self.segments(self.segments_row(x))))
        h = self.embeddings_dropout(self.embeddings_norm(h))
        for layer in self.layer:
            h = layer(h)
        return self.pooler_act(self.pooler(self.first(h)))


BERT_BASE = {"vocab": 30522, "context": 512, "d": 768, "layers": 12, "heads": 12, "dropout": 0.1}


# ---- ViT-B/16 (torchvision.models.vit_b_16's names) ---------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, d: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, d, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)   # (B, N, D)


class ClassToken(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.weight.expand(x.shape[0], -1, -1), x), dim=1)


class ViTLayer(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d = c["d"]
        self.ln_1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attention = Attention(d, c["heads"])
        self.dropout = nn.Dropout(0.0)
        self.add_1 = Add()
        self.ln_2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, c["hidden"]), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(c["hidden"], d), nn.Dropout(0.0))
        self.add_2 = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.add_1(x, self.dropout(self.self_attention(self.ln_1(x))))
        return self.add_2(h, self.mlp(self.ln_2(h)))


class ViT(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d, n = c["d"], (c["image"] // c["patch"]) ** 2 + 1
        self.conv_proj = PatchEmbed(d, c["patch"])
        self.class_token = ClassToken(d)
        self.encoder = nn.Module()
        self.encoder.pos_embedding = LearnedPositions(n, d)
        self.encoder.dropout = nn.Dropout(0.0)
        self.encoder.layers = nn.ModuleList(ViTLayer(c) for _ in range(c["layers"]))
        self.encoder.ln = nn.LayerNorm(d, eps=1e-6)
        self.first = First()
        self.flatten = Flatten()
        self.heads = nn.Module()
        self.heads.head = nn.Linear(d, c["classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        h = e.dropout(e.pos_embedding(self.class_token(self.conv_proj(x))))
        for layer in e.layers:
            h = layer(h)
        return self.heads.head(self.flatten(self.first(e.ln(h))))


VIT_B16 = {"image": 224, "patch": 16, "d": 768, "layers": 12, "heads": 12, "hidden": 3072, "classes": 1000}


# ---- Transformer base (Vaswani et al. 2017: post-norm encoder-decoder, shared embeddings) -------

class EncoderLayer(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d, p = c["d"], c["dropout"]
        self.self_attn = Attention(d, c["heads"])
        self.drop_1, self.add_1, self.norm_1 = nn.Dropout(p), Add(), nn.LayerNorm(d)
        self.ff_1, self.relu, self.ff_2 = nn.Linear(d, c["ffn"]), nn.ReLU(), nn.Linear(c["ffn"], d)
        self.drop_2, self.add_2, self.norm_2 = nn.Dropout(p), Add(), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_1(self.add_1(x, self.drop_1(self.self_attn(x))))
        return self.norm_2(self.add_2(h, self.drop_2(self.ff_2(self.relu(self.ff_1(h))))))


class DecoderLayer(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        d, p = c["d"], c["dropout"]
        self.self_attn = Attention(d, c["heads"], causal=True)
        self.drop_1, self.add_1, self.norm_1 = nn.Dropout(p), Add(), nn.LayerNorm(d)
        self.cross_attn = Attention(d, c["heads"])
        self.drop_2, self.add_2, self.norm_2 = nn.Dropout(p), Add(), nn.LayerNorm(d)
        self.ff_1, self.relu, self.ff_2 = nn.Linear(d, c["ffn"]), nn.ReLU(), nn.Linear(c["ffn"], d)
        self.drop_3, self.add_3, self.norm_3 = nn.Dropout(p), Add(), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        h = self.norm_1(self.add_1(x, self.drop_1(self.self_attn(x))))
        h = self.norm_2(self.add_2(h, self.drop_2(self.cross_attn(h, memory))))
        return self.norm_3(self.add_3(h, self.drop_3(self.ff_2(self.relu(self.ff_1(h))))))


class Seq2Seq(nn.Module):
    """Input (B, 2, S): the source tokens and the (shifted) target tokens, stacked; one embedding
    table shared by both streams and the output projection (Section 3.4)."""

    def __init__(self, c: Config) -> None:
        super().__init__()
        d, p = c["d"], c["dropout"]
        self.source_row, self.source, self.target_row, self.target = Row(0), Flatten(), Row(1), Flatten()
        self.embed = nn.Embedding(c["vocab"], d)
        self.src_pos, self.src_drop = Sinusoids(), nn.Dropout(p)
        self.tgt_embed = TiedEmbedding(self.embed)
        self.tgt_pos, self.tgt_drop = Sinusoids(), nn.Dropout(p)
        self.encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c["layers"]))
        self.decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c["layers"]))
        self.generator = TiedHead(self.embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = self.src_drop(self.src_pos(self.embed(self.source(self.source_row(x)))))
        for layer in self.encoder:
            memory = layer(memory)
        h = self.tgt_drop(self.tgt_pos(self.tgt_embed(self.target(self.target_row(x)))))
        for layer in self.decoder:
            h = layer(h, memory)
        return self.generator(h)


TRANSFORMER_BASE = {"vocab": 37000, "d": 512, "layers": 6, "heads": 8, "ffn": 2048, "dropout": 0.1}


def build(model: type[nn.Module], config: Config, device: str | torch.device = "cpu") -> nn.Module:
    with torch.device(device):
        return model(config)


def count(model: nn.Module) -> int:
    """Parameters, each tensor once (a tied weight is one tensor)."""
    return sum(p.numel() for p in model.parameters())


Seen = dict[str, tuple[tuple[int, ...], int]]


def trace(model: nn.Module, x: torch.Tensor, names: set[str]) -> tuple[Seen, int]:
    """Module name (each of ``names``) → (output shape without the batch, numel of the parameters
    under it), and the FLOPs FlopCounterMode counts, from one forward pass in eval mode."""
    from torch.utils.flop_counter import FlopCounterMode

    seen: Seen = {}
    hooks = []
    for name, module in model.named_modules():
        if name in names:
            own = sum(p.numel() for p in module.parameters())

            def hook(m: nn.Module, args: object, out: torch.Tensor, name: str = name, own: int = own) -> None:
                seen[name] = (tuple(out.shape[1:]), own)

            hooks.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    for h in hooks:
        h.remove()
    return seen, counter.get_total_flops()
