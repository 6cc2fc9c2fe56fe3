"""Regions grown from a few painted strokes (``semantic="scribbles"``).

A scribble picture is RGBA, transparent where nothing is painted. Each opaque colour is one region; the same
colour on the content and on a style marks matched regions. The labels are those colours packed as RGB integers
(``io.labels.pack_rgb``), so overlays and ``--save-labels`` show the painter's own colours.

``read_scribbles`` turns a picture into seeds (-1 where nothing is painted); ``grow`` gives every pixel a
region:

1. **Describe** every pixel of a working grid (``side`` px): VGG relu3_1 and relu4_1 features of a ~320 px copy
   (each channel divided by its RMS over the image, so the image's own style matters less), upsampled to the grid
   and reduced by PCA; the pixel's colour (YUV, divided by the image's spread); its position.
2. **Classify**: a small network (one hidden layer) learns, on this picture alone, each painted pixel's region
   from its description (each region weighted equally, however long its strokes); it gives every grid pixel a
   membership of each region. (It replaced a k-nearest-painted-pixels score: 87.8 % against 86.2 % pixel accuracy
   with one simulated stroke per region, docs/semantic_benchmark.md.)
3. **Grow again** (``rounds``): the pixels the first round is sure of count as painted, so a region is described by
   more than its stroke's thin sample of it.
4. **Connect** (``connected``): a part of a region that none of its strokes reach through it (a flood fill) takes
   its next most likely region when it is an island: mostly surrounded by one other region (``enclosed``; a bright
   lamp behind a glass of wine that looks like the wine, the sky's reflection in a lake) or small (``island``). A
   larger cut-off part between several regions (the background on both sides of a head) keeps its
   region. (One simulated stroke per region, mean of five simulated painters: pixel accuracy 87.9 → 88.5 %, the
   share of the label maps' cut 71.0 → 73.7 %, docs/semantic_benchmark.md.)
5. **Refine** at full resolution: the memberships go through the colour-guided filter
   (``segmentation.guided``), so borders snap to the image's edges; each pixel takes its most likely region;
   painted pixels keep their colour.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.io.images import open_image, to_tensor
from semstyle.io.labels import ASPECT_TOLERANCE, pack_rgb
from semstyle.segmentation import guided as G

log = logging.getLogger(__name__)

Encode = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]
MAX_COLORS = 16  # regions a scribble picture may paint
OPAQUE = 128  # alpha at and above which a pixel is painted
STRAY_SHARE = 0.02  # hairline strokes only: a colour under this share of the paint is a rim and joins its neighbour


@dataclass(frozen=True)
class GrowOptions:
    """Knobs of the growth; the defaults were chosen with simulated strokes (docs/semantic_benchmark.md)."""

    side: int = 128  # the working grid's longest side (px)
    describe_side: int = 320  # the VGG copy's longest side
    taps: tuple[str, ...] = ("relu3_1", "relu4_1")  # VGG taps describing a pixel
    pca: int = 16  # dimensions kept of the deep features
    deep: float = 1.0  # weight of the deep features
    color: float = 1.0  # weight of the colour
    position: float = 0.5  # weight of the position
    hidden: int = 64  # width of the per-picture classifier's hidden layer
    iters: int = 200  # its Adam steps (full batch)
    samples: int = 1024  # examples drawn of each region (painted or grown cells) at most (0 = all of them)
    lr: float = 1e-2  # its learning rate
    weight_decay: float = 1e-3  # its L2 penalty
    smooth: float = 2.0  # std (grid px) of a Gaussian blur of the memberships before the refinement (0 = off)
    rounds: int = 2  # rounds of growth; after each, pixels surer than ``confident`` count as painted
    confident: float = 0.9  # membership above which a grown pixel seeds the next round
    connected: bool = True  # an island of a region cut off from its strokes takes the next region (step 4)
    enclosed: float = 0.7  # a cut-off part is an island when this share of the cells around it is one region
    island: float = 0.008  # … or when it covers less than this share of the grid
    guide_radius: float = 0.04  # guided filter radius, a share of the longest side
    guide_eps: float = 1e-2  # guided filter regulariser


# ----------------------------------------------------------------------------- reading
def _rgba(src: Any, what: str, max_pixels: int) -> np.ndarray:
    """A scribble picture (path, PIL image, (H, W, 4) array) as (H, W, 4) uint8."""
    if isinstance(src, np.ndarray):
        arr = src
        if arr.ndim != 3 or arr.shape[2] != 4:
            raise InputError(f"{what} must be an (H, W, 4) RGBA array, transparent where nothing is painted; "
                             f"got shape {tuple(arr.shape)}")
        if arr.dtype != np.uint8:
            arr = np.clip(arr * 255.0 + 0.5 if arr.max() <= 1.0 else arr, 0, 255).astype(np.uint8)
        return arr
    if isinstance(src, Image.Image):
        im = src
    elif isinstance(src, (str, os.PathLike)):
        im = open_image(src, max_pixels, what)
    else:
        raise InputError(f"{what} must be a path, PIL image or (H, W, 4) array, got {type(src).__name__}")
    if im.size[0] * im.size[1] > max_pixels:
        raise InputError(f"{what} has {im.size[0]}x{im.size[1]} pixels, over the limit of {max_pixels:,}")
    if "A" not in im.getbands() and "transparency" not in im.info:
        raise InputError(f"{what} has no transparency; paint strokes on a transparent picture (an RGBA PNG), or "
                         "use --semantic labels for a full label map")
    return np.asarray(im.convert("RGBA"))


def read_scribbles(src: Any, size: tuple[int, int], what: str = "scribbles",
                   max_pixels: int = 64_000_000) -> np.ndarray:
    """(H, W) int64 seeds at ``size`` (width, height): the packed colour where painted, -1 elsewhere.

    A picture of another size is resized with nearest neighbour (a warning when its shape differs from the
    picture's, as a stroke picture of another photo would; a smaller or larger copy of the same shape is the
    normal case, the photo painted at its own size and stylised at ``--size``); colours without an inside (a
    stroke's antialiased rim) join the nearest stroke colour. InputError when
    nothing is painted or more than ``MAX_COLORS`` colours are."""
    arr = _rgba(src, what, max_pixels)
    if (arr.shape[1], arr.shape[0]) != tuple(size):  # painted on the full photo, used at --size: silent
        if abs(arr.shape[1] / arr.shape[0] / (size[0] / size[1]) - 1) > ASPECT_TOLERANCE:
            log.warning("%s is %dx%d, another shape than the picture (%dx%d): stretched to fit (nearest "
                        "neighbour)", what, arr.shape[1], arr.shape[0], *size)
        arr = np.asarray(Image.fromarray(arr, mode="RGBA").resize((size[0], size[1]), Image.Resampling.NEAREST))
    painted = arr[..., 3] >= OPAQUE
    if not painted.any():
        raise InputError(f"{what} has no paint: every pixel is transparent; paint at least one stroke per region "
                         "you want (opaque colour on a transparent picture)")
    full = np.where(painted, pack_rgb(arr[..., :3]), -1)  # (H, W) packed colours, -1 where nothing is painted
    colors, counts = np.unique(full[painted], return_counts=True)
    main = _stroke_colors(full, colors, counts)
    if len(main) > MAX_COLORS:
        raise InputError(f"{what} paints {len(main)} colours; at most {MAX_COLORS} regions can be painted")
    nearest = main[np.argmin(((_rgb(colors)[:, None] - _rgb(main)[None]) ** 2).sum(-1), axis=1)]  # per colour used
    seeds = np.full(painted.shape, -1, dtype=np.int64)
    seeds[painted] = nearest[np.searchsorted(colors, full[painted])]
    return seeds


def _rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) packed colours → (N, 3) int64."""
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.int64)


def _stroke_colors(full: np.ndarray, colors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The colours painted as strokes: those with a pixel whose 8 neighbours share its colour (a brush's inside);
    a stroke's antialiased rim, one or two pixels wide, has none. Strokes all too thin for an inside: the colours of
    at least ``STRAY_SHARE`` of the paint."""
    p = np.pad(full, 1, constant_values=-2)
    h, w = full.shape
    inside = full >= 0
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inside &= p[dy : dy + h, dx : dx + w] == full
    kept = np.unique(full[inside])
    return kept if len(kept) else colors[counts >= STRAY_SHARE * counts.sum()]


# ----------------------------------------------------------------------------- growing
def _grid_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(h, w) of the working grid for an image of ``size`` (width, height)."""
    s = min(1.0, side / max(size))
    return max(8, round(size[1] * s)), max(8, round(size[0] * s))


def describe(encode: Encode, img: Image.Image, hw: tuple[int, int], opt: GrowOptions) -> torch.Tensor:
    """(h·w, D) pixel descriptors on the grid: deep features (PCA), colour, position; each part weighted."""
    s = opt.describe_side / max(img.size)
    small = img.convert("RGB").resize((max(16, round(img.size[0] * s / 8) * 8), max(16, round(img.size[1] * s / 8)
                                                                                       * 8)), Image.Resampling.BILINEAR)
    feats = encode(to_tensor(small).float(), opt.taps)
    deep = []
    for t in opt.taps:
        f = feats[t].float().cpu()
        f = f / f.pow(2).mean(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-6)
        deep.append(F.interpolate(f, size=hw, mode="bilinear", align_corners=False)[0].flatten(1).T)  # (hw, C)
    d = torch.cat(deep, dim=1)
    d = d - d.mean(0)
    if 0 < opt.pca < d.shape[1]:
        _, vecs = torch.linalg.eigh(d.T @ d)  # exact and deterministic (a randomised PCA would not be)
        d = d @ vecs[:, -opt.pca :]  # (hw, pca): the leading components
    d = d / d.pow(2).sum(1).mean().sqrt().clamp_min(1e-6)  # unit mean square norm
    px = F.interpolate(to_tensor(img.convert("RGB")).float(), size=hw, mode="area")[0].flatten(1).T  # (hw, 3)
    yuv = px @ torch.tensor([[0.299, -0.14713, 0.615], [0.587, -0.28886, -0.51499], [0.114, 0.436, -0.10001]])
    yuv = (yuv - yuv.mean(0)) / yuv.std(0).clamp_min(0.02) / 3**0.5
    ys, xs = torch.meshgrid(torch.arange(hw[0]), torch.arange(hw[1]), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).float() / max(hw) * 2  # about unit mean square spread
    return torch.cat([opt.deep * d, opt.color * yuv, opt.position * pos], dim=1)


def _seed_grid(seeds: np.ndarray, hw: tuple[int, int], ids: list[int]) -> torch.Tensor:
    """(K, h·w) share of each grid cell painted with each region's colour."""
    planes = [F.interpolate(torch.from_numpy(seeds == i).float()[None, None], size=hw, mode="area") for i in ids]
    return torch.cat(planes, 1)[0].flatten(1)


def _training_set(desc: torch.Tensor, painted: torch.Tensor, samples: int, g: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descriptors (n, D), regions (n,) and weights (n,) of the painted grid pixels, at most ``samples`` of each
    region (drawn with ``g``; 0: all); each region weighs 1 in all."""
    xs, ys, ws = [], [], []
    for k, plane in enumerate(painted):
        idx = torch.nonzero(plane >= 0.5).flatten()
        if len(idx) == 0:  # a stroke thinner than a grid cell: its most painted cells
            idx = torch.topk(plane, min(4, int((plane > 0).sum()))).indices
        if 0 < samples < len(idx):  # a grown region: a random sample of it teaches as much, faster
            idx = idx[torch.randperm(len(idx), generator=g)[:samples]]
        xs.append(desc[idx])
        ys.append(torch.full((len(idx),), k))
        ws.append(torch.full((len(idx),), 1.0 / len(idx)))
    return torch.cat(xs), torch.cat(ys), torch.cat(ws)


def classify(desc: torch.Tensor, painted: torch.Tensor, opt: GrowOptions) -> torch.Tensor:
    """(K, h·w) memberships: a one-hidden-layer network fitted to the painted pixels (``painted``: (K, h·w) share
    of each cell painted with each region), seeded, so the same strokes always grow the same regions."""
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.enable_grad():
        x, y, w = (t.clone() for t in _training_set(desc, painted, opt.samples, g))
        d, k = x.shape[1], painted.shape[0]
        params = [(torch.randn(d, opt.hidden, generator=g) / d**0.5).requires_grad_(),
                  torch.zeros(opt.hidden, requires_grad=True),
                  (torch.randn(opt.hidden, k, generator=g) / opt.hidden**0.5).requires_grad_(),
                  torch.zeros(k, requires_grad=True)]

        def logits(z: torch.Tensor) -> torch.Tensor:
            return F.gelu(z @ params[0] + params[1]) @ params[2] + params[3]  # (n, K)

        adam = torch.optim.Adam(params, lr=opt.lr, weight_decay=opt.weight_decay)
        for _ in range(opt.iters):
            loss = (F.cross_entropy(logits(x), y, reduction="none") * w).sum() / w.sum()
            adam.zero_grad()
            loss.backward()
            adam.step()
        with torch.no_grad():
            return torch.softmax(logits(desc.clone()), dim=1).T.contiguous()


def reach(mask: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """(K, h, w) bool: the cells of ``mask`` (K, h, w) joined to a cell of ``sources`` through ``mask`` (8-connected),
    a flood fill per plane."""
    inside = mask.float()
    got = (sources & mask).float()
    while True:  # each pass grows the filled part by a ring; it stops when a pass adds nothing
        grown = F.max_pool2d(got, 3, stride=1, padding=1) * inside
        if torch.equal(grown, got):
            return got.bool()
        got = grown


def components(mask: torch.Tensor) -> torch.Tensor:
    """(K, h, w) int64: each cell of ``mask`` (K, h, w) numbered by its 8-connected part (the largest
    1 + flat index of the part's cells), 0 outside the mask."""
    inside = mask.float()
    h, w = mask.shape[-2:]
    ids = (torch.arange(1, h * w + 1, dtype=torch.float32).view(1, h, w) * inside)  # exact below 2**24 cells
    while True:  # each pass spreads the largest id a ring further; it stops when a pass changes nothing
        grown = F.max_pool2d(ids, 3, stride=1, padding=1) * inside
        if torch.equal(grown, ids):
            return ids.long()
        ids = grown


def _islands(cut_off: torch.Tensor, region: torch.Tensor, after: torch.Tensor, opt: GrowOptions) -> torch.Tensor:
    """(K, h, w) bool: the parts of ``cut_off`` (K, h, w) that are islands. ``region`` (h, w): each cell's most
    likely region; ``after`` (h, w): its most likely region once the cut-off parts drop theirs."""
    parts = components(cut_off)  # (K, h, w)
    sizes = torch.stack([torch.bincount(p.flatten(), minlength=p.numel() + 1) for p in parts])  # (K, hw + 1)
    small = (sizes.gather(1, parts.flatten(1)).view_as(parts) < opt.island * region.numel()) & cut_off
    out = small.clone()
    for r, pid in torch.nonzero((sizes >= opt.island * region.numel()) & (torch.arange(sizes.shape[1]) > 0)):
        part = parts[r] == pid  # (h, w)
        ring = F.max_pool2d(part[None].float(), 3, stride=1, padding=1)[0].bool() & ~part
        nxt = torch.bincount(after[part], minlength=cut_off.shape[0]).argmax()
        if ring.any() and (region[ring] == nxt).float().mean() >= opt.enclosed:
            out[r] |= part
    return out


def connect(probs: torch.Tensor, painted: torch.Tensor, opt: GrowOptions | None = None) -> torch.Tensor:
    """(K, h, w) memberships where each region's islands — parts of its most-likely cells that none of its strokes
    reach through it, and that another region surrounds or that are small (``_islands``) — no longer count for it:
    those cells take their next region. ``painted`` (K, h, w): the share of each cell painted with each region."""
    opt = opt or GrowOptions()
    k = probs.shape[0]
    region = probs.argmax(0)  # (h, w)
    mask = F.one_hot(region, k).permute(2, 0, 1).bool()  # (K, h, w): each cell's most likely region
    cut_off = mask & ~reach(mask, painted > 0)  # (K, h, w)
    after = probs.masked_fill(cut_off, 0.0).argmax(0)  # (h, w)
    probs = probs.masked_fill(_islands(cut_off, region, after, opt), 0.0)
    return probs / probs.sum(0, keepdim=True).clamp_min(1e-12)  # every cell keeps other regions' memberships > 0


def grow(encode: Encode, img: Image.Image, seeds: np.ndarray, opt: GrowOptions | None = None) -> np.ndarray:
    """(H, W) labels (the seeds' packed colours) covering all of ``img``, grown from ``seeds`` (``read_scribbles``)."""
    opt = opt or GrowOptions()
    ids = [int(v) for v in np.unique(seeds) if v >= 0]
    if not ids:
        raise ValueError("no painted pixel to grow from (read the strokes with read_scribbles)")
    if len(ids) == 1:
        return np.full(seeds.shape, ids[0], dtype=np.int64)
    hw = _grid_size(img.size, opt.side)
    with torch.inference_mode():
        desc = describe(encode, img, hw, opt)
        painted = _seed_grid(seeds, hw, ids)
        probs = classify(desc, painted, opt)  # (K, hw)
        for _ in range(opt.rounds - 1):  # the confident pixels join the strokes: a region is more than a stroke
            sure = probs.max(0).values > opt.confident  # (hw,)
            grown = F.one_hot(probs.argmax(0), len(ids)).T.float() * sure  # (K, hw)
            probs = classify(desc, torch.maximum(painted, grown), opt)
        probs = probs.view(len(ids), *hw)
        if opt.connected:  # a part of a region cut off from its strokes is not that region
            probs = connect(probs, painted.view(len(ids), *hw), opt)
        probs = probs[None]  # (1, K, h, w)
        if opt.smooth > 0:  # neighbours vote: fewer one-cell islands
            probs = FN.gaussian_blur(probs, opt.smooth)
        lab = G.refine(img, probs, "guided", opt.guide_radius, opt.guide_eps, opt.side)
    labels = np.asarray(ids, dtype=np.int64)[lab]
    return np.where(seeds >= 0, seeds, labels)


__all__ = ["GrowOptions", "MAX_COLORS", "classify", "components", "connect", "describe", "grow", "reach",
           "read_scribbles"]
