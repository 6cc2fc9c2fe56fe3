"""Pictures for people: contact sheets, label overlays, side-by-side strips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from semstyle.io.labels import colorize


def fit(im: Image.Image, cell: int) -> Image.Image:
    """Scale ``im`` to fit a ``cell``×``cell`` square and centre it on white."""
    im = im.convert("RGB")
    scale = cell / max(im.size)
    small = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (cell, cell), "white")
    out.paste(small, ((cell - small.size[0]) // 2, (cell - small.size[1]) // 2))
    return out


def grid(
    rows: Sequence[Sequence[Image.Image | None]], cell: int = 192, pad: int = 4, titles: Sequence[str] | None = None
) -> Image.Image:
    """A grid of images (None leaves a blank cell), with optional column titles."""
    n_cols = max(len(r) for r in rows)
    top = 18 if titles else 0
    w = n_cols * cell + (n_cols + 1) * pad
    h = top + len(rows) * cell + (len(rows) + 1) * pad
    sheet = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(titles or []):
        draw.text((pad + j * (cell + pad) + 4, 3), title, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            if im is not None:
                sheet.paste(fit(im, cell), (pad + j * (cell + pad), top + pad + i * (cell + pad)))
    return sheet


def contact_sheet(
    contents: Sequence[Image.Image],
    styles: Sequence[Image.Image],
    results: Sequence[Sequence[Image.Image]],
    cell: int = 192,
) -> Image.Image:
    """Content rows × style columns, originals along the top row and the left column."""
    rows: list[list[Image.Image | None]] = [[None, *styles]]
    rows += [[c, *res] for c, res in zip(contents, results)]
    return grid(rows, cell)


def overlay(im: Image.Image, labels: np.ndarray, from_colors: bool = False, opacity: float = 0.5) -> Image.Image:
    """The image with its colourised labels blended on top, region borders drawn dark."""
    lab_img = colorize(labels, from_colors).resize(im.size, Image.Resampling.NEAREST)
    out = Image.blend(im.convert("RGB"), lab_img, opacity)
    lab = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(im.size, Image.Resampling.NEAREST))
    edge = np.zeros(lab.shape, bool)
    edge[1:] |= lab[1:] != lab[:-1]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    arr = np.asarray(out).copy()
    arr[edge] = (arr[edge] * 0.2).astype(np.uint8)
    return Image.fromarray(arr)


def side_by_side(images: Sequence[Image.Image], height: int = 256, pad: int = 4) -> Image.Image:
    """Images scaled to one height and placed left to right."""
    scaled = [im.convert("RGB").resize((max(1, round(im.size[0] * height / im.size[1])), height)) for im in images]
    out = Image.new("RGB", (sum(s.size[0] for s in scaled) + pad * (len(scaled) + 1), height + 2 * pad), "white")
    x = pad
    for s in scaled:
        out.paste(s, (x, pad))
        x += s.size[0] + pad
    return out
