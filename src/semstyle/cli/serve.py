"""``semstyle serve``: the web app on localhost (Gradio), with a bounded request queue."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from semstyle.errors import InputError

log = logging.getLogger(__name__)


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
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default %(default)s)")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.serve:cmd_serve")


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.queue_size < 1:
        raise InputError(f"--queue-size must be at least 1, got {args.queue_size}")
    if args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    from semstyle.web.app import disable_analytics

    disable_analytics()  # before Gradio (and the Hub library it imports) is first imported
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("the web app needs Gradio: pip install 'semstyle[web]' (or run scripts/setup.sh)") from None
    from semstyle.config import StylizeConfig
    from semstyle.web.app import ServeOptions, build_demo, launch
    from semstyle.web.engine import Engine, Limits
    from semstyle.web.video import VideoLimits

    try:
        limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        max_size=args.max_size)
        video = VideoLimits(max_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_video_seconds,
                            max_side=args.max_video_size)
    except ValueError as e:
        raise InputError(str(e)) from None
    engine = Engine(StylizeConfig(device=args.device), limits, concurrency=args.concurrency)
    opts = ServeOptions(host=args.host, port=args.port, concurrency=args.concurrency, queue_size=args.queue_size,
                        video=video)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the app", args.host)
    try:
        demo = build_demo(engine, opts)
    except BaseException:
        engine.close()  # its output folder in the temporary directory
        raise
    try:
        launch(demo, engine, opts, block=False)
    except OSError as e:
        demo.close()
        engine.close()
        why = "the port is in use" if "empty port" in str(e) else str(e).splitlines()[0]
        raise InputError(f"cannot listen on {args.host}:{args.port}: {why}; choose another --port") from None
    shown = "localhost" if args.host == "127.0.0.1" else args.host
    print(f"semstyle: serving on http://{shown}:{args.port} (Ctrl-C stops)", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill`, a service manager: clean up as for Ctrl-C
    try:
        demo.block_thread()  # until Ctrl-C
    finally:
        demo.close()
        engine.close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C, so the server closes and the temporary uploads and results are deleted."""
    raise KeyboardInterrupt
