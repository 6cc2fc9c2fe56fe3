"""The held-out judge's figures (issue 14): the AUC helper and judge_heldout with a judge whose answers are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semstyle.evaluation.judge import auc, judge_heldout
from semstyle.models.discriminator import MultiScaleDiscriminator


def test_auc_counts_orderings_and_ties() -> None:
    assert auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert auc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert auc([1.0], [1.0]) == 0.5
    assert auc([1.0, 3.0], [2.0]) == 0.5
    with pytest.raises(ValueError, match="positives and negatives"):
        auc([], [1.0])


class PixelEncoder(nn.Module):
    """Every style layer is the image itself, so a condition is the crop's per-channel log mean and log std."""

    def forward(self, x: torch.Tensor, taps: tuple[str, ...]) -> dict[str, torch.Tensor]:
        return {t: x for t in taps}


class ColourJudge(MultiScaleDiscriminator):
    """Scores 1 when the image's channel means are those the condition encodes, falling off with the distance."""

    def score(self, img: torch.Tensor, style_vec: torch.Tensor) -> torch.Tensor:
        want = torch.expm1(style_vec[:, :3])  # (N, 3): relu1_1's log1p(mean) undone
        return torch.exp(-50 * (img.mean(dim=(2, 3)) - want).abs().sum(1))  # (N,)


def crops_of(colour: tuple[float, float, float], n: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(sum(colour) * 100))
    base = torch.tensor(colour)[None, :, None, None].expand(n, 3, 16, 16)
    return (base + 0.01 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)  # (n, 3, 16, 16)


def test_a_judge_that_knows_each_style_scores_perfectly() -> None:
    crops = {"red": crops_of((0.9, 0.1, 0.1)), "blue": crops_of((0.1, 0.1, 0.9)), "grey": crops_of((0.5, 0.5, 0.5))}
    outputs = {k: torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i, k in enumerate(crops)}
    j = judge_heldout(ColourJudge(), PixelEncoder(), crops, outputs)
    assert j.matching_auc == 1.0
    assert j.real_vs_output_auc == 1.0
    assert j.real_vs_output_acc == 1.0


def test_a_judge_blind_to_the_condition_has_matching_auc_one_half() -> None:
    class Blind(MultiScaleDiscriminator):
        def score(self, img: torch.Tensor, style_vec: torch.Tensor) -> torch.Tensor:
            return img.mean(dim=(1, 2, 3))  # (N,): ignores the condition

    crops = {"red": crops_of((0.9, 0.1, 0.1)), "blue": crops_of((0.1, 0.1, 0.9))}
    outputs = {"red": torch.zeros(2, 3, 16, 16)}
    j = judge_heldout(Blind(), PixelEncoder(), crops, outputs)
    assert j.matching_auc == 0.5
    assert j.real_vs_output_auc == 1.0  # black outputs score below every real crop


def test_judge_heldout_rejects_outputs_without_crops() -> None:
    crops = {"red": crops_of((0.9, 0.1, 0.1)), "blue": crops_of((0.1, 0.1, 0.9))}
    with pytest.raises(ValueError, match="missing \\['green'\\]"):
        judge_heldout(ColourJudge(), PixelEncoder(), crops, {"green": torch.zeros(1, 3, 16, 16)})
    with pytest.raises(ValueError, match=">= 2 styles"):
        judge_heldout(ColourJudge(), PixelEncoder(), {"red": crops["red"]}, {"red": crops["red"]})
