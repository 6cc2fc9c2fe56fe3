"""Label maps in every format people bring, read into one integer map.

- single-channel integer images (1-bit, 8-bit ``L``, 16-bit ``I;16``, 32-bit ``I``): the value
  is the label. An 8-bit map that is really an antialiased black-and-white drawing (hundreds of
  grey levels, most of them only along edges) or a JPEG (lossy: ids drift) is read as a grey
  colour map instead;
- palette PNGs (``P``) and RGB/RGBA colour maps: the label is the colour, packed as
  ``0xRRGGBB``, so the same colour means the same region in the content's and the style's map
  whatever the palette order. Antialiased or JPEG-compressed edges are snapped to the colours
  really used (``snap_colors``).

An optional names file maps labels to names: JSON (``{"1": "sky", "#0000ff": "water"}``) or
text lines ``<label> <name>``, where a label is an integer, a ``#rrggbb`` colour or one of the
Deep Photo Style Transfer colour names (``blue``, ``lightblue``…).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semstyle.errors import InputError
from semstyle.io.images import ImageInput, load_label_source

# The Deep Photo Style Transfer palette, for readable names of colour labels.
DPST_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (0, 0, 255), "green": (0, 255, 0), "black": (0, 0, 0), "white": (255, 255, 255),
    "red": (255, 0, 0), "yellow": (255, 255, 0), "grey": (128, 128, 128),
    "lightblue": (0, 255, 255), "purple": (255, 0, 255),
}  # fmt: skip

MIN_COLOR_SHARE = 0.002  # a colour needs this share of pixels with a flat neighbourhood to be a label
COLOR_TOLERANCE = 24  # colours closer than this in every channel are one label (JPEG drift, 254 vs 255)
EDGE_RADIUS = 3  # an edge pixel takes one of the labels found within this many pixels
ASPECT_TOLERANCE = 0.03  # relative aspect-ratio difference tolerated between a map and its image
MAX_EDGE_SHARE = 0.6  # more pixels than this outside flat colour regions: not a label map
MAX_COLOR_LABELS = 256  # more flat colours than this: not a label map
GREY_LEVELS = 16  # an 8-bit map with more values than this, most of them edge-only, is a grey drawing


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
        """The labels present, sorted."""
        return [int(v) for v in np.unique(self.labels)]

    def name(self, label: int) -> str:
        """A readable name: from the names file, else ``#rrggbb`` for colours, else the number."""
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
    """0xRRGGBB → (r, g, b)."""
    return (label >> 16) & 255, (label >> 8) & 255, label & 255


def _unpack_all(packed: np.ndarray) -> np.ndarray:
    """(N,) packed colours → (N, 3) int64."""
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique with inverse (same shape as ``values``) and counts, 3-4x faster than numpy's own."""
    uniq = np.unique(values)
    inverse = np.searchsorted(uniq, values)
    return uniq, inverse, np.bincount(inverse.ravel(), minlength=len(uniq))


def _interior_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """For (H, W) indices in [0, n), how many pixels of each index have 4 neighbours of the same index."""
    p = np.pad(idx, 1, mode="edge")
    c = p[1:-1, 1:-1]
    flat = (c == p[:-2, 1:-1]) & (c == p[2:, 1:-1]) & (c == p[1:-1, :-2]) & (c == p[1:-1, 2:])
    return np.bincount(idx[flat], minlength=n)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1)² square, separably with shifted ORs."""
    out = mask.copy()
    for _ in range(radius):
        out[1:] |= out[:-1].copy()
        out[:-1] |= out[1:].copy()
    for _ in range(radius):
        out[:, 1:] |= out[:, :-1].copy()
        out[:, :-1] |= out[:, 1:].copy()
    return out


def snap_colors(rgb: np.ndarray, min_share: float = MIN_COLOR_SHARE, tol: int = COLOR_TOLERANCE) -> np.ndarray:
    """Snap every pixel of an (H, W, 3) colour map to one of the colours really used.

    1. A colour is *really used* when at least ``min_share``/5 of the pixels (and at least one)
       have it with all four neighbours the same colour: flat regions qualify, the thin bands
       of intermediate colours along antialiased or blurred edges do not, whatever their count.
    2. Used colours closer than ``tol`` in every channel are one label (JPEG drift, 254 vs 255);
       the label is the Deep Photo Style Transfer palette colour within ``tol`` of the group if
       there is one, else the group's most frequent colour. Only such colours appear in the result.
    3. Every other pixel takes, among the labels found within ``EDGE_RADIUS`` pixels of it, the
       one nearest in colour (the nearest label overall when none is that close).

    Returns (H, W) packed ``0xRRGGBB`` labels.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got shape {rgb.shape}")
    packed = pack_rgb(rgb)
    colors, inverse, counts = _unique_inverse(packed)
    if len(colors) == 1:
        return packed
    interior = _interior_counts(inverse, len(colors))
    need = max(1, math.ceil(min_share * packed.size / 5))
    cand = [int(i) for i in np.argsort(-interior, kind="stable") if interior[i] >= need]
    if not cand:  # noise everywhere: keep the most common colour
        cand = [int(np.argmax(counts))]
    rgb_of = _unpack_all(colors)
    groups = _group_colors(cand, rgb_of, tol)
    centres = _group_centres(groups, colors, counts, rgb_of, tol)
    owner = np.full(len(colors), -1, dtype=np.int64)  # colour index → group index
    for j, g in enumerate(groups):
        owner[g] = j
    # colours within tolerance of a group join it (JPEG noise inside flat regions)
    cent_rgb = _unpack_all(np.array(centres, dtype=np.int64))
    cheb = np.abs(rgb_of[:, None, :] - cent_rgb[None, :, :]).max(-1)  # (n_colors, K)
    close = (owner < 0) & (cheb.min(1) <= tol)
    owner[close] = cheb[close].argmin(1)
    lab = owner[inverse]  # (H, W), -1 on edge pixels
    edge = lab < 0
    if edge.mean() > MAX_EDGE_SHARE:
        raise InputError(
            f"{edge.mean():.0%} of the colour label map is not flat colour regions; a label map paints "
            "each region in one colour — is this a photo rather than its label map?"
        )
    if edge.any():
        lab[edge] = _nearby_nearest(rgb, lab, cent_rgb)
    return np.array(centres, dtype=np.int64)[lab]


def _group_colors(cand: list[int], rgb_of: np.ndarray, tol: int) -> list[list[int]]:
    """Step 2 of ``snap_colors``: the used colours (indices, most used first) grouped when closer than ``tol`` in
    every channel to a group's first member; InputError when there are more groups than a label map has."""
    groups: list[list[int]] = []  # indices into colors; the first member leads the group
    for i in cand:
        for g in groups:
            if np.abs(rgb_of[i] - rgb_of[g[0]]).max() <= tol:
                g.append(i)
                break
        else:
            groups.append([i])
    if len(groups) > MAX_COLOR_LABELS:
        raise InputError(
            f"the colour label map has {len(groups)} distinct flat colours; a label map has a few "
            "(one per region) — is this a photo rather than its label map?"
        )
    return groups


def _group_centres(groups: list[list[int]], colors: np.ndarray, counts: np.ndarray, rgb_of: np.ndarray,
                   tol: int) -> list[int]:
    """Each group's packed label: the DPST palette colour within ``tol`` of its leader, else its commonest colour."""
    palette = _unpack_all(np.array(sorted({int(pack_rgb(np.array(c))) for c in DPST_COLORS.values()})))
    centres = []
    for g in groups:
        gap = np.abs(palette - rgb_of[g[0]])  # (P, 3)
        near = np.flatnonzero(gap.max(1) <= tol)
        centres.append(int(pack_rgb(palette[near[np.argmin(gap[near].sum(1))]])) if len(near)
                       else int(colors[max(g, key=lambda i: counts[i])]))
    return centres


def _nearby_nearest(rgb: np.ndarray, lab: np.ndarray, cent_rgb: np.ndarray) -> np.ndarray:
    """Step 3 of ``snap_colors``: for the pixels with no label yet (``lab`` < 0), the label nearest in colour
    among those within ``EDGE_RADIUS`` pixels (the nearest overall when none is that close)."""
    edge = lab < 0
    px = rgb[edge].astype(np.int64)  # (n_edge, 3)
    best = np.full(len(px), np.inf)
    pick = np.zeros(len(px), dtype=np.int64)
    for j in range(len(cent_rgb)):
        d = ((px - cent_rgb[j]) ** 2).sum(1).astype(np.float64)
        d[~_dilate(lab == j, EDGE_RADIUS)[edge]] += 1e12  # a label not nearby only when nothing else is
        better = d < best
        best[better], pick[better] = d[better], j
    return pick


def _is_grey_drawing(values: np.ndarray) -> bool:
    """True for an 8-bit map that is an antialiased drawing: many levels, most only along edges."""
    uniq, inverse, _ = _unique_inverse(values)
    if len(uniq) <= GREY_LEVELS:
        return False
    interior = _interior_counts(inverse, len(uniq))
    return int((interior == 0).sum()) > len(uniq) // 2


_COMMENT = re.compile(r"\s+#(?![0-9a-fA-F]{6}\b).*$")


def read_names(path: str | os.PathLike) -> dict[int, str]:
    """Read a names file: a JSON object ``{label: name}`` or ``label name`` lines (``#`` comments)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"names file '{p}' cannot be read ({e.__class__.__name__})") from e
    if p.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
            pairs = list(obj.items())
        except (json.JSONDecodeError, AttributeError) as e:
            raise InputError(f"names file '{p}' must be a JSON object of label → name") from e
    else:
        pairs = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = _COMMENT.sub("", raw).strip()
            if not line or (line.startswith("#") and not re.match(r"#[0-9a-fA-F]{6}\b", line)):
                continue
            parts = line.replace(":", " ", 1).split(None, 1)
            if len(parts) != 2:
                raise InputError(f"names file '{p}' line {n}: expected '<label> <name>', got {raw.strip()!r}")
            pairs.append((parts[0], parts[1].strip()))
    out: dict[int, str] = {}
    for key, name in pairs:
        out[parse_label(str(key), where=f"names file '{p}'")] = str(name)
    return out


def parse_label(key: str, where: str = "label") -> int:
    """'3' → 3; '#00ff00' → 0x00ff00; a DPST colour name ('blue') → its packed colour."""
    key = key.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", key):
        return int(key[1:], 16)
    if key.lower() in DPST_COLORS:
        return int(pack_rgb(np.array(DPST_COLORS[key.lower()])))
    try:
        return int(key)
    except ValueError:
        raise InputError(f"{where}: '{key}' is not a label (an integer, #rrggbb or a colour name)") from None


def _color_source(src: object) -> Image.Image | None:
    """An (H, W, 3|4) uint8 array or (3, H, W) tensor given as a label map, as an RGB image."""
    arr = src.detach().cpu().numpy() if isinstance(src, torch.Tensor) else src
    if not isinstance(arr, np.ndarray) or arr.ndim != 3:
        return None
    if arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = arr.transpose(1, 2, 0)
    if arr.shape[2] not in (3, 4):
        return None
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5 if arr.max() <= 1.0 else arr, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")


def load_labels(
    src: ImageInput | LabelMap,
    max_pixels: int = 64_000_000,
    names: str | os.PathLike | dict[int, str] | None = None,
    what: str = "label map",
) -> LabelMap:
    """Read a label map from a file, PIL image, array or tensor (see the module doc)."""
    if isinstance(src, LabelMap):
        return src
    if src is None:
        raise InputError(f"{what} is missing")
    im = _color_source(src)
    if im is None:
        im = load_label_source(src, max_pixels, what)
    elif im.size[0] * im.size[1] > max_pixels:
        raise InputError(f"{what} has {im.size[0]}x{im.size[1]} pixels, over the limit of {max_pixels:,}")
    from_colors = False
    if im.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L"):
        labels = np.asarray(im).astype(np.int64)
        if im.mode == "L" and (getattr(im, "format", None) == "JPEG" or _is_grey_drawing(labels)):
            labels = snap_colors(np.repeat(np.asarray(im)[..., None], 3, axis=2))
            from_colors = True
    elif im.mode == "F":
        arr = np.asarray(im)
        if not np.all(np.isfinite(arr)) or not np.allclose(arr, np.round(arr)):
            raise InputError(f"{what} holds non-integer values; save it as an integer PNG")
        labels = arr.astype(np.int64)
    elif im.mode in ("P", "PA", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "RGBX"):
        labels = snap_colors(np.asarray(im.convert("RGB")))
        from_colors = True
    else:
        raise InputError(f"{what} has unsupported mode {im.mode}; use an integer or colour PNG")
    name_map = dict(names) if isinstance(names, dict) else read_names(names) if names else {}
    if from_colors:
        for cname, col in DPST_COLORS.items():
            name_map.setdefault(int(pack_rgb(np.array(col))), cname)
    return LabelMap(labels, name_map, from_colors)


def harmonize(content: LabelMap, style: LabelMap) -> tuple[LabelMap, LabelMap]:
    """Make two maps of the same kind use the same labels for the same colours.

    - two colour maps: a style colour the content lacks takes the content colour within
      ``COLOR_TOLERANCE`` (maps drawn or compressed separately drift by a few levels);
    - a colour map and an 8-bit integer map (a grey mask such as 0/255, or 0/1): the integer
      values are read as grey levels when that gives the two maps more labels in common.
    """
    if content.from_colors and style.from_colors:
        c_ids = np.array(content.unique(), dtype=np.int64)
        s_ids = style.unique()
        lut = {}
        for s in s_ids:
            if s in set(c_ids.tolist()):
                continue
            d = np.abs(_unpack_all(c_ids) - np.array(unpack_rgb(s))).max(1)
            if d.min() <= COLOR_TOLERANCE:
                lut[s] = int(c_ids[d.argmin()])
        if lut:
            labels = style.labels.copy()
            for s, c in lut.items():
                labels[style.labels == s] = c
            style = LabelMap(labels, style.names, True)
        return content, style
    if content.from_colors == style.from_colors:
        return content, style
    col, grey = (content, style) if content.from_colors else (style, content)
    vals = grey.unique()
    if min(vals) < 0 or max(vals) > 255:
        return content, style
    scale = 255 if set(vals) <= {0, 1} else 1
    as_grey = (grey.labels * scale) * 0x010101
    before = len(set(col.unique()) & set(vals))
    after = len(set(col.unique()) & {v * scale * 0x010101 for v in vals})
    if after <= before:
        return content, style
    converted = LabelMap(as_grey, col.names, True)
    return (content, converted) if content.from_colors else (converted, style)


def fit_to(labels: LabelMap, size: tuple[int, int], what: str = "label map") -> LabelMap:
    """Resize (nearest) a label map to ``size`` = (W, H); refuse a different aspect ratio."""
    if labels.size == size:
        return labels
    (lw, lh), (w, h) = labels.size, size
    ratio = (lw / lh) / (w / h)
    slack = ASPECT_TOLERANCE + 0.5 / min(w, h) + 0.5 / min(lw, lh)  # rounding of small sizes
    if abs(ratio - 1.0) > slack:
        raise InputError(
            f"{what} is {lw}x{lh} but its image is {w}x{h}: the aspect ratios differ ({lw / lh:.2f} vs "
            f"{w / h:.2f}, more than {ASPECT_TOLERANCE:.0%}); give a label map drawn on this image (same "
            "proportions, any size)"
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
