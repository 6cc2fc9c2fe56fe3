"""Thin modules around the pure losses in ``semstyle.functional``.

``GeneratorObjective`` evaluates every generator term on a batch; the same object scores
refinement at inference, so training and the refinement loop optimise one objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from semstyle import functional as FN
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS


@dataclass
class StyleTargets:
    """What the style terms compare against, per sample: Gram matrices and channel mean/std at the style
    layers, and the discriminator's condition. From a batch of style crops' features (``from_feats``), or
    computed once from each whole style image at inference size and cached (the trainer's ``whole`` mode)."""

    grams: dict[str, torch.Tensor]  # layer → (N, C, C)
    means: dict[str, torch.Tensor]  # layer → (N, C, 1, 1)
    stds: dict[str, torch.Tensor]  # layer → (N, C, 1, 1)
    cond: torch.Tensor  # (N, 1920) style_vector of the same features

    @classmethod
    def from_feats(cls, feats: dict[str, torch.Tensor], layers: Sequence[str] = STYLE_LAYERS) -> StyleTargets:
        """Targets of features {tap: (N, C, h, w)} (the taps must include relu1_1…relu4_1 and ``layers``)."""
        taps = tuple(dict.fromkeys((*layers, *STYLE_LAYERS)))
        stats = {k: FN.mean_std(feats[k]) for k in taps}
        return cls({k: FN.gram(feats[k]) for k in taps}, {k: m for k, (m, _) in stats.items()},
                   {k: s for k, (_, s) in stats.items()}, style_vector(feats))

    @classmethod
    def cat(cls, parts: Sequence[StyleTargets]) -> StyleTargets:
        """Stack per-image targets into a batch, in order."""
        def join(d: str) -> dict[str, torch.Tensor]:
            return {k: torch.cat([getattr(p, d)[k] for p in parts]) for k in getattr(parts[0], d)}

        return cls(join("grams"), join("means"), join("stds"), torch.cat([p.cond for p in parts]))


@dataclass(frozen=True)
class RegionTargets:
    """Region-wise style targets of one output (region-guided refinement): per content region, the
    channel mean/std at the style layers of the style region it is matched to."""

    masks: torch.Tensor  # (1, K, H, W) soft masks of the content regions at the output's size
    means: dict[str, torch.Tensor]  # layer → (1, K, C, 1, 1)
    stds: dict[str, torch.Tensor]  # layer → (1, K, C, 1, 1)
    shares: torch.Tensor  # (K,) each region's share of the image; 0 for regions with no matched style region


@dataclass(frozen=True)
class LossWeights:
    """λ weights of the generator objective. Defaults and why (see docs/TRAINING.md):

    content=1 and style_meanstd=10 are AdaIN's, under which the pretrained decoder was trained,
    so fine-tuning starts at a balanced point; style_gram adds the specification's Gram term,
    scaled so that its value at the pretrained decoder is of the same order as the content term;
    tv is small (it only removes checkerboard noise); adv is small so the discriminator
    sharpens texture without pulling the decoder away from the content.
    """

    content: float = 1.0  # λ_c: relu4_1 MSE to the AdaIN target (normalised by C·H·W)
    content_orig: float = 0.0  # optional: relu4_1 MSE to the content's own features
    style_gram: float = 2.0  # λ_s (Gram): Σ_layers MSE of Gram matrices (normalised by C²)
    style_meanstd: float = 10.0  # λ_s (mean/std): AdaIN's moment-matching style loss
    tv: float = 1.0  # λ_tv: mean absolute neighbour difference of the output image
    adv: float = 0.05  # λ_adv: LSGAN generator term, averaged over scales
    temporal: float = 0.0  # λ_temporal: output of a moved crop vs the moved output (training.temporal; 0 = off)
    style_region: float = 100.0  # λ_region: region-wise mean/std matching, refinement with regions (10 barely moved it)
    style_layers: tuple[str, ...] = STYLE_LAYERS  # layers of the style terms


class GeneratorObjective(nn.Module):
    """All generator terms for outputs ``out`` given the AdaIN target and the style."""

    def __init__(self, encoder: nn.Module, weights: LossWeights) -> None:  # VGGEncoder-like: (x, taps) → feats
        super().__init__()
        self.encoder = encoder
        self.w = weights
        self.taps = tuple(dict.fromkeys((*weights.style_layers, "relu4_1")))

    def forward(
        self,
        out: torch.Tensor,  # (N, 3, H, W) decoded images in [0, 1] (unclamped is fine)
        target: torch.Tensor,  # (N, 512, H/8, W/8) AdaIN target features
        style_feats: dict[str, torch.Tensor] | StyleTargets,  # VGG features of the style images per tap, or targets
        disc: MultiScaleDiscriminator | None = None,
        style_vec: torch.Tensor | None = None,  # (N, 1920) discriminator condition
        content_feat: torch.Tensor | None = None,  # (N, 512, H/8, W/8) content relu4_1
        regions: RegionTargets | None = None,  # region-wise targets (N = 1): adds the "style_region" term
    ) -> dict[str, torch.Tensor]:
        feats = self.encoder(out, self.taps)
        layers = self.w.style_layers
        o_style = [feats[k] for k in layers]
        t = style_feats if isinstance(style_feats, StyleTargets) else StyleTargets.from_feats(style_feats, layers)
        terms = {
            "content": FN.content_loss(feats["relu4_1"], target),
            "style_gram": FN.gram_loss_to(o_style, [t.grams[k] for k in layers]),
            "style_meanstd": FN.mean_std_loss_to(o_style, [t.means[k] for k in layers], [t.stds[k] for k in layers]),
            "tv": FN.tv_loss(out),
        }
        if content_feat is not None and self.w.content_orig > 0:
            terms["content_orig"] = FN.content_loss(feats["relu4_1"], content_feat)
        if regions is not None and self.w.style_region > 0:
            terms["style_region"] = FN.region_moment_loss(
                o_style, regions.masks, [regions.means[k] for k in layers], [regions.stds[k] for k in layers],
                regions.shares)
        if disc is not None and style_vec is not None and self.w.adv > 0:
            terms["adv"] = FN.lsgan_g_loss(disc(out, style_vec))
        terms["total"] = torch.stack([getattr(self.w, k) * v for k, v in terms.items()]).sum()
        return terms


def discriminator_loss(
    disc: nn.Module,  # a MultiScaleDiscriminator, possibly DDP-wrapped: (images, conditions) → score maps
    real: torch.Tensor,  # (N, 3, H, W) style crops
    fake: torch.Tensor,  # (N, 3, H, W) generated images (detached)
    style_vec: torch.Tensor,  # (N, 1920) condition of each style crop
    mismatch_vec: torch.Tensor | None = None,  # (N, 1920) conditions of *other* styles
    noise: torch.Tensor | None = None,  # (N, 3, H, W) random noise images, judged under ``style_vec``
    noise_weight: float = 0.0,
) -> torch.Tensor:
    """LSGAN D loss; a real style crop under another style's condition counts as fake
    (the matching-aware trick), which teaches D to check the style, not only realism; so do
    noise images when ``noise_weight`` > 0 (a judge that liked noise would let refinement climb
    towards it)."""
    return discriminator_terms(disc, real, fake, style_vec, mismatch_vec, noise, noise_weight)[0]


def discriminator_terms(
    disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, style_vec: torch.Tensor,
    mismatch_vec: torch.Tensor | None = None, noise: torch.Tensor | None = None, noise_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``discriminator_loss`` and the mean scores of the same pass ({"real", "fake", "mismatch", "noise"}: before
    this update), so logging them costs no extra forward."""
    real_s, fake_s = disc(real, style_vec), disc(fake, style_vec)
    loss = FN.lsgan_d_loss(real_s, fake_s)
    scores = {"real": _mean_score(real_s), "fake": _mean_score(fake_s)}
    if mismatch_vec is not None:
        wrong = disc(real, mismatch_vec)  # LSGAN "fake" term only: ½E[D²], half weight
        loss = loss + 0.5 * _fake_term(wrong)
        scores["mismatch"] = _mean_score(wrong)
    if noise is not None and noise_weight > 0:
        noise_s = disc(noise, style_vec)
        loss = loss + noise_weight * _fake_term(noise_s)
        scores["noise"] = _mean_score(noise_s)
    return loss, scores


def _mean_score(scores: list[torch.Tensor]) -> float:
    return float(torch.stack([s.detach().float().mean() for s in scores]).mean())


def _fake_term(scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN's "fake" half, ½E[D²], averaged over scales."""
    return sum(0.5 * (s**2).mean() for s in scores) / len(scores)  # type: ignore[return-value]


def noise_images(g: torch.Generator, n: int, size: int) -> torch.Tensor:
    """(n, 3, size, size) negatives for the judge: uniform per-pixel noise, and the same noise
    blurred at a random scale (coarse blobs), alternating; values in [0, 1]."""
    out = torch.rand(n, 3, size, size, generator=g)
    for i in range(1, n, 2):
        k = 2 * int(torch.randint(1, 6, (1,), generator=g)) + 1  # 3 … 11 px box blur
        blurred = torch.nn.functional.avg_pool2d(out[i : i + 1], k, stride=1, padding=k // 2, count_include_pad=False)
        lo, hi = blurred.amin(), blurred.amax()
        out[i] = ((blurred - lo) / (hi - lo).clamp_min(1e-6))[0]  # stretched back to the full range
    return out
