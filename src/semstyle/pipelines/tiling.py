"""Stylising large images in tiles with bounded memory and no seams.

The content (padded to a multiple of 8) is cut into a grid of tiles. Each tile is encoded with
``margin`` px of real image context per side, so its relu4_1 features away from the crop's edge
equal those of the whole image (VGG19's receptive field at relu4_1 is 68 px, ±34 around a
pixel). Two passes:

1. **statistics**: encode every tile and accumulate the content's channel sums and sums of
   squares over the tile's core (global; per region with masks in semantic mode), in float64;
2. **stylise**: encode every tile again, apply AdaIN with those *global* content statistics and
   the style statistics (so every tile gets the same transform), decode the crop, and add its
   core plus a blending band of ``overlap`` px into the output with raised-cosine ramps that sum
   to one across neighbouring tiles.

Only one tile's activations exist at a time; the output is accumulated in a float32 band of
one tile row and written into a uint8 array. Because the decoder's receptive field (±30 px)
plus the encoder's (±34 px) stay inside the margin, the tiled result matches the untiled one up
to floating-point rounding.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.segmentation import regions as R

if TYPE_CHECKING:
    from semstyle.pipelines.semantic import Regions, StyleEntry
    from semstyle.pipelines.stylize import Stylizer, StylizeResult

log = logging.getLogger(__name__)

AUTO_PIXELS = 1_500_000  # tile = 0 (auto): tile contents with more pixels than this
AUTO_TILE = 768  # tile = 0 (auto): core tile side in px
MARGIN = 96  # px of context per side around each tile (encoder ±34 px + decoder ±30 px, rounded up)
OVERLAP = 32  # px of the cross-fade between neighbouring tiles
PROXY_SIDE = 1024  # semantic "auto": segment a copy of the content this size, then upscale the labels


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: core tile side, context margin and blend band, all in px."""

    tile: int
    margin: int = MARGIN
    overlap: int = OVERLAP


def tile_plan(tile: int, size: tuple[int, int], refine: int = 0) -> TilePlan | None:
    """The plan for a (resized) content of ``size`` = (W, H) under config ``tile``; None = untiled.

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
    """``regions.region_masks`` at feature resolution (labels padded to multiples of 8), built one
    region at a time so no (K, H, W) full-resolution one-hot exists; returns (1, K, H/8, W/8)."""
    h, w = labels.shape
    if h % 8 or w % 8:
        raise ValueError(f"labels must be padded to multiples of 8, got {labels.shape}")
    planes = [(labels == i).reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3), dtype=np.float32) for i in ids]
    masks = torch.from_numpy(np.stack(planes)).unsqueeze(0)
    if feather > 0:
        masks = R._gaussian_blur(masks, feather)
    return masks / masks.sum(dim=1, keepdim=True).clamp_min(1e-8)


class _Moments:
    """Float64 running sums for global (and, with masks, per-region) channel statistics."""

    def __init__(self, channels: int, k_hard: int = 0) -> None:
        self.n = 0
        self.s = torch.zeros(channels, dtype=torch.float64)
        self.ss = torch.zeros(channels, dtype=torch.float64)
        self.w = {name: torch.zeros(k_hard, 1, dtype=torch.float64) for name in ("hard", "soft")}
        self.ws = {name: torch.zeros(k_hard, channels, dtype=torch.float64) for name in ("hard", "soft")}
        self.wss = {name: torch.zeros(k_hard, channels, dtype=torch.float64) for name in ("hard", "soft")}

    def add(self, feat: torch.Tensor, masks: Mapping[str, torch.Tensor] | None = None) -> None:
        f = feat[0].flatten(1).double()  # (C, P)
        self.n += f.shape[1]
        self.s += f.sum(1)
        self.ss += (f * f).sum(1)
        for name, m in (masks or {}).items():
            mw = m[0].flatten(1).double()  # (K, P)
            self.w[name] += mw.sum(1, keepdim=True)
            self.ws[name] += mw @ f.T
            self.wss[name] += mw @ (f * f).T

    def global_stats(self, eps: float = FN.EPS) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``functional.mean_std`` of the whole feature map: (1, C, 1, 1) mean and std."""
        mean = self.s / self.n
        var = (self.ss - self.n * mean * mean) / max(self.n - 1, 1)
        return _c11(mean), _c11((var.clamp_min(0) + eps).sqrt())

    def region_stats(self, name: str, eps: float = FN.EPS) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``functional.masked_mean_std``: (1, K, C, 1, 1) mean and std per region."""
        total = self.w[name].clamp_min(1e-8)
        mean = self.ws[name] / total
        var = (self.wss[name] / total - mean * mean).clamp_min(0) + eps
        return mean.float()[None, ..., None, None], var.sqrt().float()[None, ..., None, None]


def _c11(v: torch.Tensor) -> torch.Tensor:
    return v.float().view(1, -1, 1, 1)


@dataclass
class _Fusion:
    """What pass 2 applies to every tile's features."""

    c_mean: torch.Tensor  # (1, C, 1, 1) or (1, K, C, 1, 1) content statistics
    c_std: torch.Tensor
    s_mean: torch.Tensor  # target statistics, same shapes
    s_std: torch.Tensor
    soft: torch.Tensor | None = None  # (1, K, Hf, Wf) soft masks over the whole padded image
    keep: torch.Tensor | None = None  # (K,) regions whose features stay unchanged

    def __call__(self, feat: torch.Tensor, fy: slice, fx: slice) -> torch.Tensor:
        if self.soft is None:
            return (feat - self.c_mean) / self.c_std * self.s_std + self.s_mean
        masks = self.soft[:, :, fy, fx].to(feat.device)
        out = torch.zeros_like(feat)
        for k in range(masks.shape[1]):  # one region at a time: no (K, C, h, w) tensor
            if self.keep is not None and bool(self.keep[k]):
                target = feat
            else:
                target = (feat - self.c_mean[:, k]) / self.c_std[:, k] * self.s_std[:, k] + self.s_mean[:, k]
            out += masks[:, k : k + 1] * target
        return out


def _grid(hp: int, wp: int, plan: TilePlan) -> list[tuple[int, int, int, int]]:
    ys, xs = cuts(hp, plan.tile), cuts(wp, plan.tile)
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


def _crop(a: int, b: int, margin: int, length: int) -> tuple[int, int]:
    return max(0, a - margin), min(length, b + margin)


def _encode_tile(st: Stylizer, padded: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(padded[y0:y1, x0:x1])).permute(2, 0, 1)[None].float().div_(255)
    return st.encode(x)["relu4_1"]


def _pad8(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    ph, pw = (-h) % 8, (-w) % 8
    if not (ph or pw):
        return arr
    mode = "reflect" if ph < h and pw < w else "edge"
    pads = ((0, ph), (0, pw)) + ((0, 0),) * (arr.ndim - 2)
    return np.pad(arr, pads, mode=mode)


def _resolve_regions(
    st: Stylizer, semantic: str, content_img: Image.Image, entries: Sequence[StyleEntry], mask: object,
    region_styles: Mapping[int, int] | None, content_labels: object, style_labels: Sequence[object] | None,
) -> Regions | None:
    """``semantic.resolve_labels`` with automatic co-segmentation run on a ≤ 1024 px copy."""
    from semstyle.pipelines.semantic import resolve_labels

    img = content_img
    if semantic == "auto" and mask is None and max(img.size) > PROXY_SIDE:
        s = PROXY_SIDE / max(img.size)
        img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))), Image.Resampling.BILINEAR)
    regions = resolve_labels(st, semantic, img, entries, mask, region_styles, content_labels, style_labels, None)
    if regions is not None and regions.content.shape != content_img.size[::-1]:
        lab = Image.fromarray(regions.content.astype(np.int32), mode="I").resize(content_img.size, Image.NEAREST)
        regions.content = np.asarray(lab).astype(regions.content.dtype)
    return regions


def _region_fusion(
    st: Stylizer, regions: Regions, entries: Sequence[StyleEntry], weights: Sequence[float],
    moments: _Moments, soft: torch.Tensor, ids: list[int],
) -> tuple[_Fusion, dict[int, object]]:
    """The per-region targets of ``semantic.fuse_regions``, from whole-image (tile-summed) moments."""
    from semstyle.pipelines.semantic import region_targets

    g_mean, g_std = moments.global_stats()
    own_mean, own_std = moments.region_stats("hard")  # (1, K, C, 1, 1)
    mu = ((own_mean - g_mean.unsqueeze(1)) / g_std.unsqueeze(1)).flatten(2)[0]
    sd = torch.log(own_std / g_std.unsqueeze(1)).flatten(2)[0]
    c_desc = torch.cat([mu, sd], dim=1)
    mean, std, keep_w, matches = region_targets(own_mean, own_std, c_desc, ids, entries, weights, regions, st.config)
    c_mean, c_std = moments.region_stats("soft")  # region_adain normalises with the soft masks
    dev = st.device
    fusion = _Fusion(c_mean.to(dev), c_std.to(dev), mean.to(dev), std.to(dev), soft, keep_w > 1.0 - 1e-6)
    return fusion, matches


def stylize_tiled(
    st: Stylizer,
    plan: TilePlan,
    content_img: Image.Image,
    entries: Sequence[StyleEntry],
    weights: Sequence[float],
    alpha: float,
    preserve_color: bool,
    semantic: str,
    mask: object = None,
    region_styles: Mapping[int, int] | None = None,
    content_labels: object = None,
    style_labels: Sequence[object] | None = None,
    timings: dict[str, float] | None = None,
) -> StylizeResult:
    """Stylise ``content_img`` (already resized) tile by tile; see the module docstring."""
    from semstyle.pipelines.stylize import StylizeResult

    t = dict(timings or {})
    t0 = time.perf_counter() - sum(t.values())
    cfg = st.config
    w, h = content_img.size
    padded = _pad8(np.asarray(content_img, dtype=np.uint8))
    hp, wp = padded.shape[:2]
    tiles = _grid(hp, wp, plan)
    log.info("tiling %dx%d into %d tiles of ≤ %d px (+%d px context)", w, h, len(tiles), plan.tile, plan.margin)

    # 1. regions (semantic mode): labels at full size, masks at feature resolution
    regions = _resolve_regions(st, semantic, content_img, entries, mask, region_styles, content_labels, style_labels)
    hard = soft = None
    ids: list[int] = []
    if regions is not None:
        c_lab = R.merge_small_regions(regions.content, cfg.min_region)
        regions.content = c_lab
        ids = [int(v) for v in np.unique(c_lab)]
        padded_labels = np.pad(c_lab, ((0, hp - h), (0, wp - w)), mode="symmetric")
        hard = feature_masks(padded_labels, ids, 0.0)
        soft = feature_masks(padded_labels, ids, cfg.feather) if cfg.feather > 0 else hard
    t["segment"] = time.perf_counter() - t0 - sum(t.values())

    with torch.inference_mode():
        # 2. pass 1: whole-image content statistics, summed over the tiles' cores
        moments = _Moments(st.channels, len(ids))
        for y0, y1, x0, x1 in tiles:
            (cy0, cy1), (cx0, cx1) = _crop(y0, y1, plan.margin, hp), _crop(x0, x1, plan.margin, wp)
            feat = _encode_tile(st, padded, cy0, cy1, cx0, cx1).cpu()
            core = feat[:, :, (y0 - cy0) // 8 : (y1 - cy0) // 8, (x0 - cx0) // 8 : (x1 - cx0) // 8]
            fy, fx = slice(y0 // 8, y1 // 8), slice(x0 // 8, x1 // 8)
            masks = None if hard is None else {"hard": hard[:, :, fy, fx], "soft": soft[:, :, fy, fx]}
            moments.add(core, masks)
        t["stats"] = time.perf_counter() - t0 - sum(t.values())

        # 3. the transform every tile gets
        matches: dict[int, object] = {}
        if regions is None:
            s_mean, s_std = FN.blend_stats([e.mean for e in entries], [e.std for e in entries], list(weights))
            c_mean, c_std = moments.global_stats()
            fusion = _Fusion(c_mean.to(st.device), c_std.to(st.device), s_mean, s_std)
        else:
            fusion, matches = _region_fusion(st, regions, entries, weights, moments, soft, ids)

        # 4. pass 2: encode, fuse, decode, cross-fade into the output
        canvas = _Canvas(h, w, wp)
        half = plan.overlap // 2
        for y0, y1, x0, x1 in tiles:
            (cy0, cy1), (cx0, cx1) = _crop(y0, y1, plan.margin, hp), _crop(x0, x1, plan.margin, wp)
            oy0, oy1 = max(0, y0 - half), min(hp, y1 + half)
            ox0, ox1 = max(0, x0 - half), min(wp, x1 + half)
            feat = _encode_tile(st, padded, cy0, cy1, cx0, cx1)
            fused = FN.mix(feat, fusion(feat, slice(cy0 // 8, cy1 // 8), slice(cx0 // 8, cx1 // 8)), alpha)
            img = st.decode(fused).clamp_(0, 1)[0].permute(1, 2, 0).cpu().numpy()  # (ch, cw, 3)
            piece = img[oy0 - cy0 : oy1 - cy0, ox0 - cx0 : ox1 - cx0]
            wy = ramp(oy0, oy1, y0, y1, half, hp)[:, None, None]
            wx = ramp(ox0, ox1, x0, x1, half, wp)[None, :, None]
            canvas.add(piece * wy * wx, oy0, oy1, ox0, ox1)
        out = canvas.finish()
        t["stylize"] = time.perf_counter() - t0 - sum(t.values())

    # 5. optionally restore the content's colours (statistics over the whole image, applied in strips)
    if preserve_color:
        keep_luminance_strips(out, np.asarray(content_img, dtype=np.uint8))
        t["color"] = time.perf_counter() - t0 - sum(t.values())

    return StylizeResult(
        image=Image.fromarray(out, mode="RGB"),
        content_labels=None if regions is None else regions.content,
        style_labels=[] if regions is None else regions.styles,
        from_colors=bool(regions and regions.from_colors),
        matches=matches,
        timings=t,
    )


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


_RGB2YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])


def keep_luminance_strips(out: np.ndarray, content: np.ndarray, rows: int = 256) -> None:
    """``functional.keep_luminance`` on uint8 (H, W, 3) arrays, in place, ``rows`` at a time."""
    to_yuv = _RGB2YUV.astype(np.float32)
    to_rgb = np.linalg.inv(_RGB2YUV).astype(np.float32)
    n = out.shape[0] * out.shape[1]
    sums = np.zeros((2, 2))  # [stylised, content] × [Σy, Σy²]
    for r in range(0, out.shape[0], rows):
        for i, arr in enumerate((out, content)):
            y = arr[r : r + rows].astype(np.float64) @ (_RGB2YUV[0] / 255.0)
            sums[i] += (y.sum(), (y * y).sum())
    mean = sums[:, 0] / n
    std = np.sqrt((sums[:, 1] - n * mean * mean) / max(n - 1, 1) + FN.EPS)
    for r in range(0, out.shape[0], rows):
        s_y = (out[r : r + rows].astype(np.float32) / 255.0) @ to_yuv[0]
        c_yuv = (content[r : r + rows].astype(np.float32) / 255.0) @ to_yuv.T
        c_yuv[..., 0] = (s_y - mean[0]) / std[0] * std[1] + mean[1]
        out[r : r + rows] = np.clip((c_yuv @ to_rgb.T) * 255.0 + 0.5, 0, 255).astype(np.uint8)
