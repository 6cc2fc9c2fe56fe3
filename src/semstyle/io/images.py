"""Reading and writing images: every input kind, every pixel mode, atomic writes.

``load_image`` accepts a path, a PIL image, a numpy array or a tensor and always returns an
8-bit RGB PIL image, honouring EXIF orientation; grayscale, RGBA/LA (composited over white),
palette, CMYK and 16-bit/float inputs are converted, never rejected. Files over the pixel limit
are refused before they are decoded.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from semstyle.errors import InputError
from semstyle.io.files import OUTPUT_FORMATS, check_output_path  # re-exported: it was defined here
from semstyle.models.style_model import StyleModel, load_style_model

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor, StyleModel]  # a style model: its picture



def _check_pixels(w: int, h: int, max_pixels: int, what: str) -> None:
    if w <= 0 or h <= 0:
        raise InputError(f"{what} is empty ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise InputError(
            f"{what} has {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}; "
            "downscale it or raise the limit with --max-pixels"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB (alpha composited over white, high bit depths rescaled)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if im.mode == "F" and arr.max() <= 1.0:
            hi = 1.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def open_image(path: str | os.PathLike, max_pixels: int, what: str = "image") -> Image.Image:
    """Open and fully decode an image file, with one-line errors for every failure."""
    p = Path(path)
    label = f"{what} '{p}'"
    if not p.exists():
        raise InputError(f"{label} does not exist")
    if p.is_dir():
        raise InputError(f"{label} is a folder, not an image file")
    if p.stat().st_size == 0:
        raise InputError(f"{label} is an empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
            _check_pixels(*im.size, max_pixels, label)
            im.load()
    except InputError:
        raise
    except Image.DecompressionBombError as e:  # PIL refuses the header before our own check sees it
        found = re.search(r"\((\d+) pixels\)", str(e))
        pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or max_pixels)
        claimed = f"has {int(found[1]):,} pixels, " if found else "has "
        raise InputError(f"{label} {claimed}over the limit of {min(max_pixels, pil_limit):,}; "
                         "it is too large to decode safely") from e
    except UnidentifiedImageError as e:
        raise InputError(f"{label} is not an image file PIL can read") from e
    except PermissionError as e:
        raise InputError(f"{label} cannot be read: permission denied") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{label} is damaged or truncated ({str(e).splitlines()[0]})") from e
    return im


def load_label_source(src: ImageInput, max_pixels: int, what: str = "image") -> Image.Image:
    """Open ``src`` without changing its mode (label maps must keep their raw values)."""
    if isinstance(src, (str, os.PathLike)):
        return open_image(src, max_pixels, what)
    if isinstance(src, Image.Image):
        _check_pixels(*src.size, max_pixels, what)
        return src
    arr = src.detach().cpu().numpy() if isinstance(src, torch.Tensor) else np.asarray(src)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise InputError(f"{what} array must be 2-D (H, W), got shape {arr.shape}")
    _check_pixels(arr.shape[1], arr.shape[0], max_pixels, what)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return Image.fromarray(arr.astype(np.int32), mode="I")


def load_image(src: ImageInput, max_pixels: int = 64_000_000, what: str = "image") -> Image.Image:
    """Return ``src`` as an 8-bit RGB PIL image with EXIF orientation applied.

    Arrays are (H, W), (H, W, 1|3|4) uint8/uint16/float in [0, 1]; tensors are (3, H, W) or
    (1, 3, H, W) floats in [0, 1]. A style model file (``semstyle adapt``) gives the style picture it holds.
    """
    if isinstance(src, StyleModel):
        _check_pixels(*src.image.size, max_pixels, what)
        return src.image
    if isinstance(src, (str, os.PathLike)):
        if str(src).lower().endswith(".safetensors"):
            picture = load_style_model(src).image
            _check_pixels(*picture.size, max_pixels, what)
            return picture
        im = open_image(src, max_pixels, what)
        im = ImageOps.exif_transpose(im)
        return _to_rgb(im)
    if isinstance(src, Image.Image):
        _check_pixels(*src.size, max_pixels, what)
        return _to_rgb(ImageOps.exif_transpose(src))
    if isinstance(src, torch.Tensor):
        t = src.detach().cpu().float()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
            raise InputError(f"{what} tensor must be (3, H, W) or (1, 3, H, W), got {tuple(src.shape)}")
        arr = t.permute(1, 2, 0).numpy()
    elif isinstance(src, np.ndarray):
        arr = src
    else:
        raise InputError(f"{what} must be a path, PIL image, numpy array or tensor, got {type(src).__name__}")
    return _array_to_rgb(arr, max_pixels, what)


def _array_to_rgb(arr: np.ndarray, max_pixels: int, what: str) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"{what} array must be (H, W) or (H, W, 3|4), got shape {arr.shape}")
    _check_pixels(arr.shape[1], arr.shape[0], max_pixels, what)
    if arr.dtype == np.uint8:
        u8 = arr
    elif arr.dtype == np.uint16:
        u8 = (arr.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(f"{what} array holds NaN or infinite values")
        u8 = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise InputError(f"{what} array has unsupported dtype {arr.dtype}; use uint8, uint16 or float")
    return _to_rgb(Image.fromarray(np.ascontiguousarray(u8)))


def to_tensor(im: Image.Image) -> torch.Tensor:
    """RGB PIL image → (1, 3, H, W) float tensor in [0, 1]."""
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] → RGB PIL image."""
    if t.dim() == 4:
        t = t[0]
    arr = (t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    return Image.fromarray(arr, mode="RGB")


def resize_longest(im: Image.Image, size: int) -> Image.Image:
    """Resize so the longest side is ``size`` (0 keeps the image), keeping the aspect ratio."""
    if size <= 0 or max(im.size) == size:
        return im
    w, h = im.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def save_image(im: Image.Image, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``im`` atomically: to a temporary file in the same folder, then rename."""
    p = check_output_path(path, overwrite)
    p.parent.mkdir(parents=True, exist_ok=True)
    fmt = OUTPUT_FORMATS[p.suffix.lower()]
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.stem}.", suffix=p.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; give the output an ordinary file's mode
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
