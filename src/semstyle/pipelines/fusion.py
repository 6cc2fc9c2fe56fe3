"""The one fusion: AdaIN of content features to style statistics, global or per region, used by inference
(``pipelines.transfer``, tile by tile) and by training (``fuse_regions``, a whole feature map).

Content statistics are float64 running sums (``Moments``) over any number of pieces of one feature map;
``build_fusion`` turns them and the styles into the ``Fusion`` every piece then gets: AdaIN with the
whole map's statistics, blended between styles by weight, or region-matched AdaIN (each content region
to its matched style region, or an attention mixture of the style's regions) with feathered borders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from semstyle import functional as FN
from semstyle.pipelines.semantic import descriptors, region_targets
from semstyle.segmentation import regions as R
from semstyle.types import Attention, Match, Regions, StyleStats


@dataclass(frozen=True)
class Fuse:
    """How to fuse: the styles, their weights, α and (semantic mode) the regions and their rules."""

    styles: Sequence[StyleStats]
    weights: Sequence[float]
    alpha: float
    regions: Regions | None = None  # None: global AdaIN (interpolated by weight)
    unmatched: str = "nearest"  # content label missing from a style: nearest | global | keep
    feather: float = 2.0  # std (feature px) of the blur of region borders
    attention: Attention | None = None  # None: each region takes its matched style region; else attention fusion
    shrink: float = 0.0  # region statistics shrunk toward the picture's (``functional.stats_from_moments``)


def feature_masks(labels: np.ndarray, ids: Sequence[int], feather: float) -> torch.Tensor:
    """``regions.region_masks`` of (H, W) labels padded to multiples of 8, at (H/8, W/8)."""
    h, w = labels.shape
    if h % 8 or w % 8:
        raise ValueError(f"labels must be padded to multiples of 8, got {labels.shape}")
    return R.region_masks(labels, list(ids), (h // 8, w // 8), feather)


class Moments:
    """Float64 running sums for global (and, with masks, per-region) channel statistics."""

    def __init__(self) -> None:
        self.sums: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, feat: torch.Tensor, masks: torch.Tensor) -> None:
        got = FN.masked_moments(feat.double(), masks.double())
        old = self.sums.get(name)
        self.sums[name] = list(got) if old is None else [a + b for a, b in zip(old, got)]

    def stats(self, name: str, unbiased: bool = False, shrink: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, K, C, 1, 1) mean and std, as ``functional.masked_mean_std`` of the whole feature map."""
        total, s, ss = self.sums[name]
        mean, std = FN.stats_from_moments(total, s, ss, unbiased=unbiased, shrink=shrink)
        return mean.float(), std.float()


@dataclass
class Fusion:
    """What every piece of the feature map gets: ``fusion(feat, fy, fx)``, the piece at rows fy, columns fx."""

    c_mean: torch.Tensor  # (1, K, C, 1, 1) content statistics (K = 1: global)
    c_std: torch.Tensor
    s_mean: torch.Tensor  # target statistics, same shapes
    s_std: torch.Tensor
    soft: torch.Tensor | None = None  # (1, K, Hf, Wf) soft masks over the whole padded image; None: global
    keep: torch.Tensor | None = None  # (K,) regions whose features stay unchanged

    def __call__(self, feat: torch.Tensor, fy: slice, fx: slice) -> torch.Tensor:
        if self.soft is None:
            return FN.renormalize(feat, self.c_mean[:, 0], self.c_std[:, 0], self.s_mean[:, 0], self.s_std[:, 0])
        masks = self.soft[:, :, fy, fx].to(feat.device)
        return FN.region_adain_from_stats(feat, masks, self.c_mean, self.c_std, self.s_mean, self.s_std, self.keep)


def fusion_masks(
    regions: Regions | None, hp: int, wp: int, feather: float
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Masks at feature resolution: one all-ones "region" for the global statistics, the hard and soft labels."""
    masks: dict[str, torch.Tensor] = {"global": torch.ones(1, 1, hp // 8, wp // 8)}
    if regions is None:
        return masks, []
    ids = [int(v) for v in np.unique(regions.content)]
    labels, _ = FN.pad_to_multiple(regions.content, mode="symmetric")
    masks["hard"] = feature_masks(labels, ids, 0.0)
    masks["soft"] = feature_masks(labels, ids, feather) if feather > 0 else masks["hard"]
    return masks, ids


def build_fusion(
    moments: Moments, masks: dict[str, torch.Tensor], ids: list[int], fuse: Fuse, dev: torch.device
) -> tuple[Fusion, dict[int, Match]]:
    """The transform every tile gets: global AdaIN (styles blended by weight) or AdaIN per region."""
    g_mean, g_std = moments.stats("global", unbiased=True)  # (1, 1, C, 1, 1)
    regions = fuse.regions
    if regions is None:
        s_mean, s_std = FN.blend_stats([e.mean for e in fuse.styles], [e.std for e in fuse.styles], list(fuse.weights))
        return Fusion(g_mean.to(dev), g_std.to(dev), s_mean.to(dev)[:, None], s_std.to(dev)[:, None]), {}
    own_mean, own_std = moments.stats("hard", shrink=fuse.shrink)  # (1, K, C, 1, 1)
    c_desc = descriptors(own_mean, own_std, g_mean[:, 0], g_std[:, 0])
    mean, std, keep_w, matches = region_targets(
        own_mean, own_std, c_desc, ids, fuse.styles, fuse.weights, regions, fuse.unmatched, fuse.attention,
        fuse.shrink,
    )
    c_mean, c_std = moments.stats("soft", shrink=fuse.shrink) if "soft" in moments.sums else (own_mean, own_std)
    fusion = Fusion(c_mean.to(dev), c_std.to(dev), mean.to(dev), std.to(dev), masks["soft"], keep_w > 1.0 - 1e-6)
    return fusion, matches


def fuse_regions(
    c_feat: torch.Tensor,  # (1, C, h, w) content relu4_1 features of a padded image (h, w: its size / 8)
    styles: Sequence[StyleStats],
    weights: Sequence[float],
    regions: Regions,
    unmatched: str = "nearest",
    feather: float = 2.0,
    attention: Attention | None = None,
) -> tuple[torch.Tensor, dict[int, Match]]:
    """Region-matched AdaIN of a whole feature map (the trainer's crops); returns (target features, matches).

    For each content region k the target statistics are Σ_i W[k, i]·stats_i(k), where W[k] is
    the style weights (or one-hot when ``region_styles`` names a style for k) and stats_i(k) is
    the style-i region matched to k (same label; else per ``unmatched``), its whole-image
    statistics when style i has no labels, or k's own statistics ("keep"); with ``attention``, the
    attention-weighted mixture of style i's regions (``region_targets``). The same code as inference's:
    the map is one piece.
    """
    h, w = c_feat.shape[-2:]
    masks, ids = fusion_masks(regions, 8 * h, 8 * w, feather)
    moments = Moments()
    for name, m in masks.items():
        if name != "soft" or m is not masks.get("hard"):
            moments.add(name, c_feat, m.to(c_feat.device))
    fuse = Fuse(styles, weights, 1.0, regions, unmatched, feather, attention)
    fusion, matches = build_fusion(moments, masks, ids, fuse, c_feat.device)
    return fusion(c_feat, slice(0, h), slice(0, w)), matches


__all__ = ["Fuse", "Fusion", "Moments", "build_fusion", "feature_masks", "fuse_regions", "fusion_masks"]
