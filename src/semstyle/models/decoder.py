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


# Named stages, as the encoder has named taps: the output of ``layers[i]`` for each name. ``sS_k`` is the k-th
# conv (+ReLU) at stride S, ``upS`` the upsampling to stride S, ``rgb`` the image. A decode can stop at a stage
# and go on from it (``Decoder.run``): video carries the activation at one (``pipelines.video``).
STAGES: dict[str, int] = {
    "s8_1": 2, "up4": 3, "s4_1": 6, "s4_2": 9, "s4_3": 12, "s4_4": 15,
    "up2": 16, "s2_1": 19, "s2_2": 22, "up1": 23, "s1_1": 26, "rgb": 28,
}  # fmt: skip


def stage_index(name: str) -> int:
    """The ``layers`` index whose output is stage ``name``; a ValueError lists the names."""
    if name not in STAGES:
        raise ValueError(f"decoder stage must be one of {', '.join(STAGES)}, got {name!r}")
    return STAGES[name]


class Decoder(nn.Module):
    """relu4_1 features (N, 512, h, w) → RGB image (N, 3, 8h, 8w), not clamped."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _build_layers()

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.layers(feat)

    def run(self, x: torch.Tensor, start: str | None = None, stop: str | None = None) -> torch.Tensor:
        """Decode from stage ``start`` (None: the relu4_1 features) up to stage ``stop`` (None: the image)."""
        a = 0 if start is None else stage_index(start) + 1
        b = len(self.layers) if stop is None else stage_index(stop) + 1
        out: torch.Tensor = self.layers[a:b](x)
        return out
