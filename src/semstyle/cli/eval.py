"""``semstyle eval``: stylise pairs with several methods, score them, write CSVs, a summary, grids and plots."""

from __future__ import annotations

import argparse
import sys

from semstyle.config import check_side
from semstyle.errors import InputError
from semstyle.evaluation import EvalConfig, all_pairs, read_pairs, run_eval
from semstyle.evaluation.records import MethodSettings, parse_methods


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

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
