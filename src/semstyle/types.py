"""Record types shared by the pipeline, its callers and its front ends (a leaf: imports no semstyle module).

Shapes: ``C`` channels at relu4_1 (512 for VGG19), ``K`` regions, ``h×w`` feature pixels (image / 8).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np
import torch
from PIL import Image

# what a content region takes its statistics from: a style label, the whole style, or its own features
Match = Union[int, Literal["global", "keep"]]


@dataclass(frozen=True)
class StyleStats:
    """A style image encoded once at its own size, reused across calls (or a training crop's features)."""

    image: Image.Image | None  # the resized style image (None: features of a training batch, no image)
    feat: torch.Tensor  # (1, C, ceil(h/8), ceil(w/8)) relu4_1 features of the padded image, fp32
    mean: torch.Tensor  # (1, C, 1, 1) global channel means
    std: torch.Tensor  # (1, C, 1, 1) global channel stds


@dataclass
class Regions:
    """Label maps for one content and its styles, at the (resized) images' sizes."""

    content: np.ndarray  # (H, W) content labels
    styles: list[np.ndarray | None]  # per style: (h, w) labels, or None (use its global statistics)
    region_styles: dict[int, int] | None = None  # content label → the only style it takes
    from_colors: bool = False  # labels are packed RGB colours


@dataclass(frozen=True)
class Attention:
    """Region-level attention fusion: each content region's target statistics are the moments of an
    attention-weighted mixture of the style's region statistics (``functional.attention_weights``)."""

    temperature: float = 0.5  # softness of the descriptor similarity, relative to the mean squared distance
    prior: float = 4.0  # logit bonus for the style region with the same label (inf: that region only)


@dataclass
class RefineReport:
    scores: list[float] = field(default_factory=list)  # discriminator score per round (round 0 = start)
    objectives: list[float] = field(default_factory=list)  # generator objective per round
    best_round: int = 0  # which round's result was returned


@dataclass(frozen=True)
class StylizeRequest:
    """One call's inputs; the options (α, size, semantic mode, …) travel separately as ``StylizeOptions``."""

    content: Any  # path, PIL image, numpy array or tensor
    styles: tuple[Any, ...]  # one or more style images, or ``StyleStats`` already encoded (a clip's, once)
    style_weights: tuple[float, ...] | None = None  # one non-negative weight per style (None: from the options)
    mask: Any = None  # label map over the content: one style per region
    region_styles: Mapping[int, int] | None = None  # label → style index
    content_labels: Any = None  # semantic "labels": the content's map
    style_labels: tuple[Any, ...] | None = None  # semantic "labels": one map per style (None for a named style)
    content_scribbles: Any = None  # semantic "scribbles": the content's strokes (RGBA, transparent elsewhere)
    style_scribbles: tuple[Any, ...] | None = None  # semantic "scribbles": one stroke picture per style


@dataclass
class StylizeResult:
    """What ``Stylizer.stylize`` returns."""

    image: Image.Image  # the stylised image, same size as the (resized) content
    content: Image.Image | None = None  # the resized content the image was made from
    styles: list[Image.Image] = field(default_factory=list)  # the resized style images
    content_labels: np.ndarray | None = None  # (H, W) labels used for the content, if any
    style_labels: list[np.ndarray | None] = field(default_factory=list)  # per style image
    from_colors: bool = False  # labels are packed RGB colours (for colourising)
    matches: dict[int, Match] = field(default_factory=dict)  # content label → style label / "global" / "keep"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    refine: RefineReport | None = None  # per-round discriminator scores when refinement ran


@dataclass(frozen=True)
class ProgressEvent:
    """A step of a long call: ``stage`` ("load", "segment", "encode", "decode", "refine", …), ``step`` of ``total``."""

    stage: str
    step: int
    total: int


Callback = Callable[[ProgressEvent], None]


class Timings(dict[str, float]):
    """Seconds per named step: ``with t("encode"): …`` adds the block's wall time to ``t["encode"]``."""

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - t0


def report(callback: Callback | None, stage: str, step: int, total: int) -> None:
    """Send one progress event when a callback is set."""
    if callback is not None:
        callback(ProgressEvent(stage, step, total))


def _sequence(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def as_request(
    content: Any,
    style: Any,
    *,
    style_weights: Sequence[float] | None = None,
    mask: Any = None,
    region_styles: Mapping[int, int] | None = None,
    content_labels: Any = None,
    style_labels: Any = None,
    content_scribbles: Any = None,
    style_scribbles: Any = None,
) -> StylizeRequest:
    """A request from the API's loose arguments (one style or a list, one style label map or a list)."""
    return StylizeRequest(
        content=content,
        styles=_sequence(style),
        style_weights=None if style_weights is None else tuple(float(w) for w in style_weights),
        mask=mask,
        region_styles=None if region_styles is None else dict(region_styles),
        content_labels=content_labels,
        style_labels=None if style_labels is None else _sequence(style_labels),
        content_scribbles=content_scribbles,
        style_scribbles=None if style_scribbles is None else _sequence(style_scribbles),
    )


__all__ = [
    "Callback",
    "Match",
    "ProgressEvent",
    "RefineReport",
    "Regions",
    "StyleStats",
    "StylizeRequest",
    "StylizeResult",
    "Timings",
    "as_request",
    "report",
]
