"""The AdaIN decoder: VGG19 mirrored from relu4_1 back to RGB, with nearest upsampling.

The layer list reproduces ``decoder.pth`` index for index.
"""

from __future__ import annotations

import torch
from torch import nn

# (in, out) channels of each 3×3 conv; "U" is a 2× nearest upsampling
_CFG: list[tuple[int, int] | str] = [
    (512, 256), "U",
    (256, 256), (256, 256), (256, 256), (256, 128), "U",
    (128, 128), (128, 64), "U",
    (64, 64), (64, 3),
]  # fmt: skip


def _build_layers() -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in _CFG:
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            assert isinstance(item, tuple)
            cin, cout = item
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]
    layers.pop()  # no ReLU after the last conv
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """relu4_1 features (N, 512, h, w) → RGB image (N, 3, 8h, 8w), not clamped."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _build_layers()

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.layers(feat)
