"""ResNet-50 (He et al. 2016) in plain PyTorch, as a feature extractor: the backbone of most prior
face-reconstruction encoders (DECA, EMOCA). torchvision's layout (v1.5: stride in the 3x3
convolution of the bottleneck), written here because torchvision does not import beside the CPU
build of torch 2.13. No pretrained weights: trained from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

LAYERS_50 = (3, 4, 6, 3)
EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride), 1x1 expand (4 x), BatchNorm, ReLU; projection shortcut when the
    shape changes. The last BatchNorm starts at zero, so every block starts as the identity
    (helps training from scratch)."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * EXPANSION
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """B x 3 x H x W normalised images -> B x 2048 features (global average pool); 23.5 M
    parameters. Input sizes that are multiples of 32 keep every stage aligned."""

    def __init__(self, layers: tuple[int, ...] = LAYERS_50) -> None:
        super().__init__()
        self.out_channels = 512 * EXPANSION
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        stages: list[nn.Module] = []
        cin = 64
        for i, count in enumerate(layers):
            width = 64 * 2**i
            for k in range(count):
                stages.append(Bottleneck(cin, width, 2 if (k == 0 and i > 0) else 1))
                cin = width * EXPANSION
        self.stages = nn.Sequential(*stages)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))
