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

A clip's temporal carry (``Carry``, implemented by ``pipelines.video``) works tile by tile too: it mixes
each tile's fused features with the previous frame's, and, when it carries a decoder activation, pass 2
splits in two — every tile is decoded up to that layer and handed to the carry (which needs the whole
frame's activation before it can restore its contrast), then every tile is decoded from there on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: core tile side, context margin and blend band, all in px."""

    tile: int
    margin: int = MARGIN
    overlap: int = OVERLAP


@dataclass(frozen=True)
class Tile:
    """One tile of the padded image, in px (multiples of 8): its core [y0, y1) × [x0, x1), which it writes,
    and its crop [cy0, cy1) × [cx0, cx1), the core plus up to ``margin`` px of context, which it computes."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    def crop(self, stride: int) -> tuple[slice, slice]:
        """The crop in a map of the whole padded image at ``stride`` px per cell."""
        return slice(self.cy0 // stride, self.cy1 // stride), slice(self.cx0 // stride, self.cx1 // stride)

    def core(self, stride: int) -> tuple[slice, slice]:
        """The core in a map of the whole padded image at ``stride`` px per cell."""
        return slice(self.y0 // stride, self.y1 // stride), slice(self.x0 // stride, self.x1 // stride)

    def core_in_crop(self, stride: int) -> tuple[slice, slice]:
        """The core inside the crop's own map at ``stride`` px per cell."""
        return (slice((self.y0 - self.cy0) // stride, (self.y1 - self.cy0) // stride),
                slice((self.x0 - self.cx0) // stride, (self.x1 - self.cx0) // stride))


class Carry(Protocol):
    """What a clip carries from frame to frame (``pipelines.video``), applied tile by tile in pass 2."""

    @property
    def split(self) -> int | None:
        """The decoder layer whose output activation is carried (``Decoder.layers`` index); None: none."""
        ...

    def features(self, fused: torch.Tensor, tile: Tile, size: tuple[int, int]) -> torch.Tensor:
        """The tile's fused (1, C, h, w) relu4_1 features → those to decode; ``size`` = padded (H, W)."""
        ...

    def collect(self, act: torch.Tensor, tile: Tile, size: tuple[int, int]) -> None:
        """The tile's activation at ``split``; every tile's comes before the first ``activation``."""
        ...

    def activation(self, tile: Tile) -> torch.Tensor:
        """The carried activation over the tile's crop, to decode from ``split`` on."""
        ...


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


def _grid(hp: int, wp: int, plan: TilePlan) -> list[Tile]:
    """The tiles of a padded (hp, wp) image, row by row."""
    ys, xs = cuts(hp, plan.tile), cuts(wp, plan.tile)
    m = plan.margin
    return [Tile(ys[i], ys[i + 1], xs[j], xs[j + 1], max(0, ys[i] - m), min(hp, ys[i + 1] + m),
                 max(0, xs[j] - m), min(wp, xs[j + 1] + m))
            for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


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
    carry: Carry | None = None,  # a clip's temporal carry, tile by tile
) -> tuple[np.ndarray, dict[int, Match]]:
    """Stylise ``content`` tile by tile (see the module docstring); returns the (H, W, 3) uint8 result
    and, in semantic mode, which style region each content region took."""
    h, w = content.shape[:2]
    padded, _ = FN.pad_to_multiple(content)
    hp, wp = padded.shape[:2]
    plan = plan or whole((w, h))
    tiles = _grid(hp, wp, plan)
    if decode is not None and len(tiles) > 1:
        raise ValueError("a custom decode (refinement) needs the whole image as one tile")
    if len(tiles) > 1:
        log.info("tiling %dx%d into %d tiles of ≤ %d px (+%d px context)", w, h, len(tiles), plan.tile, plan.margin)

    t = timings if timings is not None else Timings()
    masks, ids = _masks(fuse.regions, hp, wp, fuse.feather)
    with torch.inference_mode(), t("encode"):
        moments, kept = _statistics(nets, padded, tiles, masks, callback)  # pass 1
    with torch.inference_mode(), t("refine" if decode is not None else "decode"):
        fusion, matches = _fusion(moments, masks, ids, fuse, nets.device)
        canvas = _Canvas(h, w, wp)

        def fused_tile(tile: Tile) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """(features, target, fused) of the tile's crop: encode (or reuse), fuse, mix by α, carry."""
            feat = kept if kept is not None else _encode(nets, padded, tile)
            target = fusion(feat, *tile.crop(8))
            fused = FN.mix(feat, target, fuse.alpha)
            return feat, target, fused if carry is None else carry.features(fused, tile, (hp, wp))

        split = carry.split if carry is not None else None
        if split is not None:  # pass 2a: every tile up to the carried layer, which the carry collects
            assert carry is not None
            for tile in tiles:
                carry.collect(nets.decode_stage(fused_tile(tile)[2], stop=split + 1), tile, (hp, wp))
        for i, tile in enumerate(tiles):  # pass 2(b): decode, cross-fade into the output
            if split is not None:
                assert carry is not None
                img = nets.decode_stage(carry.activation(tile), start=split + 1)
            else:
                feat, target, fused = fused_tile(tile)
                img = nets.decode(fused) if decode is None else _refined(decode, feat, target, fused, tile, (h, w))
            _blend(canvas, img, tile, plan.overlap // 2, hp, wp)
            report(callback, "decode", i + 1, len(tiles))
        return canvas.finish(), matches


def _masks(regions: Regions | None, hp: int, wp: int, feather: float) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Masks at feature resolution: one all-ones "region" for the global statistics, the hard and soft labels."""
    masks: dict[str, torch.Tensor] = {"global": torch.ones(1, 1, hp // 8, wp // 8)}
    if regions is None:
        return masks, []
    ids = [int(v) for v in np.unique(regions.content)]
    labels, _ = FN.pad_to_multiple(regions.content, mode="symmetric")
    masks["hard"] = feature_masks(labels, ids, 0.0)
    masks["soft"] = feature_masks(labels, ids, feather) if feather > 0 else masks["hard"]
    return masks, ids


def _statistics(
    nets: Networks, padded: np.ndarray, tiles: Sequence[Tile], masks: dict[str, torch.Tensor],
    callback: Callback | None,
) -> tuple[_Moments, torch.Tensor | None]:
    """Pass 1: whole-image content statistics summed over the tiles' cores; one tile's features are kept."""
    moments, kept = _Moments(), None
    for i, tile in enumerate(tiles):
        feat = _encode(nets, padded, tile)
        kept = feat if len(tiles) == 1 else None
        core = feat[(..., *tile.core_in_crop(8))].cpu()
        for name, m in masks.items():
            if name != "soft" or m is not masks.get("hard"):
                moments.add(name, core, m[(..., *tile.core(8))])
        report(callback, "encode", i + 1, len(tiles))
    return moments, kept


def _fusion(
    moments: _Moments, masks: dict[str, torch.Tensor], ids: list[int], fuse: Fuse, dev: torch.device
) -> tuple[_Fusion, dict[int, Match]]:
    """The transform every tile gets: global AdaIN (styles blended by weight) or AdaIN per region."""
    g_mean, g_std = moments.stats("global", unbiased=True)  # (1, 1, C, 1, 1)
    regions = fuse.regions
    if regions is None:
        s_mean, s_std = FN.blend_stats([e.mean for e in fuse.styles], [e.std for e in fuse.styles], list(fuse.weights))
        return _Fusion(g_mean.to(dev), g_std.to(dev), s_mean.to(dev)[:, None], s_std.to(dev)[:, None]), {}
    own_mean, own_std = moments.stats("hard")  # (1, K, C, 1, 1)
    c_desc = descriptors(own_mean, own_std, g_mean[:, 0], g_std[:, 0])
    mean, std, keep_w, matches = region_targets(
        own_mean, own_std, c_desc, ids, fuse.styles, fuse.weights, regions, fuse.unmatched, fuse.attention
    )
    c_mean, c_std = moments.stats("soft") if "soft" in moments.sums else (own_mean, own_std)
    fusion = _Fusion(c_mean.to(dev), c_std.to(dev), mean.to(dev), std.to(dev), masks["soft"], keep_w > 1.0 - 1e-6)
    return fusion, matches


def _refined(decode: Decode, feat: torch.Tensor, target: torch.Tensor, fused: torch.Tensor, tile: Tile,
             hw: tuple[int, int]) -> torch.Tensor:
    """Refinement's decode of the one tile, its result cropped to the image, padded back to the tile."""
    with torch.inference_mode(False):
        img = decode(fused.clone(), target.clone(), feat.clone(), hw)
    return F.pad(img, (0, (tile.cx1 - tile.cx0) - img.shape[-1], 0, (tile.cy1 - tile.cy0) - img.shape[-2]))


def _blend(canvas: _Canvas, img: torch.Tensor, tile: Tile, half: int, hp: int, wp: int) -> None:
    """Add the tile's decoded crop (1, 3, ch, cw) to the canvas: its core plus a ``half``-px band each side,
    weighted by raised-cosine ramps that sum to one across neighbouring tiles."""
    oy0, oy1 = max(0, tile.y0 - half), min(hp, tile.y1 + half)
    ox0, ox1 = max(0, tile.x0 - half), min(wp, tile.x1 + half)
    piece = img.detach().clamp_(0, 1)[0].permute(1, 2, 0).cpu().numpy()  # (ch, cw, 3)
    piece = piece[oy0 - tile.cy0 : oy1 - tile.cy0, ox0 - tile.cx0 : ox1 - tile.cx0]
    wy = ramp(oy0, oy1, tile.y0, tile.y1, half, hp)[:, None, None]
    wx = ramp(ox0, ox1, tile.x0, tile.x1, half, wp)[None, :, None]
    canvas.add(piece * wy * wx, oy0, oy1, ox0, ox1)


def _encode(nets: Networks, padded: np.ndarray, tile: Tile) -> torch.Tensor:
    crop = padded[tile.cy0 : tile.cy1, tile.cx0 : tile.cx1]
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None].float().div_(255)
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


__all__ = ["Carry", "Decode", "Fuse", "Tile", "TilePlan", "cuts", "ramp", "stylize_array", "tile_plan", "whole"]
