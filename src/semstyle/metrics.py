"""Evaluation metrics as pure functions (formulas in docs/METRICS.md).

Feature-based metrics take VGG feature dicts ``{tap: (1, C, h, w)}`` computed by the caller
(``vgg_features`` with ``Stylizer.encoder``), so nothing here loads a network. ``measure`` times
a block and reports its peak resident-memory growth.
"""

from __future__ import annotations

import ctypes
import math
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semstyle import functional as FN
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.segmentation import regions as R

Feats = dict[str, torch.Tensor]
LUMA = FN.LUMA  # BT.601 luminance weights
METRIC_TAPS: tuple[str, ...] = STYLE_LAYERS  # relu1_1..relu4_1: every tap a metric below reads


def vgg_features(encoder: torch.nn.Module, img: torch.Tensor, taps: Sequence[str] = METRIC_TAPS) -> Feats:
    """fp32 features of a (1, 3, H, W) image in [0, 1] at ``taps``, without autograd."""
    p = next(encoder.parameters())
    with torch.inference_mode():
        return {k: v.float() for k, v in encoder(img.to(p.device, p.dtype), tuple(taps)).items()}


def content_loss(out: Feats, ref: Feats | torch.Tensor, layer: str = "relu4_1") -> float:
    """MSE of relu4_1 features normalised by C·H·W: (1/CHW)·‖φ(out) − φ(ref)‖²."""
    r = ref if isinstance(ref, torch.Tensor) else ref[layer]
    o = out[layer]
    h, w = min(o.shape[-2], r.shape[-2]), min(o.shape[-1], r.shape[-1])
    return float(FN.content_loss(o[..., :h, :w], r[..., :h, :w]))


def gram_style_loss(out: Feats, style: Feats, layers: tuple[str, ...] = STYLE_LAYERS) -> float:
    """Σ_layers (1/C²)·‖G(out) − G(style)‖²_F with G = FFᵀ/(HW)."""
    return float(FN.gram_style_loss([out[k] for k in layers], [style[k] for k in layers]))


def mean_std_style_loss(out: Feats, style: Feats, layers: tuple[str, ...] = STYLE_LAYERS) -> float:
    """Σ_layers (1/C)(‖μ(out) − μ(style)‖² + ‖σ(out) − σ(style)‖²)."""
    return float(FN.mean_std_style_loss([out[k] for k in layers], [style[k] for k in layers]))


def sliced_wasserstein_distance(out: Feats, style: Feats, layers: tuple[str, ...] = STYLE_LAYERS,
                                projections: int = 64) -> float:
    """Mean over ``layers`` of the sliced Wasserstein-2 distance of the feature-vector distributions
    (``functional.sliced_wasserstein``, the same random directions for every image: comparable across runs)."""
    return float(sum(FN.sliced_wasserstein(out[k], style[k], projections) for k in layers) / len(layers))


def _gray(img: torch.Tensor) -> torch.Tensor:
    return (img * torch.tensor(LUMA, dtype=img.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim_gray(a: torch.Tensor, b: torch.Tensor) -> float:
    """Grayscale SSIM (Wang et al. 2004) of (1, 3, H, W) images in [0, 1]; 11×11 Gaussian σ=1.5, valid."""
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    x, y = _gray(a.double()), _gray(b.double())
    g = _gaussian()
    kh, kw = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh), kw)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def label_masks(labels: np.ndarray, ids: list[int], hw: tuple[int, int]) -> torch.Tensor:
    """(1, K, h, w) area-downsampled one-hot masks of ``ids`` (``regions.region_masks``, unnormalised)."""
    return R.region_masks(labels, ids, hw, normalize=False)


def region_style_distance(
    out: Feats, style: Feats, c_lab: np.ndarray, s_lab: np.ndarray,
    layers: tuple[str, ...] = STYLE_LAYERS, min_share: float = 0.005,
) -> float:
    """Area-weighted mean, over labels present in both maps, of
    mean_layers (‖μ_out,k − μ_style,k‖ + ‖σ_out,k − σ_style,k‖)/√C inside label k."""
    c_ids, c_n = np.unique(c_lab, return_counts=True)
    s_ids, s_n = np.unique(s_lab, return_counts=True)
    s_share = dict(zip(s_ids.tolist(), (s_n / s_lab.size).tolist(), strict=True))
    c_share = dict(zip(c_ids.tolist(), (c_n / c_lab.size).tolist(), strict=True))
    ids = [lab for lab, share in c_share.items() if share >= min_share and s_share.get(lab, 0) >= min_share]
    if not ids:
        return float("nan")
    wts = torch.tensor([float((c_lab == i).sum()) for i in ids], dtype=torch.float64)
    per = torch.zeros(len(ids), dtype=torch.float64)
    for name in layers:
        o, s = out[name], style[name]
        om, osd = FN.masked_mean_std(o, label_masks(c_lab, ids, (o.shape[-2], o.shape[-1])))
        sm, ssd = FN.masked_mean_std(s, label_masks(s_lab, ids, (s.shape[-2], s.shape[-1])))
        d = (om - sm).flatten(2).norm(dim=2) + (osd - ssd).flatten(2).norm(dim=2)  # (1, K)
        per += d[0].double() / o.shape[1] ** 0.5
    per /= len(layers)
    return float((per * wts).sum() / wts.sum())


def self_similarity_distance(out: Feats, content: Feats, layer: str = "relu3_1", side: int = 32) -> float:
    """Content-structure distance (CFSD-like): mean |S(out) − S(content)| of the patch
    self-similarity matrices S = cosine similarity between all pairs of feature vectors,
    after pooling the features to ``side``×``side``. 0 = same structure."""

    def sim(f: torch.Tensor) -> torch.Tensor:
        f = F.adaptive_avg_pool2d(f, side).flatten(2)[0]  # (C, side²)
        f = F.normalize(f, dim=0)
        return f.T @ f  # (side², side²)

    return float((sim(out[layer]) - sim(content[layer])).abs().mean())


CHECKER_KERNEL = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64).view(1, 1, 2, 2) / 4
LAPLACE_KERNEL = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64).view(
    1, 1, 3, 3
)


def _filter_energy(img: torch.Tensor, kernel: torch.Tensor) -> float:
    """Mean squared response of the luminance of a (1, 3, H, W) image to ``kernel`` (valid positions)."""
    return float(F.conv2d(_gray(img.double()), kernel).pow(2).mean())


def checkerboard_energy(img: torch.Tensor) -> float:
    """Mean squared response of the luminance to the 2×2 checkerboard filter [[1,−1],[−1,1]]/4
    (a 0/a luminance checkerboard: a²/4; anything constant along rows or columns: 0)."""
    return _filter_energy(img, CHECKER_KERNEL)


def high_frequency_energy(img: torch.Tensor) -> float:
    """Mean squared response of the luminance to the 4-neighbour Laplacian [[0,1,0],[1,−4,1],[0,1,0]]
    (a 0/a luminance checkerboard: 16a²; period-2 stripes: 4a²)."""
    return _filter_energy(img, LAPLACE_KERNEL)


def checkerboard_ratio(out: torch.Tensor, content: torch.Tensor) -> float:
    """Artefact measure: ``checkerboard_energy`` of the output relative to the content's
    (1 ≈ as crisp as the photo; ≫ 1 = grid artefacts)."""
    return checkerboard_energy(out) / max(checkerboard_energy(content), 1e-12)


def high_frequency_ratio(out: torch.Tensor, content: torch.Tensor) -> float:
    """``high_frequency_energy`` (luminance Laplacian) of the output relative to the content's."""
    return high_frequency_energy(out) / max(high_frequency_energy(content), 1e-12)


def best_matching(iou: np.ndarray) -> float:
    """Max over one-to-one matchings of the summed entries of an (n, m) matrix (exact DP over subsets)."""
    if iou.shape[0] < iou.shape[1]:
        iou = iou.T
    n, m = iou.shape
    if m > 16:
        raise ValueError(f"best_matching supports up to 16 labels on the smaller side, got {m}")
    dp = np.full(1 << m, -np.inf)
    dp[0] = 0.0
    for i in range(n):
        new = dp.copy()
        for mask in np.nonzero(np.isfinite(dp))[0]:
            for j in range(m):
                if not mask >> j & 1 and dp[mask] + iou[i, j] > new[mask | 1 << j]:
                    new[mask | 1 << j] = dp[mask] + iou[i, j]
        dp = new
    return float(dp.max())


def matched_miou(gts: list[np.ndarray], autos: list[np.ndarray]) -> float:
    """mIoU over ground-truth labels after the best one-to-one GT↔prediction matching (shared by all maps)."""
    g = np.concatenate([x.ravel() for x in gts])
    a = np.concatenate([x.ravel() for x in autos])
    g_ids, g_inv = np.unique(g, return_inverse=True)
    a_ids, a_inv = np.unique(a, return_inverse=True)
    inter = np.zeros((len(g_ids), len(a_ids)))
    np.add.at(inter, (g_inv, a_inv), 1)
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    return best_matching(inter / union) / len(g_ids)


# ----------------------------------------------------------------------------- runtime and memory
@dataclass
class Usage:
    """What ``measure`` found: wall time and the growth of the peak resident set."""

    seconds: float = math.nan
    peak_mb: float = math.nan  # peak RSS during the block minus the RSS at its start, MiB
    exact: bool = True  # False: the kernel's peak could not be reset, so peak_mb is a lower bound


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's VmHWM to the current RSS (Linux ≥ 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    """Hand memory that was freed but kept by the C allocator back to the OS (glibc), so a block's
    allocations show up as growth of the resident set instead of reusing what earlier calls freed."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _maxrss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


@contextmanager
def measure() -> Iterator[Usage]:
    """Time a block and measure its peak memory: ``with measure() as u: ...; u.seconds, u.peak_mb``.

    Peak memory is VmHWM − VmRSS(start) after returning freed heap memory to the OS
    (``malloc_trim``) and resetting VmHWM through ``/proc/self/clear_refs``, so it counts every
    allocator (torch, numpy, onnxruntime), not only Python objects. Where
    the peak cannot be reset it falls back on the growth of ``ru_maxrss`` (a lower bound).
    """
    usage = Usage()
    _release_free_memory()
    exact = _reset_peak()
    start_kb = _status_kb("VmRSS") if exact else None
    if start_kb is None:
        exact, start_kb = False, _maxrss_kb()
    t0 = time.perf_counter()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - t0
        end_kb = _status_kb("VmHWM") if exact else None
        if end_kb is None:
            exact, end_kb = False, _maxrss_kb()
        usage.peak_mb = max(0, end_kb - start_kb) / 1024
        usage.exact = exact
