"""``semstyle video``: stylise a clip (video file or folder of frames) as a stream, with temporal consistency."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semstyle.config import VIDEO_CONSISTENCY as DEFAULT_CONSISTENCY
from semstyle.config import VIDEO_TEXTURE as DEFAULT_TEXTURE
from semstyle.errors import InputError

EXAMPLES = """examples:
  semstyle video clip.mp4 starry_night.jpg -o out.mp4
  semstyle video frames/ wave.jpg -o styled/ --consistency 0.9 --size 384
  semstyle video clip.mov a.jpg b.jpg --style-weights 0.7,0.3 --semantic auto -o out.webm
"""


def add_arguments(p: argparse.ArgumentParser) -> None:

    p.add_argument("input", metavar="INPUT", help="video file (mp4, mov, mkv, webm, avi, gif) or folder of frames")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are interpolated")
    p.add_argument("-o", "--output", required=True,
                   help="video file (mp4, webm, gif) or a folder (one PNG per frame, named after the input's)")
    p.add_argument("--consistency", type=float, default=DEFAULT_CONSISTENCY,
                   help="weight of the previous frame's features carried along the flow, in [0, 1); 0 = per-frame "
                        "(default %(default)s)")
    p.add_argument("--texture", type=float, default=DEFAULT_TEXTURE,
                   help="weight of the previous result's texture carried along the flow, in [0, 1): much less "
                        "flicker, weaker style (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def cmd_video(args: argparse.Namespace) -> int:
    from semstyle.cli.commands import config_from_args  # (it imports torch: not at parse time)
    # 1. cheap checks before the networks load: options, output, styles, the clip itself
    cfg = config_from_args(args)
    from semstyle.io import video as V
    from semstyle.pipelines.video import check_consistency, check_video_options

    check_consistency(args.consistency)
    check_consistency(args.texture, "texture")
    check_video_options(cfg)
    out = V.check_output(args.output, args.overwrite)
    styles = [Path(s) for s in args.styles]
    for s in styles:
        if not s.is_file():
            raise InputError(f"style '{s}' {'is a folder' if s.is_dir() else 'does not exist'}")
    if cfg.style_weights is not None and len(cfg.style_weights) != len(styles):
        raise InputError(f"got {len(cfg.style_weights)} style weights for {len(styles)} styles; give one per style")
    info = V.probe(args.input, cfg.max_pixels)  # a bad clip fails before the networks load

    # 2. the stream: decode → stylise → encode, one frame at a time, into a temporary output
    from tqdm import tqdm

    from semstyle.pipelines.stylize import Stylizer
    from semstyle.pipelines.video import stylize_video

    stylizer = Stylizer(cfg)
    bar = tqdm(total=info.frames or None, unit="frame", file=sys.stderr, dynamic_ncols=True)

    def step(done: int, _: object) -> None:
        bar.update(1)  # tqdm shows frames per second and the ETA

    try:
        stylize_video(stylizer, info.path, styles, out, overwrite=args.overwrite, consistency=args.consistency,
                      texture=args.texture, callback=step)
    finally:
        bar.close()
    print(out)
    return 0


__all__ = ["EXAMPLES", "add_arguments", "cmd_video"]
