"""Regenerate the small real label maps in this folder from the bundled public-domain images.

    .venv/bin/python tests/data/make_label_maps.py

Each map is a colour segmentation of one of ``src/semstyle/assets`` (public domain / CC0; credits
in docs/ASSETS.md): the photo or painting is downscaled, blurred, clustered into a few colours by
k-means (deterministic initialisation, fixed number of rounds), the clusters ordered by brightness
and cleaned with a mode filter, then saved in the format of one of the datasets people bring
(see README.md here). Nothing from the research-only shared data is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parents[1] / "src" / "semstyle" / "assets"
WORK = 192  # longest side of the segmentation
SIDE = 96  # longest side of the saved maps
LUMA = np.array([0.299, 0.587, 0.114])

# Deep Photo Style Transfer colours, darkest cluster first (semstyle.io.labels.DPST_COLORS)
DPST = {"black": (0, 0, 0), "red": (255, 0, 0), "white": (255, 255, 255)}
IDS16 = (7, 300, 1000, 40000)  # 16-bit ids, darkest cluster first: two need the high byte
VOC = [(128, 0, 0), (0, 128, 0), (128, 128, 0)]  # WCT2-style palette colours, darkest cluster first
CLASSES = (1, 4, 8, 11)  # CamVid-style class ids (11 = void there), darkest cluster first


def segment(name: str, k: int, work: int = WORK) -> np.ndarray:
    """(H, W) cluster ids 0..k-1 of a bundled image at ``work`` px, 0 the darkest cluster."""
    im = Image.open(ASSETS / name).convert("RGB")
    scale = work / max(im.size)
    im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
    x = np.asarray(im.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64).reshape(-1, 3)
    order = np.argsort(x @ LUMA, kind="stable")
    centres = x[order[((np.arange(k) + 0.5) / k * len(x)).astype(int)]]  # luminance quantiles
    for _ in range(30):
        assign = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([x[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(k)])
    rank = np.argsort(np.argsort(centres @ LUMA, kind="stable"), kind="stable")  # 0 = darkest
    ids = rank[assign].reshape(im.size[1], im.size[0]).astype(np.uint8)
    return np.asarray(Image.fromarray(ids, mode="L").filter(ImageFilter.ModeFilter(9)))


def shrink(ids: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Nearest-neighbour downscale of a label array to ``side`` px on its longest side."""
    h, w = ids.shape
    s = side / max(h, w)
    im = Image.fromarray(ids.astype(np.uint8), mode="L")
    return np.asarray(im.resize((round(w * s), round(h * s)), Image.Resampling.NEAREST))


def dpst(name: str, out: str) -> None:
    """Antialiased RGB colour map: painted at 4x, downscaled with bilinear (DPST maps' soft edges)."""
    ids = segment(name, 3, work=4 * SIDE)
    rgb = np.array(list(DPST.values()), dtype=np.uint8)[ids]
    h, w = ids.shape
    Image.fromarray(rgb, mode="RGB").resize((w // 4, h // 4), Image.Resampling.BILINEAR).save(HERE / out)


def ids16(name: str, out: str, ids: tuple[int, ...]) -> None:
    """16-bit 'I;16' label ids (FastPhotoStyle's contentSeg/styleSeg)."""
    lab = np.array(ids, dtype=np.uint16)[shrink(segment(name, len(ids)))]
    Image.fromarray(lab).save(HERE / out)


def palette(name: str, out: str, order: list[int]) -> None:
    """Palette 'P' PNG (WCT2's *_segment): colour VOC[j] stored at palette index order[j]."""
    lab = shrink(segment(name, len(order)))
    im = Image.fromarray(np.array(order, dtype=np.uint8)[lab], mode="P")
    pal = [0] * 768
    for j, idx in enumerate(order):
        pal[3 * idx : 3 * idx + 3] = VOC[j]
    im.putpalette(pal)
    im.save(HERE / out)


def classes(name: str, out: str) -> None:
    """Mode 'L' class ids (CamVid's *annot, ADE20K's annotations)."""
    lab = np.array(CLASSES, dtype=np.uint8)[shrink(segment(name, len(CLASSES)))]
    Image.fromarray(lab, mode="L").save(HERE / out)


def main() -> None:
    dpst("content/coffee.jpg", "coffee_dpst.png")
    dpst("style/wave.jpg", "wave_dpst.png")
    ids16("content/astronaut.jpg", "astronaut_ids16.png", IDS16)
    ids16("style/the_scream.jpg", "scream_ids16.png", IDS16[1:])
    palette("content/chelsea.jpg", "chelsea_palette.png", [0, 1, 2])
    palette("style/starry_night.jpg", "starry_palette.png", [2, 0, 1])  # same colours, other indices
    classes("content/coffee.jpg", "coffee_classes.png")


if __name__ == "__main__":
    main()
