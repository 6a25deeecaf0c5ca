"""Hand-written PyTorch models of the bundled specs, independent of archviz.

Each builder returns an ``nn.Sequential`` whose children are named exactly like the spec's
layers, so tests can compare the analysis with torch layer by layer (forward hooks for shapes,
``numel`` of each child's parameters for counts). Written from the papers and torchvision's
source, not from archviz.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def _paper_alexnet(groups: int) -> nn.Sequential:
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
    return _seq(
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU()),
        ("norm1", nn.LocalResponseNorm(**lrn)), ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=groups)), ("relu2", nn.ReLU()),
        ("norm2", nn.LocalResponseNorm(**lrn)), ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=groups)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=groups)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(9216, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, 1000)),
    )


def alexnet() -> nn.Sequential:
    """The paper, split over two GPUs: conv2/4/5 grouped (Figure 2), 227×227 input."""
    return _paper_alexnet(groups=2)


def alexnet_1gpu() -> nn.Sequential:
    return _paper_alexnet(groups=1)


def alexnet_catsdogs() -> nn.Sequential:
    """The cats-vs-dogs tutorial's code: conv1 straight into LRN (no ReLU), torch's alpha=0.0001."""
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)  # torch divides alpha by size: α = 2e-5
    return _seq(
        ("conv1", nn.Conv2d(3, 96, 11, stride=4, padding=2)),
        ("norm1", nn.LocalResponseNorm(**lrn)), ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2)), ("relu2", nn.ReLU()),
        ("norm2", nn.LocalResponseNorm(**lrn)), ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(9216, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, 2)),
    )


def alexnet_torchvision() -> nn.Sequential:
    """torchvision.models.alexnet, flattened into one Sequential with the spec's names."""
    return _seq(
        ("conv1", nn.Conv2d(3, 64, 11, stride=4, padding=2)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(64, 192, 5, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(192, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 256, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(256, 256, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)), ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),
        ("flatten", nn.Flatten()),
        ("drop6", nn.Dropout(0.5)), ("fc6", nn.Linear(9216, 4096)), ("relu6", nn.ReLU()),
        ("drop7", nn.Dropout(0.5)), ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()),
        ("fc8", nn.Linear(4096, 1000)),
    )


def alexnet_keras() -> nn.Sequential:
    """The Keras Sequential re-telling's code, translated layer for layer (channels first)."""
    def bn2(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    def bn1(c: int) -> nn.BatchNorm1d:
        return nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)

    return _seq(
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2, 2)), ("bn1", bn2(96)),
        ("conv2", nn.Conv2d(96, 256, 11)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2, 2)), ("bn2", bn2(256)),
        ("conv3", nn.Conv2d(256, 384, 3)), ("relu3", nn.ReLU()), ("bn3", bn2(384)),
        ("conv4", nn.Conv2d(384, 384, 3)), ("relu4", nn.ReLU()), ("bn4", bn2(384)),
        ("conv5", nn.Conv2d(384, 256, 3)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(2, 2)), ("bn5", bn2(256)),
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(256, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.4)),
        ("bn6", bn1(4096)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.4)),
        ("bn7", bn1(4096)),
        ("fc8", nn.Linear(4096, 17)), ("prob", nn.Softmax(dim=1)),
    )


def lenet5() -> nn.Sequential:
    return _seq(
        ("c1", nn.Conv2d(1, 6, 5)), ("tanh1", nn.Tanh()), ("s2", nn.AvgPool2d(2)),
        ("c3", nn.Conv2d(6, 16, 5)), ("tanh3", nn.Tanh()), ("s4", nn.AvgPool2d(2)),
        ("c5", nn.Conv2d(16, 120, 5)), ("tanh5", nn.Tanh()), ("flatten", nn.Flatten()),
        ("f6", nn.Linear(120, 84)), ("tanh6", nn.Tanh()), ("output", nn.Linear(84, 10)),
    )


# spec stem -> (builder, input shape (C, H, W) used by the spec)
REFERENCES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "alexnet": (alexnet, (3, 227, 227)),
    "alexnet-1gpu": (alexnet_1gpu, (3, 227, 227)),
    "alexnet-catsdogs": (alexnet_catsdogs, (3, 224, 224)),
    "alexnet-torchvision": (alexnet_torchvision, (3, 224, 224)),
    "alexnet-keras": (alexnet_keras, (3, 224, 224)),
    "lenet5": (lenet5, (1, 32, 32)),
}
