"""Image file names and folders, without decoding anything (no torch: the CLI's parser reads this)."""

from __future__ import annotations

from pathlib import Path

OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
}  # fmt: skip
IMAGE_SUFFIXES = frozenset(OUTPUT_FORMATS) | {".gif"}


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)


__all__ = ["IMAGE_SUFFIXES", "OUTPUT_FORMATS", "list_images"]
