"""The classic CNNs written by hand in torch, independently of archviz, as oracles for the specs.

Each model's leaf modules are named exactly as the layers of the matching spec (``layer2.0.conv1``,
``inception3a.branch2.1.conv``, ...), so that forward hooks can compare output shapes and
parameter counts layer by layer. Stateless operations that torchvision writes as functions
(ReLU inside its blocks, ``+`` of a residual, ``torch.cat``, ``torch.flatten``) are modules here,
so that every spec layer has a module to hook. Parameter counts are those of torchvision's models.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


def _seq(*named: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(named))


# ---- ZFNet (Zeiler & Fergus 2013, Figure 3) ----------------------------------------------------

def zfnet() -> nn.Module:
    return _seq(
        ("conv1", nn.Conv2d(3, 96, 7, stride=2, padding=1)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", nn.LocalResponseNorm(5, 1e-4, 0.75, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, stride=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm2", nn.LocalResponseNorm(5, 1e-4, 0.75, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, 1000)),
    )


# ---- VGG-16 (torchvision.models.vgg16) ---------------------------------------------------------

class ConvReLU(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def vgg16() -> nn.Module:
    stages: list[tuple[str, nn.Module]] = []
    cin = 3
    for i, (n, cout) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1):
        convs = []
        for _ in range(n):
            convs.append(ConvReLU(cin, cout))
            cin = cout
        stages += [(f"conv{i}", nn.Sequential(*convs)), (f"pool{i}", nn.MaxPool2d(2, 2))]
    return _seq(
        *stages,
        ("avgpool", nn.AdaptiveAvgPool2d(7)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(512 * 7 * 7, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
        ("fc8", nn.Linear(4096, 1000)),
    )


# ---- ResNet-18 / ResNet-50 (torchvision.models.resnet18 / resnet50) ----------------------------

def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(cin, width, stride) if stride != 1 or cin != width else None
        self.add = Add()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu2(self.add(y, shortcut))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)  # v1.5
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _downsample(cin, cout, stride) if stride != 1 or cin != cout else None
        self.add = Add()
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(self.relu2(self.bn2(self.conv2(y)))))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu3(self.add(y, shortcut))


def _resnet(block: type[BasicBlock] | type[Bottleneck], counts: list[int]) -> nn.Module:
    stages: list[tuple[str, nn.Module]] = []
    cin = 64
    for i, (n, width) in enumerate(zip(counts, [64, 128, 256, 512], strict=True), start=1):
        blocks = []
        for j in range(n):
            blocks.append(block(cin, width, 2 if j == 0 and i > 1 else 1))
            cin = width * block.expansion
        stages.append((f"layer{i}", nn.Sequential(*blocks)))
    return _seq(
        ("conv1", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)), ("bn1", nn.BatchNorm2d(64)),
        ("relu", nn.ReLU()), ("maxpool", nn.MaxPool2d(3, 2, padding=1)),
        *stages,
        ("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(cin, 1000)),
    )


def resnet18() -> nn.Module:
    return _resnet(BasicBlock, [2, 2, 2, 2])


def resnet50() -> nn.Module:
    return _resnet(Bottleneck, [3, 4, 6, 3])


# ---- GoogLeNet (torchvision.models.googlenet, aux_logits=False) --------------------------------

class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        # torchvision uses 3×3 here where the paper has 5×5
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool, 1))
        self.cat = Concat()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cat(self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))


def googlenet() -> nn.Module:
    return _seq(
        ("conv1", BasicConv2d(3, 64, 7, stride=2, padding=3)),
        ("maxpool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv2", BasicConv2d(64, 64, 1)),
        ("conv3", BasicConv2d(64, 192, 3, padding=1)),
        ("maxpool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("inception3a", Inception(192, 64, 96, 128, 16, 32, 32)),
        ("inception3b", Inception(256, 128, 128, 192, 32, 96, 64)),
        ("maxpool3", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("inception4a", Inception(480, 192, 96, 208, 16, 48, 64)),
        ("inception4b", Inception(512, 160, 112, 224, 24, 64, 64)),
        ("inception4c", Inception(512, 128, 128, 256, 24, 64, 64)),
        ("inception4d", Inception(512, 112, 144, 288, 32, 64, 64)),
        ("inception4e", Inception(528, 256, 160, 320, 32, 128, 128)),
        ("maxpool4", nn.MaxPool2d(2, 2, ceil_mode=True)),
        ("inception5a", Inception(832, 256, 160, 320, 32, 128, 128)),
        ("inception5b", Inception(832, 384, 192, 384, 48, 128, 128)),
        ("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("dropout", nn.Dropout(0.2)),
        ("fc", nn.Linear(1024, 1000)),
    )


# ---- SqueezeNet 1.0 (torchvision.models.squeezenet1_0) -----------------------------------------

class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU()
        self.cat = Concat()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        return self.cat(self.expand1x1_activation(self.expand1x1(s)),
                        self.expand3x3_activation(self.expand3x3(s)))


def squeezenet1_0() -> nn.Module:
    return _seq(
        ("conv1", nn.Conv2d(3, 96, 7, stride=2)), ("relu1", nn.ReLU()),
        ("maxpool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("fire2", Fire(96, 16, 64, 64)), ("fire3", Fire(128, 16, 64, 64)), ("fire4", Fire(128, 32, 128, 128)),
        ("maxpool4", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("fire5", Fire(256, 32, 128, 128)), ("fire6", Fire(256, 48, 192, 192)),
        ("fire7", Fire(384, 48, 192, 192)), ("fire8", Fire(384, 64, 256, 256)),
        ("maxpool8", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("fire9", Fire(512, 64, 256, 256)),
        ("drop9", nn.Dropout(0.5)), ("conv10", nn.Conv2d(512, 1000, 1)), ("relu10", nn.ReLU()),
        ("avgpool10", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
    )


MODELS: dict[str, Callable[[], nn.Module]] = {
    "zfnet": zfnet, "vgg16": vgg16, "resnet18": resnet18, "resnet50": resnet50,
    "googlenet": googlenet, "squeezenet1_0": squeezenet1_0,
}

# torchvision's documented num_params (ZFNet: no published figure; the sum written out by hand)
PUBLISHED_PARAMS = {
    "zfnet": (96 * 3 * 7 * 7 + 96) + (256 * 96 * 5 * 5 + 256) + (384 * 256 * 9 + 384)
    + (384 * 384 * 9 + 384) + (256 * 384 * 9 + 256)
    + (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000),
    "vgg16": 138_357_544, "resnet18": 11_689_512, "resnet50": 25_557_032,
    "googlenet": 6_624_904, "squeezenet1_0": 1_248_424,
}


def trace(model: nn.Module, shape: tuple[int, ...]) -> tuple[dict[str, tuple[tuple[int, ...], int]], int]:
    """Leaf module name -> (output shape without the batch, numel of its own parameters), and the
    FLOPs that torch.utils.flop_counter counts, from one forward pass of a (1, *shape) input in eval mode."""
    from torch.utils.flop_counter import FlopCounterMode

    seen: dict[str, tuple[tuple[int, ...], int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            own = sum(p.numel() for p in module.parameters(recurse=False))

            def hook(m: nn.Module, args: object, out: torch.Tensor, name: str = name, own: int = own) -> None:
                seen[name] = (tuple(out.shape[1:]), own)

            hooks.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return seen, counter.get_total_flops()
