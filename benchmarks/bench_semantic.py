"""Benchmark semantic style transfer on the Deep Photo Style Transfer pairs (issue 3, item 7).

For every pair (content ``input/inN.jpg``, style ``style/tarN.jpg``, ground-truth colour masks
``segmentation/inN.png`` and ``tarN.png``) three methods run through the real ``Stylizer``:

- ``global``: plain AdaIN (``semantic="none"``);
- ``semantic-GT``: region-matched AdaIN with the ground-truth label maps (``semantic="labels"``);
- ``semantic-auto``: region-matched AdaIN with automatic co-segmentation (``semantic="auto"``).

Metrics (all computed with the VGG19 encoder in fp32, whatever precision the Stylizer uses):

- **region-wise style distance**: for each ground-truth label covering at least ``MIN_SHARE`` of
  both the content (= output) and the style, and for each layer relu1_1..relu4_1, the channel
  means μ and standard deviations σ of the output and of the style inside that label (ground-truth
  masks area-downsampled to the layer's resolution, ``masked_mean_std``);
  d_layer = (‖μo − μs‖₂ + ‖σo − σs‖₂) / √C, averaged over the four layers, then averaged over
  labels weighted by the label's share of the content. Scored with the ground-truth labels for
  every method (so automatic labels are judged by what they achieve, not by their own labels).
- **content loss**: MSE between the relu4_1 features of the output and of the content
  (normalised by C·H·W);
- **SSIM**: grayscale SSIM (11×11 Gaussian window, σ = 1.5) between output and content;
- **mIoU** of the automatic labels against the ground truth: one label matching shared by both
  images (pixels of content and style pooled), chosen to maximise the summed IoU (exact, by
  dynamic programming over subsets); the mean runs over every ground-truth label of the pair, an
  unmatched label scoring 0.

Usage::

    python benchmarks/bench_semantic.py                       # pairs 1-30 at 512 px, writes docs/
    python benchmarks/bench_semantic.py --size 256 --pairs 1-5 --no-write
    python benchmarks/bench_semantic.py --seg-only            # only the co-segmentation mIoU
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle import functional as FN
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.io.labels import DPST_COLORS, LabelMap, fit_to, pack_rgb
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.pipelines.stylize import Stylizer
from semstyle.segmentation.auto import cosegment
from semstyle.viz import grid, overlay

DATA = Path("/work/shared/data/paired/deep-photo-styletransfer")
ROOT = Path(__file__).resolve().parents[1]
METHODS: dict[str, dict[str, str]] = {"global": {"semantic": "none"}, "semantic-GT": {"semantic": "labels"},
                                      "semantic-auto": {"semantic": "auto"}}
MIN_SHARE = 0.005  # a GT label must cover this share of both images to be scored (as min_region)
TARGET_CUT = 40.0  # % cut of the region-wise style distance with GT labels
TARGET_RISE = 10.0  # % allowed rise of the content loss
TARGET_AUTO = 0.75  # share of the GT cut that automatic labels must reach


# ----------------------------------------------------------------------------- metrics
def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum()).float()


def ssim_gray(a: torch.Tensor, b: torch.Tensor) -> float:
    """Grayscale SSIM (Wang et al. 2004) of two (1, 3, H, W) images in [0, 1], Gaussian window."""
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x, y = (a * w).sum(1, keepdim=True).double(), (b * w).sum(1, keepdim=True).double()
    g = gaussian_window().double()
    kh, kw = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh), kw)  # "valid" filtering, as in the reference code

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def layer_masks(labels: np.ndarray, ids: list[int], hw: tuple[int, int]) -> torch.Tensor:
    """(1, K, h, w) area-downsampled one-hot masks of ``ids``."""
    lab = torch.from_numpy(labels)
    oh = (lab.unsqueeze(0) == torch.tensor(ids).view(-1, 1, 1)).float().unsqueeze(0)
    return F.interpolate(oh, size=hw, mode="area")


def region_style_distance(out_f: dict[str, torch.Tensor], sty_f: dict[str, torch.Tensor],
                          c_lab: np.ndarray, s_lab: np.ndarray) -> float:
    """Area-weighted (over shared GT labels) mean over layers of (‖Δμ‖ + ‖Δσ‖)/√C."""
    c_ids, c_n = np.unique(c_lab, return_counts=True)
    s_ids, s_n = np.unique(s_lab, return_counts=True)
    s_share = dict(zip(s_ids.tolist(), (s_n / s_lab.size).tolist()))
    ids, wts = [], []
    for lab, n in zip(c_ids.tolist(), c_n.tolist()):
        if n / c_lab.size >= MIN_SHARE and s_share.get(lab, 0.0) >= MIN_SHARE:
            ids.append(lab)
            wts.append(n)
    if not ids:
        return float("nan")
    per_label = torch.zeros(len(ids), dtype=torch.float64)
    for name in STYLE_LAYERS:
        o, s = out_f[name], sty_f[name]
        om, osd = FN.masked_mean_std(o, layer_masks(c_lab, ids, tuple(o.shape[-2:])))
        sm, ssd = FN.masked_mean_std(s, layer_masks(s_lab, ids, tuple(s.shape[-2:])))
        d = (om - sm).flatten(2).norm(dim=2) + (osd - ssd).flatten(2).norm(dim=2)  # (1, K)
        per_label += d[0].double() / o.shape[1] ** 0.5
    per_label /= len(STYLE_LAYERS)
    w = torch.tensor(wts, dtype=torch.float64)
    return float((per_label * w).sum() / w.sum())


def best_matching(iou: np.ndarray) -> float:
    """Max over one-to-one matchings of the summed IoU, for an (n_gt, n_auto) matrix (exact DP)."""
    if iou.shape[0] < iou.shape[1]:
        iou = iou.T
    n, m = iou.shape  # n >= m; subsets of the m columns
    dp = np.full(1 << m, -np.inf)
    dp[0] = 0.0
    for i in range(n):
        new = dp.copy()  # row i unmatched
        for mask in range(1 << m):
            if dp[mask] == -np.inf:
                continue
            for j in range(m):
                if not mask >> j & 1:
                    v = dp[mask] + iou[i, j]
                    if v > new[mask | 1 << j]:
                        new[mask | 1 << j] = v
        dp = new
    return float(dp.max())


def matched_miou(gts: list[np.ndarray], autos: list[np.ndarray]) -> float:
    """mIoU over GT labels after the best one-to-one GT↔auto matching, shared across images."""
    g = np.concatenate([x.ravel() for x in gts])
    a = np.concatenate([x.ravel() for x in autos])
    g_ids, g_inv = np.unique(g, return_inverse=True)
    a_ids, a_inv = np.unique(a, return_inverse=True)
    inter = np.zeros((len(g_ids), len(a_ids)))
    np.add.at(inter, (g_inv, a_inv), 1)
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    return best_matching(inter / union) / len(g_ids)


# ----------------------------------------------------------------------------- running
@dataclass
class PairResult:
    n: int
    dist: dict[str, float] = field(default_factory=dict)
    closs: dict[str, float] = field(default_factory=dict)
    ssim: dict[str, float] = field(default_factory=dict)
    secs: dict[str, float] = field(default_factory=dict)
    miou: float = float("nan")
    seg_secs: float = float("nan")
    images: dict[str, Image.Image] = field(default_factory=dict)
    auto_labels: tuple[np.ndarray, np.ndarray] | None = None


def parse_pairs(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def gt_labels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A DPST mask as packed-RGB labels at ``size``, every pixel snapped to the nine-colour palette.

    ``load_labels`` keeps near-duplicate edge colours (#fefefe, #010101, #fb0405, …) as labels of
    their own and reads the one grayscale mask (in8.png, mode L) as integer labels, so the
    benchmark snaps to the documented palette itself: the ground truth must be right.
    """
    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 1, 3).astype(np.int32)
    pal = np.array(list(DPST_COLORS.values()), dtype=np.int32)  # (9, 3)
    nearest = ((rgb - pal[None]) ** 2).sum(-1).argmin(1)
    lab = pack_rgb(pal[nearest]).reshape(Image.open(path).size[::-1])
    return fit_to(LabelMap(lab, from_colors=True), size).labels


def load_pair(n: int, st: Stylizer) -> tuple[Image.Image, Image.Image, np.ndarray, np.ndarray]:
    cfg = st.config
    c_img = resize_longest(load_image(DATA / f"input/in{n}.jpg"), cfg.size)
    s_img = resize_longest(load_image(DATA / f"style/tar{n}.jpg"), cfg.style_size)
    return c_img, s_img, gt_labels(DATA / f"segmentation/in{n}.png", c_img.size), \
        gt_labels(DATA / f"segmentation/tar{n}.png", s_img.size)


def vgg(st: Stylizer, img: Image.Image) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return {k: v.float() for k, v in st.encoder(to_tensor(img).to(st.device), STYLE_LAYERS).items()}


def run_pair(n: int, st: Stylizer, seg_only: bool) -> PairResult:
    c_img, s_img, c_gt, s_gt = load_pair(n, st)
    res = PairResult(n)
    t0 = time.perf_counter()
    with torch.inference_mode():
        a_c, (a_s,) = cosegment(st.encode, c_img, [s_img], st.config.regions, st.config.seed)
    res.seg_secs = time.perf_counter() - t0
    res.miou = matched_miou([c_gt, s_gt], [a_c, a_s])
    res.auto_labels = (a_c, a_s)
    if seg_only:
        return res
    c_f, s_f = vgg(st, c_img), vgg(st, s_img)
    for name, kw in METHODS.items():
        extra = {"content_labels": LabelMap(c_gt), "style_labels": [LabelMap(s_gt)]} if kw["semantic"] == "labels" else {}
        t0 = time.perf_counter()
        out = st.stylize(c_img, s_img, semantic=kw["semantic"], **extra).image
        res.secs[name] = time.perf_counter() - t0
        o_f = vgg(st, out)
        res.dist[name] = region_style_distance(o_f, s_f, c_gt, s_gt)
        res.closs[name] = float(FN.content_loss(o_f["relu4_1"], c_f["relu4_1"]))
        res.ssim[name] = ssim_gray(to_tensor(out), to_tensor(c_img))
        res.images[name] = out
    res.images["content"], res.images["style"] = c_img, s_img
    return res


# ----------------------------------------------------------------------------- reporting
def summarise(results: list[PairResult], seg_only: bool) -> tuple[str, dict[str, float]]:
    """A markdown table (per method means over pairs) and the headline numbers."""
    miou = float(np.mean([r.miou for r in results]))
    seg = float(np.mean([r.seg_secs for r in results]))
    if seg_only:
        return f"| auto mIoU | {miou:.3f} |\n| segmentation s/pair | {seg:.2f} |\n", {"miou": miou}
    ok = [r for r in results if not np.isnan(r.dist["global"])]
    head = {}
    lines = ["| method | style distance | cut vs global | content loss | rise vs global | SSIM | s/pair |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    g_d = float(np.mean([r.dist["global"] for r in ok]))
    g_c = float(np.mean([r.closs["global"] for r in results]))
    for name in METHODS:
        d = float(np.mean([r.dist[name] for r in ok]))
        c = float(np.mean([r.closs[name] for r in results]))
        s = float(np.mean([r.ssim[name] for r in results]))
        secs = float(np.mean([r.secs[name] for r in results]))
        cut, rise = 100 * (1 - d / g_d), 100 * (c / g_c - 1)
        head[f"{name}_cut"], head[f"{name}_rise"] = cut, rise
        lines.append(f"| {name} | {d:.4f} | {cut:+.1f} % | {c:.4f} | {rise:+.1f} % | {s:.3f} | {secs:.2f} |")
    head["miou"] = miou
    lines.append("")
    lines.append(f"Automatic co-segmentation: mIoU {miou:.3f} against the ground truth, {seg:.2f} s per pair.")
    return "\n".join(lines) + "\n", head


def per_pair_table(results: list[PairResult]) -> str:
    lines = ["| pair | dist global | dist GT | dist auto | closs global | closs GT | closs auto | auto mIoU |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        d, c = r.dist, r.closs
        lines.append(f"| {r.n} | {d['global']:.4f} | {d['semantic-GT']:.4f} | {d['semantic-auto']:.4f} | "
                     f"{c['global']:.4f} | {c['semantic-GT']:.4f} | {c['semantic-auto']:.4f} | {r.miou:.3f} |")
    return "\n".join(lines) + "\n"


def picture(results: list[PairResult], pairs: list[int], path: Path, cell: int = 160) -> None:
    rows = []
    for r in results:
        if r.n not in pairs or r.auto_labels is None:
            continue
        im = r.images
        a_c, a_s = r.auto_labels
        rows.append([im["content"], im["style"], im["global"], im["semantic-GT"], im["semantic-auto"],
                     overlay(im["content"], a_c), overlay(im["style"], a_s)])
    titles = ["content", "style", "global AdaIN", "semantic (GT)", "semantic (auto)", "auto: content", "auto: style"]
    grid(rows, cell=cell, titles=titles).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="content and style longest side (px)")
    ap.add_argument("--pairs", default="1-30", help="pair numbers, e.g. 1-30 or 1,4,7-9")
    ap.add_argument("--seg-only", action="store_true", help="only time and score the automatic segmentation")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/")
    ap.add_argument("--grid-pairs", default="1,14,21,24,28", help="pairs shown in the picture grid")
    ap.add_argument("--feather", type=float, default=None)
    ap.add_argument("--min-region", type=float, default=None)
    ap.add_argument("--unmatched", default=None)
    ap.add_argument("--regions", type=int, default=None)
    ap.add_argument("--per-pair", action="store_true", help="also print the per-pair table")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    st = Stylizer(size=args.size, style_size=args.size, feather=args.feather, min_region=args.min_region,
                  unmatched=args.unmatched, regions=args.regions)
    results = []
    t0 = time.perf_counter()
    for n in parse_pairs(args.pairs):
        r = run_pair(n, st, args.seg_only)
        results.append(r)
        if args.seg_only:
            print(f"pair {n:2d}: mIoU {r.miou:.3f}  k={len(np.unique(r.auto_labels[0]))}  {r.seg_secs:.2f}s", flush=True)
        else:
            print(f"pair {n:2d}: " + "  ".join(f"{m} d={r.dist[m]:.4f} c={r.closs[m]:.4f}" for m in METHODS)
                  + f"  mIoU {r.miou:.3f}", flush=True)
    table, head = summarise(results, args.seg_only)
    print(f"\n{len(results)} pairs at {args.size} px in {time.perf_counter() - t0:.0f} s\n")
    print(table)
    if args.per_pair and not args.seg_only:
        print(per_pair_table(results))
    if args.no_write or args.seg_only:
        return
    picture(results, parse_pairs(args.grid_pairs), ROOT / "docs/semantic_grid.png")
    (ROOT / "docs/semantic_benchmark_raw.md").write_text(table + "\n" + per_pair_table(results), encoding="utf-8")
    print(head)


if __name__ == "__main__":
    main()
