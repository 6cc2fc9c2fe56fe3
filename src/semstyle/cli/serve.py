"""``semstyle serve``: the web app on localhost (Gradio), with a bounded request queue."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from semstyle.config import NetworkConfig, StylizeConfig
from semstyle.errors import InputError
from semstyle.web import app as web_app
from semstyle.web.adapt import AdaptLimits
from semstyle.web.app import ServeOptions, disable_analytics, launch
from semstyle.web.engine import Engine
from semstyle.web.forms import Limits
from semstyle.web.video import VideoLimits

log = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.queue_size < 1:
        raise InputError(f"--queue-size must be at least 1, got {args.queue_size}")
    if args.max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    disable_analytics()  # before Gradio (and the Hub library it imports) is first imported
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("the web app needs Gradio: pip install 'semstyle[web]' (or run scripts/setup.sh)") from None
    try:
        limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        max_size=args.max_size)
        video = VideoLimits(max_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_video_seconds,
                            max_side=args.max_video_size)
        adapt = AdaptLimits(max_minutes=getattr(args, "max_adapt_minutes", AdaptLimits().max_minutes))
    except ValueError as e:
        raise InputError(str(e)) from None
    models = Path(args.models) if getattr(args, "models", None) else None
    if models is not None and not models.is_dir():
        raise InputError(f"--models '{models}' is not a folder")
    engine = Engine(StylizeConfig(NetworkConfig(device=args.device)), limits, concurrency=args.concurrency,
                    models=models)
    if models is not None:
        log.info("%d style models in %s", len(engine.style_models()), models)
    opts = ServeOptions(host=args.host, port=args.port, concurrency=args.concurrency, queue_size=args.queue_size,
                        video=video, adapt=adapt)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the app", args.host)
    try:
        demo = web_app.build_demo(engine, opts)
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
