"""The normalised VGG19 encoder of AdaIN (Huang & Belongie 2017), with named taps.

The layer list reproduces ``vgg_normalised.pth`` index for index, so its state dict loads
as is: a 1×1 conv that maps RGB in [0, 1] to Caffe BGR·255 minus the ImageNet mean, then
VGG19's convolutions with reflection padding and ceil-mode max-pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

# index of the ReLU module after which each tap is read
TAPS: dict[str, int] = {"relu1_1": 3, "relu2_1": 10, "relu3_1": 17, "relu4_1": 30, "relu5_1": 43}
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# (in, out) channels of each 3×3 conv; "M" is a max-pool
_CFG: list[tuple[int, int] | str] = [
    (3, 64), (64, 64), "M",
    (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), (256, 256), "M",
    (256, 512), (512, 512), (512, 512), (512, 512), "M",
    (512, 512), (512, 512), (512, 512), (512, 512),
]  # fmt: skip


def _build_layers() -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    for item in _CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            assert isinstance(item, tuple)
            cin, cout = item
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]
    return nn.Sequential(*layers)


class VGGEncoder(nn.Module):
    """VGG19 up to relu5_1; ``forward`` returns the requested taps and stops at the deepest."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = cast(nn.Sequential, _build_layers()[: TAPS["relu5_1"] + 1])

    def forward(self, x: torch.Tensor, taps: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """x: (N, 3, H, W) RGB in [0, 1]. Returns {tap: (N, C_tap, H/2^k, W/2^k)}."""
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise ValueError(f"unknown VGG taps {unknown}; choose from {list(TAPS)}")
        wanted = {TAPS[t]: t for t in taps}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
                if len(out) == len(wanted):
                    break
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """relu4_1 features (N, 512, H/8, W/8)."""
        return self(x, ("relu4_1",))["relu4_1"]
