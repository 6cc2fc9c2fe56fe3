"""Simulated scribbles for the benchmarks: short brush strokes inside each ground-truth region, seeded.

How people paint varies, so every stroke draws its own length (4–25 % of the longest side), width (0.8–3 %),
placement (anywhere inside the region, or well inside it) and wander (a random walk of its direction). A stroke
stays inside its region, eroded by its half-width, as a careful painter's would; a region too thin for the brush
gets the thinnest stroke its interior allows. Other painters (``PAINTERS``: longer strokes, wider ones, strokes
started in the middle of the region) measure how much the results depend on the painter.

``naive_propagation`` is the issue's yardstick: each pixel takes the colour of the nearest painted pixel in
colour + position space, at a quarter of the resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from semstyle.io.labels import unpack_rgb

MIN_SHARE = 0.01  # regions smaller than this share of the picture are not painted (a person skips slivers)


@dataclass(frozen=True)
class Painter:
    """How a simulated person paints: each stroke draws its length and width from these ranges."""

    length: tuple[float, float] = (0.04, 0.25)  # stroke length, a share of the picture's longest side
    width: tuple[float, float] = (0.008, 0.03)  # brush width, the same
    middle: bool = False  # start every stroke in the middle of its region (its most eroded part), not anywhere


PAINTERS = {
    "quick": Painter(),  # the default: short strokes anywhere in the region, half of them well inside
    "long": Painter(length=(0.25, 0.5)),  # a drag across the region
    "wide": Painter(width=(0.03, 0.06)),  # a broad brush
    "middle": Painter(middle=True),  # short strokes from the region's middle
    "careful": Painter(length=(0.25, 0.5), middle=True),  # long strokes from the middle
}


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary erosion by a (2r+1)² square (separable shifted ANDs)."""
    out = mask.copy()
    for axis in (0, 1):
        for _ in range(r):
            shifted = out.copy()
            if axis == 0:
                shifted[1:] &= out[:-1]
                shifted[:-1] &= out[1:]
                shifted[0] = shifted[-1] = False
            else:
                shifted[:, 1:] &= out[:, :-1]
                shifted[:, :-1] &= out[:, 1:]
                shifted[:, 0] = shifted[:, -1] = False
            out = shifted
    return out


def _middle(inner: np.ndarray, side: int) -> np.ndarray:
    """The most eroded part of ``inner`` (eroded in steps of 1 % of ``side`` until one more step would empty it)."""
    core, r = inner, max(1, side // 100)
    while (nxt := erode(core, r)).any():
        core = nxt
    return core


def _stroke(inner: np.ndarray, rng: np.random.Generator, side: int, painter: Painter) -> list[tuple[float, float]]:
    """A random walk inside ``inner`` from a random start: the stroke's centre line."""
    deep = erode(inner, max(1, side // 40))
    pool = deep if rng.random() < 0.5 and deep.any() else inner  # well inside, or anywhere
    if painter.middle:
        pool = _middle(inner, side)
    ys, xs = np.nonzero(pool)
    k = rng.integers(len(ys))
    y, x = float(ys[k]), float(xs[k])
    pts = [(x, y)]
    length, step = rng.uniform(*painter.length) * side, max(2.0, side / 128)
    theta, walked = rng.uniform(0, 2 * math.pi), 0.0
    h, w = inner.shape
    while walked < length:
        theta += rng.normal(0, 0.25)
        for turn in (0.0, 0.6, -0.6, 1.4, -1.4):  # bend away from the border, or stop
            nx, ny = x + step * math.cos(theta + turn), y + step * math.sin(theta + turn)
            if 0 <= nx < w and 0 <= ny < h and inner[int(ny), int(nx)]:
                theta += turn
                break
        else:
            break
        x, y = nx, ny
        pts.append((x, y))
        walked += step
    return pts


def simulate(gt: np.ndarray, strokes: int, seed: int, painter: Painter = PAINTERS["quick"]) -> np.ndarray:
    """(H, W, 4) uint8 scribbles over the packed-colour label map ``gt``: ``strokes`` strokes in every region of at
    least ``MIN_SHARE``, in the region's own colour, transparent elsewhere."""
    rng = np.random.default_rng(seed)
    h, w = gt.shape
    side = max(h, w)
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    labels, counts = np.unique(gt, return_counts=True)
    for lab, n in zip(labels, counts, strict=True):
        if n < MIN_SHARE * gt.size:
            continue
        mask = gt == lab
        color = (*unpack_rgb(int(lab)), 255)
        for _ in range(strokes):
            width = rng.uniform(*painter.width) * side
            inner = erode(mask, math.ceil(width / 2))
            while not inner.any() and width > 2:
                width /= 2
                inner = erode(mask, math.ceil(width / 2))
            if not inner.any():
                inner = mask
            pts = _stroke(inner, rng, side, painter)
            r = width / 2
            if len(pts) > 1:
                draw.line(pts, fill=color, width=max(1, round(width)), joint="curve")
            for x, y in (pts[0], pts[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    out = np.asarray(canvas).copy()
    out[..., 3] = np.where(out[..., 3] >= 128, 255, 0)  # no antialiased rim: the region's colour or nothing
    return out


def naive_propagation(img: Image.Image, seeds: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(H, W) labels: every pixel the packed colour of the nearest painted pixel in colour + position space, found at
    a quarter of the resolution (colour in [0, 1] per channel, position divided by the longest side), upsampled
    with nearest neighbour; ``seeds`` as ``scribbles.read_scribbles`` gives them (-1 where nothing is painted)."""
    w, h = img.size
    hq, wq = max(1, h // 4), max(1, w // 4)
    rgb = F.interpolate(torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)[None].float() / 255,
                        size=(hq, wq), mode="area")[0]  # (3, hq, wq)
    ys, xs = torch.meshgrid(torch.arange(hq) / max(hq, wq), torch.arange(wq) / max(hq, wq), indexing="ij")
    desc = torch.cat([rgb, ys[None], xs[None]]).flatten(1).T  # (hq·wq, 5)
    idx = np.flatnonzero(seeds.ravel() >= 0)  # painted pixels → the quarter-resolution cells they fall in
    cells, first = np.unique((idx // w * hq // h) * wq + idx % w * wq // w, return_index=True)
    ref, ref_lab = desc[cells], torch.from_numpy(seeds.ravel()[idx[first]].astype(np.int64))
    lab = torch.cat([ref_lab[torch.cdist(desc[i : i + chunk], ref).argmin(1)] for i in range(0, len(desc), chunk)])
    out = np.asarray(Image.fromarray(lab.view(hq, wq).numpy().astype(np.int32), mode="I").resize((w, h),
                                                                                                 Image.Resampling.NEAREST))
    return np.where(seeds >= 0, seeds, out.astype(np.int64))
