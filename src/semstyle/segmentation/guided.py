"""Full-resolution labels from coarse memberships: a fast colour-guided filter (He et al. 2013).

Soft memberships on a coarse grid are upsampled so that region borders snap to the image's edges;
each pixel then takes its most likely region. Used by the automatic co-segmentation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle.io.images import to_tensor


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window (shrinking at the borders) of (1, ..., H, W)."""
    shape = x.shape
    y = F.avg_pool2d(x.reshape(1, -1, *shape[-2:]), 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    return y.view(shape)


def _inv3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of symmetric 3×3 matrices stored as (3, 3, H, W), by cofactors."""
    a, b, c = m[0, 0], m[0, 1], m[0, 2]
    d, e, f = m[1, 1], m[1, 2], m[2, 2]
    ca, cb, cc = d * f - e * e, c * e - b * f, b * e - c * d
    cd, ce, cf = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * ca + b * cb + c * cc
    rows = [[ca, cb, cc], [cb, cd, ce], [cc, ce, cf]]
    return torch.stack([torch.stack(r) for r in rows]) / det


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour-guided filter coefficients (He et al. 2013): output = Σ_c A[c]·guide[c] + B.

    guide (1, 3, H, W), src (1, K, H, W) → A (1, 3, K, H, W), B (1, K, H, W), already box-averaged.
    """
    mean_i = _box(guide, r)[0]  # (3, H, W)
    mean_p = _box(src, r)[0]  # (K, H, W)
    g, p = guide[0], src[0]
    cov_ii = _box((g[:, None] * g[None]).unsqueeze(0), r)[0] - mean_i[:, None] * mean_i[None]  # (3, 3, H, W)
    cov_ip = _box((g[:, None] * p[None]).unsqueeze(0), r)[0] - mean_i[:, None] * mean_p[None]  # (3, K, H, W)
    inv = _inv3(cov_ii + eps * torch.eye(3)[..., None, None])  # (3, 3, H, W)
    a = torch.einsum("cdhw,dkhw->ckhw", inv, cov_ip)  # (3, K, H, W)
    b = mean_p - (a * mean_i[:, None]).sum(0)
    return _box(a.unsqueeze(0), r), _box(b.unsqueeze(0), r)


def refine(img: Image.Image, probs: torch.Tensor, mode: str = "guided", radius: float = 0.03, eps: float = 1e-3,
           side: int = 160) -> np.ndarray:
    """(1, K, h, w) memberships on the grid → (H, W) int64 labels at the image's size.

    ``mode``: "guided" | "bilinear" | "nearest"; the guided filter's ``radius`` is a share of the
    image's longest side, ``eps`` its regulariser, ``side`` the longest side its coefficients use."""
    w, h = img.size
    if mode == "nearest":
        return F.interpolate(probs, size=(h, w), mode="nearest")[0].argmax(0).numpy().astype(np.int64)
    if mode == "bilinear":
        up = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
        return up[0].argmax(0).numpy().astype(np.int64)
    if mode != "guided":
        raise ValueError(f"refine must be guided, bilinear or nearest, got {mode!r}")
    # fast guided filter: coefficients at a low resolution, applied to the full-resolution guide
    full = to_tensor(img.convert("RGB")).float()
    scale = min(1.0, side / max(w, h))
    lo_hw = (max(2, round(h * scale)), max(2, round(w * scale)))
    guide_lo = F.interpolate(full, size=lo_hw, mode="area")
    src_lo = F.interpolate(probs, size=lo_hw, mode="bilinear", align_corners=False)
    r = max(1, round(radius * max(lo_hw)))
    a, b = guided_filter(guide_lo, src_lo, r, eps)
    k = probs.shape[1]
    a = F.interpolate(a.flatten(1, 2), size=(h, w), mode="bilinear", align_corners=False).view(1, 3, k, h, w)
    b = F.interpolate(b, size=(h, w), mode="bilinear", align_corners=False)
    out = torch.einsum("nckhw,nchw->nkhw", a, full) + b
    return out[0].argmax(0).numpy().astype(np.int64)



__all__ = ["guided_filter", "refine"]
