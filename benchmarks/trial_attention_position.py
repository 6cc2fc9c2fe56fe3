"""Trial (issue 15): attention per *position* with spatially smoothed statistics, against region AdaIN.

Each content position p attends over the style's positions q (AdaAttN-style):
A_pq = softmax_q(cos(q̂_p, k̂_q)/τ + β·[label_p = label_q]), with queries and keys the
instance-normalised relu4_1 features; the target mean and std at p are the moments of the attended
values (mean = A·V, std = √(A·V² − mean²)), blurred with a Gaussian of ``--smooth`` feature px,
and the content features, normalised by their region's statistics, take them:
t = std_p · (f_p − μ_region) / σ_region + mean_p; the pretrained decoder decodes t.

Scored like ``bench_semantic.py`` (region-wise style distance with the ground-truth masks, content
loss), with the ground-truth labels as the prior, on the DPST pairs; region AdaIN (semantic-GT) is run
in the same process as the reference. The library keeps region-level attention (``--fusion
attention``); this script documents why position-level attention is not the product's.

    python benchmarks/trial_attention_position.py --pairs 1-30 --smooth 0,4,8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_semantic import load_pair, parse_pairs
from PIL import Image

from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.io.images import to_tensor
from semstyle.io.labels import LabelMap
from semstyle.pipelines.stylize import Stylizer
from semstyle.segmentation import regions as R


def feature_labels(lab: np.ndarray, ids: list[int], hw: tuple[int, int]) -> torch.Tensor:
    """(h·w,) index into ``ids`` of the dominant label of every feature pixel (labels padded like the image)."""
    padded, _ = FN.pad_to_multiple(lab, mode="symmetric")
    return R.region_masks(padded, ids, hw).argmax(dim=1).flatten()


def position_attention(st: Stylizer, c_img: Image.Image, s_img: Image.Image, c_lab: np.ndarray, s_lab: np.ndarray,
                       tau: float, prior: float, smooth: float) -> Image.Image:
    nets = st.networks
    with torch.inference_mode():
        xc, _ = FN.pad_to_multiple(to_tensor(c_img))
        xs, _ = FN.pad_to_multiple(to_tensor(s_img))
        fc, fs = nets.encode(xc)["relu4_1"].float(), nets.encode(xs)["relu4_1"].float()
        _, c, h, w = fc.shape
        q = F.normalize(F.instance_norm(fc).flatten(2)[0].T, dim=1)  # (Nc, C)
        k = F.normalize(F.instance_norm(fs).flatten(2)[0].T, dim=1)  # (Ns, C)
        ids = sorted({int(v) for v in np.unique(c_lab)} | {int(v) for v in np.unique(s_lab)})
        lc = feature_labels(c_lab, ids, (h, w))
        ls = feature_labels(s_lab, ids, tuple(fs.shape[-2:]))
        logits = q @ k.T / tau + prior * (lc[:, None] == ls[None]).float()  # (Nc, Ns)
        a = torch.softmax(logits, dim=1)
        v = fs.flatten(2)[0].T  # (Ns, C)
        mean = a @ v
        std = (a @ v**2 - mean**2).clamp_min(1e-6).sqrt()
        mean_map, std_map = (x.T.reshape(1, c, h, w) for x in (mean, std))
        if smooth > 0:
            mean_map, std_map = FN.gaussian_blur(mean_map, smooth), FN.gaussian_blur(std_map, smooth)
        c_ids = [int(v) for v in np.unique(c_lab)]
        padded, _ = FN.pad_to_multiple(c_lab, mode="symmetric")
        masks = R.region_masks(padded, c_ids, (h, w), st.config.feather)
        rm, rs = FN.masked_mean_std(fc, masks)  # (1, K, C, 1, 1)
        mu = (masks[:, :, None] * rm).sum(1)  # (1, C, h, w) the region statistics at every pixel
        sd = (masks[:, :, None] * rs).sum(1)
        target = std_map * (fc - mu) / sd + mean_map
        out = nets.decode(target)[..., : c_img.size[1], : c_img.size[0]].clamp(0, 1)
    return Image.fromarray((out[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="1-30")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--prior", type=float, default=10.0)
    ap.add_argument("--smooth", default="0,4,8", help="comma list of blur stds (feature px)")
    args = ap.parse_args()
    st = Stylizer(size=args.size, style_size=args.size)
    smooths = [float(v) for v in args.smooth.split(",")]
    rows: dict[str, list[tuple[float, float, float]]] = {"global": [], "region AdaIN": []}
    rows.update({f"position, smooth {s:g}": [] for s in smooths})
    for n in parse_pairs(args.pairs):
        c_img, s_img, c_gt, s_gt = load_pair(n, st)
        c_f, s_f = M.vgg_features(st.encoder, to_tensor(c_img)), M.vgg_features(st.encoder, to_tensor(s_img))

        def score(name: str, img: Image.Image, secs: float, ref: tuple = (c_f, s_f, c_gt, s_gt)) -> None:
            o_f = M.vgg_features(st.encoder, to_tensor(img))
            d = M.region_style_distance(o_f, ref[1], ref[2], ref[3], min_share=0.005)
            rows[name].append((d, M.content_loss(o_f, ref[0]), secs))

        for name, kw in (("global", {"semantic": "none"}), ("region AdaIN", {
                "semantic": "labels", "content_labels": LabelMap(c_gt, from_colors=True),
                "style_labels": [LabelMap(s_gt, from_colors=True)]})):
            t0 = time.perf_counter()
            img = st.stylize(c_img, s_img, **kw).image
            score(name, img, time.perf_counter() - t0)
        for s in smooths:
            t0 = time.perf_counter()
            img = position_attention(st, c_img, s_img, c_gt, s_gt, args.tau, args.prior, s)
            score(f"position, smooth {s:g}", img, time.perf_counter() - t0)
        print(f"pair {n}: " + "  ".join(f"{k} {v[-1][0]:.3f}/{v[-1][1]:.3f}" for k, v in rows.items()), flush=True)
    g = np.array(rows["global"])
    ok = ~np.isnan(g[:, 0])
    print(f"\n{len(g)} pairs at {args.size} px, τ {args.tau}, prior {args.prior}\n")
    print("| method | style distance | cut vs global | content loss | rise vs global | s/pair |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, vals in rows.items():
        a = np.array(vals)
        d, c = a[ok, 0].mean(), a[:, 1].mean()
        cut, rise = 100 * (1 - d / g[ok, 0].mean()), 100 * (c / g[:, 1].mean() - 1)
        print(f"| {name} | {d:.4f} | {cut:+.1f} % | {c:.4f} | {rise:+.1f} % | {a[:, 2].mean():.2f} |")


if __name__ == "__main__":
    main()
