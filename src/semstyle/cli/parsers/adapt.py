"""Flags of ``semstyle adapt`` (handler: ``semstyle.cli.adapt``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from semstyle.config import ADAPT_MINUTES as DEFAULT_MINUTES
from semstyle.config import ADAPT_STEPS as DEFAULT_STEPS
from semstyle.config import STUDENT_STEPS

EXAMPLES = """examples:
  semstyle adapt wave.jpg --contents photos/ -o wave.safetensors          # 10 minutes at most on 2 CPU cores
  semstyle stylize photo.jpg wave.safetensors -o out.png                    # the model is the style
  semstyle adapt wave.jpg --contents frames/ -o wave.safetensors --student # + a real-time student, ~10 minutes
  semstyle video clip.mp4 wave.safetensors --model fast -o out.mp4          # the student: no VGG19
  semstyle adapt wave.jpg --contents photos/ -o wave.safetensors --resume   # after Ctrl-C: continue
"""


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "adapt",
        help="adapt the decoder to one style in minutes; the model file is the style",
        description="Fine-tune the pretrained decoder adversarially on one style picture and your photos, and write "
                    "a style model (the adapted decoder, the style picture, the recipe and its scores).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("style", metavar="STYLE", help="the style picture")
    p.add_argument("--contents", action="append", metavar="DIR[,DIR…]",
                   help="folder(s) of your photos (game frames, a photo library); default: the bundled photos")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.safetensors", help="the style model to write")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="generator updates at most (default %(default)s)")
    p.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                   help="the time budget, the end's scores included: the schedule is fitted to the steps that "
                        "fit in it (default %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the model's interrupted run (MODEL.run/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="default: bf16 where the CPU has it")
    p.add_argument("--crop", type=int, help="training crop side in px, a multiple of 8 (default: the recipe's, 192)")
    p.add_argument("--student", action="store_true",
                   help="also distil a real-time student into the model (--model fast uses it); shares --minutes")
    p.add_argument("--student-steps", type=int, default=STUDENT_STEPS,
                   help="the student's updates (default %(default)s)")
    p.add_argument("--temporal", type=float, default=0.0, metavar="W",
                   help="weight of the temporal term: the decoder (and student) learn stable video, as "
                        "--decoder temporal did (e.g. 300; default 0 = off)")
    p.add_argument("--no-progress", action="store_true")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.adapt:cmd_adapt")


__all__ = ["DEFAULT_MINUTES", "DEFAULT_STEPS", "add_parser"]
