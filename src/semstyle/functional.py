"""The maths of semstyle as pure, shape-checked functions.

Everything numeric that is not a network lives here: feature statistics (global and
masked), AdaIN and its region-matched variant, colour transforms and the losses. Nothing
in this module holds state, touches files or logs.

Shapes: ``N`` batch, ``C`` channels, ``H×W`` spatial, ``K`` regions.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F

from semstyle.config import check_alpha, check_style_weights

EPS = 1e-5
# BT.601 RGB → YUV; row 0 is the luminance (also the metrics' grey level)
RGB2YUV: tuple[tuple[float, float, float], ...] = (
    (0.299, 0.587, 0.114),
    (-0.14713, -0.28886, 0.436),
    (0.615, -0.51499, -0.10001),
)
LUMA: tuple[float, float, float] = RGB2YUV[0]

@overload
def pad_to_multiple(x: torch.Tensor, m: int = 8, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]: ...
@overload
def pad_to_multiple(x: np.ndarray, m: int = 8, mode: str = "reflect") -> tuple[np.ndarray, tuple[int, int]]: ...
def pad_to_multiple(
    x: torch.Tensor | np.ndarray, m: int = 8, mode: str = "reflect"
) -> tuple[torch.Tensor | np.ndarray, tuple[int, int]]:
    """Pad on the bottom/right to multiples of ``m``; returns (padded, (H, W) before padding).

    ``x`` is an (N, C, H, W) tensor or an (H, W) / (H, W, C) array. ``mode`` "reflect" (images; edge
    replication when the image is too small to reflect) or "symmetric" (label maps, arrays only).
    """
    if isinstance(x, torch.Tensor):
        h, w = int(x.shape[-2]), int(x.shape[-1])
    else:
        h, w = int(x.shape[0]), int(x.shape[1])
    ph, pw = (-h) % m, (-w) % m
    if not (ph or pw):
        return x, (h, w)
    edge = mode == "reflect" and not (ph < h and pw < w)  # too small to reflect: repeat the edge
    if isinstance(x, torch.Tensor):
        return F.pad(x, (0, pw, 0, ph), mode="replicate" if edge else mode), (h, w)
    pads = ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2)
    return np.pad(x, pads, mode="edge" if edge else mode), (h, w)  # type: ignore[call-overload]


def _check_4d(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be a 4-D tensor (N, C, H, W), got shape {tuple(x.shape)}")


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over the spatial dimensions.

    Returns two tensors of shape (N, C, 1, 1). The std uses the unbiased variance plus
    ``eps``, as in Huang & Belongie's reference code.
    """
    _check_4d("feat", feat)
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)  # (N, C, HW)
    var = flat.var(dim=2, unbiased=flat.shape[2] > 1) + eps
    return flat.mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def masked_mean_std(
    feat: torch.Tensor, masks: torch.Tensor, eps: float = EPS, shrink: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region, per-channel mean and std of ``feat`` weighted by soft ``masks``.

    feat: (N, C, H, W); masks: (N, K, H, W) with non-negative weights.
    Returns mean and std of shape (N, K, C, 1, 1). A region with zero total weight gets
    mean 0 and std sqrt(eps) (with ``shrink`` > 0: the pooled statistics); callers decide what to do with
    empty regions. ``shrink``: see ``stats_from_moments``.
    """
    return stats_from_moments(*masked_moments(feat, masks), eps=eps, shrink=shrink)


def masked_moments(feat: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted sums (Σ_p w, Σ_p w·f, Σ_p w·f²) per region and channel: shapes (N, K, 1), (N, K, C), (N, K, C).

    Sums over several tiles of an image add up to the whole image's; ``stats_from_moments`` turns them
    into the statistics of ``masked_mean_std``.
    """
    _check_4d("feat", feat)
    _check_4d("masks", masks)
    if masks.shape[0] != feat.shape[0] or masks.shape[2:] != feat.shape[2:]:
        raise ValueError(f"masks {tuple(masks.shape)} must match feat {tuple(feat.shape)} in N, H and W")
    w = masks.flatten(2).to(feat.dtype)  # (N, K, HW)
    f = feat.flatten(2)  # (N, C, HW)
    return w.sum(dim=2, keepdim=True), torch.einsum("nkp,ncp->nkc", w, f), torch.einsum("nkp,ncp->nkc", w, f * f)


def stats_from_moments(
    total: torch.Tensor, s: torch.Tensor, ss: torch.Tensor, eps: float = EPS, unbiased: bool = False,
    shrink: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σw (N, K, 1), Σw·f (N, K, C), Σw·f² (N, K, C)) → mean and std (N, K, C, 1, 1), in their dtype.

    ``unbiased`` (hard masks counting pixels): the variance of ``mean_std``, scaled by n / (n − 1).
    ``shrink`` ≥ 0: every region borrows ``shrink`` × the total weight of all K regions as pseudo-pixels drawn
    from their pooled moments (empirical-Bayes shrinkage): a small region's statistics, noisy estimates from few
    pixels, move toward the pooled ones, a large region's barely; with K = 1 nothing changes."""
    if shrink > 0 and total.shape[1] > 1:
        pool_t = total.sum(1, keepdim=True).clamp_min(1e-8)  # (N, 1, 1)
        m = shrink * pool_t
        total, s, ss = total + m, s + m * s.sum(1, keepdim=True) / pool_t, ss + m * ss.sum(1, keepdim=True) / pool_t
    total = total.clamp_min(1e-8)
    mean = s / total
    var = (ss / total - mean * mean).clamp_min(0)
    if unbiased:
        var = var * (total / (total - 1).clamp_min(1e-8))
    var = var + eps
    return mean[..., None, None], var.sqrt()[..., None, None]


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation: give ``content`` the channel mean/std of ``style``."""
    _check_4d("content", content)
    _check_4d("style", style)
    if content.shape[:2] != style.shape[:2]:
        raise ValueError(f"content {tuple(content.shape)} and style {tuple(style.shape)} differ in N or C")
    s_mean, s_std = mean_std(style)
    return adain_from_stats(content, s_mean, s_std)


def adain_from_stats(content: torch.Tensor, s_mean: torch.Tensor, s_std: torch.Tensor) -> torch.Tensor:
    """AdaIN with precomputed style statistics of shape (N or 1, C, 1, 1)."""
    c_mean, c_std = mean_std(content)
    return renormalize(content, c_mean, c_std, s_mean, s_std)


def renormalize(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, new_mean: torch.Tensor, new_std: torch.Tensor
) -> torch.Tensor:
    """(x − mean) / std · new_std + new_mean: the one affine map behind AdaIN and every colour match."""
    return (x - mean) / std * new_std + new_mean


def region_adain_from_stats(
    content: torch.Tensor,  # (N, C, H, W) features (a tile of them is fine)
    masks: torch.Tensor,  # (N, K, H, W) soft region weights over the same pixels, summing to 1 over K
    c_mean: torch.Tensor,  # (N or 1, K, C, 1, 1) the content regions' statistics (of the whole image)
    c_std: torch.Tensor,
    s_mean: torch.Tensor,  # (N or 1, K, C, 1, 1) their target statistics
    s_std: torch.Tensor,
    keep: torch.Tensor | None = None,  # (K,) bool: regions whose features stay unchanged
) -> torch.Tensor:
    """Σ_k m_k · renormalize(x, content stats k → target stats k), one region at a time (no (K, C, H, W) tensor)."""
    _check_4d("content", content)
    _check_4d("masks", masks)
    out = torch.zeros_like(content)
    for k in range(masks.shape[1]):
        if keep is not None and bool(keep[k]):
            target = content
        else:
            target = renormalize(content, c_mean[:, k], c_std[:, k], s_mean[:, k], s_std[:, k])
        out += masks[:, k : k + 1] * target
    return out


def blend_stats(
    means: list[torch.Tensor], stds: list[torch.Tensor], weights: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted interpolation of several styles' statistics (weights are normalised to sum 1)."""
    if not (len(means) == len(stds) == len(weights)) or not means:
        raise ValueError("means, stds and weights must be non-empty lists of equal length")
    check_style_weights(weights)  # the one rule (config.py)
    total = float(sum(weights))
    mean = sum(w / total * m for w, m in zip(weights, means))
    std = sum(w / total * s for w, s in zip(weights, stds))
    return mean, std  # type: ignore[return-value]


def attention_weights(
    queries: torch.Tensor,  # (K, D) content region (or position) descriptors
    keys: torch.Tensor,  # (J, D) style region (or position) descriptors
    same: torch.Tensor | None = None,  # (K, J) bool: the semantic prior, True where the labels agree
    temperature: float = 0.5,
    prior: float = 4.0,  # logit bonus where ``same``; inf = a hard same-label mask
) -> torch.Tensor:
    """(K, J) attention, each row summing to 1: softmax_j(−‖q_k − k_j‖² / (τ·s) + prior·same_kj),
    where s is the mean squared distance (so τ is scale-free). A row whose ``same`` is all False
    attends by similarity alone."""
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries and keys must be (K, D) and (J, D), got {tuple(queries.shape)}, {tuple(keys.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    d2 = torch.cdist(queries.double(), keys.double()) ** 2  # (K, J)
    logits = -d2 / (temperature * d2.mean().clamp_min(1e-12))
    if same is not None:
        if same.shape != d2.shape:
            raise ValueError(f"same must be {tuple(d2.shape)}, got {tuple(same.shape)}")
        hard = math.isinf(prior)
        has = same.any(dim=1, keepdim=True)  # rows with a same-label key: the prior applies
        bonus = torch.where(same, 0.0 if hard else prior, float("-inf") if hard else 0.0).double()
        logits = torch.where(has, logits + bonus, logits)
    return torch.softmax(logits, dim=1).to(queries.dtype)


def attended_stats(
    weights: torch.Tensor,  # (K, J) attention rows summing to 1
    means: torch.Tensor,  # (J, C) per-key channel means
    stds: torch.Tensor,  # (J, C) per-key channel stds
) -> tuple[torch.Tensor, torch.Tensor]:
    """The moments of the attention-weighted mixture: mean_k = Σ_j A_kj μ_j and
    std_k = √(Σ_j A_kj (σ_j² + (μ_j − mean_k)²)); a one-hot row returns its key's (μ, σ) exactly."""
    if weights.shape[1] != means.shape[0] or means.shape != stds.shape:
        raise ValueError(f"weights (K, J), means and stds (J, C) disagree: {tuple(weights.shape)}, "
                         f"{tuple(means.shape)}, {tuple(stds.shape)}")
    mean = weights @ means  # (K, C)
    spread = stds[None] ** 2 + (means[None] - mean[:, None]) ** 2  # (K, J, C)
    var = (weights[:, :, None] * spread).sum(dim=1)  # (K, C)
    return mean, var.sqrt()


def mix(content_feat: torch.Tensor, target_feat: torch.Tensor, alpha: float) -> torch.Tensor:
    """Content/style trade-off: alpha = 1 is the full AdaIN target, 0 the content features, past 1 (up to
    ``ALPHA_MAX``) the step from the content's features to the target extrapolated."""
    check_alpha(alpha)
    return alpha * target_feat + (1.0 - alpha) * content_feat


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) (std ``sigma`` px, kernel cut at ``truncate``·σ), replicate padding."""
    _check_4d("x", x)
    radius = max(1, int(round(truncate * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h = min(radius, x.shape[2] - 1)
    pad_w = min(radius, x.shape[3] - 1)
    kh = k[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1)
    x = F.conv2d(F.pad(x, (0, 0, pad_h, pad_h), mode="replicate"), kh, groups=c)
    return F.conv2d(F.pad(x, (pad_w, pad_w, 0, 0), mode="replicate"), kw, groups=c)


# ----------------------------------------------------------------------------- warps
def inside(x: torch.Tensor, margin: int) -> torch.Tensor:
    """(…, H, W) without ``margin`` px on each side: (…, H − 2·margin, W − 2·margin). A training term on it gives
    a network's border (where its padding shows) no reward."""
    if margin < 0 or 2 * margin >= min(x.shape[-2:]):
        raise ValueError(f"margin must be in [0, {(min(x.shape[-2:]) - 1) // 2}] for a {tuple(x.shape[-2:])} map, "
                         f"got {margin}")
    return x[..., margin : x.shape[-2] - margin, margin : x.shape[-1] - margin]


def warp_by_grid(img: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) ``img`` sampled bilinearly at ``grid`` (N, H', W', 2): (x, y) in [-1, 1], align_corners False,
    as ``F.grid_sample`` reads it; outside the image the border is repeated → (N, C, H', W')."""
    _check_4d("img", img)
    if grid.ndim != 4 or grid.shape[0] != img.shape[0] or grid.shape[-1] != 2:
        raise ValueError(f"grid must be (N, H, W, 2) with N = {img.shape[0]}, got {tuple(grid.shape)}")
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def grid_inside(grid: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """(N, H, W, 2) sampling grid → (N, 1, H, W) float mask, 1 where the sample lies at least ``margin`` (a share
    of the half side) inside the image: the pixels a warp carries over rather than invents."""
    if grid.ndim != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must be (N, H, W, 2), got {tuple(grid.shape)}")
    return (grid.abs() <= 1.0 - margin).all(dim=-1).unsqueeze(1).float()


def temporal_loss(moved_out: torch.Tensor, out_moved: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Compound temporal regularisation (ReReVST): the mean over ``mask``'s pixels and the channels of
    ‖dec(AdaIN(warp c + noise)) − warp(dec(AdaIN(c)))‖², the output of the moved input against the moved output,
    both (N, C, H, W); ``mask`` (N, 1, H, W) in [0, 1] marks the pixels the warp carries. 0 when they agree."""
    _check_4d("moved_out", moved_out)
    if moved_out.shape != out_moved.shape or mask.shape != (moved_out.shape[0], 1, *moved_out.shape[2:]):
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape and an (N, 1, H, W) mask, got "
                         f"{tuple(moved_out.shape)}, {tuple(out_moved.shape)}, {tuple(mask.shape)}")
    sq = ((moved_out - out_moved) ** 2 * mask).sum()
    return sq / (mask.sum() * moved_out.shape[1]).clamp_min(1.0)


# ----------------------------------------------------------------------------- colour
def rgb_to_yuv(img: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] → YUV (BT.601)."""
    _check_4d("img", img)
    return torch.einsum("ij,njhw->nihw", torch.tensor(RGB2YUV).to(img), img)


def yuv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    _check_4d("img", img)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(torch.tensor(RGB2YUV, dtype=torch.float64)).to(img), img)


# ----------------------------------------------------------------------------- losses
def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64, seed: int = 0) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between the distributions of the feature vectors of (1, C, H, W) ``a`` and
    (1, C, h, w) ``b``: the root mean square, over ``projections`` random unit directions of R^C, of the
    difference of the sorted projections (quantiles at the same levels; the larger set is resampled to the
    smaller one's count). Independent of where in the image each vector is: a distribution, not a layout."""
    _check_4d("a", a)
    _check_4d("b", b)
    if a.shape[:2] != b.shape[:2] or a.shape[0] != 1:
        raise ValueError(f"a and b must be (1, C, ·, ·) with the same C, got {tuple(a.shape)} and {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)  # (C, P) unit directions
    pa = (a[0].flatten(1).T.double() @ dirs.to(a.device)).sort(dim=0).values  # (HW, P)
    pb = (b[0].flatten(1).T.double() @ dirs.to(b.device)).sort(dim=0).values
    n = min(pa.shape[0], pb.shape[0])
    levels = (torch.arange(n, dtype=torch.float64, device=a.device) + 0.5) / n
    qa = pa[(levels * pa.shape[0]).long().clamp_max(pa.shape[0] - 1)]
    qb = pb[(levels * pb.shape[0]).long().clamp_max(pb.shape[0] - 1)]
    out: torch.Tensor = ((qa - qb) ** 2).mean().sqrt()
    return out


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix (N, C, C) normalised by H·W (so images of any size compare)."""
    _check_4d("feat", feat)
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def content_loss(out_feat: torch.Tensor, target_feat: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance of features, normalised by C·H·W (mean over the batch)."""
    if out_feat.shape != target_feat.shape:
        raise ValueError(f"shapes differ: {tuple(out_feat.shape)} vs {tuple(target_feat.shape)}")
    return F.mse_loss(out_feat, target_feat)


def gram_style_loss(out_feats: list[torch.Tensor], style_feats: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the squared Frobenius distance of Gram matrices, normalised by C²."""
    return gram_loss_to(out_feats, [gram(s) for s in style_feats])


def gram_loss_to(out_feats: list[torch.Tensor], grams: list[torch.Tensor]) -> torch.Tensor:
    """``gram_style_loss`` against precomputed Gram matrices (N or 1, C, C) per layer (e.g. a whole style image's)."""
    loss = out_feats[0].new_zeros(())
    for o, g in zip(out_feats, grams, strict=True):
        loss = loss + F.mse_loss(gram(o), g.expand(o.shape[0], -1, -1))
    return loss


def mean_std_style_loss(out_feats: list[torch.Tensor], style_feats: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the MSE between channel means plus that between channel stds."""
    stats = [mean_std(s) for s in style_feats]
    return mean_std_loss_to(out_feats, [m for m, _ in stats], [s for _, s in stats])


def mean_std_loss_to(
    out_feats: list[torch.Tensor], means: list[torch.Tensor], stds: list[torch.Tensor]
) -> torch.Tensor:
    """``mean_std_style_loss`` against precomputed channel means/stds (N or 1, C, 1, 1) per layer."""
    loss = out_feats[0].new_zeros(())
    for o, sm, ss in zip(out_feats, means, stds, strict=True):
        om, os_ = mean_std(o)
        loss = loss + F.mse_loss(om, sm.expand_as(om)) + F.mse_loss(os_, ss.expand_as(os_))
    return loss


def region_moment_loss(
    out_feats: list[torch.Tensor],  # per layer (1, C, h, w) features of the output
    masks: torch.Tensor,  # (1, K, H, W) soft content-region masks at the output's resolution
    means: list[torch.Tensor],  # per layer (1, K, C, 1, 1) target channel means per region
    stds: list[torch.Tensor],  # per layer (1, K, C, 1, 1)
    shares: torch.Tensor,  # (K,) weight of each region (its share of the image; 0 = not scored)
) -> torch.Tensor:
    """Region-wise moment matching: Σ_layers Σ_k share_k·(‖μ_k − μ̂_k‖² + ‖σ_k − σ̂_k‖²)/C, averaged over
    layers, where μ_k, σ_k are the output's statistics inside region k (masks area-resized per layer)."""
    if not (len(out_feats) == len(means) == len(stds)):
        raise ValueError(f"got {len(out_feats)} layers of features, {len(means)} of means, {len(stds)} of stds")
    total = out_feats[0].new_zeros(())
    for f, m, s in zip(out_feats, means, stds):
        mk = F.adaptive_avg_pool2d(masks.to(f), (f.shape[-2], f.shape[-1]))  # (1, K, h, w)
        om, os_ = masked_mean_std(f, mk)  # (1, K, C, 1, 1)
        per = ((om - m) ** 2 + (os_ - s) ** 2).flatten(2).mean(dim=2)[0]  # (K,)
        total = total + (per * shares.to(per)).sum()
    return total / len(out_feats)


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels."""
    _check_4d("img", img)
    dh = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().mean()
    dw = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().mean()
    return dh + dw


def lsgan_d_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss: ½E[(D(real)−1)²] + ½E[D(fake)²], averaged over scales."""
    loss = real_scores[0].new_zeros(())
    for r, f in zip(real_scores, fake_scores, strict=True):
        loss = loss + 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()
    return loss / len(real_scores)


def lsgan_g_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss: ½E[(D(fake)−1)²], averaged over scales."""
    loss = fake_scores[0].new_zeros(())
    for f in fake_scores:
        loss = loss + 0.5 * ((f - 1) ** 2).mean()
    return loss / len(fake_scores)
