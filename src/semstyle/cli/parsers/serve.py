"""Flags of ``semstyle serve`` (handler: ``semstyle.cli.serve``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web app (upload, pick, preview, download) on localhost",
        description="Serve the web page. Requests wait in a queue and at most --concurrency run at once, "
                    "so memory stays bounded however many arrive.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default %(default)s)")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="largest uploaded image in pixels, checked before decoding (default %(default)s)")
    p.add_argument("--max-size", type=int, default=1024,
                   help="largest output size, longest side in px (default %(default)s)")
    p.add_argument("--max-video-seconds", type=float, default=10.0,
                   help="longest clip in the video tab, s (default %(default)s)")
    p.add_argument("--max-video-size", type=int, default=384,
                   help="largest frame side of the video tab's results, px (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=1, help="requests stylised at once (default %(default)s)")
    p.add_argument("--queue-size", type=int, default=64, help="requests allowed to wait (default %(default)s)")
    p.add_argument("--models", metavar="DIR",
                   help="a folder of style models (semstyle adapt) the page offers by name; the Adapt tab writes "
                        "its models there")
    p.add_argument("--max-adapt-minutes", type=float, default=10.0,
                   help="longest adaptation the Adapt tab runs, min (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default %(default)s)")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.serve:cmd_serve")
