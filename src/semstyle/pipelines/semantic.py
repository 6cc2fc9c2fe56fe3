"""The semantic half of the pipeline: where the regions come from and how they are fused.

``resolve_labels`` turns the caller's choice (a per-region mask, user label maps, automatic
co-segmentation or a pretrained segmenter) into one ``Regions`` record; ``fuse_regions``
computes the per-region target statistics and applies region-matched AdaIN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.io.labels import LabelMap, fit_to, harmonize, load_labels
from semstyle.segmentation import regions as R

if TYPE_CHECKING:
    from semstyle.pipelines.stylize import Stylizer


@dataclass
class StyleEntry:
    """A style image encoded once at its own size, reused across calls."""

    image: Image.Image  # the resized style image
    feat: torch.Tensor  # (1, 512, ceil(h/8), ceil(w/8)) relu4_1 features of the padded image, fp32
    mean: torch.Tensor  # (1, 512, 1, 1) global channel means
    std: torch.Tensor  # (1, 512, 1, 1) global channel stds


@dataclass
class Regions:
    """Label maps for one content and its styles, at the (resized) images' sizes."""

    content: np.ndarray  # (H, W) content labels
    styles: list[np.ndarray | None]  # per style: (h, w) labels, or None (use its global statistics)
    region_styles: dict[int, int] | None = None  # content label → the only style it takes
    from_colors: bool = False  # labels are packed RGB colours


def pad_labels(labels: np.ndarray, m: int = 8) -> np.ndarray:
    """Pad (H, W) labels on the bottom/right to multiples of ``m``, mirroring the image padding."""
    h, w = labels.shape
    return np.pad(labels, ((0, (-h) % m), (0, (-w) % m)), mode="symmetric")


def _fitted(src: object, img: Image.Image, cfg: StylizeConfig, what: str) -> LabelMap:
    lm = load_labels(src, cfg.max_pixels, what=what)  # type: ignore[arg-type]
    return fit_to(lm, img.size, what)


def resolve_labels(
    st: Stylizer,
    semantic: str,
    content_img: Image.Image,
    entries: Sequence[StyleEntry],
    mask: object | None,
    region_styles: Mapping[int, int] | None,
    content_labels: object | None,
    style_labels: Sequence[object | None] | None,
    c_feat: torch.Tensor,
) -> Regions | None:
    """Build the ``Regions`` for this call, or None for plain (global) AdaIN."""
    cfg = st.config
    if mask is not None:
        lm = _fitted(mask, content_img, cfg, "mask")
        ids = lm.unique()
        if region_styles is None:
            if len(ids) != len(entries):
                raise InputError(
                    f"the mask has {len(ids)} regions but {len(entries)} styles were given; "
                    "give one style per region (in sorted label order) or map labels to styles explicitly"
                )
            region_styles = {lab: i for i, lab in enumerate(ids)}
        _check_named(region_styles, lm, "the mask")
        return _merged(Regions(lm.labels, [None] * len(entries), dict(region_styles), lm.from_colors), cfg)
    if semantic == "none":
        return None
    if semantic == "labels":
        c_lm = _fitted(content_labels, content_img, cfg, "content label map")
        given = list(style_labels or [])
        s_lms: list[LabelMap | None] = []
        for i, e in enumerate(entries):  # a style without a map (named for a label) gives its global statistics
            src = given[i] if i < len(given) else None
            s_lm = None if src is None else _fitted(src, e.image, cfg, f"style label map {i + 1}")
            if s_lm is not None:
                c_lm, s_lm = harmonize(c_lm, s_lm)
            s_lms.append(s_lm)
        for s_lm in s_lms:
            if s_lm is not None:
                R.check_common(c_lm.unique(), s_lm.unique(), c_lm.name)
        if region_styles:
            _check_named(region_styles, c_lm, "the content label map")
        regions = Regions(c_lm.labels, [None if s is None else s.labels for s in s_lms],
                          dict(region_styles or {}) or None, c_lm.from_colors)
        return _merged(regions, cfg)
    if semantic == "auto":
        c_lab, s_labs = st.cosegment(content_img, [e.image for e in entries])
        return _merged(Regions(c_lab, list(s_labs), dict(region_styles or {}) or None), cfg)
    if semantic == "segformer":
        from semstyle.segmentation.segformer import shared_segmenter

        seg = shared_segmenter(st.device, coarse=cfg.segformer_coarse)
        regions = Regions(seg(content_img), [seg(e.image) for e in entries], dict(region_styles or {}) or None)
        return _merged(regions, cfg)
    raise InputError(f"semantic must be none, auto, labels or segformer, got {semantic!r}")


def _check_named(region_styles: Mapping[int, int], lm: LabelMap, what: str) -> None:
    """Every label a style is named for must be in the map (a typo would silently do nothing)."""
    ids = set(lm.unique())
    missing = [lab for lab in region_styles if lab not in ids]
    if missing:
        have = ", ".join(lm.name(i) for i in sorted(ids)[:8]) + (", …" if len(ids) > 8 else "")
        raise InputError(
            f"{what} has no region labelled {', '.join(lm.name(i) for i in missing[:4])} (named for a style); "
            f"its labels are {have}"
        )


def _merged(regions: Regions, cfg: StylizeConfig) -> Regions:
    """Regions too small to matter at feature resolution merged into a neighbour, in every map."""
    merge = R.merge_small_regions
    regions.content = merge(regions.content, cfg.min_region)
    regions.styles = [None if s is None else merge(s, cfg.min_region) for s in regions.styles]
    return regions


def _descriptors(feat: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(K, 2C) region descriptors free of the image's own style: normalised mean and log-std ratio."""
    g_mean, g_std = FN.mean_std(feat)  # (1, C, 1, 1)
    r_mean, r_std = FN.masked_mean_std(feat, masks)  # (1, K, C, 1, 1)
    mu = ((r_mean - g_mean.unsqueeze(1)) / g_std.unsqueeze(1)).flatten(2)[0]  # (K, C)
    sd = torch.log(r_std / g_std.unsqueeze(1)).flatten(2)[0]  # (K, C)
    return torch.cat([mu, sd], dim=1)


def fuse_regions(
    c_feat: torch.Tensor,
    entries: Sequence[StyleEntry],
    weights: Sequence[float],
    regions: Regions,
    cfg: StylizeConfig,
    content_hw: tuple[int, int],
) -> tuple[torch.Tensor, dict[int, object]]:
    """Region-matched AdaIN of the content features; returns (target features, matches).

    For each content region k the target statistics are Σ_i W[k, i]·stats_i(k), where W[k] is
    the style weights (or one-hot when ``region_styles`` names a style for k) and stats_i(k) is
    the style-i region matched to k (same label; else per ``cfg.unmatched``), its whole-image
    statistics when style i has no labels, or k's own statistics ("keep").
    """
    c_lab = R.merge_small_regions(regions.content, cfg.min_region)
    c_ids = [int(v) for v in np.unique(c_lab)]
    hw = tuple(c_feat.shape[-2:])
    hard = R.region_masks(pad_labels(c_lab), c_ids, hw, 0.0).to(c_feat.device)  # (1, K, h, w)
    soft = R.region_masks(pad_labels(c_lab), c_ids, hw, cfg.feather).to(c_feat.device) if cfg.feather > 0 else hard
    own_mean, own_std = FN.masked_mean_std(c_feat, hard)  # (1, K, C, 1, 1)
    c_desc = _descriptors(c_feat, hard)

    mean, std, keep_w, matches = region_targets(own_mean, own_std, c_desc, c_ids, entries, weights, regions, cfg)
    keep = (keep_w > 1.0 - 1e-6).to(c_feat.device)  # regions kept whole: their content features, exactly
    return FN.region_adain(c_feat, soft, mean, std, keep=keep), matches


def region_targets(
    own_mean: torch.Tensor,  # (1, K, C, 1, 1) the content regions' own statistics
    own_std: torch.Tensor,  # (1, K, C, 1, 1)
    c_desc: torch.Tensor,  # (K, 2C) content region descriptors (see ``descriptors``)
    c_ids: list[int],  # the K content labels
    entries: Sequence[StyleEntry],
    weights: Sequence[float],
    regions: Regions,
    cfg: StylizeConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[int, object]]:
    """Per-region target statistics Σ_i W[k, i]·stats_i(k) (see ``fuse_regions``).

    Returns (mean, std) of shape (1, K, C, 1, 1) on ``own_mean``'s device, the per-region share
    of the target that is the region's own statistics (K,), and the matches.
    """
    dev = own_mean.device
    k, c = len(c_ids), own_mean.shape[2]
    mean = torch.zeros(1, k, c, 1, 1, device=dev)
    std = torch.zeros_like(mean)
    total_w = sum(weights)
    keep_w = torch.zeros(k)
    matches: dict[int, object] = {}
    for i, (entry, s_lab) in enumerate(zip(entries, regions.styles, strict=True)):
        row = _style_rows(c_ids, i, weights[i] / total_w, regions.region_styles)  # (K,)
        if not any(row):
            continue
        s_mean, s_std, pick = _style_stats(entry, s_lab, c_ids, c_desc, cfg)
        for j, lab in enumerate(c_ids):
            if row[j] == 0:
                continue
            src = pick[j]
            if i == 0 or lab not in matches:
                matches[lab] = src
            if src == "keep":
                m, s = own_mean[0, j], own_std[0, j]
                keep_w[j] += row[j]
            elif src == "global":
                m, s = entry.mean[0], entry.std[0]
            else:
                m, s = s_mean[src], s_std[src]  # type: ignore[index]
            mean[0, j] += row[j] * m.to(dev)
            std[0, j] += row[j] * s.to(dev)
    return mean, std, keep_w, matches


def _style_rows(c_ids: list[int], i: int, w: float, region_styles: dict[int, int] | None) -> list[float]:
    if not region_styles:
        return [w] * len(c_ids)
    return [(1.0 if region_styles[lab] == i else 0.0) if lab in region_styles else w for lab in c_ids]


def _style_stats(
    entry: StyleEntry,
    s_lab: np.ndarray | None,
    c_ids: list[int],
    c_desc: torch.Tensor,
    cfg: StylizeConfig,
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], list[object]]:
    """Per-label statistics of one style image and, per content label, which one it takes."""
    if s_lab is None:
        return {}, {}, ["global"] * len(c_ids)
    s_lab = R.merge_small_regions(s_lab, cfg.min_region)
    s_ids = [int(v) for v in np.unique(s_lab)]
    masks = R.region_masks(pad_labels(s_lab), s_ids, tuple(entry.feat.shape[-2:]), 0.0).to(entry.feat.device)
    m, s = FN.masked_mean_std(entry.feat, masks)  # (1, K_s, C, 1, 1)
    picks = R.match_regions(c_ids, s_ids, c_desc, _descriptors(entry.feat, masks), cfg.unmatched)
    return ({lab: m[0, j] for j, lab in enumerate(s_ids)}, {lab: s[0, j] for j, lab in enumerate(s_ids)}, list(picks))

