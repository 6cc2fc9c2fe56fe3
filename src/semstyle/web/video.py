"""The page's video tab: a short uploaded clip, stylised as a stream into an mp4 in the server's folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semstyle.config import ALPHA_MAX, check_alpha
from semstyle.io import video as V
from semstyle.pipelines.video import check_consistency, default_carries, stylize_video
from semstyle.web.engine import Engine
from semstyle.web.forms import Progress, Upload, UserError, human_bytes, safe_stem


@dataclass(frozen=True)
class VideoLimits:
    """What one clip may be (shown on the page; ``semstyle serve --max-video-seconds`` etc.)."""

    max_bytes: int = 50 * 2**20  # the uploaded file
    max_seconds: float = 10.0  # the clip's duration
    max_side: int = 384  # longest side of the stylised frames

    def __post_init__(self) -> None:
        if self.max_bytes < 1024:
            raise ValueError(f"max video upload must be at least 1 KB, got {self.max_bytes} bytes")
        if not 0 < self.max_seconds <= 600:
            raise ValueError(f"max video duration must be in (0, 600] s, got {self.max_seconds}")
        if not 64 <= self.max_side <= 2048:
            raise ValueError(f"max video size must be between 64 and 2048 px, got {self.max_side}")


WEB_SIZE = 256  # the tab's frame size to start with (px)
WEB_CONSISTENCY = default_carries(WEB_SIZE)[0]  # the consistency slider's start: what the measurements choose there
VIDEO_DECODERS = ("pretrained", "temporal")  # the tab's decoder choice: AdaIN's, or the one trained for stability


def run_video(engine: Engine, limits: VideoLimits, video: Upload | None, style: Upload | None, *,
              alpha: float = 1.0, consistency: float | None = None, size: int = WEB_SIZE,
              decoder: str = "pretrained", progress: Progress | None = None) -> Path:
    """Stylise one uploaded clip with ``decoder`` (a ``VIDEO_DECODERS`` entry); returns the mp4's path. Raises
    UserError (and the pipeline's one-line errors) for anything wrong with the request. ``consistency`` None: the
    measurements' choice for the frame size (``default_carries``), as the decoder-activation carry always is."""
    say = progress or (lambda f, d: None)
    if video is None:
        raise UserError("upload a video clip (mp4, mov, mkv, webm, avi or gif)")
    try:
        n = video.path.stat().st_size
    except OSError:
        raise UserError(f"the uploaded video '{video.name}' is gone; upload it again") from None
    if n > limits.max_bytes:
        raise UserError(f"video '{video.name}' is {human_bytes(n)}, over the limit of {human_bytes(limits.max_bytes)}")
    if not 16 <= int(size) <= limits.max_side:
        raise UserError(f"video size must be between 16 and {limits.max_side} px, got {size}")
    try:
        check_alpha(float(alpha))
    except ValueError as e:
        raise UserError(str(e)) from None
    if decoder not in VIDEO_DECODERS:
        raise UserError(f"video decoder must be one of {', '.join(VIDEO_DECODERS)}, got {decoder!r}")
    try:
        consistency = None if consistency is None else float(consistency)
        check_consistency(consistency)
    except ValueError as e:
        raise UserError(str(e)) from None
    info = V.probe(video.path, engine.limits.max_pixels)
    if info.frames and info.frames / float(info.fps) > limits.max_seconds:
        raise UserError(f"the clip is {info.frames / float(info.fps):.1f} s long, over the limit of "
                        f"{limits.max_seconds:g} s; trim it")
    style_img = engine.load(style, "style image", engine.style_size)
    st = engine.stylizer(decoder)
    total = info.frames or round(limits.max_seconds * float(info.fps))
    out = engine.new_output(f"semstyle_{safe_stem(video.name, 'video')}.mp4")

    def step(i: int, _: object) -> None:
        if i > limits.max_seconds * float(info.fps):  # the container did not say how long it is
            raise UserError(f"the clip is longer than the limit of {limits.max_seconds:g} s; trim it")
        say(0.05 + 0.9 * min(i / max(total, 1), 1.0), f"frame {i} of {total}")

    say(0.05, "stylising the frames")
    return stylize_video(st, info.path, style_img, out, overwrite=True, consistency=consistency,
                         callback=step, options=st.options(overrides={"alpha": float(alpha), "size": int(size)}))


def consistency_for(size: float) -> float:
    """The consistency slider's value when the frame size moves to ``size``: the measurements' choice there (the
    decoder-activation carry, not on the page, follows the size by itself)."""
    return default_carries(int(size))[0]


def video_tab(gr: Any, handle: Callable[..., tuple[str | None, str]], vl: VideoLimits,
              status: Callable[[str, str], str]) -> None:
    """The video tab: a short clip and a style in, a playable mp4 out (limits shown on the page). ``handle(clip,
    style, alpha, size, consistency, decoder, progress=)`` does the work and returns (the mp4's path or None, the
    status HTML); ``status`` makes a status box's HTML."""
    with gr.Tab("Video", elem_id="tab-video"):
        gr.Markdown(f"Upload a short clip (up to {vl.max_seconds:g} s and {vl.max_bytes / 2**20:.0f} MB; frames "
                    f"stylised at up to {vl.max_side} px) and a style image. The previous frame's features follow "
                    "the motion, which lowers the flicker.")
        with gr.Row(equal_height=False):
            clip = gr.Video(label="Clip", sources=["upload"], elem_id="video-in", height=280)
            v_style = gr.Image(label="Style", type="filepath", sources=["upload"], elem_id="video-style", height=280)
            v_out = gr.Video(label="Result", interactive=False, elem_id="video-out", height=280)
        with gr.Row():
            v_alpha = gr.Slider(0.0, ALPHA_MAX, value=1.0, step=0.05, label="Style strength α",
                                elem_id="video-alpha")
            v_size = gr.Slider(64, vl.max_side, value=min(WEB_SIZE, vl.max_side), step=16, label="Frame size (px)",
                               elem_id="video-size")
            v_cons = gr.Slider(0.0, 0.95, value=WEB_CONSISTENCY, step=0.05, label="Temporal consistency",
                               elem_id="video-cons", info="set to the measured choice when the frame size moves")
            v_dec = gr.Radio(list(VIDEO_DECODERS), value="pretrained", label="Decoder", elem_id="video-decoder",
                             info="temporal: trained for stable video (less flicker, a little less texture)")
        v_btn = gr.Button("Stylise the clip", variant="primary", elem_id="video-run")
        v_status = gr.HTML(status("info", "Ready."), elem_id="video-status")

        def on_video(*values: Any, progress: Any = gr.Progress()) -> tuple:  # noqa: B008
            return handle(*values, progress=lambda f, d: progress(f, desc=d))

        v_size.change(consistency_for, v_size, v_cons, queue=False)
        v_btn.click(on_video, [clip, v_style, v_alpha, v_size, v_cons, v_dec], [v_out, v_status], api_name="video",
                    preprocess=False, concurrency_id="semstyle", show_progress_on=[v_out, v_status])


__all__ = ["VIDEO_DECODERS", "WEB_CONSISTENCY", "WEB_SIZE", "VideoLimits", "consistency_for", "run_video", "video_tab"]
