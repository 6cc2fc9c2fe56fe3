"""Automatic co-segmentation of a content and its style images, offline, with no extra weights.

Region k must mean the same thing in every image, so the images are clustered *jointly*.
Raw deep features cluster by image (each image's style shifts and scales all its features), so:

1. **Describe** every image on a coarse grid (relu4_1 cells of a ~320 px copy): relu4_1 and
   relu5_1 features, each channel divided by its root-mean-square over the image (removing the
   image's own contrast, i.e. most of its style), smoothed by a small Gaussian, plus a weak
   vertical-position cue (skies are on top in both images).
2. **Cluster** the pooled descriptors of all images with k-means++ (seeded restarts) after a
   joint PCA. With ``regions=0`` the number of regions k ∈ 2..6 is the one with the best
   silhouette score, lowered for every region found in only one image; such orphan regions are
   then merged into their nearest region, so each remaining region exists in every image.
   With ``method="nmf"`` (the default) the memberships are then the k factors of a non-negative
   factorisation of the joint descriptors (Deep Feature Factorization, Collins et al. 2018)
   instead of the distances to the k-means centres; ``graph`` > 0 smooths each image's grid
   labels by α-expansion graph cuts (PyMaxflow).
3. **Refine** at full resolution: soft memberships (a softmax of the distances to the cluster
   centres) are upsampled with a fast colour-guided filter (He et al. 2013), so that borders
   snap to the image's edges, and each pixel takes its most likely region.

Deterministic for a given ``seed``. About 0.3 s per 512 px pair on two cores plus the encoder.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle import functional as FN
from semstyle.io.images import to_tensor
from semstyle.segmentation import guided as G

log = logging.getLogger(__name__)

Encode = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Options:
    """Knobs of the co-segmentation; the defaults were chosen on the DPST pairs (docs/semantic_benchmark.md)."""

    layers: tuple[tuple[str, float], ...] = (("relu4_1", 1.0), ("relu5_1", 1.0))  # (tap, weight)
    side: int = 320  # images are described at this longest side
    grid: str = "relu4_1"  # the tap whose resolution is the clustering grid
    norm: str = "scale"  # per-image channel normalisation: "scale" (÷ RMS), "instance" (− mean, ÷ std), "none"
    smooth: float = 1.0  # std (grid cells) of the Gaussian smoothing of the descriptors
    position: float = 0.5  # weight of the vertical-position cue (0 = off)
    color: float = 0.0  # weight of a per-image normalised YUV colour cue (0 = off)
    pca: int = 32  # joint PCA dimensions before k-means (0 = none)
    restarts: int = 3  # k-means++ restarts; the lowest inertia wins
    k_min: int = 2
    k_max: int = 6
    k_penalty: float = 0.0  # silhouette points lost per region above k_min
    orphan_penalty: float = 0.1  # silhouette points lost per region present in only one image
    orphan_share: float = 0.01  # a region covering less than this share of an image is absent from it
    method: str = "kmeans"  # "kmeans" on the descriptors, or "nmf": deep feature factorisation (Collins et al. 2018)
    graph: float = 0.0  # Potts weight of a graph-cut smoothing of each image's grid labels (0 = off; needs PyMaxflow)
    temperature: float = 0.5  # softness of memberships, relative to the mean squared distance to the nearest centre
    refine: str = "guided"  # full-resolution labels: "guided" | "bilinear" | "nearest"
    guide_radius: float = 0.03  # guided-filter radius, as a share of the image's longest side
    guide_eps: float = 1e-3  # guided-filter regulariser (smaller follows the image's edges more closely)
    guide_side: int = 160  # the guided filter's coefficients are computed at this longest side


# deep feature factorisation measured best on the DPST pairs (docs/semantic_benchmark.md: same style-distance
# cut as k-means at a lower content-loss rise, mIoU 0.479 vs 0.470); the fast model keeps k-means
DEFAULT = Options(method="nmf")
FAST = Options(layers=(("relu3_1", 1.0), ("relu4_1", 1.0)))  # the distilled fast model has no relu5_1


# ----------------------------------------------------------------------------- description
def _resize_for(img: Image.Image, side: int, m: int = 16) -> Image.Image:
    """``img`` scaled to about ``side`` px (longest side), both sides multiples of ``m`` and at least ``2m``: relu5_1
    (1/16 scale) then has two cells a side, which its reflection padding needs (a strip such as a 1024×63 proxy of a
    panorama would otherwise be described at 320×16 and fail in the encoder)."""
    scale = side / max(img.size)
    w = max(2 * m, round(img.size[0] * scale / m) * m)
    h = max(2 * m, round(img.size[1] * scale / m) * m)
    return img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, h, w) with replicate padding, truncated at 2.5 σ."""
    return FN.gaussian_blur(x, sigma, truncate=2.5) if sigma > 0 else x


def _normalise(f: torch.Tensor, how: str) -> torch.Tensor:
    """Remove an image's own channel statistics from (1, C, h, w) features."""
    if how == "scale":
        return f / f.pow(2).mean(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-6)
    if how == "instance":
        return F.instance_norm(f)
    if how == "none":
        return f
    raise ValueError(f"norm must be scale, instance or none, got {how!r}")


def _yuv(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def describe(encode: Encode, img: Image.Image, opt: Options = DEFAULT) -> tuple[torch.Tensor, tuple[int, int]]:
    """Style-free descriptors of ``img`` on the clustering grid: ((h·w, D), (h, w))."""
    small = to_tensor(_resize_for(img, opt.side)).float()
    taps = tuple(dict.fromkeys([name for name, _ in opt.layers] + [opt.grid]))
    feats = encode(small, taps)
    hw = tuple(feats[opt.grid].shape[-2:])
    parts = []
    for name, weight in opt.layers:
        f = _normalise(feats[name].float().cpu(), opt.norm)
        if f.shape[-2:] != hw:
            mode = "area" if f.shape[-1] > hw[1] else "bilinear"
            f = F.interpolate(f, size=hw, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
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
    for _ in range(max(1, restarts)):
        centres = x[torch.randint(len(x), (1,), generator=g)]
        for _ in range(1, k):
            d = torch.cdist(x, centres).min(dim=1).values ** 2
            if float(d.sum()) > 0:
                pick = torch.multinomial(d / d.sum(), 1, generator=g)
            else:
                pick = torch.randint(len(x), (1,), generator=g)
            centres = torch.cat([centres, x[pick]])
        for _ in range(iters):
            lab = torch.cdist(x, centres).argmin(dim=1)
            onehot = F.one_hot(lab, k).to(x.dtype)  # (N, k)
            count = onehot.sum(0)
            new = torch.where(count[:, None] > 0, onehot.T @ x / count.clamp_min(1)[:, None], centres)
            done = torch.allclose(new, centres, atol=1e-6)
            centres = new
            if done:
                break
        d2 = torch.cdist(x, centres) ** 2
        inertia = float(d2.min(dim=1).values.sum())
        if best is None or inertia < best[0]:
            best = (inertia, d2.argmin(dim=1), centres)
    assert best is not None
    return best[1], best[2]


def silhouette(x: torch.Tensor, lab: torch.Tensor, k: int, sample: int = 1200, seed: int = 0) -> float:
    """Mean silhouette coefficient over a seeded random sample of the rows (0 for singletons)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:sample]
    xs, ls = x[idx], lab[idx]
    d = torch.cdist(xs, xs)
    onehot = F.one_hot(ls, k).to(d.dtype)  # (n, k)
    count = onehot.sum(0)
    summed = d @ onehot  # (n, k): summed distances to each cluster's members
    own = count[ls]
    a = summed.gather(1, ls[:, None])[:, 0] / (own - 1).clamp_min(1)
    other = (summed / count.clamp_min(1)).masked_fill(onehot.bool() | (count == 0)[None], float("inf"))
    b = other.min(dim=1).values
    s = torch.where(own > 1, (b - a) / torch.maximum(a, b).clamp_min(1e-12), torch.zeros_like(a))
    return float(torch.nan_to_num(s, posinf=0.0).mean())


def pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Project centred (N, D) rows on their first ``dims`` principal axes (no-op for dims <= 0)."""
    if dims <= 0 or dims >= min(x.shape):
        return x
    xc = x - x.mean(0)
    sub = xc[:: max(1, len(xc) // 4000)]
    # the axes as eigenvectors of the (D, D) scatter matrix (the SVD's right singular vectors): 4× faster than the SVD
    _, v = torch.linalg.eigh(sub.T @ sub)  # eigenvalues ascending
    return xc @ v[:, -dims:].flip(1).to(xc.dtype)


def _presence(lab: torch.Tensor, sizes: list[int], k: int) -> torch.Tensor:
    """(n_images, k) share of each image covered by each cluster."""
    out, start = [], 0
    for n in sizes:
        out.append(torch.bincount(lab[start : start + n], minlength=k).float() / max(n, 1))
        start += n
    return torch.stack(out)


def _orphans(lab: torch.Tensor, sizes: list[int], k: int, share: float) -> list[int]:
    """Clusters that some image lacks (cover less than ``share`` of it) while another has them."""
    pres = _presence(lab, sizes, k)
    return [j for j in range(k) if bool((pres[:, j] >= share).any()) and bool((pres[:, j] < share).any())]


def choose_k(x: torch.Tensor, sizes: list[int], seed: int, opt: Options = DEFAULT) -> tuple[int, torch.Tensor]:
    """The k in [k_min, k_max] with the best penalised silhouette; returns (k, centres)."""
    best: tuple[float, int, torch.Tensor] | None = None
    for k in range(opt.k_min, min(opt.k_max, len(x)) + 1):
        lab, centres = kmeans(x, k, seed, restarts=opt.restarts)
        score = silhouette(x, lab, k, seed=seed) - opt.k_penalty * (k - opt.k_min)
        score -= opt.orphan_penalty * len(_orphans(lab, sizes, k, opt.orphan_share))
        log.debug("k=%d: score %.3f", k, score)
        if best is None or score > best[0]:
            best = (score, k, centres)
    assert best is not None
    return best[1], best[2]


def merge_orphans(x: torch.Tensor, centres: torch.Tensor, sizes: list[int], share: float) -> torch.Tensor:
    """Drop centres of clusters present in only some images (their pixels go to the nearest other centre)."""
    while len(centres) > 2:
        lab = torch.cdist(x, centres).argmin(dim=1)
        orphans = _orphans(lab, sizes, len(centres), share)
        if not orphans:
            break
        counts = torch.bincount(lab, minlength=len(centres))
        drop = min(orphans, key=lambda j: int(counts[j]))  # the smallest orphan first
        centres = torch.cat([centres[:drop], centres[drop + 1 :]])
    return centres


def memberships(x: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, k) soft assignments: softmax of −d²/(T·mean nearest d²)."""
    d2 = torch.cdist(x, centres) ** 2
    scale = d2.min(dim=1).values.mean().clamp_min(1e-8)
    return torch.softmax(-d2 / (temperature * scale), dim=1)


# ----------------------------------------------------------------------------- variants
def nmf(x: torch.Tensor, k: int, seed: int, iters: int = 200) -> torch.Tensor:
    """Non-negative factorisation x ≈ W·H of (N, D) rows ≥ 0 (multiplicative updates, Lee & Seung);
    returns the (N, k) loadings W, each factor scaled to a maximum of 1 (its "concept" heat map)."""
    g = torch.Generator().manual_seed(seed)
    scale = float(x.mean().clamp_min(1e-8)) ** 0.5
    w = torch.rand(len(x), k, generator=g, dtype=x.dtype) * scale + 1e-3
    h = torch.rand(k, x.shape[1], generator=g, dtype=x.dtype) * scale + 1e-3
    for _ in range(iters):
        h *= (w.T @ x) / (w.T @ w @ h).clamp_min(1e-10)
        w *= (x @ h.T) / (w @ (h @ h.T)).clamp_min(1e-10)
    return w / w.amax(dim=0, keepdim=True).clamp_min(1e-10)


def graph_smooth(probs: torch.Tensor, weight: float) -> torch.Tensor:
    """(1, K, h, w) memberships → one-hot labels minimising Σ −log p + weight·[neighbours differ]
    (α-expansion graph cuts on the 4-connected grid, PyMaxflow)."""
    try:
        import maxflow.fastmin as fastmin
    except ImportError as e:  # an optional dependency; the default options do not use it
        raise RuntimeError("graph-cut smoothing needs PyMaxflow: pip install PyMaxflow") from e
    k = probs.shape[1]
    unary = (-torch.log(probs[0].clamp_min(1e-6))).permute(1, 2, 0).double().numpy()  # (h, w, K)
    potts = weight * (1.0 - np.eye(k))
    start = probs[0].argmax(0).numpy().astype(np.int32)
    lab = fastmin.aexpansion_grid(np.ascontiguousarray(unary), potts, max_cycles=5, labels=start)
    return F.one_hot(torch.from_numpy(np.asarray(lab, dtype=np.int64)), k).permute(2, 0, 1)[None].float()


def _nmf_memberships(x: torch.Tensor, k: int, seed: int, temperature: float) -> torch.Tensor:
    """(N, k) soft assignments from the factor loadings: a softmax of the max-scaled heat maps."""
    w = nmf(x.clamp_min(0), k, seed)
    return torch.softmax(w / max(temperature, 1e-3) * 4.0, dim=1)


# ----------------------------------------------------------------------------- entry point
@contextlib.contextmanager
def _threads(n: int) -> Iterator[int]:
    """Run the block on ``n`` intra-op threads; yields the count before it.

    The clustering tensors run on one: they are far too small to gain from threads, and OpenMP's
    spinning workers make them up to 100× slower when other processes compete for the cores. The
    factorisation's (N, D) products are large enough to gain (0.66 → 0.52 s a pair at 512 px on 2 cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def cosegment(
    encode: Encode,
    content: Image.Image,
    styles: Sequence[Image.Image],
    regions: int = 0,
    seed: int = 0,
    options: Options | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Joint labels 0..k-1 for ``content`` and every style, each (H, W) int64 at its image's size.

    ``encode(x, taps)`` maps a (1, 3, H, W) image in [0, 1] (H, W multiples of 8) to fp32 VGG
    features per tap, as ``Stylizer.encode`` does. ``regions`` forces the number of regions
    (0 chooses it); ``seed`` makes the result reproducible. Labels are ordered by total area
    (0 = the largest region over all images).
    """
    opt = options or DEFAULT
    imgs = [content, *styles]
    with torch.inference_mode():
        described = [describe(encode, im, opt) for im in imgs]
    with torch.inference_mode(), _threads(1) as threads:
        sizes = [len(d) for d, _ in described]
        raw = torch.cat([d for d, _ in described]).float()  # (N, D) joint descriptors
        x = pca(raw, opt.pca)
        if regions > 0:
            centres = kmeans(x, min(regions, len(x)), seed, restarts=opt.restarts)[1]
        else:
            centres = merge_orphans(x, choose_k(x, sizes, seed, opt)[1], sizes, opt.orphan_share)
        if opt.method == "nmf":  # the factors of the raw (non-negative) descriptors, as many as k-means chose
            with _threads(threads):  # the caller's threads
                probs = _nmf_memberships(raw, len(centres), seed, opt.temperature)
        elif opt.method == "kmeans":
            probs = memberships(x, centres, opt.temperature)
        else:
            raise ValueError(f"method must be kmeans or nmf, got {opt.method!r}")
        k = probs.shape[1]
        order = torch.argsort(-torch.bincount(probs.argmax(1), minlength=k), stable=True)
        probs = probs[:, order]
        out, start = [], 0
        for im, (_, (h, w)) in zip(imgs, described):
            p = probs[start : start + h * w].T.reshape(1, k, h, w)
            start += h * w
            if opt.graph > 0:
                p = graph_smooth(p, opt.graph)
            out.append(G.refine(im, p, opt.refine, opt.guide_radius, opt.guide_eps, opt.guide_side))
    log.debug("cosegment: %d regions", k)
    return out[0], out[1:]
