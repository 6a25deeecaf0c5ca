"""torchvision's MobileNetV2, DenseNet-121 and EfficientNet-B0 written out by hand, with torchvision's
module names and forward code (torchvision does not import beside the CPU build of torch here), for
the import round trip. Published parameter counts: torchvision's documentation (num_params)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def conv_norm_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                  act: type[nn.Module] | None = nn.ReLU6) -> nn.Sequential:
    """torchvision.ops.Conv2dNormActivation: conv (no bias), BatchNorm, activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# ---- MobileNetV2 (torchvision.models.mobilenet_v2) ---------------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_norm_act(cin, hidden, 1)] if t != 1 else []
        layers += [conv_norm_act(hidden, hidden, 3, stride, groups=hidden),   # depthwise
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2() -> nn.Module:
    features: list[nn.Module] = [conv_norm_act(3, 32, stride=2)]
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    features.append(conv_norm_act(cin, 1280, 1))
    return _Classified(nn.Sequential(*features), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000)))


class _Classified(nn.Module):
    def __init__(self, features: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---- DenseNet-121 (torchvision.models.densenet121) ---------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int = 32, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n: int, cin: int, growth: int = 32) -> None:
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    def __init__(self, counts: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32) -> None:
        super().__init__()
        parts: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(3, 64, 7, 2, 3, bias=False)), ("norm0", nn.BatchNorm2d(64)),
            ("relu0", nn.ReLU(inplace=True)), ("pool0", nn.MaxPool2d(3, 2, 1))]
        c = 64
        for i, n in enumerate(counts, start=1):
            parts.append((f"denseblock{i}", DenseBlock(n, c, growth)))
            c += n * growth
            if i != len(counts):
                parts.append((f"transition{i}", nn.Sequential(OrderedDict([
                    ("norm", nn.BatchNorm2d(c)), ("relu", nn.ReLU(inplace=True)),
                    ("conv", nn.Conv2d(c, c // 2, 1, bias=False)), ("pool", nn.AvgPool2d(2, 2))]))))
                c //= 2
        parts.append(("norm5", nn.BatchNorm2d(c)))
        self.features = nn.Sequential(OrderedDict(parts))
        self.classifier = nn.Linear(c, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def densenet121() -> nn.Module:
    return DenseNet()


# ---- EfficientNet-B0 (torchvision.models.efficientnet_b0) --------------------------------------

class SqueezeExcitation(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConv(nn.Module):
    def __init__(self, expand: int, k: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        hidden = cin * expand
        layers: list[nn.Module] = [conv_norm_act(cin, hidden, 1, act=nn.SiLU)] if expand != 1 else []
        layers += [conv_norm_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, cin // 4)),
                   conv_norm_act(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out   # stochastic depth: identity at inference


def efficientnet_b0() -> nn.Module:
    stages: list[nn.Module] = [conv_norm_act(3, 32, stride=2, act=nn.SiLU)]
    for e, k, s, cin, cout, n in [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                                  (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                                  (6, 3, 1, 192, 320, 1)]:
        stages.append(nn.Sequential(*[MBConv(e, k, s if i == 0 else 1, cin if i == 0 else cout, cout)
                                      for i in range(n)]))
    stages.append(conv_norm_act(320, 1280, 1, act=nn.SiLU))
    return _Pooled(nn.Sequential(*stages), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000)))


class _Pooled(nn.Module):
    def __init__(self, features: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features, self.avgpool, self.classifier = features, nn.AdaptiveAvgPool2d(1), classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


PUBLISHED_PARAMS = {"mobilenet_v2": 3_504_872, "densenet121": 7_978_856, "efficientnet_b0": 5_288_548}


# ---- issue 21: a small UNet and a 1-d audio net (hand-written, not published models) ----------

class TinyUNet(nn.Module):
    """A UNet in miniature: two encoder stages with max pooling, a bottleneck that upsamples by
    sub-pixel convolution (PixelShuffle), a transposed-convolution decoder stage and a bilinear
    one, each joined to its encoder stage by a skip concat."""

    def __init__(self, cin: int = 3, classes: int = 2) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(cin, 8, 3, padding=1), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.mid = nn.Sequential(nn.Conv2d(16, 64, 3, padding=1), nn.ReLU())
        self.shuffle = nn.PixelShuffle(2)                                 # (64, h, w) → (16, 2h, 2w)
        self.dec2 = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), nn.ReLU())
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.up0 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        m = self.shuffle(self.mid(self.pool2(e2)))
        d2 = self.dec2(torch.cat([m, e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(F.interpolate(self.up0(d1), scale_factor=0.5, mode="nearest"))


class AudioNet(nn.Module):
    """A 1-d convolutional audio classifier over (channels, samples), M5-like (Dai et al. 2017)."""

    def __init__(self, cin: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin, 16, 80, stride=4)
        self.pool1 = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(16, 32, 3, padding=1)
        self.pool2 = nn.MaxPool1d(4)
        self.conv3 = nn.Conv1d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.adaptive_avg_pool1d(x, 1)
        return self.fc(torch.flatten(x, 1))
