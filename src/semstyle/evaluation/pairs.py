"""Which (content, style[, label maps]) pairs an evaluation runs on.

A pairs file has one pair a line: ``content_path style_path [content_labels style_labels]``,
whitespace-separated; blank lines and lines starting with ``#`` are ignored. Relative paths
are taken relative to the ``--content``/``--style`` folders when those are given (content and
its labels from the content folder, style and its labels from the style folder), else relative
to the pairs file's folder. Paths with spaces can be quoted (shell-style).
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from semstyle.errors import InputError
from semstyle.io.files import list_images


@dataclass(frozen=True)
class Pair:
    """One content/style pair, with optional ground-truth label maps of both."""

    content: Path
    style: Path
    content_labels: Path | None = None
    style_labels: Path | None = None

    @property
    def has_labels(self) -> bool:
        return self.content_labels is not None and self.style_labels is not None

    @property
    def key(self) -> tuple[str, str]:
        """The pair's identity in the CSVs (resuming matches on it)."""
        return str(self.content), str(self.style)

    @property
    def slug(self) -> str:
        """A file-name-safe id: both stems and a short hash of both full paths."""
        h = hashlib.sha1(f"{self.content}\0{self.style}".encode()).hexdigest()[:8]
        return f"{self.content.stem[:40]}__{self.style.stem[:40]}_{h}"


def _resolve(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def read_pairs(
    path: str | Path, content_dir: str | Path | None = None, style_dir: str | Path | None = None
) -> list[Pair]:
    """Parse a pairs file (see the module doc); every file it names must exist."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read the pairs file '{path}': {e.strerror or e}") from None
    c_base = Path(content_dir) if content_dir else path.parent
    s_base = Path(style_dir) if style_dir else path.parent
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            parts = shlex.split(line)
        except ValueError as e:
            raise InputError(f"{path}:{n}: {e}") from None
        if len(parts) not in (2, 4):
            raise InputError(
                f"{path}:{n}: expected 'content style [content_labels style_labels]', got {len(parts)} fields"
            )
        c, s = _resolve(parts[0], c_base), _resolve(parts[1], s_base)
        cl = _resolve(parts[2], c_base) if len(parts) == 4 else None
        sl = _resolve(parts[3], s_base) if len(parts) == 4 else None
        for what, p in (("content", c), ("style", s), ("content label map", cl), ("style label map", sl)):
            if p is not None and not p.is_file():
                raise InputError(f"{path}:{n}: {what} '{p}' does not exist")
        pairs.append(Pair(c, s, cl, sl))
    if not pairs:
        raise InputError(f"the pairs file '{path}' lists no pairs")
    return pairs


def all_pairs(content_dir: str | Path, style_dir: str | Path) -> list[Pair]:
    """Every content × every style, ordered so that any prefix spreads over contents and styles:
    pair (i, j) comes in round (j − i) mod n_styles, so the first rounds pair each content with a
    different style."""

    found = []
    for what, d in (("content", content_dir), ("style", style_dir)):
        d = Path(d)
        if not d.is_dir():
            raise InputError(f"{what} folder '{d}' does not exist")
        imgs = list_images(d)
        if not imgs:
            raise InputError(f"{what} folder '{d}' holds no images")
        found.append(imgs)
    contents, styles = found
    order = sorted(((j - i) % len(styles), i, j) for i in range(len(contents)) for j in range(len(styles)))
    return [Pair(contents[i], styles[j]) for _, i, j in order]


def write_pairs(path: str | Path, pairs: list[Pair]) -> Path:
    """Write ``pairs`` as a pairs file with absolute paths."""
    lines = []
    for p in pairs:
        items = [p.content, p.style] + ([p.content_labels, p.style_labels] if p.has_labels else [])
        lines.append(" ".join(shlex.quote(str(Path(x).resolve())) for x in items))  # type: ignore[arg-type]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
