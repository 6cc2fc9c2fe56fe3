"""semstyle: semantic, arbitrary image style transfer.

>>> from semstyle import Stylizer          # doctest: +SKIP
>>> Stylizer().stylize("photo.jpg", "painting.jpg", alpha=0.8).image.save("out.png")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from semstyle.version import __version__

if TYPE_CHECKING:
    from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
    from semstyle.errors import InputError, SemstyleError, WeightsError
    from semstyle.pipelines.stylize import Stylizer
    from semstyle.types import StylizeResult

__all__ = ["InputError", "NetworkConfig", "SemstyleError", "StylizeConfig", "StylizeOptions", "StylizeResult",
           "Stylizer", "WeightsError", "__version__"]

_LAZY = {
    "Stylizer": "semstyle.pipelines.stylize",
    "StylizeResult": "semstyle.types",
    "StylizeConfig": "semstyle.config",
    "StylizeOptions": "semstyle.config",
    "NetworkConfig": "semstyle.config",
    "SemstyleError": "semstyle.errors",
    "InputError": "semstyle.errors",
    "WeightsError": "semstyle.errors",
}


def __getattr__(name: str) -> Any:
    # lazy, so that `semstyle --version` and `--help` do not pay for importing torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'semstyle' has no attribute {name!r}")
