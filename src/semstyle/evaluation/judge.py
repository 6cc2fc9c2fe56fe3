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


def style_crops(paths: Sequence[Path], side: int = 128, n: int = 4, seed: int = 0,
                scale: int = 512) -> dict[str, torch.Tensor]:
    """``n`` fixed side×side crops of each style resized to ``scale`` px (training's): {stem: (n, 3, side, side)}."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for p in paths:
        x = to_tensor(resize_longest(load_image(p), scale))
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


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counted half (Mann-Whitney)."""
    if not pos or not neg:
        raise ValueError(f"auc needs positives and negatives, got {len(pos)} and {len(neg)}")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@dataclass(frozen=True)
class HeldoutJudge:
    real_vs_output_auc: float  # P(a real style crop scores above a stylised output's crop, same condition)
    real_vs_output_acc: float  # share of real crops above 0.5 and output crops below (LSGAN's 1 / 0 targets)
    matching_auc: float  # P(a crop under its own style's condition scores above it under another style's)


def judge_heldout(disc: MultiScaleDiscriminator, encoder: nn.Module, crops: dict[str, torch.Tensor],
                  outputs: dict[str, torch.Tensor]) -> HeldoutJudge:
    """The judge on styles it never trained on. ``crops``: {style: (n, 3, s, s)} real crops, each its own
    condition (as in training); ``outputs``: {style: (m, 3, s, s)} crops of outputs stylised with it, under
    the condition of the style's first crop. Every style of ``outputs`` must be in ``crops``."""
    missing = sorted(set(outputs) - set(crops))
    if missing or len(crops) < 2 or not outputs:
        raise ValueError(f"judge_heldout needs >= 2 styles and crops for every output style; missing {missing}")
    real, fake, other = [], [], []  # real crops under their own condition; outputs; crops under another's
    with torch.no_grad():
        cond = {k: style_vector(encoder(v, STYLE_LAYERS)) for k, v in crops.items()}  # (n, 1920) per style
        names = list(crops)
        for i, name in enumerate(names):
            x = crops[name]
            real += disc.score(x, cond[name]).tolist()
            wrong = cond[names[(i + 1) % len(names)]][: len(x)]  # the next style's conditions, crop for crop
            other += disc.score(x[: len(wrong)], wrong).tolist()
            if name in outputs:
                out = outputs[name]
                fake += disc.score(out, cond[name][:1].expand(len(out), -1)).tolist()
    acc = (sum(r > 0.5 for r in real) + sum(f < 0.5 for f in fake)) / (len(real) + len(fake))
    return HeldoutJudge(auc(real, fake), acc, auc(real, other))


__all__ = ["HeldoutJudge", "JudgeRow", "auc", "judge", "judge_heldout", "style_crops"]
