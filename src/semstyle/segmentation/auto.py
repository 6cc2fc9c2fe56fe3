"""Automatic co-segmentation of a content and its style images, offline, with no extra weights.

Region k must mean the same thing in every image, so the images are clustered *jointly*.
Raw deep features cluster by image (each image's style shifts all its features), so each
image's features are first normalised by its own channel statistics (instance normalisation
removes the style), then k-means runs over the pooled features of all images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle.io.images import to_tensor

Encode = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]
LAYERS: tuple[str, ...] = ("relu3_1", "relu4_1")
SEG_SIDE = 256  # images are segmented at this longest side, labels upsampled afterwards


def _features(encode: Encode, img: Image.Image) -> tuple[torch.Tensor, tuple[int, int]]:
    """Instance-normalised, concatenated features (h·w, D) at relu4_1 resolution."""
    scale = SEG_SIDE / max(img.size)
    small = img.resize((max(8, round(img.size[0] * scale) // 8 * 8), max(8, round(img.size[1] * scale) // 8 * 8)))
    feats = encode(to_tensor(small), LAYERS)
    hw = feats["relu4_1"].shape[-2:]
    parts = []
    for name in LAYERS:
        f = F.adaptive_avg_pool2d(feats[name], hw) if feats[name].shape[-2:] != hw else feats[name]
        f = F.instance_norm(f)  # remove the image's own style
        parts.append(f / f.shape[1] ** 0.5)
    x = torch.cat(parts, dim=1)[0]  # (D, h, w)
    return x.flatten(1).T.contiguous(), (int(hw[0]), int(hw[1]))


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means++ on (N, D) rows; returns (labels (N,), centres (k, D))."""
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d = torch.cdist(x, centres).min(dim=1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d / d.sum(), 1, generator=g)]])
    for _ in range(iters):
        lab = torch.cdist(x, centres).argmin(dim=1)
        new = torch.stack([x[lab == j].mean(0) if (lab == j).any() else centres[j] for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    return torch.cdist(x, centres).argmin(dim=1), centres


def cosegment(
    encode: Encode, content: Image.Image, styles: Sequence[Image.Image], regions: int = 0, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Joint labels for ``content`` and every style, each at its own image size."""
    imgs = [content, *styles]
    with torch.inference_mode():
        feats = [_features(encode, im) for im in imgs]
    x = torch.cat([f for f, _ in feats]).float().cpu()
    k = regions if regions > 0 else 3
    lab, _ = kmeans(x, k, seed)
    out, start = [], 0
    for im, (_, (h, w)) in zip(imgs, feats):
        m = lab[start : start + h * w].view(h, w).numpy().astype(np.int32)
        start += h * w
        up = Image.fromarray(m).resize(im.size, Image.Resampling.NEAREST)
        out.append(np.asarray(up).astype(np.int64))
    return out[0], out[1:]
