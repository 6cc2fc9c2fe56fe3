"""Small public-domain demo images shipped with the package (credits in docs/ASSETS.md).

>>> from semstyle.assets import content_images, style_images
>>> [p.stem for p in content_images()]
['astronaut', 'chelsea', 'coffee']
>>> len(style_images())
4
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

SUFFIXES = (".jpg", ".jpeg", ".png")


def _images(kind: str) -> list[Path]:
    """Image files under ``assets/<kind>/``, sorted by name."""
    root = importlib.resources.files(__name__).joinpath(kind)
    # the package is installed as plain files (wheel or editable), so resources are real paths
    return sorted(Path(str(p)) for p in root.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))


def content_images() -> list[Path]:
    """The bundled content photos (astronaut, chelsea, coffee)."""
    return _images("content")


def style_images() -> list[Path]:
    """The bundled public-domain style paintings."""
    return _images("style")


__all__ = ["content_images", "style_images"]
