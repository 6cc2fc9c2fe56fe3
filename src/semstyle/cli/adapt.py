"""``semstyle adapt``: one style picture in, a style model out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semstyle.training.adapt import adapt, run_folder


def cmd_adapt(args: argparse.Namespace) -> int:
    contents = [c for spec in args.contents or [] for c in spec.split(",") if c.strip()]
    try:
        res = adapt(args.style, args.output, contents=contents, steps=args.steps, minutes=args.minutes,
                    resume=args.resume, overwrite=args.overwrite, precision=args.precision, crop=args.crop,
                    progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"semstyle: interrupted; the checkpoint in {run_folder(Path(args.output))} is kept: add --resume to "
              "continue", file=sys.stderr)
        return 130
    print(f"adapted in {res.steps} steps ({res.seconds / 60:.1f} min): {res.model}")
    return 0


__all__ = ["cmd_adapt"]
