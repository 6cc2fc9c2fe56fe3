"""``semstyle adapt``: one style picture in, a style model out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semstyle.training.adapt import adapt, run_folder
from semstyle.training.student import StudentRecipe


def cmd_adapt(args: argparse.Namespace) -> int:
    contents = [c for spec in args.contents or [] for c in spec.split(",") if c.strip()]
    try:
        res = adapt(args.style, args.output, contents=contents, steps=args.steps, minutes=args.minutes,
                    resume=args.resume, overwrite=args.overwrite, precision=args.precision, crop=args.crop,
                    temporal=args.temporal, student=args.student,
                    student_recipe=StudentRecipe(steps=args.student_steps, temporal=args.temporal),
                    progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"semstyle: interrupted; the checkpoint in {run_folder(Path(args.output))} is kept: add --resume to "
              "continue", file=sys.stderr)
        return 130
    sc = res.scores
    print(f"adapted in {res.steps} steps ({res.seconds / 60:.1f} min): {res.model}")
    if res.steps < res.horizon:  # the time ran out before the fitted schedule's end (a machine slowed down)
        print(f"the time budget ended the adaptation at step {res.steps} of {res.horizon}; add --resume and more "
              "--minutes to finish it")
    elif res.horizon < args.steps:  # a slow CPU (fp32 without AVX-512: ~3.6 s a step) fits fewer in --minutes
        print(f"the time budget fitted the adaptation to {res.horizon} of {args.steps} steps; more --minutes "
              "give it more")
    print(f"default alpha {sc.alpha:.2f}: style distance {100 * sc.style:+.1f} %, content loss "
          f"{100 * sc.content:+.1f} % against pretrained AdaIN ({sc.photos} of your photos)")
    if sc.student_style is not None and sc.student_content is not None:
        print(f"student (--model fast): style distance {100 * sc.student_style:+.1f} %, content loss "
              f"{100 * sc.student_content:+.1f} %")
    return 0


__all__ = ["cmd_adapt"]
