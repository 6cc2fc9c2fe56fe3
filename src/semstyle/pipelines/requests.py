"""The rules a stylisation request must follow, checked once before any network runs (``Stylizer`` and the CLI)."""

from __future__ import annotations

from PIL import Image

from semstyle.config import MIN_SIDE, StylizeOptions, check_style_weights
from semstyle.errors import InputError
from semstyle.types import StylizeRequest


def check_size(img: Image.Image, what: str) -> None:
    """Refuse images under ``MIN_SIDE`` px a side (after resizing): the encoder cannot see them."""
    if min(img.size) < MIN_SIDE:
        raise InputError(
            f"{what} is {img.size[0]}x{img.size[1]} after resizing; it needs at least {MIN_SIDE} px a side"
        )


def check_request(req: StylizeRequest, opts: StylizeOptions) -> tuple[float, ...]:
    """Every rule a request must follow (the options were checked when they were built); returns the
    style weights to use, one per style."""
    styles = req.styles
    if not styles:
        raise InputError("at least one style image is needed")
    weights = req.style_weights if req.style_weights is not None else opts.style_weights
    try:
        check_style_weights(weights, len(styles))
    except ValueError as e:
        raise InputError(str(e)) from None
    if opts.fusion == "attention" and req.mask is None and opts.semantic == "none":
        raise InputError("fusion 'attention' weighs the style's regions; add a semantic mode (auto, labels, segformer, "
                         "scribbles)")
    rs = req.region_styles
    if rs is not None and req.mask is None and opts.semantic == "none":
        raise InputError("region_styles needs a mask (or a semantic mode) that defines the regions")
    if rs:
        bad = [s for s in rs.values() if not 0 <= s < len(styles)]
        if bad:
            raise InputError(f"region_styles points at style {bad[0]}, but only {len(styles)} styles were given")
    if req.mask is not None and opts.semantic != "none":
        raise InputError("give either a mask (one style per region) or a semantic mode, not both")
    if opts.semantic == "labels":
        named = set((rs or {}).values())  # styles named for a label may come without a map
        given = list(req.style_labels or [])
        if (
            req.content_labels is None
            or any(i not in named for i in range(len(given), len(styles)))
            or any(s is None and i not in named for i, s in enumerate(given))
        ):
            raise InputError("--semantic labels needs --content-labels and --style-labels (one per style)")
        if len(given) > len(styles):
            raise InputError(f"got {len(given)} style label maps for {len(styles)} styles")
    if opts.semantic == "scribbles":
        given = list(req.style_scribbles or [])
        if req.content_scribbles is None or len(given) != len(styles) or any(s is None for s in given):
            raise InputError("--semantic scribbles needs --content-scribbles and --style-scribbles (one per style)")
    elif req.content_scribbles is not None or req.style_scribbles:
        raise InputError("scribbles are used with --semantic scribbles; add it")
    return tuple(weights) if weights is not None else (1.0,) * len(styles)


__all__ = ["check_request", "check_size"]
