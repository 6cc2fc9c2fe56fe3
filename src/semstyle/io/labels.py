"""Label maps in every format people bring, read into one integer map.

- single-channel integer images (8-bit ``L``, 16-bit ``I;16``, 32-bit ``I``): the value is the label;
- palette PNGs (``P``) and RGB/RGBA colour maps: the label is the colour, packed as
  ``0xRRGGBB`` so that the same colour means the same region in the content's and the style's
  map. Antialiased or JPEG-compressed edges are snapped to the colours really used.

An optional names file maps labels to names: JSON (``{"1": "sky", "#0000ff": "water"}``) or
text lines ``<label> <name>``, where a label is an integer or a ``#rrggbb`` colour.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle.errors import InputError
from semstyle.io.images import ImageInput, load_label_source

# The Deep Photo Style Transfer palette, for readable names of colour labels.
DPST_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (0, 0, 255), "green": (0, 255, 0), "black": (0, 0, 0), "white": (255, 255, 255),
    "red": (255, 0, 0), "yellow": (255, 255, 0), "grey": (128, 128, 128),
    "lightblue": (0, 255, 255), "purple": (255, 0, 255),
}  # fmt: skip

MIN_COLOR_SHARE = 0.002  # a colour covering less than this share of pixels is an edge artefact
ASPECT_TOLERANCE = 0.03  # relative aspect-ratio difference tolerated between a map and its image


@dataclass
class LabelMap:
    """An integer label per pixel, with optional names."""

    labels: np.ndarray  # (H, W) int64
    names: dict[int, str] = field(default_factory=dict)  # label → human name
    from_colors: bool = False  # labels are packed RGB colours

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.labels.shape[1], self.labels.shape[0]

    def unique(self) -> list[int]:
        return [int(v) for v in np.unique(self.labels)]

    def name(self, label: int) -> str:
        if label in self.names:
            return self.names[label]
        if self.from_colors:
            return f"#{label:06x}"
        return str(label)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 → (...) int64 0xRRGGBB."""
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def unpack_rgb(label: int) -> tuple[int, int, int]:
    return (label >> 16) & 255, (label >> 8) & 255, label & 255


def snap_colors(rgb: np.ndarray, min_share: float = MIN_COLOR_SHARE) -> np.ndarray:
    """Snap every pixel of an (H, W, 3) colour map to the nearest colour really used.

    A colour is "really used" when it covers at least ``min_share`` of the pixels; the rest
    (antialiased edges, JPEG noise) take the nearest used colour. Returns (H, W) packed labels.
    """
    packed = pack_rgb(rgb)  # (H, W)
    colors, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    keep = counts >= max(1, min_share * packed.size)
    if not keep.any():  # pathological noise: keep the most common colour
        keep[np.argmax(counts)] = True
    kept = colors[keep]
    if keep.all():
        return packed
    pal = np.stack([(kept >> 16) & 255, (kept >> 8) & 255, kept & 255], axis=1).astype(np.float32)
    allc = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=1).astype(np.float32)
    d = ((allc[:, None, :] - pal[None, :, :]) ** 2).sum(-1)  # (n_colors, n_kept)
    mapping = kept[np.argmin(d, axis=1)]
    return mapping[inverse].reshape(packed.shape)


def read_names(path: str | os.PathLike) -> dict[int, str]:
    """Read a names file (JSON object or ``label name`` lines)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"names file '{p}' cannot be read ({e.__class__.__name__})") from e
    if p.suffix.lower() == ".json":
        try:
            pairs = list(json.loads(text).items())
        except (json.JSONDecodeError, AttributeError) as e:
            raise InputError(f"names file '{p}' must be a JSON object of label → name") from e
    else:
        pairs = []
        for line in text.splitlines():
            line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else line
            parts = line.replace(":", " ").split(None, 1)
            if len(parts) == 2:
                pairs.append((parts[0], parts[1].strip()))
    out: dict[int, str] = {}
    for key, name in pairs:
        out[parse_label(str(key), where=f"names file '{p}'")] = str(name)
    return out


def parse_label(key: str, where: str = "label") -> int:
    """'3' → 3; '#00ff00' → 0x00ff00; a DPST colour name ('blue') → its packed colour."""
    key = key.strip()
    if key.startswith("#") and len(key) == 7:
        try:
            return int(key[1:], 16)
        except ValueError:
            pass
    if key.lower() in DPST_COLORS:
        return int(pack_rgb(np.array(DPST_COLORS[key.lower()])))
    try:
        return int(key)
    except ValueError:
        raise InputError(f"{where}: '{key}' is not a label (an integer, #rrggbb or a colour name)") from None


def load_labels(
    src: ImageInput | LabelMap,
    max_pixels: int = 64_000_000,
    names: str | os.PathLike | dict[int, str] | None = None,
    what: str = "label map",
) -> LabelMap:
    """Read a label map from a file, PIL image, array or tensor (see the module doc)."""
    if isinstance(src, LabelMap):
        return src
    im = load_label_source(src, max_pixels, what)
    from_colors = False
    if im.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L"):
        labels = np.asarray(im).astype(np.int64)
    elif im.mode == "F":
        arr = np.asarray(im)
        if not np.all(np.isfinite(arr)) or not np.allclose(arr, np.round(arr)):
            raise InputError(f"{what} holds non-integer values; save it as an integer PNG")
        labels = arr.astype(np.int64)
    elif im.mode in ("P", "PA", "RGB", "RGBA", "LA", "CMYK", "YCbCr"):
        rgb = np.asarray(im.convert("RGB"))
        labels = snap_colors(rgb)
        from_colors = True
    else:
        raise InputError(f"{what} has unsupported mode {im.mode}; use an integer or colour PNG")
    name_map = dict(names) if isinstance(names, dict) else read_names(names) if names else {}
    if from_colors:
        for cname, col in DPST_COLORS.items():
            name_map.setdefault(int(pack_rgb(np.array(col))), cname)
    return LabelMap(labels, name_map, from_colors)


def fit_to(labels: LabelMap, size: tuple[int, int], what: str = "label map") -> LabelMap:
    """Resize (nearest) a label map to ``size`` = (W, H); refuse a different aspect ratio."""
    if labels.size == size:
        return labels
    (lw, lh), (w, h) = labels.size, size
    ratio = (lw / lh) / (w / h)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"{what} is {lw}x{lh} but its image is {w}x{h}: the aspect ratios differ by "
            f"{abs(ratio - 1) * 100:.0f}%; make the map for this image (same proportions)"
        )
    im = Image.fromarray(labels.labels.astype(np.int32), mode="I")
    arr = np.asarray(im.resize(size, Image.Resampling.NEAREST)).astype(np.int64)
    return LabelMap(arr, labels.names, labels.from_colors)


def colorize(labels: np.ndarray, from_colors: bool = False) -> Image.Image:
    """An RGB picture of a label map: colour labels keep their colour, others get a palette."""
    if from_colors:
        rgb = np.stack([(labels >> 16) & 255, (labels >> 8) & 255, labels & 255], axis=-1)
        return Image.fromarray(rgb.astype(np.uint8), mode="RGB")
    rng = np.random.default_rng(12345)
    palette = rng.integers(40, 256, size=(256, 3)).astype(np.uint8)
    palette[:12] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (255, 255, 255), (0, 0, 0),
    ]  # fmt: skip
    return Image.fromarray(palette[labels.astype(np.int64) % 256], mode="RGB")
