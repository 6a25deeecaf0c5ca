"""Blocks of today's CNNs written out by hand in their sources' style, for the import round trip:
an EfficientNet MBConv (SiLU, squeeze-excite by mean + conv + sigmoid + mul, stochastic depth), a
ConvNeXt block (torchvision's CNBlock: depthwise 7×7, permute to channels-last, a norm over the
channels, an MLP of linears, GELU, layer scale, permute back, residual add) and ShuffleNetV2's
channel shuffle (view → transpose → view) with its chunk into two branches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# torchvision.ops.StochasticDepth's code (torchvision is not installed beside the CPU torch here)
from archviz.runtime.layers import StochasticDepth


class MBConv(nn.Module):
    """EfficientNet's block with the squeeze written as a mean (as timm's SqueezeExcite does)."""

    def __init__(self, c: int = 16, expand: int = 4) -> None:
        super().__init__()
        hidden = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                nn.BatchNorm2d(hidden), nn.SiLU())
        self.se_reduce, self.se_expand = nn.Conv2d(hidden, c // 4, 1), nn.Conv2d(c // 4, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, c, 1, bias=False), nn.BatchNorm2d(c))
        self.drop_path = StochasticDepth(0.2, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dw(self.expand(x))
        s = h.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(s))))
        return x + self.drop_path(self.project(h * s))


class CNBlock(nn.Module):
    """A variant of torchvision.models.convnext's CNBlock with a GroupNorm(1) over the whole
    (C, H, W) map where torchvision has a LayerNorm over each position's channels (that is
    CNBlockLN below)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.GroupNorm(1, dim)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 0.5))
        self.stochastic_depth = StochasticDepth(0.1, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x))                  # (N, C, H, W)
        y = y.permute(0, 2, 3, 1)                       # (N, H, W, C)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        y = y.permute(0, 3, 1, 2)
        return self.stochastic_depth(self.layer_scale * y) + x


class CNBlockLN(nn.Module):
    """torchvision.models.convnext's CNBlock as torchvision writes it: depthwise 7×7, permute to
    channels-last, LayerNorm over the channels (eps 1e-6), the MLP, permute back, layer scale γ
    of shape (C, 1, 1), stochastic depth, the residual add."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 0.5))
        self.stochastic_depth = StochasticDepth(0.1, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)          # (N, H, W, C)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = y.permute(0, 3, 1, 2)                        # (N, C, H, W)
        return self.stochastic_depth(self.layer_scale * y) + x


class LayerScaleLast(nn.Module):
    """timm's ConvNeXt block in its channels-last form: γ of shape (C,) on the last dim."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(y))).mul(self.gamma)
        return y.permute(0, 3, 1, 2) + x


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's stride-1 unit: chunk into two, one branch convolved, concat, shuffle."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        half = c // 2
        self.branch2 = nn.Sequential(nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
                                     nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False),
                                     nn.BatchNorm2d(half), nn.Conv2d(half, half, 1, bias=False),
                                     nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        return channel_shuffle(out, 2).flatten(2).reshape(x.shape[0], -1, 8, 8)


class Stem(nn.Module):
    """A stem before each block so the input has the block's channels, and a head after."""

    def __init__(self, block: nn.Module, c: int = 16) -> None:
        super().__init__()
        self.stem, self.block = nn.Conv2d(3, c, 3, padding=1), block
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)).mean((2, 3)))


def efficientnet_block() -> nn.Module:
    return Stem(MBConv())


def convnext_block() -> nn.Module:
    return Stem(CNBlock())


def convnext_block_ln() -> nn.Module:
    return Stem(CNBlockLN())


def convnext_block_last() -> nn.Module:
    return Stem(LayerScaleLast())


def shufflenet_unit() -> nn.Module:
    return Stem(ShuffleUnit())
