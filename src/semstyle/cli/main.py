"""The ``semstyle`` command line: argument parsing and error reporting.

Every failure a user can cause ends as one line on stderr and a non-zero exit status:
2 for bad input, 1 for anything else. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from semstyle.allocator import keep_freed_memory
from semstyle.cli.parsers import adapt as adapt_cli
from semstyle.cli.parsers import eval as eval_cli
from semstyle.cli.parsers import export as export_cli
from semstyle.cli.parsers import optimize, serve, train
from semstyle.cli.parsers import video as video_cli
from semstyle.config import (
    ALPHA_MAX,
    ENGINES,
    FUSIONS,
    MODELS,
    PRECISIONS,
    SEMANTIC_MODES,
    UNMATCHED_POLICIES,
    NetworkConfig,
    StylizeOptions,
)
from semstyle.errors import SemstyleError
from semstyle.version import __version__

EXAMPLES = """examples:
  semstyle stylize photo.jpg starry_night.jpg -o out.png
  semstyle stylize photo.jpg a.jpg b.jpg --style-weights 0.7,0.3 -o mix.png
  semstyle stylize photos/ styles/ -o outputs/ --size 768
  semstyle stylize photo.jpg sea.jpg sky.jpg --mask halves.png -o regions.png
  semstyle stylize photo.jpg painting.jpg --semantic auto --save-labels labels/ -o out.png
  semstyle stylize in.jpg tar.jpg --semantic labels --content-labels in.png --style-labels tar.png -o out.png
  semstyle stylize in.jpg tar.jpg --semantic scribbles --content-scribbles in_strokes.png \
      --style-scribbles tar_strokes.png --save-labels grown/ -o out.png
  semstyle segment photo.jpg painting.jpg -o seg/
  semstyle video clip.mp4 starry_night.jpg -o out.mp4
"""


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    o, n = StylizeOptions(), NetworkConfig()  # the defaults shown in --help
    p.add_argument("--alpha", type=float,
                   help=f"style strength in [0, {ALPHA_MAX:g}]: 1 is AdaIN's full step, past 1 it is extrapolated "
                        f"(default {o.alpha:g}, or a style model's own)")
    p.add_argument(
        "--size", type=int, default=o.size, help="content's longest side in px, 0 keeps it (default %(default)s)"
    )
    p.add_argument(
        "--style-size",
        type=int,
        default=o.style_size,
        help="style's longest side in px, 0 keeps it (default %(default)s)",
    )
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    p.add_argument("--style-weights", type=_floats, help="interpolation weights, one per style: 0.7,0.3")
    p.add_argument("--device", default=n.device, help="auto | cpu | cuda (default %(default)s)")
    p.add_argument(
        "--precision", choices=PRECISIONS, default=n.precision, help="auto = bf16 where the CPU/GPU has it natively"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the networks: slow first call per image size, then ~1.4x faster with bf16 (needs a C++ "
        "compiler)",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        default=n.model,
        help="vgg19: AdaIN's networks; fast: the distilled student, ~1/16 of the work, or with a style model its own "
             "real-time student (semstyle adapt --student) (default %(default)s)",
    )
    p.add_argument("--max-pixels", type=int, default=o.max_pixels, help="refuse larger inputs (default %(default)s)")
    p.add_argument(
        "--encoder-weights", dest="encoder", default=n.encoder, help="'pretrained', a .pth/.safetensors file or a URL"
    )
    p.add_argument(
        "--decoder",
        "--decoder-weights",
        dest="decoder",
        default=n.decoder,
        help="pretrained | finetuned | temporal (trained for stable video) | a .pth/.safetensors file | a URL "
             "(default %(default)s)",
    )
    p.add_argument(
        "--discriminator", default=n.discriminator, help="discriminator weights for --refine (default %(default)s)"
    )
    p.add_argument(
        "--refine", type=int, default=o.refine, help="discriminator-guided refinement rounds (default 0 = off)"
    )
    p.add_argument(
        "--refine-target",
        type=float,
        default=o.refine_target,
        help="stop refining at this discriminator score (default %(default)s)",
    )
    _add_semantic_flags(p, o)


def _add_semantic_flags(p: argparse.ArgumentParser, o: StylizeOptions) -> None:
    """The region prior's flags: where the regions come from and how each takes its style."""
    p.add_argument("--semantic", choices=SEMANTIC_MODES, default=o.semantic, help="region prior (default %(default)s)")
    p.add_argument("--regions", type=int, default=o.regions, help="auto mode: number of regions, 0 = automatic")
    p.add_argument(
        "--unmatched",
        choices=UNMATCHED_POLICIES,
        default=o.unmatched,
        help="content labels missing from the style (default %(default)s)",
    )
    p.add_argument(
        "--segformer-fine",
        dest="segformer_coarse",
        action="store_false",
        help="segformer mode: match ADE20K's 150 classes instead of 8 coarse groups",
    )
    p.add_argument(
        "--feather", type=float, default=o.feather, help="softness of region borders, feature px (default %(default)s)"
    )
    p.add_argument(
        "--shrink", type=float, default=o.shrink,
        help="semantic modes: each region's statistics borrow this share of the picture's from the pooled ones, "
        "so small regions stray less from the content; 0.005-0.02 trade a little of the regions' match for "
        "content (default %(default)s)",
    )
    p.add_argument(
        "--fusion", choices=FUSIONS, default=o.fusion,
        help="semantic modes: adain = each region takes its matched style region; attention = an attention-weighted "
        "mixture of the style's regions, same label preferred (default %(default)s)",
    )
    p.add_argument("--attention-temperature", type=float, default=o.attention_temperature,
                   help="attention fusion: softness, smaller is harder (default %(default)s)")
    p.add_argument("--attention-prior", type=float, default=o.attention_prior,
                   help="attention fusion: logit bonus of the same label, inf = that label only (default %(default)s)")
    p.add_argument("--seed", type=int, default=o.seed, help="seed for automatic segmentation")
    p.add_argument(
        "--tile",
        type=int,
        default=o.tile,
        help="tile side in px for large images: 0 = auto (over 1.5 Mpx), -1 = never (default %(default)s)",
    )


def _add_batch_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batches (CONTENT or STYLE a folder or a glob; OUTDIR/report.csv lists every job)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local = this process; ray = actors on a Ray cluster (semstyle[distributed]) (default local)")
    g.add_argument("--ray-address", help="join this Ray cluster (HOST:PORT or auto); default: start a local one")
    g.add_argument("--workers", type=int, default=1, help="ray: actors, each loads the networks once (default 1)")
    g.add_argument("--batch-size", type=int, default=4, help="ray: images per task (default 4)")
    g.add_argument("--cpus-per-worker", type=float, help="ray: CPUs per actor (default: the cluster's, shared out)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per actor, e.g. 1 or 0.5 (default 0)")


class _Parser(argparse.ArgumentParser):
    """argparse (and its subcommands' parsers) with the CLI's one-line error format."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"semstyle: error: {message} (see '{self.prog} --help')\n")


def _add_stylize_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stylize", help="stylise images", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("content", metavar="CONTENT", help="content image, folder of images or quoted glob ('shots/*.jpg')")
    p.add_argument(
        "styles", metavar="STYLE", nargs="*", help="style image(s) or folder; several files are interpolated"
    )
    p.add_argument(
        "--style",
        dest="label_styles",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a style for one label of --mask/--content-labels (repeatable): --style sky=a.jpg",
    )
    p.add_argument("-o", "--output", required=True, help="output file, or folder when CONTENT/STYLE are folders")
    p.add_argument("--mask", help="label map over the content: region i takes style i (sorted labels)")
    p.add_argument("--content-labels", help="label map of the content (--semantic labels)")
    p.add_argument("--style-labels", nargs="+", default=None, help="label map(s) of the style(s)")
    p.add_argument("--content-scribbles", metavar="PNG",
                   help="strokes painted over the content (--semantic scribbles): an RGBA PNG, transparent where "
                        "nothing is painted; each colour grows into a region (a look-alike island cut off from "
                        "its strokes goes to the region around it: paint each island you want)")
    p.add_argument("--style-scribbles", metavar="PNG", nargs="+", default=None,
                   help="strokes over the style(s), one per STYLE: the same colour marks the matching region")
    p.add_argument("--names", help="names file mapping labels to names (JSON or 'label name' lines)")
    p.add_argument("--save-labels", metavar="DIR", help="write colourised label maps of content and style here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (a batch otherwise skips them, so a rerun resumes)")
    _add_batch_flags(p)
    _add_config_flags(p)
    _add_common(p)
    p.set_defaults(handler="semstyle.cli.commands:cmd_stylize")


def _add_segment_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="show what the automatic co-segmentation sees")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="one or more images segmented jointly")
    p.add_argument("-o", "--output", required=True, help="output folder for the overlays")
    p.add_argument("--regions", type=int, default=0, help="number of regions, 0 = automatic")
    p.add_argument("--size", type=int, default=512, help="longest side in px (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--max-pixels", type=int, default=StylizeOptions().max_pixels)
    p.add_argument("--overwrite", action="store_true")
    _add_common(p)
    p.set_defaults(handler="semstyle.cli.commands:cmd_segment")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="semstyle",
        description="Semantic, arbitrary image style transfer (VGG19 + AdaIN + decoder).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"semstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_stylize_parser(sub)
    _add_segment_parser(sub)
    p = sub.add_parser("video", help="stylise a video or a folder of frames, with temporal consistency",
                       epilog=video_cli.EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    video_cli.add_arguments(p)
    _add_config_flags(p)
    _add_common(p)
    p.set_defaults(handler="semstyle.cli.video:cmd_video")

    # further subcommands register themselves: each parsers module has add_parser(sub, add_common)
    train.add_parser(sub, _add_common)
    train.add_distill_parser(sub, _add_common)
    adapt_cli.add_parser(sub, _add_common)
    export_cli.add_parser(sub, _add_common)
    optimize.add_parser(sub, _add_common)
    eval_cli.add_parser(sub, _add_common)
    serve.add_parser(sub, _add_common)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        module, func = args.handler.split(":")
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except (SemstyleError, ValueError) as e:
        if args.debug:
            raise
        print(f"semstyle: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semstyle: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if args.debug:
            raise
        print("semstyle: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    except Exception as e:  # the last line of defence: never a traceback without --debug
        if args.debug:
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        print(
            f"semstyle: internal error: {type(e).__name__}: {first} (rerun with --debug for details)", file=sys.stderr
        )
        return 1


def run() -> NoReturn:
    """The console entry point: ``main()``, then a fast exit.

    Tearing down a process that imported torch and ran its networks takes about a second
    (module and tensor clean-up); a one-picture ``semstyle stylize`` has nothing left to do once its
    output is renamed into place. So after the exit handlers run (temporary folders, finalisers) and
    the streams are flushed, the process ends with ``os._exit``. ``main()`` itself returns normally,
    for tests and embedders. Being the process, it first keeps freed memory for reuse (``semstyle.allocator``).
    """
    keep_freed_memory()
    rc = main()
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(rc)


if __name__ == "__main__":
    run()
