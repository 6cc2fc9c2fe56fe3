"""Automatic co-segmentation of a content and its style images, offline, with no extra weights.

Region k must mean the same thing in every image, so the images are clustered *jointly*.
Raw deep features cluster by image (each image's style shifts all its features), so:

1. **Describe** every image on a grid (1/8 of a ~320 px copy): VGG features of several layers,
   each instance-normalised per image (removing that image's own style statistics), plus weak
   colour (per-image normalised luminance/chroma) and vertical-position cues, smoothed spatially.
2. **Cluster** the pooled descriptors of all images with k-means++ (several seeded restarts) after
   a joint PCA; with ``regions=0`` the number of regions k ∈ 2..6 is chosen by a silhouette score
   penalised for every extra region and for regions found in only one image.
3. **Refine** at full resolution: soft cluster memberships are upsampled with a colour-guided
   filter (He et al.), so borders follow the image's edges, then each pixel takes its most
   likely region.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle.io.images import to_tensor

Encode = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Options:
    """Knobs of the co-segmentation (the defaults were tuned on the DPST pairs, see docs)."""

    layers: tuple[tuple[str, float], ...] = (("relu3_1", 1.0), ("relu4_1", 1.0))  # (tap, weight)
    side: int = 320  # images are described at this longest side
    grid: str = "relu4_1"  # the layer whose resolution is the clustering grid
    color: float = 0.0  # weight of the normalised colour cue
    position: float = 0.0  # weight of the vertical-position cue
    smooth: float = 0.0  # std (grid cells) of the Gaussian smoothing of the descriptors
    norm: str = "instance"  # per-image normalisation: instance | scale | none; "+cos" adds per-pixel L2
    pca: int = 0  # joint PCA dimensions (0: none)
    restarts: int = 3  # k-means++ restarts; the lowest inertia wins
    k_min: int = 2
    k_max: int = 6
    k_penalty: float = 0.02  # silhouette points lost per extra region
    orphan_penalty: float = 0.1  # silhouette points lost per region present in only one image
    orphan_share: float = 0.01  # a region covering less than this of an image is absent from it
    temperature: float = 0.5  # softness of the memberships (relative to the mean squared distance)
    refine: str = "guided"  # "guided" | "bilinear" | "nearest"
    guide_radius: float = 0.02  # guided-filter radius as a share of the longest side
    guide_eps: float = 1e-3  # guided-filter regulariser
    fixed_k_default: int = 3


DEFAULT = Options()


# ----------------------------------------------------------------------------- description
def _resize_for(img: Image.Image, side: int, m: int = 16) -> Image.Image:
    scale = side / max(img.size)
    w = max(m, round(img.size[0] * scale / m) * m)
    h = max(m, round(img.size[1] * scale / m) * m)
    return img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, h, w) with replicate padding."""
    if sigma <= 0:
        return x
    r = max(1, int(round(2.5 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    ph, pw = min(r, x.shape[2] - 1), min(r, x.shape[3] - 1)
    kh = k[r - ph : r + ph + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k[r - pw : r + pw + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1)
    x = F.conv2d(F.pad(x, (0, 0, ph, ph), mode="replicate"), kh, groups=c)
    return F.conv2d(F.pad(x, (pw, pw, 0, 0), mode="replicate"), kw, groups=c)


def _yuv(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def _normalise(f: torch.Tensor, how: str) -> torch.Tensor:
    base, _, extra = how.partition("+")
    if base == "instance":
        f = F.instance_norm(f)
    elif base == "scale":
        f = f / f.pow(2).mean(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-6)
    elif base == "std":
        f = f / f.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    if extra == "cos":
        f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-6) * f.shape[1] ** 0.5
    return f


def describe(encode: Encode, img: Image.Image, opt: Options = DEFAULT) -> tuple[torch.Tensor, tuple[int, int]]:
    """Style-free descriptors of ``img`` on the clustering grid: ((h·w, D), (h, w))."""
    small = to_tensor(_resize_for(img, opt.side)).float()
    taps = tuple(dict.fromkeys([name for name, _ in opt.layers] + [opt.grid]))
    feats = encode(small, taps)
    hw = tuple(feats[opt.grid].shape[-2:])
    parts = []
    for name, weight in opt.layers:
        f = _normalise(feats[name].float().cpu(), opt.norm)  # remove the image's own style
        f = F.interpolate(f, size=hw, mode="area") if f.shape[-1] >= hw[1] else F.interpolate(
            f, size=hw, mode="bilinear", align_corners=False)
        parts.append(f * (weight / f.shape[1] ** 0.5))
    if opt.color > 0:
        c = F.instance_norm(_yuv(F.interpolate(small, size=hw, mode="area")))
        parts.append(c * (opt.color / 3**0.5))
    if opt.position > 0:
        yy = torch.linspace(-1.0, 1.0, hw[0]).view(1, 1, -1, 1).expand(1, 1, *hw)
        parts.append(yy * opt.position)
    x = _blur(torch.cat(parts, dim=1), opt.smooth)[0]  # (D, h, w)
    return x.flatten(1).T.contiguous(), (int(hw[0]), int(hw[1]))


# ----------------------------------------------------------------------------- clustering
def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 30, restarts: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ on (N, D) rows, best of ``restarts``; returns (labels (N,), centres (k, D))."""
    g = torch.Generator().manual_seed(seed)
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for _ in range(restarts):
        centres = x[torch.randint(len(x), (1,), generator=g)]
        for _ in range(1, k):
            d = torch.cdist(x, centres).min(dim=1).values ** 2
            pick = torch.multinomial(d / d.sum(), 1, generator=g) if d.sum() > 0 else torch.randint(len(x), (1,), generator=g)
            centres = torch.cat([centres, x[pick]])
        for _ in range(iters):
            lab = torch.cdist(x, centres).argmin(dim=1)
            onehot = F.one_hot(lab, k).to(x.dtype)  # (N, k)
            count = onehot.sum(0)
            new = torch.where(count[:, None] > 0, onehot.T @ x / count.clamp_min(1)[:, None], centres)
            if torch.allclose(new, centres, atol=1e-6):
                break
            centres = new
        d2 = torch.cdist(x, centres) ** 2
        inertia = float(d2.min(dim=1).values.sum())
        if best is None or inertia < best[0]:
            best = (inertia, d2.argmin(dim=1), centres)
    assert best is not None
    return best[1], best[2]


def silhouette(x: torch.Tensor, lab: torch.Tensor, k: int, sample: int = 1500, seed: int = 0) -> float:
    """Mean silhouette coefficient of a (deterministic) random sample of the rows."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:sample]
    xs, ls = x[idx], lab[idx]
    d = torch.cdist(xs, xs)
    onehot = F.one_hot(ls, k).to(d.dtype)  # (n, k)
    count = onehot.sum(0)
    mean_d = d @ onehot  # (n, k) summed distances to each cluster
    own = count[ls]
    a = mean_d.gather(1, ls[:, None])[:, 0] / (own - 1).clamp_min(1)
    other = mean_d / count.clamp_min(1)
    other = other.masked_fill(F.one_hot(ls, k).bool() | (count == 0)[None], float("inf"))
    b = other.min(dim=1).values
    s = (b - a) / torch.maximum(a, b).clamp_min(1e-12)
    s = torch.where(own > 1, s, torch.zeros_like(s))
    return float(s.mean())


def _pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    if dims <= 0 or dims >= x.shape[1]:
        return x
    xc = x - x.mean(0)
    _, _, v = torch.linalg.svd(xc[:: max(1, len(xc) // 4000)], full_matrices=False)
    return xc @ v[:dims].T


def _orphans(lab: torch.Tensor, sizes: list[int], k: int, share: float) -> int:
    """How many regions cover less than ``share`` of some image."""
    out, start = 0, 0
    present = torch.ones(k, dtype=torch.bool)
    for n in sizes:
        counts = torch.bincount(lab[start : start + n], minlength=k).float() / n
        present &= counts >= share
        start += n
    total = torch.bincount(lab, minlength=k) > 0
    out = int((total & ~present).sum())
    return out


def choose_k(x: torch.Tensor, sizes: list[int], regions: int, seed: int, opt: Options = DEFAULT) -> tuple[int, torch.Tensor]:
    """Cluster ``x`` with ``regions`` clusters, or pick k by a penalised silhouette; returns (k, centres)."""
    if regions > 0:
        k = min(regions, len(x))
        return k, kmeans(x, k, seed, restarts=opt.restarts)[1]
    best: tuple[float, int, torch.Tensor] | None = None
    for k in range(opt.k_min, opt.k_max + 1):
        lab, centres = kmeans(x, k, seed, restarts=opt.restarts)
        score = silhouette(x, lab, k, seed=seed) - opt.k_penalty * (k - opt.k_min)
        score -= opt.orphan_penalty * _orphans(lab, sizes, k, opt.orphan_share)
        if best is None or score > best[0]:
            best = (score, k, centres)
    assert best is not None
    return best[1], best[2]


# ----------------------------------------------------------------------------- refinement
def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window (shrinking at the borders) of (1, ..., H, W)."""
    shape = x.shape
    y = F.avg_pool2d(x.reshape(1, -1, *shape[-2:]), 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    return y.view(shape)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Colour-guided filter (He et al. 2013): guide (1, 3, H, W), src (1, K, H, W) → (1, K, H, W)."""
    mean_i = _box(guide, r)  # (1, 3, H, W)
    mean_p = _box(src, r)  # (1, K, H, W)
    ii = _box(guide[:, :, None] * guide[:, None], r) - mean_i[:, :, None] * mean_i[:, None]  # (1, 3, 3, H, W)
    ip = _box((guide[:, :, None] * src[:, None]).flatten(1, 2), r).view(1, 3, src.shape[1], *src.shape[-2:])
    cov_ip = ip - mean_i[:, :, None] * mean_p[:, None]  # (1, 3, K, H, W)
    sigma = ii.permute(0, 3, 4, 1, 2) + eps * torch.eye(3)  # (1, H, W, 3, 3)
    a = torch.linalg.solve(sigma, cov_ip.permute(0, 3, 4, 1, 2))  # (1, H, W, 3, K)
    a = a.permute(0, 3, 4, 1, 2)  # (1, 3, K, H, W)
    b = mean_p - (a * mean_i[:, :, None]).sum(1)
    mean_a = _box(a.flatten(1, 2), r).view_as(a)
    return (mean_a * guide[:, :, None]).sum(1) + _box(b, r)


def refine(img: Image.Image, probs: torch.Tensor, opt: Options = DEFAULT) -> np.ndarray:
    """(1, K, h, w) memberships on the grid → (H, W) labels at the image's size."""
    w, h = img.size
    if opt.refine == "nearest":
        up = F.interpolate(probs, size=(h, w), mode="nearest")
        return up[0].argmax(0).numpy().astype(np.int64)
    up = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
    if opt.refine == "guided":
        guide = to_tensor(img.convert("RGB")).float()
        r = max(1, round(opt.guide_radius * max(w, h)))
        up = guided_filter(guide, up, r, opt.guide_eps)
    return up[0].argmax(0).numpy().astype(np.int64)


def _memberships(x: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    d2 = torch.cdist(x, centres) ** 2  # (N, k)
    scale = d2.min(dim=1).values.mean().clamp_min(1e-8)
    return torch.softmax(-d2 / (temperature * scale), dim=1)


def _relabel(centres: torch.Tensor, lab: torch.Tensor, k: int) -> list[int]:
    """A canonical order of clusters (largest first), so labels do not depend on k-means' order."""
    counts = torch.bincount(lab, minlength=k)
    return [int(i) for i in torch.argsort(-counts, stable=True)]


# ----------------------------------------------------------------------------- entry point
def cosegment(
    encode: Encode,
    content: Image.Image,
    styles: Sequence[Image.Image],
    regions: int = 0,
    seed: int = 0,
    options: Options | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Joint labels 0..k-1 for ``content`` and every style, each at its own image size.

    ``encode(x, taps)`` maps a (1, 3, H, W) image in [0, 1] (H, W multiples of 8) to fp32 VGG
    features per tap (``Stylizer.encode``). ``regions`` forces the number of regions (0 chooses
    it); ``seed`` makes the clustering reproducible.
    """
    opt = options or DEFAULT
    imgs = [content, *styles]
    with torch.inference_mode():
        described = [describe(encode, im, opt) for im in imgs]
        x = torch.cat([d for d, _ in described]).float()
        x = _pca(x, opt.pca)
        sizes = [len(d) for d, _ in described]
        k, centres = choose_k(x, sizes, regions, seed, opt)
        probs = _memberships(x, centres, opt.temperature)
        order = _relabel(centres, probs.argmax(1), k)
        probs = probs[:, order]
        out, start = [], 0
        for im, (_, (h, w)) in zip(imgs, described):
            p = probs[start : start + h * w].T.reshape(1, k, h, w)
            start += h * w
            out.append(refine(im, p, opt))
    return out[0], out[1:]
