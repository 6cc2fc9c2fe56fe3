"""Training images: loaded once into memory, sampled by a generator seeded per step.

Sampling depends only on (seed, step, rank), never on hidden iterator state, so a resumed run
draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semstyle.errors import InputError
from semstyle.io.files import list_images
from semstyle.io.images import load_image

log = logging.getLogger(__name__)


def collect(dirs: str, exclude: set[str] | None = None) -> list[Path]:
    """Image files under the comma-separated folders (recursively), minus excluded names."""
    out: list[Path] = []
    for d in [x for x in dirs.split(",") if x]:
        root = Path(d)
        if not root.is_dir():
            raise InputError(f"training folder '{root}' does not exist")
        for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            out += [
                p
                for p in list_images(folder)
                if not exclude or p.name not in exclude and str(p.relative_to(root)) not in exclude
            ]
    if not out:
        raise InputError(f"no images found in '{dirs}'")
    return out


def read_list(path: str) -> set[str]:
    """Non-empty, non-comment lines of a text file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(f"cannot read the held-out list '{path}' ({e.strerror})") from e
    return {ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}


class ImageBank:
    """Images resized so their short side is at least ``min_side`` (and long side at most ``max_side``)."""

    def __init__(self, paths: list[Path], min_side: int, max_side: int = 768) -> None:
        self.paths = paths
        self.images: list[np.ndarray] = []
        for p in paths:
            im = load_image(p, what="training image")
            w, h = im.size
            scale = min(1.0, max_side / max(w, h))
            scale = max(scale, min_side / min(w, h))  # every image must hold a full crop
            if scale != 1.0:
                im = im.resize(
                    (max(min_side, round(w * scale)), max(min_side, round(h * scale))), Image.Resampling.BICUBIC
                )
            self.images.append(np.asarray(im))
        log.info("loaded %d images", len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    def augment(self, n: int) -> None:
        """Add ``n`` variants of every image (``style_variant``), so a small style set covers more of the
        colour and orientation statistics that unseen styles bring; variant k of image i sits at i·(n+1)+k."""
        if n <= 0:
            return
        self.images = [style_variant(im, k, n + 1) for im in self.images for k in range(n + 1)]
        self.paths = [p for p in self.paths for _ in range(n + 1)]

    def add_scales(self, factors: Sequence[float], min_side: int) -> None:
        """Add a copy of every image at each of ``factors`` (< 1: smaller, never under ``min_side`` px a side), so
        a handful of photos shows its content at several scales (the bundled photos' augmentation)."""
        extra, paths = [], []
        for im, p in zip(self.images, self.paths, strict=True):
            h, w = im.shape[:2]
            for f in factors:
                f = max(f, min_side / min(h, w))
                if f < 1:
                    size = (max(min_side, round(w * f)), max(min_side, round(h * f)))
                    extra.append(np.asarray(Image.fromarray(im).resize(size, Image.Resampling.LANCZOS)))
                    paths.append(p)
        self.images += extra
        self.paths += paths

    def crops(self, g: torch.Generator, n: int, size: int) -> tuple[torch.Tensor, list[int]]:
        """``n`` random crops (N, 3, size, size) in [0, 1] with random flips; also the image indices."""
        return random_crops(self.images, g, n, size)


def random_crops(images: list[np.ndarray], g: torch.Generator, n: int, size: int) -> tuple[torch.Tensor, list[int]]:
    """``n`` random crops (N, C, size, size) in [0, 1] of (H, W, C) uint8 ``images`` (upscaled where an image is
    smaller), flipped left-right at random; also the image indices. C may be any count: pictures stacked along the
    channels are cropped together."""
    idx = torch.randint(len(images), (n,), generator=g).tolist()
    out = []
    for i in idx:
        arr = images[i]
        h, w = arr.shape[:2]
        y = int(torch.randint(h - size + 1, (1,), generator=g)) if h > size else 0
        x = int(torch.randint(w - size + 1, (1,), generator=g)) if w > size else 0
        crop = torch.from_numpy(arr[y : y + size, x : x + size].copy()).permute(2, 0, 1).float() / 255
        if crop.shape[1:] != (size, size):
            crop = torch.nn.functional.interpolate(crop[None], size=(size, size), mode="bilinear",
                                                   align_corners=False)[0]
        if bool(torch.rand((), generator=g) < 0.5):
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out), idx


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator for one step's sampling: a pure function of (seed, step, rank)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)


def style_variant(img: np.ndarray, k: int, n: int) -> np.ndarray:
    """Variant ``k`` of ``n`` of the (H, W, 3) uint8 ``img``: its hue turned by 360·k/n degrees (a rotation of
    the chroma plane in YIQ, so luminance is kept) and the picture turned by k quarter turns; k = 0 is ``img``."""
    if k % n == 0:
        return img
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    a = 2 * np.pi * k / n
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]], np.float32)
    m = np.linalg.inv(yiq) @ rot @ yiq  # (3, 3) RGB → RGB
    out = np.clip(img.astype(np.float32) @ m.T + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.rot90(out, k % 4))
