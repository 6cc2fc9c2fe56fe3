"""The web page's forms as plain data: what one request may ask for, the uploads, the one-line messages.

Free of any web framework and of the pipelines: ``engine`` runs a ``WebRequest``; the page (``app``), the video
and adaptation tabs and the upload guard build them and show ``user_message``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from semstyle.errors import SemstyleError

Progress = Callable[[float, str], None]
SEMANTIC_CHOICES: tuple[str, ...] = ("none", "auto", "labels", "scribbles")
PALETTE: tuple[str, ...] = ("#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f58231", "#911eb4", "#42d4f4", "#f032e6")
DECODER_CHOICES: tuple[str, ...] = ("pretrained", "finetuned", "temporal", "fast")  # "fast": the distilled model
KEEP_OUTPUTS = 64  # result PNGs kept on disk for download; older ones are deleted


class UserError(Exception):
    """A problem the user can fix; its message is shown in the page as it is."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_upload_bytes: int = 20 * 2**20  # per uploaded file
    max_pixels: int = 40_000_000  # per uploaded image, checked before it is decoded
    max_size: int = 1024  # longest side of the result (CPU time and memory grow with its square)

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError(f"--max-upload-mb must be at least 1 KB, got {self.max_upload_bytes} bytes")
        if self.max_pixels < 256:
            raise ValueError(f"--max-pixels must be at least 256, got {self.max_pixels}")
        if not 64 <= self.max_size <= 8192:
            raise ValueError(f"--max-size must be between 64 and 8192 px, got {self.max_size}")


@dataclass(frozen=True)
class Upload:
    """An uploaded (or bundled) file: where it is on the server and the name the user knows it by."""

    path: Path
    name: str

    @classmethod
    def of(cls, value: object) -> Upload | None:
        """From a path, an ``Upload`` or a Gradio file payload (a dict with ``path``/``orig_name``)."""
        if value is None or value == "":
            return None
        if isinstance(value, Upload):
            return value
        if isinstance(value, dict):
            path = value.get("path")
            if not path:
                return None
            return cls(Path(path), display_name(str(value.get("orig_name") or Path(path).name)))
        if isinstance(value, (str, os.PathLike)):
            return cls(Path(value), display_name(Path(value).name))
        raise UserError(f"unexpected upload of type {type(value).__name__}")


@dataclass(frozen=True)
class WebRequest:
    """One submission of the page's form."""

    content: Upload | None
    style: Upload | None
    semantic: str = "none"
    content_labels: Upload | None = None
    style_labels: Upload | None = None
    alpha: float = 1.0
    preserve_color: bool = False
    size: int = 512
    decoder: str = "pretrained"
    refine: int = 0
    fusion: str = "adain"  # semantic modes: "adain" or "attention"
    style_model: Upload | None = None  # an uploaded style model (semstyle adapt): it is the style
    model: str = ""  # or the name of one in the server's --models folder ("" = none)
    content_strokes: tuple[Upload, ...] = ()  # semantic "scribbles": the layers painted over the content
    style_strokes: tuple[Upload, ...] = ()  # and over the style


@dataclass
class WebResult:
    """What a run gives back to the page."""

    path: Path  # the result as a full-resolution PNG
    size: tuple[int, int]
    content_overlay: Image.Image | None = None  # regions used, drawn over the (resized) inputs
    style_overlay: Image.Image | None = None
    seconds: float = 0.0
    summary: str = ""
    scores: list[float] = field(default_factory=list)  # discriminator score per refinement round


def user_message(exc: BaseException, names: dict[str, str] | None = None) -> str:
    """One line for the page: the error's own message for user errors, a short note otherwise."""
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        return "out of memory; choose a smaller output size"
    if isinstance(exc, (UserError, SemstyleError, ValueError)):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    else:
        raw = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)  # KeyError's str() is a repr
        first = raw.strip().splitlines()[0] if raw.strip() else ""
        text = f"internal error ({type(exc).__name__}{': ' + first[:200] if first else ''}); see the server log"
    for path, name in (names or {}).items():
        text = text.replace(path, name)
    return text.replace("or raise the limit with --max-pixels", "before uploading (the limit is the server's)")


_UNSAFE_IN_NAMES = re.compile(r"[^\w\- ]+")  # what a result's file name keeps of a client's name


def display_name(name: str) -> str:
    """A client's file name as messages show it: one line of printable characters, at most 120."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in name).strip()
    return (shown[:117] + "...") if len(shown) > 120 else shown or "upload"


def safe_stem(name: str, default: str = "result") -> str:
    """A client's file name reduced to a harmless stem for a file the server writes: letters, digits,
    ``-``, ``_`` and spaces only (no separators, dots or control characters), at most 40 of them."""
    stem = _UNSAFE_IN_NAMES.sub("_", Path(name.replace("\\", "/")).stem)  # a Windows path's folders go too
    stem = stem.strip("_ ")[:40].strip("_ ")
    return stem or default


def human_bytes(n: int) -> str:
    """A byte count for messages: "1.5 MB" or "800 KB"."""
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


__all__ = ["DECODER_CHOICES", "KEEP_OUTPUTS", "Limits", "PALETTE", "Progress", "SEMANTIC_CHOICES", "Upload",
           "UserError", "WebRequest", "WebResult", "display_name", "human_bytes", "safe_stem", "user_message"]
