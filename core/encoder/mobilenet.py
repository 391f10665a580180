"""MobileNetV2 (Sandler et al. 2018) in plain PyTorch, as a feature extractor.

The layout of torchvision's ``mobilenet_v2`` (inverted residual blocks with linear bottlenecks,
ReLU6, width multiplier rounded to multiples of 8), written here because torchvision does not
import beside the CPU build of torch 2.13 (see STACK.md). No weights ship: there are no pretrained
ImageNet weights offline, so the encoder is trained from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

# expansion t, output channels c, repeats n, first stride s (the paper's Table 2)
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expansion (t x), 3x3 depthwise (stride s), 1x1 linear projection; a residual
    connection when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(cin * expansion))
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu6(cin, hidden, 1))
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """B x 3 x H x W normalised images -> B x ``out_channels`` features (global average pool).

    width: the width multiplier (1.0: 1280 output channels, 3.5 M parameters with a classifier;
    0.5: the same 1280 output channels, fewer inside). Any input size that is a multiple of 32
    works (the feature map is H/32 x W/32 before pooling).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        cin = make_divisible(32 * width)
        self.out_channels = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [conv_bn_relu6(3, cin, 3, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            cout = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(conv_bn_relu6(cin, self.out_channels, 1))
        self.features = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation for convolutions, unit BatchNorm (torchvision's scheme)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))
