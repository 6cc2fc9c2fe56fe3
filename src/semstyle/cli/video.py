"""``semstyle video``: stylise a clip (video file or folder of frames) as a stream, with temporal consistency."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semstyle.cli.commands import config_from_args
from semstyle.config import check_style_weights
from semstyle.errors import InputError
from semstyle.io import video as V
from semstyle.pipelines import stylize as pipeline
from semstyle.pipelines.video import check_consistency, check_video_options, stylize_video


def cmd_video(args: argparse.Namespace) -> int:
    # 1. cheap checks before the networks load: options, output, styles, the clip itself
    cfg = config_from_args(args, args.styles)
    check_consistency(args.consistency)
    check_consistency(args.texture, "texture")
    check_consistency(args.hidden, "hidden")
    check_video_options(cfg.options)
    out = V.check_output(args.output, args.overwrite)
    styles = [Path(s) for s in args.styles]
    for s in styles:
        if not s.is_file():
            raise InputError(f"style '{s}' {'is a folder' if s.is_dir() else 'does not exist'}")
    try:
        check_style_weights(cfg.options.style_weights, len(styles))
    except ValueError as e:
        raise InputError(str(e)) from None
    strokes = [Path(p) for p in [args.content_scribbles, *(args.style_scribbles or [])] if p]
    if strokes and cfg.options.semantic != "scribbles":
        raise InputError("--content-scribbles/--style-scribbles are used with --semantic scribbles; add it")
    if cfg.options.semantic == "scribbles" and (not args.content_scribbles or not args.style_scribbles):
        raise InputError("--semantic scribbles needs --content-scribbles and --style-scribbles")
    for p in strokes:
        if not p.is_file():
            raise InputError(f"scribbles '{p}' {'is a folder' if p.is_dir() else 'does not exist'}")
    style_strokes = None
    if args.style_scribbles:
        style_strokes = [Path(p) for p in args.style_scribbles]
        style_strokes = style_strokes * len(styles) if len(style_strokes) == 1 else style_strokes
    info = V.probe(args.input, cfg.options.max_pixels)  # a bad clip fails before the networks load

    # 2. the stream: decode → stylise → encode, one frame at a time, into a temporary output
    from tqdm import tqdm

    stylizer = pipeline.Stylizer.from_config(cfg)
    bar = tqdm(total=info.frames or None, unit="frame", file=sys.stderr, dynamic_ncols=True)

    def step(done: int, _: object) -> None:
        bar.update(1)  # tqdm shows frames per second and the ETA

    try:
        stylize_video(stylizer, info.path, styles, out, overwrite=args.overwrite, consistency=args.consistency,
                      texture=args.texture, hidden=args.hidden, callback=step,
                      content_scribbles=Path(args.content_scribbles) if args.content_scribbles else None,
                      style_scribbles=style_strokes)
    finally:
        bar.close()
    print(out)
    return 0


__all__ = ["cmd_video"]
