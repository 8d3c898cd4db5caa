"""MobileNetV2 as torchvision defines it (same parameter names), for converting its weights.

torchvision's wheels on PyPI are built against CUDA PyTorch and do not import with the CPU
build this project converts with, so the network (about fifty lines) is defined here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# (expansion, output channels, repeats, first stride) of each stage, from the paper.
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURES = 1280


def _conv_bn_relu6(inputs: int, outputs: int, kernel: int = 1, stride: int = 1, groups: int = 1):
    padding = (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, expansion: int):
        super().__init__()
        hidden = inputs * expansion
        layers: list[nn.Module] = [] if expansion == 1 else [_conv_bn_relu6(inputs, hidden)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, outputs, 1, bias=False),
            nn.BatchNorm2d(outputs),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: Any) -> Any:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        channels = 32
        for expansion, outputs, repeats, stride in STAGES:
            for index in range(repeats):
                layers.append(
                    InvertedResidual(channels, outputs, stride if index == 0 else 1, expansion)
                )
                channels = outputs
        layers.append(_conv_bn_relu6(channels, FEATURES))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURES, 1000))


def load_mobilenet_v2(weights: str) -> MobileNetV2:
    """The network with torchvision's ImageNet weights (strict: every name must match)."""
    network = MobileNetV2()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return network.eval()
