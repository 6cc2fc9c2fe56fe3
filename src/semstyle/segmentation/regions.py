"""From label maps to feature-resolution region masks, and the content→style region matching.

These are pure array functions; the pipeline calls them in this order:
``merge_small_regions`` (full resolution) → ``region_masks`` (feature resolution, soft) →
``match_regions`` (which style statistics each content region receives).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.types import Match


def merge_small_regions(labels: np.ndarray, min_share: float) -> np.ndarray:
    """Relabel every label covering less than ``min_share`` of the image as its main neighbour.

    The neighbour is the label most frequent in a 1-pixel ring around the region. Labels are
    merged from the smallest up, so chains of tiny regions end in a large one; the result has
    no label under the limit unless only one label is left.
    """
    out = labels.copy()
    if min_share <= 0 or out.size == 0:
        return out
    vals = np.unique(out)
    idx = np.searchsorted(vals, out)  # (H, W) compact indices
    counts = np.bincount(idx.ravel(), minlength=len(vals))
    limit = min_share * out.size
    while True:
        live = np.flatnonzero(counts)
        small = live[counts[live] < limit]
        if len(live) <= 1 or len(small) == 0:
            break
        v = int(small[np.argmin(counts[small])])
        region = idx == v
        neighbours = idx[_dilate(region) & ~region]
        if neighbours.size == 0:  # cannot happen on a grid with two labels; guard anyway
            break
        target = int(np.argmax(np.bincount(neighbours, minlength=len(vals))))
        idx[region] = target
        counts[target] += counts[v]
        counts[v] = 0
    return vals[idx]


def _dilate(mask: np.ndarray) -> np.ndarray:
    d = mask.copy()
    d[1:] |= mask[:-1]
    d[:-1] |= mask[1:]
    d[:, 1:] |= mask[:, :-1]
    d[:, :-1] |= mask[:, 1:]
    return d


def region_masks(
    labels: np.ndarray, ids: list[int], feat_hw: tuple[int, int], feather: float = 0.0, normalize: bool = True
) -> torch.Tensor:
    """Region masks (1, K, h, w) at feature resolution: the one label→mask builder of semstyle.

    Each label's full-resolution indicator is area-averaged down to (h, w) (so a feature pixel that
    straddles a border belongs to both regions in proportion), one region at a time (no (K, H, W)
    one-hot exists, which keeps huge tiled images in bounded memory); then blurred with a Gaussian of
    std ``feather`` feature pixels and, with ``normalize``, renormalised to sum to 1 at every pixel
    (``ids`` should then cover every label). Without ``normalize`` a subset of labels gives their
    area shares (metrics, guided Gram).
    """
    planes = [
        F.interpolate(torch.from_numpy(labels == i).float()[None, None], size=feat_hw, mode="area") for i in ids
    ]
    masks = torch.cat(planes, dim=1) if planes else torch.zeros(1, 0, *feat_hw)  # (1, K, h, w)
    if feather > 0:
        masks = FN.gaussian_blur(masks, feather)
    if normalize:
        masks = masks / masks.sum(dim=1, keepdim=True).clamp_min(1e-8)
    return masks


def match_regions(
    content_ids: list[int],
    style_ids: list[int],
    content_desc: torch.Tensor,
    style_desc: torch.Tensor,
    policy: str,
) -> list[Match]:
    """For each content label, the style label it takes its statistics from.

    Same label ↔ same label. A content label the style lacks follows ``policy``:
    ``nearest`` → the style label whose descriptor (K, D) is closest; ``global`` → "global"
    (the whole style's statistics); ``keep`` → "keep" (the content's own features).
    """
    out: list[Match] = []
    for i, lab in enumerate(content_ids):
        if lab in style_ids:
            out.append(lab)
        elif policy == "global":
            out.append("global")
        elif policy == "keep":
            out.append("keep")
        elif policy == "nearest":
            d = ((style_desc - content_desc[i : i + 1]) ** 2).sum(dim=1)  # (K_s,)
            out.append(style_ids[int(torch.argmin(d))])
        else:
            raise ValueError(f"unmatched policy must be nearest, global or keep, got {policy!r}")
    return out


def check_common(content_ids: list[int], style_ids: list[int], name: Callable[[int], str] = str) -> None:
    """Two label maps with no label in common cannot be matched: say what to fix."""
    if not set(content_ids) & set(style_ids):
        raise InputError(
            "the content and style label maps share no label "
            f"(content has {_fmt(content_ids, name)}; style has {_fmt(style_ids, name)}); "
            "give the same kind of region the same label value or colour in both maps"
        )


def _fmt(ids: list[int], name: Callable[[int], str]) -> str:
    shown = ", ".join(name(i) for i in ids[:6])
    return shown + (", …" if len(ids) > 6 else "")
