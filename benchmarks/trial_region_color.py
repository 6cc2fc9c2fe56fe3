"""Trial (issue 15, eighth session; not kept): region colour matching after semantic fusion.

Each content region's RGB means/stds moved to those of its matched style region (feathered masks, gain
clamped), on DPST pairs at 512 px, with the ground-truth labels and the automatic ones, scored like
bench_semantic.py (region-wise style distance with the ground truth, content loss), relative to global AdaIN.

    python benchmarks/trial_region_color.py 1-30 512      # about 15 min on 2 cores
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_semantic as B  # noqa: E402

from semstyle import Stylizer  # noqa: E402
from semstyle import metrics as M  # noqa: E402
from semstyle.io.labels import LabelMap  # noqa: E402

VARIANTS: dict[str, tuple[float, float] | None] = {  # name → (strength, feather sigma in px)
    "plain": None, "rc1 s4": (1.0, 4.0), "rc.7 s4": (0.7, 4.0), "rc1 s16": (1.0, 16.0), "rc.5 s8": (0.5, 8.0)}


def _masked_stats(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (3,) of the float (H, W, 3) ``img`` over the bool (H, W) ``mask``."""
    px = img[mask]  # (P, 3)
    return px.mean(0), px.std(0)


def match_region_rgb(
    out: np.ndarray, content_labels: np.ndarray, style: np.ndarray, style_labels: np.ndarray,
    matches: dict[int, int | str], strength: float = 1.0, sigma: float = 4.0, gain: tuple[float, float] = (0.5, 2.0),
) -> None:
    """In place: each content region's RGB means/stds moved to those of its matched style region.

    ``out`` (H, W, 3) uint8 and ``content_labels`` (H, W); ``style`` (h, w, 3) uint8 and ``style_labels``
    (h, w); ``matches`` maps a content label to its style label ("global": the whole style image's
    statistics; "keep" or absent: left as it is). The per-region affine maps are blended by the regions'
    masks feathered by a Gaussian of ``sigma`` px (no seams at the borders), the std ratio is clamped to
    ``gain`` (no noise blown up in a flat region) and the result mixed with the input by ``strength``."""
    if out.shape[:2] != content_labels.shape or style.shape[:2] != style_labels.shape:
        raise ValueError(f"labels {content_labels.shape} / {style_labels.shape} do not fit the images "
                         f"{out.shape[:2]} / {style.shape[:2]}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"region colour strength must be in [0, 1], got {strength}")
    import cv2

    x = out.astype(np.float32) / 255.0
    s = style.astype(np.float32) / 255.0
    acc = np.zeros_like(x)
    wsum = np.zeros(x.shape[:2], np.float32)
    for lab in np.unique(content_labels).tolist():
        mask = content_labels == lab
        src = matches.get(int(lab), "keep")
        if src == "keep":
            mapped = x
        else:
            s_mask = np.ones(style_labels.shape, bool) if src == "global" else style_labels == src
            if not s_mask.any():
                mapped = x
            else:
                o_mean, o_std = _masked_stats(x, mask)
                t_mean, t_std = _masked_stats(s, s_mask)
                g = np.clip(t_std / np.maximum(o_std, 1e-4), *gain)
                mapped = (x - o_mean) * g + t_mean
        w = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) if sigma > 0 else mask.astype(np.float32)
        acc += w[..., None] * mapped
        wsum += w
    res = acc / np.maximum(wsum, 1e-6)[..., None]
    res = (1.0 - strength) * x + strength * res
    out[...] = np.clip(res * 255.0 + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    torch.set_num_threads(2)
    pairs = B.parse_pairs(sys.argv[1] if len(sys.argv) > 1 else "1-30")
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    st = Stylizer(size=size, style_size=size)
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for n in pairs:
        c_img, s_img, c_gt, s_gt = B.load_pair(n, st)
        c_f, s_f = B.vgg(st, c_img), B.vgg(st, s_img)
        g_f = B.vgg(st, st.stylize(c_img, s_img).image)
        d0, c0 = M.region_style_distance(g_f, s_f, c_gt, s_gt, min_share=B.MIN_SHARE), M.content_loss(g_f, c_f)
        for mode in ("GT", "auto"):
            kw: dict[str, object] = {"semantic": "auto"}
            if mode == "GT":
                kw = {"semantic": "labels", "content_labels": LabelMap(c_gt, from_colors=True),
                      "style_labels": [LabelMap(s_gt, from_colors=True)]}
            res = st.stylize(c_img, s_img, **kw)  # type: ignore[arg-type]
            base = np.asarray(res.image)
            for name, p in VARIANTS.items():
                o = base.copy()
                if p is not None:
                    match_region_rgb(o, res.content_labels, np.asarray(s_img), res.style_labels[0], res.matches,
                                     strength=p[0], sigma=p[1])
                o_f = B.vgg(st, Image.fromarray(o))
                d = M.region_style_distance(o_f, s_f, c_gt, s_gt, min_share=B.MIN_SHARE)
                rows.setdefault((mode, name), []).append((d0, d, c0, M.content_loss(o_f, c_f)))
        print(n, flush=True)
    for (mode, name), r in rows.items():
        a = np.array(r)
        cut = 1 - np.nanmean(a[:, 1]) / np.nanmean(a[:, 0])
        rise = np.mean(a[:, 3]) / np.mean(a[:, 2]) - 1
        print(f"{mode:5s} {name:10s} cut {100 * cut:5.1f} %  rise {100 * rise:+5.1f} %")


if __name__ == "__main__":
    main()
