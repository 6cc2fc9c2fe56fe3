"""The semantic half of the pipeline: where the regions come from and what each one takes.

``resolve_labels`` turns the caller's choice (a per-region mask, user label maps, automatic
co-segmentation or a pretrained segmenter) into one ``Regions`` record; ``region_targets`` gives
every content region its target statistics (the rule of the one fusion, ``pipelines.fusion``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.config import StylizeOptions
from semstyle.errors import InputError
from semstyle.io.labels import LabelMap, fit_to, harmonize, load_labels
from semstyle.networks import Networks
from semstyle.segmentation import regions as R
from semstyle.segmentation import segformer
from semstyle.segmentation.auto import cosegment
from semstyle.segmentation.scribbles import grow, read_scribbles
from semstyle.types import Attention, Match, Regions, StyleStats


def _fitted(src: Any, img: Image.Image, cfg: StylizeOptions, what: str) -> LabelMap:
    lm = load_labels(src, cfg.max_pixels, what=what)
    return fit_to(lm, img.size, what)


def cosegment_images(
    nets: Networks, content: Image.Image, styles: Sequence[Image.Image], cfg: StylizeOptions
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Automatic joint labels of ``content`` and ``styles`` with these networks' features (segmentation.auto)."""
    c_lab, s_labs = cosegment(nets.encode, content, styles, cfg.regions, cfg.seed, nets.coseg)
    return c_lab, list(s_labs)


def resolve_labels(
    nets: Networks,
    cfg: StylizeOptions,
    content_img: Image.Image,
    entries: Sequence[StyleStats],
    *,
    mask: Any = None,
    region_styles: Mapping[int, int] | None = None,
    content_labels: Any = None,
    style_labels: Sequence[Any] | None = None,
    content_scribbles: Any = None,
    style_scribbles: Sequence[Any] | None = None,
) -> Regions | None:
    """Build the ``Regions`` for this call (``cfg.semantic`` names the source), or None for plain AdaIN."""
    semantic = cfg.semantic
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
        return merged(Regions(lm.labels, [None] * len(entries), dict(region_styles), lm.from_colors), cfg)
    if semantic == "none":
        return None
    if semantic == "labels":
        c_lm = _fitted(content_labels, content_img, cfg, "content label map")
        given = list(style_labels or [])
        s_lms: list[LabelMap | None] = []
        for i, e in enumerate(entries):  # a style without a map (named for a label) gives its global statistics
            src = given[i] if i < len(given) else None
            s_lm = None if src is None or e.image is None else _fitted(src, e.image, cfg, f"style label map {i + 1}")
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
        return merged(regions, cfg)
    if semantic == "scribbles":
        return merged(scribble_regions(nets, cfg, content_img, entries, content_scribbles, style_scribbles or (),
                                       region_styles), cfg)
    if semantic == "auto":
        c_lab, s_labs = cosegment_images(nets, content_img, [e.image for e in entries if e.image is not None], cfg)
        return merged(Regions(c_lab, list(s_labs), dict(region_styles or {}) or None), cfg)
    if semantic == "segformer":
        seg = segformer.shared_segmenter(nets.device, coarse=cfg.segformer_coarse)
        regions = Regions(seg(content_img), [None if e.image is None else seg(e.image) for e in entries],
                          dict(region_styles or {}) or None)
        return merged(regions, cfg)
    raise InputError(f"semantic must be none, auto, labels, segformer or scribbles, got {semantic!r}")


def scribble_regions(
    nets: Networks, cfg: StylizeOptions, content_img: Image.Image, entries: Sequence[StyleStats],
    content_scribbles: Any, style_scribbles: Sequence[Any], region_styles: Mapping[int, int] | None,
) -> Regions:
    """Regions grown from painted strokes (``segmentation.scribbles``): labels are the painted colours, so the
    same colour on the content and a style is one matched region; a colour on one side only follows
    ``cfg.unmatched``."""
    seeds = read_scribbles(content_scribbles, content_img.size, "content scribbles", cfg.max_pixels)
    c_lab = grow(nets.encode, content_img, seeds)
    s_labs: list[np.ndarray | None] = []
    for i, (e, src) in enumerate(zip(entries, style_scribbles, strict=True)):
        if e.image is None:  # a clip's style encoded once: its regions were grown on the first frame
            s_labs.append(None)
            continue
        s_seeds = read_scribbles(src, e.image.size, f"style scribbles {i + 1}", cfg.max_pixels)
        common = set(np.unique(seeds[seeds >= 0])) & set(np.unique(s_seeds[s_seeds >= 0]))
        if not common:
            raise InputError(f"the content scribbles and style scribbles {i + 1} share no colour; paint matched "
                             "regions with the same colour on both pictures")
        s_labs.append(grow(nets.encode, e.image, s_seeds))
    return Regions(c_lab, s_labs, dict(region_styles or {}) or None, from_colors=True)


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


def merged(regions: Regions, cfg: StylizeOptions) -> Regions:
    """Regions too small to matter at feature resolution merged into a neighbour, in every map (inference's
    and training's rule: ``cfg.min_region``)."""
    merge = R.merge_small_regions
    regions.content = merge(regions.content, cfg.min_region)
    regions.styles = [None if s is None else merge(s, cfg.min_region) for s in regions.styles]
    return regions


def descriptors(
    own_mean: torch.Tensor, own_std: torch.Tensor, g_mean: torch.Tensor, g_std: torch.Tensor
) -> torch.Tensor:
    """(K, 2C) region descriptors free of the image's own style: normalised mean and log-std ratio
    of each region (own_*: (1, K, C, 1, 1)) against the whole image's (g_*: (1, C, 1, 1))."""
    mu = ((own_mean - g_mean.unsqueeze(1)) / g_std.unsqueeze(1)).flatten(2)[0]  # (K, C)
    sd = torch.log(own_std / g_std.unsqueeze(1)).flatten(2)[0]  # (K, C)
    return torch.cat([mu, sd], dim=1)


def region_targets(
    own_mean: torch.Tensor,  # (1, K, C, 1, 1) the content regions' own statistics
    own_std: torch.Tensor,  # (1, K, C, 1, 1)
    c_desc: torch.Tensor,  # (K, 2C) content region descriptors (see ``descriptors``)
    c_ids: list[int],  # the K content labels
    styles: Sequence[StyleStats],
    weights: Sequence[float],
    regions: Regions,
    unmatched: str = "nearest",
    attention: Attention | None = None,
    shrink: float = 0.0,  # style region statistics shrunk toward the style's (``functional.stats_from_moments``)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[int, Match]]:
    """Per-region target statistics Σ_i W[k, i]·stats_i(k) (see ``fusion.fuse_regions``).

    With ``attention``, stats_i(k) is not one matched style region's but the moments of the
    attention-weighted mixture of all of style i's regions (same label strongly preferred, the
    others by descriptor similarity); ``matches`` then names the region with the largest weight.

    Returns (mean, std) of shape (1, K, C, 1, 1) on ``own_mean``'s device, the per-region share
    of the target that is the region's own statistics (K,), and the matches.
    """
    dev = own_mean.device
    k, c = len(c_ids), own_mean.shape[2]
    mean = torch.zeros(1, k, c, 1, 1, device=dev)
    std = torch.zeros_like(mean)
    total_w = sum(weights)
    keep_w = torch.zeros(k)
    matches: dict[int, Match] = {}
    for i, (entry, s_lab) in enumerate(zip(styles, regions.styles, strict=True)):
        row = _style_rows(c_ids, i, weights[i] / total_w, regions.region_styles)  # (K,)
        if not any(row):
            continue
        s_mean, s_std, pick = _style_stats(entry, s_lab, c_ids, c_desc, unmatched, attention, shrink)
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
            elif attention is not None:  # the mixture attended by content region j
                m, s = s_mean[-1 - j], s_std[-1 - j]
            else:
                m, s = s_mean[src], s_std[src]
            mean[0, j] += row[j] * m.to(dev)
            std[0, j] += row[j] * s.to(dev)
    return mean, std, keep_w, matches


def _style_rows(c_ids: list[int], i: int, w: float, region_styles: dict[int, int] | None) -> list[float]:
    if not region_styles:
        return [w] * len(c_ids)
    return [(1.0 if region_styles[lab] == i else 0.0) if lab in region_styles else w for lab in c_ids]


def _style_stats(
    entry: StyleStats,
    s_lab: np.ndarray | None,
    c_ids: list[int],
    c_desc: torch.Tensor,
    unmatched: str,
    attention: Attention | None = None,
    shrink: float = 0.0,
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], list[Match]]:
    """Per-label statistics of one style image and, per content label, which one it takes.

    With ``attention`` the statistics attended by content row j are stored under the key −1 − j
    (labels are ≥ 0), and the pick is the style label with the largest attention weight."""
    if s_lab is None:
        return {}, {}, ["global"] * len(c_ids)
    s_ids = [int(v) for v in np.unique(s_lab)]
    labels, _ = FN.pad_to_multiple(s_lab, mode="symmetric")
    masks = R.region_masks(labels, s_ids, (entry.feat.shape[-2], entry.feat.shape[-1])).to(entry.feat.device)
    m, s = FN.masked_mean_std(entry.feat, masks, shrink=shrink)  # (1, K_s, C, 1, 1)
    g_mean, g_std = FN.mean_std(entry.feat)
    s_desc = descriptors(m, s, g_mean, g_std)
    picks = R.match_regions(c_ids, s_ids, c_desc, s_desc, unmatched)
    if attention is not None:
        same = torch.tensor([[c == t for t in s_ids] for c in c_ids])
        a = FN.attention_weights(c_desc.float(), s_desc.float(), same, attention.temperature, attention.prior)
        mix_m, mix_s = FN.attended_stats(a, m[0].flatten(1), s[0].flatten(1))  # (K, C)
        shape = m.shape[2:]  # (C, 1, 1)
        means = {lab: m[0, j] for j, lab in enumerate(s_ids)}
        stds = {lab: s[0, j] for j, lab in enumerate(s_ids)}
        for j in range(len(c_ids)):
            means[-1 - j], stds[-1 - j] = mix_m[j].view(shape), mix_s[j].view(shape)
        # "global"/"keep" policies for labels missing from the style stay as they are
        picks = [p if isinstance(p, str) else s_ids[int(a[j].argmax())] for j, p in enumerate(picks)]
        return means, stds, picks
    return ({lab: m[0, j] for j, lab in enumerate(s_ids)}, {lab: s[0, j] for j, lab in enumerate(s_ids)}, picks)


__all__ = ["cosegment_images", "descriptors", "merged", "region_targets", "resolve_labels"]
