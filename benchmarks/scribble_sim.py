"""Simulated scribbles for the benchmarks: short brush strokes inside each ground-truth region, seeded.

How people paint varies, so every stroke draws its own length (4–25 % of the longest side), width (0.8–3 %),
placement (anywhere inside the region, or well inside it) and wander (a random walk of its direction). A stroke
stays inside its region, eroded by its half-width, as a careful painter's would; a region too thin for the brush
gets the thinnest stroke its interior allows.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from semstyle.io.labels import unpack_rgb

MIN_SHARE = 0.01  # regions smaller than this share of the picture are not painted (a person skips slivers)


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


def _stroke(inner: np.ndarray, rng: np.random.Generator, side: int) -> list[tuple[float, float]]:
    """A random walk inside ``inner`` from a random start: the stroke's centre line."""
    deep = erode(inner, max(1, side // 40))
    pool = deep if rng.random() < 0.5 and deep.any() else inner  # well inside, or anywhere
    ys, xs = np.nonzero(pool)
    k = rng.integers(len(ys))
    y, x = float(ys[k]), float(xs[k])
    pts = [(x, y)]
    length, step = rng.uniform(0.04, 0.25) * side, max(2.0, side / 128)
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


def simulate(gt: np.ndarray, strokes: int, seed: int) -> np.ndarray:
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
            width = rng.uniform(0.008, 0.03) * side
            inner = erode(mask, math.ceil(width / 2))
            while not inner.any() and width > 2:
                width /= 2
                inner = erode(mask, math.ceil(width / 2))
            if not inner.any():
                inner = mask
            pts = _stroke(inner, rng, side)
            r = width / 2
            if len(pts) > 1:
                draw.line(pts, fill=color, width=max(1, round(width)), joint="curve")
            for x, y in (pts[0], pts[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    out = np.asarray(canvas).copy()
    out[..., 3] = np.where(out[..., 3] >= 128, 255, 0)  # no antialiased rim: the region's colour or nothing
    return out
