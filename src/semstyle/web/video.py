"""The page's video tab: a short uploaded clip, stylised as a stream into an mp4 in the server's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from semstyle.io import video as V
from semstyle.pipelines.video import DEFAULT_CONSISTENCY, check_consistency, stylize_video
from semstyle.web.engine import Engine, Progress, Upload, UserError, human_bytes, safe_stem


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


def run_video(engine: Engine, limits: VideoLimits, video: Upload | None, style: Upload | None, *,
              alpha: float = 1.0, consistency: float = DEFAULT_CONSISTENCY, size: int = 256,
              progress: Progress | None = None) -> Path:
    """Stylise one uploaded clip; returns the mp4's path. Raises UserError (and the pipeline's one-line
    errors) for anything wrong with the request."""
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
    if not 0.0 <= float(alpha) <= 1.0:
        raise UserError(f"alpha must be in [0, 1], got {alpha}")
    try:
        check_consistency(float(consistency))
    except ValueError as e:
        raise UserError(str(e)) from None
    info = V.probe(video.path, engine.limits.max_pixels)
    if info.frames and info.frames / float(info.fps) > limits.max_seconds:
        raise UserError(f"the clip is {info.frames / float(info.fps):.1f} s long, over the limit of "
                        f"{limits.max_seconds:g} s; trim it")
    style_img = engine.load(style, "style image", engine.style_size)
    st = engine.stylizer("pretrained")
    total = info.frames or round(limits.max_seconds * float(info.fps))
    out = engine.new_output(f"semstyle_{safe_stem(video.name, 'video')}.mp4")

    def step(i: int, _: object) -> None:
        if i > limits.max_seconds * float(info.fps):  # the container did not say how long it is
            raise UserError(f"the clip is longer than the limit of {limits.max_seconds:g} s; trim it")
        say(0.05 + 0.9 * min(i / max(total, 1), 1.0), f"frame {i} of {total}")

    say(0.05, "stylising the frames")
    return stylize_video(st, info.path, style_img, out, overwrite=True, consistency=float(consistency),
                         callback=step, options=st.options(overrides={"alpha": float(alpha), "size": int(size)}))


__all__ = ["VideoLimits", "run_video"]
