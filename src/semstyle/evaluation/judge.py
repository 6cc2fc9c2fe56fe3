"""The discriminator as a judge: does it rank a style's own crops above noise and above other styles'
crops under that style's condition? (docs/TRAINING.md, the judge stage.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS


@dataclass(frozen=True)
class JudgeRow:
    style: str  # the style image's stem
    own: float  # mean score of its crops under its own condition
    noise: float  # mean score of uniform noise under its condition
    others: float  # mean score of the other styles' crops under its condition


def style_crops(paths: Sequence[Path], side: int = 128, n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` fixed side×side crops of each style resized to 512 px (training's scale): {stem: (n, 3, side, side)}."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for p in paths:
        x = to_tensor(resize_longest(load_image(p), 512))
        h, w = x.shape[-2:]
        ys = torch.randint(0, h - side + 1, (n,), generator=g).tolist()
        xs = torch.randint(0, w - side + 1, (n,), generator=g).tolist()
        out[p.stem] = torch.cat([x[..., y : y + side, x0 : x0 + side] for y, x0 in zip(ys, xs)])
    return out


def judge(disc: MultiScaleDiscriminator, encoder: nn.Module, crops: dict[str, torch.Tensor],
          noise_seed: int = 1) -> list[JudgeRow]:
    """One row per style: its crops, noise and the other styles' crops, each scored under its condition."""
    first = next(iter(crops.values()))
    noise = torch.rand(first.shape, generator=torch.Generator().manual_seed(noise_seed))
    rows = []
    with torch.no_grad():
        cond = {k: style_vector(encoder(v, STYLE_LAYERS)) for k, v in crops.items()}  # (n, 1920) per style
        for name, vec in cond.items():
            others = [float(disc.score(crops[o], vec).mean()) for o in crops if o != name]
            rows.append(JudgeRow(name, float(disc.score(crops[name], vec).mean()),
                                 float(disc.score(noise, vec).mean()), sum(others) / max(len(others), 1)))
    return rows


__all__ = ["JudgeRow", "judge", "style_crops"]
