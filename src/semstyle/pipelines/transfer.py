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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.networks import Networks
from semstyle.pipelines.fusion import Fuse, Moments, build_fusion, fusion_masks
from semstyle.types import Callback, Match, Timings, report

log = logging.getLogger(__name__)

AUTO_PIXELS = 1_500_000  # tile = 0 (auto): tile contents with more pixels than this
AUTO_TILE = 768  # tile = 0 (auto): core tile side in px
MARGIN = 96  # px of context per side around each tile (encoder ±34 px + decoder ±30 px, rounded up)
OVERLAP = 32  # px of the cross-fade between neighbouring tiles



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
    def split(self) -> str | None:
        """The decoder stage whose activation is carried (``models.decoder.STAGES``); None: none."""
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


def _grid(hp: int, wp: int, plan: TilePlan) -> list[Tile]:
    """The tiles of a padded (hp, wp) image, row by row."""
    ys, xs = cuts(hp, plan.tile), cuts(wp, plan.tile)
    m = plan.margin
    return [Tile(ys[i], ys[i + 1], xs[j], xs[j + 1], max(0, ys[i] - m), min(hp, ys[i + 1] + m),
                 max(0, xs[j] - m), min(wp, xs[j + 1] + m))
            for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


def stylize_array(
    nets: Networks,
    content: np.ndarray,  # (H, W, 3) uint8, the resized content
    fuse: Fuse,
    plan: TilePlan | None = None,  # None: one tile
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
    if len(tiles) > 1:
        log.info("tiling %dx%d into %d tiles of ≤ %d px (+%d px context)", w, h, len(tiles), plan.tile, plan.margin)

    t = timings if timings is not None else Timings()
    masks, ids = fusion_masks(fuse.regions, hp, wp, fuse.feather)
    with torch.inference_mode(), t("encode"):
        moments, kept = _statistics(nets, padded, tiles, masks, callback)  # pass 1
    with torch.inference_mode(), t("decode"):
        fusion, matches = build_fusion(moments, masks, ids, fuse, nets.device)
        canvas = _Canvas(h, w, wp)

        def fused_tile(tile: Tile) -> torch.Tensor:
            """The tile crop's features to decode: encode (or reuse), fuse, mix by α, carry."""
            feat = kept if kept is not None else _encode(nets, padded, tile)
            fused = FN.mix(feat, fusion(feat, *tile.crop(8)), fuse.alpha)
            return fused if carry is None else carry.features(fused, tile, (hp, wp))

        split = carry.split if carry is not None else None
        if split is not None:  # pass 2a: every tile up to the carried layer, which the carry collects
            assert carry is not None
            for tile in tiles:
                carry.collect(nets.decode_stage(fused_tile(tile), stop=split), tile, (hp, wp))
        for i, tile in enumerate(tiles):  # pass 2(b): decode, cross-fade into the output
            if split is not None:
                assert carry is not None
                img = nets.decode_stage(carry.activation(tile), start=split)
            else:
                img = nets.decode(fused_tile(tile))
            if len(tiles) == 1:  # untiled: the decoded picture is the output, rounded as the canvas rounds
                report(callback, "decode", 1, 1)
                return _to_uint8(img, h, w), matches
            _blend(canvas, img, tile, plan.overlap // 2, hp, wp)
            report(callback, "decode", i + 1, len(tiles))
        return canvas.finish(), matches


def _statistics(
    nets: Networks, padded: np.ndarray, tiles: Sequence[Tile], masks: dict[str, torch.Tensor],
    callback: Callback | None,
) -> tuple[Moments, torch.Tensor | None]:
    """Pass 1: whole-image content statistics summed over the tiles' cores; one tile's features are kept."""
    moments, kept = Moments(), None
    for i, tile in enumerate(tiles):
        feat = _encode(nets, padded, tile)
        kept = feat if len(tiles) == 1 else None
        core = feat[(..., *tile.core_in_crop(8))].cpu()
        for name, m in masks.items():
            if name != "soft" or m is not masks.get("hard"):
                moments.add(name, core, m[(..., *tile.core(8))])
        report(callback, "encode", i + 1, len(tiles))
    return moments, kept


def fused_features(
    nets: Networks, content: np.ndarray, fuse: Fuse, callback: Callback | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[int, Match]]:
    """The whole (padded) ``content`` as one tile: its relu4_1 features, their fusion target, the fused features
    (mixed by α) and the regions' matches — the data refinement adjusts and decodes (``pipelines.refine``)."""
    h, w = content.shape[:2]
    padded, _ = FN.pad_to_multiple(content)
    hp, wp = padded.shape[:2]
    (tile,) = _grid(hp, wp, whole((w, h)))
    masks, ids = fusion_masks(fuse.regions, hp, wp, fuse.feather)
    with torch.inference_mode():
        moments, feat = _statistics(nets, padded, [tile], masks, callback)
        assert feat is not None
        fusion, matches = build_fusion(moments, masks, ids, fuse, nets.device)
        target = fusion(feat, *tile.crop(8))
        fused = FN.mix(feat, target, fuse.alpha)
    return feat.clone(), target.clone(), fused.clone(), matches  # out of inference mode: refinement differentiates


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


def _to_uint8(img: torch.Tensor, h: int, w: int) -> np.ndarray:
    """A decoded picture (1, 3, H', W') → its top-left (h, w, 3) uint8: what ``_blend`` and ``_Canvas`` give
    for one tile (all weights 1), bit for bit, without their float32 copies."""
    x = img.detach()[0, :, :h, :w].float().clamp(0, 1).mul_(255.0).add_(0.5)  # (3, h, w), as _Canvas rounds
    return x.to(torch.uint8).cpu().permute(1, 2, 0).contiguous().numpy()  # (h, w, 3); a GPU's picture comes back


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


__all__ = ["Carry", "Fuse", "Tile", "TilePlan", "fused_features", "cuts", "ramp", "stylize_array", "tile_plan", "whole"]
