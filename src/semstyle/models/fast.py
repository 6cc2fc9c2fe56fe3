"""The distilled fast model: a VGG19 encoder and AdaIN decoder at a quarter of the width.

In the spirit of collaborative distillation (Wang et al., CVPR 2020): the student keeps the
teacher's depth and its relu1_1 … relu4_1 taps, with 16/32/64/128 channels instead of
64/128/256/512 (about 1/16 of the multiply-adds), and zero padding fused into the convolutions
instead of separate reflection-padding layers. ``FastEncoder`` and ``FastDecoder`` have the
same call signatures as ``VGGEncoder`` and ``Decoder``, so the pipeline (AdaIN, region-matched
AdaIN, α, colour, tiling) runs on either unchanged; only the channel count differs (128).
The training that makes them reproduce the teacher is in ``semstyle.training.distill``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

FAST_TAPS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
TEACHER_CHANNELS: dict[str, int] = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


@dataclass(frozen=True)
class FastConfig:
    """Shape of the student."""

    width: int = 16  # channels of block 1; blocks 2-4 have 2×, 4×, 8× (teacher: 64)
    block3_convs: int = 4  # 3×3 convs in block 3 (VGG19 has 4)

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor]) -> FastConfig:
        """The shape a ``FastEncoder`` state dict was trained with (width, convs in block 3)."""
        if "blocks.0.0.weight" not in sd:
            raise ValueError("not a fast-model encoder state dict (no 'blocks.0.0.weight')")
        convs3 = sum(1 for k in sd if k.startswith("blocks.3.") and k.endswith(".weight"))
        return cls(width=int(sd["blocks.0.0.weight"].shape[0]), block3_convs=convs3)

    def channels(self) -> dict[str, int]:
        w = self.width
        return {"relu1_1": w, "relu2_1": 2 * w, "relu3_1": 4 * w, "relu4_1": 8 * w}


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class FastEncoder(nn.Module):
    """RGB in [0, 1] → taps relu1_1 … relu4_1 of the student (1, 1/2, 1/4, 1/8 resolution)."""

    def __init__(self, cfg: FastConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FastConfig()
        w = self.cfg.width
        b3 = [_conv(4 * w, 4 * w) for _ in range(self.cfg.block3_convs - 1)]
        self.blocks = nn.ModuleList([
            nn.ModuleList([_conv(3, w)]),  # → relu1_1
            nn.ModuleList([_conv(w, w), nn.MaxPool2d(2, 2, ceil_mode=True), _conv(w, 2 * w)]),  # → relu2_1
            nn.ModuleList([_conv(2 * w, 2 * w), nn.MaxPool2d(2, 2, ceil_mode=True), _conv(2 * w, 4 * w)]),  # relu3_1
            nn.ModuleList([*b3, nn.MaxPool2d(2, 2, ceil_mode=True), _conv(4 * w, 8 * w)]),  # → relu4_1
        ])  # fmt: skip
        self.register_buffer("shift", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, taps: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """x: (N, 3, H, W) in [0, 1]. Returns {tap: (N, C_tap, H/2^k, W/2^k)}; stops at the deepest tap."""
        unknown = [t for t in taps if t not in FAST_TAPS]
        if unknown:
            raise ValueError(f"the fast model has taps {list(FAST_TAPS)}; {unknown} are not among them")
        deepest = max(FAST_TAPS.index(t) for t in taps)
        x = x - cast(torch.Tensor, self.shift).to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.blocks[: deepest + 1]):
            for layer in cast(nn.ModuleList, block):
                x = layer(x)
                if isinstance(layer, nn.Conv2d):
                    x = torch.relu(x)
            if FAST_TAPS[i] in taps:
                out[FAST_TAPS[i]] = x
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """relu4_1 features (N, 8·width, H/8, W/8)."""
        return self(x, ("relu4_1",))["relu4_1"]


class FastDecoder(nn.Module):
    """Student relu4_1 features (N, 8·width, h, w) → RGB (N, 3, 8h, 8w), not clamped."""

    def __init__(self, cfg: FastConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FastConfig()
        w = self.cfg.width
        up = nn.Upsample(scale_factor=2, mode="nearest")
        b3 = [_conv(4 * w, 4 * w) for _ in range(self.cfg.block3_convs - 1)]
        self.layers = nn.ModuleList([
            _conv(8 * w, 4 * w), up, *b3, _conv(4 * w, 2 * w), up,
            _conv(2 * w, 2 * w), _conv(2 * w, w), up,
            _conv(w, w), _conv(w, 3),
        ])  # fmt: skip

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = feat
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if isinstance(layer, nn.Conv2d) and i != last:
                x = torch.relu(x)
        return x


def embeddings(cfg: FastConfig) -> nn.ModuleDict:
    """1×1 convolutions from each student tap to the teacher's channels (used by distillation only)."""
    ch = cfg.channels()
    return nn.ModuleDict({t: nn.Conv2d(ch[t], TEACHER_CHANNELS[t], 1) for t in FAST_TAPS})
