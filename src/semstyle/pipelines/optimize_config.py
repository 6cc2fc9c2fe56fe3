"""The settings of the optimisation baseline (``semstyle optimize``), free of torch so the CLI
can build its parser (defaults, choices) without importing it."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from semstyle.config import check_side
from semstyle.errors import InputError

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")
INITS: tuple[str, ...] = ("content", "adain")


@dataclass(frozen=True)
class OptimizeConfig:
    """How to optimise. Field names match the ``semstyle optimize`` flags."""

    steps: int = 200  # optimiser iterations (an L-BFGS iteration takes ~1.2 loss/gradient evaluations on average)
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    init: Literal["content", "adain"] = "content"  # starting image
    size: int = 512  # content's longest side in px (0 keeps it)
    style_size: int = 512  # style's longest side in px (0 keeps it)
    content_weight: float = 1.0  # λ_c on the relu4_1 MSE (normalised by C·H·W)
    style_weight: float = 10.0  # λ_s on the Gram loss (sum over layers of MSE of Gram matrices / C²)
    tv_weight: float = 1.0  # λ_tv on the mean absolute neighbour difference
    lr: float = 0.02  # Adam's step size in pixel units (L-BFGS uses 1 with its own scaling)
    min_region: float = 0.005  # guided: labels under this share of an image merge into a neighbour
    device: str = "auto"
    max_pixels: int = 64_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise InputError(f"steps must be between 1 and 100000, got {self.steps}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        for name in ("size", "style_size"):
            try:
                check_side(name, getattr(self, name))
            except ValueError as e:
                raise InputError(str(e)) from None
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"lr must be > 0, got {self.lr}")

    def updated(self, **changes: Any) -> OptimizeConfig:
        """A copy with ``changes`` applied (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


__all__ = ["INITS", "OPTIMIZERS", "OptimizeConfig"]
