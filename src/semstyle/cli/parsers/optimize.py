"""Flags of ``semstyle optimize`` (handler: ``semstyle.cli.optimize``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from semstyle.pipelines.optimize_config import INITS, OPTIMIZERS, OptimizeConfig

EXAMPLES = """examples:
  semstyle optimize photo.jpg starry_night.jpg -o out.png --steps 200 --size 384
  semstyle optimize photo.jpg painting.jpg -o out.png --init adain --optimizer adam --steps 300
  semstyle optimize in.jpg tar.jpg -o out.png --content-labels in.png --style-labels tar.png
"""


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    d = OptimizeConfig()
    p = sub.add_parser(
        "optimize",
        help="optimise the image itself (Gatys et al.): minutes, the quality yardstick",
        description="Optimise the output pixels to match the content's relu4_1 features and the style's Gram "
        "matrices (relu1_1..relu4_1), with total variation. With --content-labels/--style-labels the Gram "
        "matrices are matched region by region.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("content", metavar="CONTENT", help="content image")
    p.add_argument("style", metavar="STYLE", help="style image")
    p.add_argument("-o", "--output", required=True, help="output image file")
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser iterations (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="default %(default)s")
    p.add_argument(
        "--init", choices=INITS, default=d.init, help="start from the content or the AdaIN result (default %(default)s)"
    )
    p.add_argument(
        "--size", type=int, default=d.size, help="content's longest side in px, 0 keeps it (default %(default)s)"
    )
    p.add_argument(
        "--style-size", type=int, default=d.style_size, help="style's longest side in px (default %(default)s)"
    )
    p.add_argument("--content-weight", type=float, default=d.content_weight, help="λ_c (default %(default)s)")
    p.add_argument(
        "--style-weight", type=float, default=d.style_weight, help="λ_s on the Gram loss (default %(default)s)"
    )
    p.add_argument("--tv-weight", type=float, default=d.tv_weight, help="λ_tv (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam's step size (default %(default)s)")
    p.add_argument("--content-labels", help="label map of the content (guided variant; needs --style-labels)")
    p.add_argument("--style-labels", help="label map of the style (guided variant; needs --content-labels)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default %(default)s)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="refuse larger inputs (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.optimize:cmd_optimize")
