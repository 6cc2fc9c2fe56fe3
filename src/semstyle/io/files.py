"""Image file names and folders, without decoding anything (no torch: the CLI's parser reads this)."""

from __future__ import annotations

import os
from pathlib import Path

from semstyle.errors import InputError

OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
}  # fmt: skip
IMAGE_SUFFIXES = frozenset(OUTPUT_FORMATS) | {".gif"}


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Validate an output file path before any work is done."""
    p = Path(path)
    if p.suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(
            f"unknown output extension '{p.suffix}' for '{p}'; use one of {', '.join(sorted(OUTPUT_FORMATS))}"
        )
    if p.is_dir():
        raise InputError(f"output '{p}' is a folder")
    if p.exists() and not overwrite:
        raise InputError(f"output '{p}' already exists; pass --overwrite to replace it")
    return p


__all__ = ["IMAGE_SUFFIXES", "OUTPUT_FORMATS", "check_output_path", "list_images"]
