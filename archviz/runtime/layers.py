"""archviz's own small torch modules, for ops torch has no ``nn`` module of (a permute, a
per-example reshape, a narrow, a mean, a learned scale, stochastic depth, a position embedding,
a class token, a patch embedding). Each takes the op's
per-example arguments (the batch apart: dim 0 of an example is dim 1 of the batch). Exported
source writes the parameter-free ones inline (``x.permute(0, 2, 3, 1)``) and defines the others
in the file it writes, so it still imports only torch."""

from __future__ import annotations

import torch
from torch import nn


class Permute(nn.Module):
    """``x.permute(0, *dims + 1)``: the per-example dims reordered, the batch kept first."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = (0, *(d + 1 for d in dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Reshape(nn.Module):
    """``x.reshape(N, *shape)``: each example to ``shape`` (one size may be -1)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Narrow(nn.Module):
    """``x.narrow(dim + 1, start, length)``: one piece of a chunk or split."""

    def __init__(self, dim: int, start: int, length: int) -> None:
        super().__init__()
        self.dim, self.start, self.length = dim + 1, start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.dim, self.start, self.length)


class Mean(nn.Module):
    """``x.mean(dims + 1, keepdim)``."""

    def __init__(self, dims: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dims, self.keepdim = tuple(d + 1 for d in dims), keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims, keepdim=self.keepdim)


class Scale(nn.Module):
    """Layer scale: ``weight * x`` with a learned ``weight`` of ``shape`` ((C,) on the last dim,
    (C, 1, 1) on the channels of a (C, H, W) map), initialised to ``init``."""

    def __init__(self, shape: tuple[int, ...], init: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


class MulConst(nn.Module):
    """``x / factor`` or ``x * factor``: a constant, no parameters."""

    def __init__(self, factor: float, divide: bool = False) -> None:
        super().__init__()
        self.factor, self.divide = factor, divide

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.factor if self.divide else x * self.factor


class StochasticDepth(nn.Module):
    """Drop path (Huang et al. 2016; torchvision.ops.StochasticDepth): in training, each example
    (``mode`` "row") or the whole batch ("batch") is zeroed with probability ``p`` and the rest
    scaled by 1/(1 − p); the identity in eval."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class PosEmbedding(nn.Module):
    """``x + weight[start:start + S]``: a position's vector added to each token. ``kind``
    "learned": ``weight`` (length, dim) is a parameter (GPT-2's ``wpe.weight``); "sinusoidal": a
    buffer, PE(pos, 2i) = sin(pos/10000^(2i/dim)), PE(pos, 2i+1) = cos(pos/10000^(2i/dim))
    (Vaswani et al. 2017, section 3.5). ``lookup``: the rows are looked up as an embedding of the
    positions (Hugging Face's ``wpe(position_ids)``: the same values, its backward keeps the ids)."""

    def __init__(self, length: int, dim: int, kind: str = "learned", start: int = 0,
                 lookup: bool = False) -> None:
        super().__init__()
        self.kind, self.start, self.length, self.lookup = kind, start, length, lookup
        if kind == "learned":
            self.weight = nn.Parameter(torch.randn(length, dim) * 0.02)
        else:
            self.register_buffer("weight", self.sinusoids(length, dim))
        self.register_load_state_dict_pre_hook(self._batched)

    @staticmethod
    def _batched(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
        """ViT's table kept as (1, length, dim) (torchvision's, Hugging Face's): loads as (length, dim)."""
        t = state.get(f"{prefix}weight")
        if t is not None and t.ndim == 3 and t.shape[0] == 1:
            state[f"{prefix}weight"] = t[0]

    @staticmethod
    def sinusoids(length: int, dim: int) -> torch.Tensor:
        pos = torch.arange(length, dtype=torch.float64)[:, None]
        rate = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        table = torch.zeros(length, dim, dtype=torch.float64)
        table[:, 0::2] = torch.sin(pos * rate)
        table[:, 1::2] = torch.cos(pos * rate[: dim // 2])
        return table.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lookup:
            ids = torch.arange(self.start, self.start + x.shape[1], device=x.device).unsqueeze(0)
            return x + nn.functional.embedding(ids, self.weight)
        return x + self.weight[self.start:self.start + x.shape[1]]


class TypeEmbedding(nn.Module):
    """``x + weight[type]``: BERT's token-type embedding, every token of type ``type``; ``weight``
    (types, dim), its ``token_type_embeddings.weight``."""

    def __init__(self, types: int, dim: int, type: int = 0) -> None:  # noqa: A002 - the op's word
        super().__init__()
        self.types, self.type = types, type
        self.weight = nn.Parameter(torch.randn(types, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[self.type]


class GeluFormula(nn.Module):
    """GELU's tanh approximation written out op by op, as transformers' ``NewGELUActivation``
    (GPT-2's ``gelu_new``): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). nn.GELU("tanh") computes the
    same values in one kernel and saves only x; this form saves what the source saves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # √(2/π) as math.sqrt(2.0 / math.pi) gives it (exported source imports only torch)
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * torch.pow(x, 3.0))))


class ClsToken(nn.Module):
    """``cat([token, x], 1)``: a learned ``weight`` of (1, 1, dim) (torchvision's ViT
    ``class_token``) before each sequence."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)


class PatchEmbed(nn.Module):
    """ViT's patch embedding: ``proj`` (a Conv2d with kernel = stride = ``patch``, torchvision's
    ``conv_proj``), then (N, dim, H/p, W/p) → (N, H/p·W/p, dim)."""

    def __init__(self, channels: int, dim: int, patch: int, bias: bool = True) -> None:
        super().__init__()
        self.patch, self.dim, self.has_bias = patch, dim, bias
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Roll(nn.Module):
    """``x.roll(shifts, dims)``, ``dims`` torch's (the batch counted): Swin's cyclic shift."""

    def __init__(self, shifts: tuple[int, ...], dims: tuple[int, ...]) -> None:
        super().__init__()
        self.shifts, self.dims = tuple(shifts), tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.roll(self.shifts, self.dims)


class Pad(nn.Module):
    """``F.pad(x, pad, value=value)``: amounts in F.pad's order, the last dim first."""

    def __init__(self, pad: tuple[int, ...], value: float = 0.0) -> None:
        super().__init__()
        self.pad, self.value = tuple(pad), value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.pad, value=self.value)


LAYERS: dict[str, type[nn.Module]] = {c.__name__: c for c in (Permute, Reshape, Narrow, Mean, Scale,
                                                                StochasticDepth, PosEmbedding, TypeEmbedding,
                                                                GeluFormula,
                                                                ClsToken, PatchEmbed, Roll, Pad, MulConst)}
