"""The one execution path: encode → fuse → decode in tiles, with bounded memory and no seams.

A normal image is one tile; a large one is cut into a grid. The content (padded to a multiple of 8)
is cut into tiles, each encoded with ``margin`` px of real image context per side, so its relu4_1
features away from the crop's edge equal those of the whole image (VGG19's receptive field at
relu4_1 is 68 px, ±34 around a pixel). Two passes:

1. **statistics**: encode every tile and accumulate the content's channel sums and sums of
   squares over the tile's core (global; per region with masks in semantic mode), in float64
   (one tile: its features are kept for pass 2, so nothing is encoded twice);
2. **stylise**: encode every tile again, apply AdaIN with those *global* content statistics and
   the style statistics (so every tile gets the same transform), decode the crop, and add its
   core plus a blending band of ``overlap`` px into the output with raised-cosine ramps that sum
   to one across neighbouring tiles.

Only one tile's activations exist at a time; the output is accumulated in a float32 band of one
tile row and written into a uint8 array; the colour steps (``postprocess``) then run on it in strips.
Because the decoder's receptive field (±30 px) plus the encoder's (±34 px) stay inside the margin,
the tiled result matches the one-tile result up to floating-point rounding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.networks import Networks
from semstyle.pipelines.semantic import descriptors, region_targets
from semstyle.segmentation import regions as R
from semstyle.types import Attention, Callback, Match, Regions, StyleStats, Timings, report

log = logging.getLogger(__name__)

AUTO_PIXELS = 1_500_000  # tile = 0 (auto): tile contents with more pixels than this
AUTO_TILE = 768  # tile = 0 (auto): core tile side in px
MARGIN = 96  # px of context per side around each tile (encoder ±34 px + decoder ±30 px, rounded up)
OVERLAP = 32  # px of the cross-fade between neighbouring tiles

# (fused, target, content) relu4_1 features of the whole padded image and the (H, W) of the image inside it →
# the decoded (1, 3, H, W) image: refinement replaces the plain decode with it
Decode = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor]
# the fused (after α) relu4_1 features of the whole padded image → the features to decode (video's temporal carry)
FeatureHook = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: core tile side, context margin and blend band, all in px."""

    tile: int
    margin: int = MARGIN
    overlap: int = OVERLAP


def whole(size: tuple[int, int]) -> TilePlan:
    """The plan of an untiled run: one tile covering the (W, H) image."""
    return TilePlan(tile=8 * math.ceil(max(size) / 8))


def tile_plan(tile: int, size: tuple[int, int], refine: int = 0) -> TilePlan | None:
    """The plan for a (resized) content of ``size`` = (W, H) under config ``tile``; None = one tile.

    ``tile`` = -1 never tiles, 0 tiles contents over ``AUTO_PIXELS`` in ``AUTO_TILE`` px tiles,
    N > 0 tiles contents whose longer side exceeds N in N px tiles (rounded down to a multiple of 8).
    """
    w, h = size
    if tile < 0:
        return None
    if tile == 0:
        if w * h <= AUTO_PIXELS:
            return None
        if refine:
            log.warning("refinement needs the whole image: not tiling %dx%d (set tile to force it)", w, h)
            return None
        return TilePlan(AUTO_TILE)
    if max(w, h) <= tile:
        return None
    side = max(64, tile - tile % 8)
    if refine:
        raise InputError("refinement works on the whole image and cannot be tiled; drop --refine or use --tile -1")
    return TilePlan(side)


def cuts(length: int, tile: int) -> list[int]:
    """Boundaries 0 = c_0 < … < c_n = length of n ≈ length/tile cores, each a multiple of 8."""
    n = max(1, math.ceil(length / tile))
    blocks = length // 8
    return [8 * round(i * blocks / n) for i in range(n + 1)]


def ramp(lo: int, hi: int, a: int, b: int, half: int, length: int) -> np.ndarray:
    """Weights over [lo, hi) for core [a, b): raised-cosine fades over [a−half, a+half) and
    [b−half, b+half) (none at the image's edges), so the weights of neighbouring cores sum to 1."""
    x = np.arange(lo, hi, dtype=np.float64) + 0.5
    if half <= 0:  # no cross-fade: each pixel belongs to one core
        return ((x >= a) & (x < b)).astype(np.float32)
    w = np.ones_like(x)
    if a > 0:
        t = np.clip((x - (a - half)) / (2 * half), 0, 1)
        w *= 0.5 - 0.5 * np.cos(np.pi * t)
    if b < length:
        t = np.clip((x - (b - half)) / (2 * half), 0, 1)
        w *= 0.5 + 0.5 * np.cos(np.pi * t)
    return w.astype(np.float32)


def feature_masks(labels: np.ndarray, ids: Sequence[int], feather: float) -> torch.Tensor:
    """``regions.region_masks`` of (H, W) labels padded to multiples of 8, at (H/8, W/8)."""
    h, w = labels.shape
    if h % 8 or w % 8:
        raise ValueError(f"labels must be padded to multiples of 8, got {labels.shape}")
    return R.region_masks(labels, list(ids), (h // 8, w // 8), feather)


class _Moments:
    """Float64 running sums for global (and, with masks, per-region) channel statistics."""

    def __init__(self) -> None:
        self.sums: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, feat: torch.Tensor, masks: torch.Tensor) -> None:
        got = FN.masked_moments(feat.double(), masks.double())
        old = self.sums.get(name)
        self.sums[name] = list(got) if old is None else [a + b for a, b in zip(old, got)]

    def stats(self, name: str, unbiased: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, K, C, 1, 1) mean and std, as ``functional.masked_mean_std`` of the whole feature map."""
        total, s, ss = self.sums[name]
        mean, std = FN.stats_from_moments(total, s, ss, unbiased=unbiased)
        return mean.float(), std.float()


@dataclass
class _Fusion:
    """What pass 2 applies to every tile's features."""

    c_mean: torch.Tensor  # (1, K, C, 1, 1) content statistics (K = 1: global)
    c_std: torch.Tensor
    s_mean: torch.Tensor  # target statistics, same shapes
    s_std: torch.Tensor
    soft: torch.Tensor | None = None  # (1, K, Hf, Wf) soft masks over the whole padded image; None: global
    keep: torch.Tensor | None = None  # (K,) regions whose features stay unchanged

    def __call__(self, feat: torch.Tensor, fy: slice, fx: slice) -> torch.Tensor:
        if self.soft is None:
            return FN.renormalize(feat, self.c_mean[:, 0], self.c_std[:, 0], self.s_mean[:, 0], self.s_std[:, 0])
        masks = self.soft[:, :, fy, fx].to(feat.device)
        return FN.region_adain_from_stats(feat, masks, self.c_mean, self.c_std, self.s_mean, self.s_std, self.keep)


def _grid(hp: int, wp: int, plan: TilePlan) -> list[tuple[int, int, int, int]]:
    ys, xs = cuts(hp, plan.tile), cuts(wp, plan.tile)
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


def _crop(a: int, b: int, margin: int, length: int) -> tuple[int, int]:
    return max(0, a - margin), min(length, b + margin)


@dataclass(frozen=True)
class Fuse:
    """How to fuse: the styles, their weights, α and (semantic mode) the regions and their rules."""

    styles: Sequence[StyleStats]
    weights: Sequence[float]
    alpha: float
    regions: Regions | None = None  # None: global AdaIN (interpolated by weight)
    unmatched: str = "nearest"  # content label missing from a style: nearest | global | keep
    feather: float = 2.0  # std (feature px) of the blur of region borders
    attention: Attention | None = None  # None: each region takes its matched style region; else attention fusion


def stylize_array(
    nets: Networks,
    content: np.ndarray,  # (H, W, 3) uint8, the resized content
    fuse: Fuse,
    plan: TilePlan | None = None,  # None: one tile
    decode: Decode | None = None,  # one tile only: replaces decode (refinement)
    callback: Callback | None = None,
    timings: Timings | None = None,  # gets "encode" (pass 1), "decode" (pass 2) or "refine"
    features: FeatureHook | None = None,  # one tile only: transforms the fused features before decoding
) -> tuple[np.ndarray, dict[int, Match]]:
    """Stylise ``content`` tile by tile (see the module docstring); returns the (H, W, 3) uint8 result
    and, in semantic mode, which style region each content region took."""
    h, w = content.shape[:2]
    padded, _ = FN.pad_to_multiple(content)
    hp, wp = padded.shape[:2]
    plan = plan or whole((w, h))
    tiles = _grid(hp, wp, plan)
    if (decode is not None or features is not None) and len(tiles) > 1:
        raise ValueError("a custom decode (refinement) or feature hook (video) needs the whole image as one tile")
    if len(tiles) > 1:
        log.info("tiling %dx%d into %d tiles of ≤ %d px (+%d px context)", w, h, len(tiles), plan.tile, plan.margin)

    # 1. masks at feature resolution: one all-ones "region" for the global statistics, the hard and soft labels
    regions = fuse.regions
    ids: list[int] = []
    masks: dict[str, torch.Tensor] = {"global": torch.ones(1, 1, hp // 8, wp // 8)}
    if regions is not None:
        ids = [int(v) for v in np.unique(regions.content)]
        labels, _ = FN.pad_to_multiple(regions.content, mode="symmetric")
        masks["hard"] = feature_masks(labels, ids, 0.0)
        masks["soft"] = feature_masks(labels, ids, fuse.feather) if fuse.feather > 0 else masks["hard"]

    t = timings if timings is not None else Timings()
    with torch.inference_mode(), t("encode"):
        # 2. pass 1: whole-image content statistics, summed over the tiles' cores
        moments, kept = _Moments(), None
        for i, (y0, y1, x0, x1) in enumerate(tiles):
            (cy0, cy1), (cx0, cx1) = _crop(y0, y1, plan.margin, hp), _crop(x0, x1, plan.margin, wp)
            feat = _encode(nets, padded, cy0, cy1, cx0, cx1)
            kept = feat if len(tiles) == 1 else None
            core = feat[:, :, (y0 - cy0) // 8 : (y1 - cy0) // 8, (x0 - cx0) // 8 : (x1 - cx0) // 8].cpu()
            fy, fx = slice(y0 // 8, y1 // 8), slice(x0 // 8, x1 // 8)
            for name, m in masks.items():
                if name != "soft" or m is not masks.get("hard"):
                    moments.add(name, core, m[:, :, fy, fx])
            report(callback, "encode", i + 1, len(tiles))

    with torch.inference_mode(), t("refine" if decode is not None else "decode"):
        # 3. the transform every tile gets
        g_mean, g_std = moments.stats("global", unbiased=True)  # (1, 1, C, 1, 1)
        matches: dict[int, Match] = {}
        dev = nets.device
        if regions is None:
            s_mean, s_std = FN.blend_stats([e.mean for e in fuse.styles], [e.std for e in fuse.styles],
                                           list(fuse.weights))
            fusion = _Fusion(g_mean.to(dev), g_std.to(dev), s_mean.to(dev)[:, None], s_std.to(dev)[:, None])
        else:
            own_mean, own_std = moments.stats("hard")  # (1, K, C, 1, 1)
            c_desc = descriptors(own_mean, own_std, g_mean[:, 0], g_std[:, 0])
            mean, std, keep_w, matches = region_targets(
                own_mean, own_std, c_desc, ids, fuse.styles, fuse.weights, regions, fuse.unmatched, fuse.attention
            )
            c_mean, c_std = moments.stats("soft") if "soft" in moments.sums else (own_mean, own_std)
            fusion = _Fusion(c_mean.to(dev), c_std.to(dev), mean.to(dev), std.to(dev), masks["soft"],
                             keep_w > 1.0 - 1e-6)

        # 4. pass 2: encode, fuse, decode, cross-fade into the output
        canvas = _Canvas(h, w, wp)
        half = plan.overlap // 2
        for i, (y0, y1, x0, x1) in enumerate(tiles):
            (cy0, cy1), (cx0, cx1) = _crop(y0, y1, plan.margin, hp), _crop(x0, x1, plan.margin, wp)
            oy0, oy1 = max(0, y0 - half), min(hp, y1 + half)
            ox0, ox1 = max(0, x0 - half), min(wp, x1 + half)
            feat = kept if kept is not None else _encode(nets, padded, cy0, cy1, cx0, cx1)
            target = fusion(feat, slice(cy0 // 8, cy1 // 8), slice(cx0 // 8, cx1 // 8))
            fused = FN.mix(feat, target, fuse.alpha)
            if features is not None:
                fused = features(fused)
            if decode is None:
                img = nets.decode(fused)
            else:  # refinement: one tile, its result cropped to the image; pad back to the tile
                with torch.inference_mode(False):
                    img = decode(fused.clone(), target.clone(), feat.clone(), (h, w))
                img = F.pad(img, (0, (cx1 - cx0) - img.shape[-1], 0, (cy1 - cy0) - img.shape[-2]))
            piece = img.detach().clamp_(0, 1)[0].permute(1, 2, 0).cpu().numpy()  # (ch, cw, 3)
            piece = piece[oy0 - cy0 : oy1 - cy0, ox0 - cx0 : ox1 - cx0]
            wy = ramp(oy0, oy1, y0, y1, half, hp)[:, None, None]
            wx = ramp(ox0, ox1, x0, x1, half, wp)[None, :, None]
            canvas.add(piece * wy * wx, oy0, oy1, ox0, ox1)
            report(callback, "decode", i + 1, len(tiles))
        return canvas.finish(), matches


def _encode(nets: Networks, padded: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    x = torch.from_numpy(np.array(padded[y0:y1, x0:x1])).permute(2, 0, 1)[None].float().div_(255)
    return nets.encode(x)["relu4_1"]


class _Canvas:
    """The (H, W, 3) uint8 output, accumulated one tile row at a time in a float32 band: rows that
    no later tile touches are rounded and written out when the next tile row starts."""

    def __init__(self, h: int, w: int, wp: int) -> None:
        self.out = np.empty((h, w, 3), dtype=np.uint8)
        self.band = np.zeros((0, wp, 3), np.float32)  # output rows [y0, y0 + len(band)) of the padded width
        self.y0 = 0

    def add(self, piece: np.ndarray, oy0: int, oy1: int, ox0: int, ox1: int) -> None:
        if oy0 != self.y0 or not len(self.band):  # a new tile row (tiles come row by row)
            self._flush(oy0)
            keep = self.band[oy0 - self.y0 :]
            grow = np.zeros((oy1 - oy0 - len(keep), self.band.shape[1], 3), np.float32)
            self.band, self.y0 = np.concatenate([keep, grow]), oy0
        self.band[oy0 - self.y0 : oy1 - self.y0, ox0:ox1] += piece

    def _flush(self, upto: int) -> None:
        end = min(upto, self.out.shape[0])
        if end > self.y0:
            rows = self.band[: end - self.y0, : self.out.shape[1]]
            self.out[self.y0 : end] = np.clip(rows * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def finish(self) -> np.ndarray:
        self._flush(self.out.shape[0])
        return self.out


__all__ = ["Decode", "FeatureHook", "Fuse", "TilePlan", "cuts", "ramp", "stylize_array", "tile_plan", "whole"]
