"""Flags of ``semstyle video`` (handler: ``semstyle.cli.video``)."""

from __future__ import annotations

import argparse

from semstyle.config import VIDEO_CARRIES
from semstyle.config import VIDEO_TEXTURE as DEFAULT_TEXTURE

EXAMPLES = """examples:
  semstyle video clip.mp4 starry_night.jpg -o out.mp4
  semstyle video frames/ wave.jpg -o styled/ --consistency 0.9 --size 384
  semstyle video clip.mov a.jpg b.jpg --style-weights 0.7,0.3 --semantic auto -o out.webm
"""


def _by_size(column: int) -> str:
    """The default of a carry: its value in ``VIDEO_CARRIES`` by the frames' longest side."""
    rows = [f"{row[column]:g} up to {row[0]} px" for row in VIDEO_CARRIES]
    return f"by the frame size: {', '.join(rows)}, {VIDEO_CARRIES[-1][column]:g} above"


def add_arguments(p: argparse.ArgumentParser) -> None:

    p.add_argument("input", metavar="INPUT", help="video file (mp4, mov, mkv, webm, avi, gif) or folder of frames")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are interpolated")
    p.add_argument("-o", "--output", required=True,
                   help="video file (mp4, webm, gif) or a folder (one PNG per frame, named after the input's)")
    p.add_argument("--consistency", type=float, default=None,
                   help="weight of the previous frame's features carried along the flow, in [0, 1); 0 = per-frame, "
                        f"nothing carried (default: {_by_size(1)})")
    p.add_argument("--hidden", type=float, default=None,
                   help="weight of the previous frame's decoder activation (stride 4) carried along the flow, in "
                        f"[0, 1); --consistency 0 turns it off too (default: {_by_size(2)})")
    p.add_argument("--texture", type=float, default=DEFAULT_TEXTURE,
                   help="weight of the previous result's texture carried along the flow, in [0, 1): much less "
                        "flicker, weaker style (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--content-scribbles", metavar="PNG",
                   help="strokes over the first frame (--semantic scribbles), RGBA; the regions follow the flow")
    p.add_argument("--style-scribbles", metavar="PNG", nargs="+", default=None,
                   help="strokes over the style(s), one per STYLE: the same colour marks the matching region")

__all__ = ["EXAMPLES", "add_arguments"]
