"""Video and frame-folder input/output, streamed: frames are read, and written, one at a time.

Reading: a video file (mp4, mov, mkv, webm, avi, gif) through PyAV (its wheels carry FFmpeg), or a
folder of images in natural sort order (``frame_2`` before ``frame_10``). Frames of a folder whose
size differs from the first frame's are resized to it (with a warning), so a clip has one size.
Writing: a video file chosen by extension (mp4: H.264, webm: VP9, gif) or a folder of PNGs named
after the input frames' stems; the output goes to a temporary name beside the target and is renamed
into place by ``close()`` (``abort()`` removes it), so an interrupted run leaves nothing half-written.
The audio stream of a video input is copied when the output container can hold its codec, else
re-encoded (AAC into mp4, Opus into webm); a gif has no sound. yuv420p needs even sides: an odd-sized
clip loses its last column or row in mp4 and webm (a folder of PNGs keeps every pixel).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semstyle.errors import InputError
from semstyle.io.files import list_images
from semstyle.io.images import load_image

log = logging.getLogger(__name__)

VIDEO_INPUTS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif")
VIDEO_OUTPUTS = (".mp4", ".webm", ".gif")
FOLDER_FPS = Fraction(24)  # frame rate given to a folder of frames
# output container → (video codec, pixel format, audio codecs it can hold as they are, audio codec for the rest)
_CODECS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    ".mp4": ("libx264", "yuv420p", ("aac", "mp3", "ac3", "opus", "alac"), "aac"),
    ".webm": ("libvpx-vp9", "yuv420p", ("opus", "vorbis"), "libopus"),
    ".gif": ("gif", "rgb8", (), None),  # 3-3-2 bit colour: previews (FFmpeg cannot palettise a stream here)
}
TRANSCODE_RATES = {"libopus": 48000}  # sample rate an audio encoder needs (others keep the input's)


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - installed by the set-up
        raise InputError("video needs PyAV: pip install 'semstyle[video]'") from None
    return av


def natural_key(name: str) -> list[object]:
    """Sort key that orders digit runs by value: frame_2 < frame_10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, read before any frame is stylised."""

    path: Path
    fps: Fraction  # frames per second (FOLDER_FPS for a folder)
    size: tuple[int, int]  # (W, H) of every frame
    frames: int  # number of frames (0 when the container does not say)
    folder: bool  # a folder of images
    audio: str | None  # the audio codec's name, None without audio


@dataclass(frozen=True)
class Frame:
    name: str  # the frame's stem: file stem in a folder, frame_00000… in a video
    image: Image.Image  # RGB


def _folder_frames(path: Path) -> list[Path]:
    files = sorted(list_images(path), key=lambda p: natural_key(p.name))
    if not files:
        raise InputError(f"video folder '{path}' holds no frames (png, jpg, …)")
    return files


def probe(path: str | Path, max_pixels: int) -> VideoInfo:
    """Check that ``path`` is a readable clip within ``max_pixels`` a frame; InputError says why not."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"video '{p}' does not exist")
    if p.is_dir():
        files = _folder_frames(p)
        first = load_image(files[0], max_pixels, "video frame")
        return VideoInfo(p, FOLDER_FPS, first.size, len(files), True, None)
    if p.suffix.lower() not in VIDEO_INPUTS:
        raise InputError(f"'{p}' is not a video ({', '.join(VIDEO_INPUTS)}) or a folder of frames")
    av = _av()
    try:
        with av.open(str(p)) as box:
            if not box.streams.video:
                raise InputError(f"'{p}' has no video stream")
            vs = box.streams.video[0]
            w, h = vs.codec_context.width, vs.codec_context.height
            if w * h > max_pixels:
                raise InputError(f"video '{p}' has {w}x{h} frames, over the limit of {max_pixels} pixels")
            frame0 = next(box.decode(vs), None)
            if frame0 is None:
                raise InputError(f"video '{p}' has no frames")
            fps = Fraction(vs.average_rate) if vs.average_rate else FOLDER_FPS
            audio = box.streams.audio[0].codec_context.name if box.streams.audio else None
            return VideoInfo(p, fps, (frame0.width, frame0.height), int(vs.frames or 0), False, audio)
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"'{p}' is damaged or not a video ({type(e).__name__})") from None


def read_frames(info: VideoInfo, max_pixels: int) -> Iterator[Frame]:
    """The clip's frames in order, one at a time, each (W, H) = ``info.size``."""
    if info.folder:
        for f in _folder_frames(info.path):
            img = load_image(f, max_pixels, "video frame")
            if img.size != info.size:
                log.warning("frame %s is %dx%d; resized to the first frame's %dx%d", f.name, *img.size, *info.size)
                img = img.resize(info.size, Image.Resampling.BICUBIC)
            yield Frame(f.stem, img)
        return
    av = _av()
    try:
        with av.open(str(info.path)) as box:
            vs = box.streams.video[0]
            vs.thread_type = "AUTO"
            for i, frame in enumerate(box.decode(vs)):
                img = frame.to_image().convert("RGB")
                if img.size != info.size:
                    img = img.resize(info.size, Image.Resampling.BICUBIC)
                yield Frame(f"frame_{i:05d}", img)
    except av.FFmpegError as e:
        raise InputError(f"'{info.path}' is damaged: decoding stopped ({type(e).__name__})") from None


def check_output(path: str | Path, overwrite: bool) -> Path:
    """The output is a video file by extension (mp4, webm, gif) or a folder (no extension)."""
    p = Path(path)
    if p.suffix and p.suffix.lower() not in VIDEO_OUTPUTS:
        raise InputError(f"unknown video output '{p.suffix}'; write {', '.join(VIDEO_OUTPUTS)} or a folder")
    if p.exists() and not overwrite:
        raise InputError(f"output '{p}' already exists; pass --overwrite to replace it")
    if p.suffix and p.is_dir():
        raise InputError(f"output '{p}' is a folder")
    if not p.parent.exists():
        raise InputError(f"the folder of output '{p}' does not exist")
    return p


class FrameWriter:
    """Write frames to ``path`` (video by extension, or a folder of PNGs) under a temporary name."""

    def __init__(self, path: Path, fps: Fraction, size: tuple[int, int], audio_from: VideoInfo | None = None) -> None:
        self.path, self.fps, self.size, self.count = path, fps, size, 0
        self._audio = audio_from if audio_from is not None and audio_from.audio and not audio_from.folder else None
        self._tmp: Path
        self._box: Any = None
        self._in_audio: Any = None
        self._as: Any = None
        self._transcode = False  # re-encode the audio (its codec does not fit the container) or copy it
        if not path.suffix:  # a folder of PNGs
            self._tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
        os.close(fd)
        self._tmp = Path(tmp)
        av = _av()
        codec, pix, self._audio_ok, self._audio_to = _CODECS[path.suffix.lower()]
        self._box = av.open(str(self._tmp), "w")
        # an even size for the yuv420p codecs
        w, h = (size[0] // 2 * 2, size[1] // 2 * 2) if pix == "yuv420p" else size
        if (w, h) != size:
            log.warning("%s needs even sides: the %dx%d frames are written as %dx%d", path.suffix, *size, w, h)
        self._vs = self._box.add_stream(codec, rate=fps)
        self._vs.width, self._vs.height, self._vs.pix_fmt = w, h, pix
        if codec == "libx264":
            self._vs.options = {"crf": "18", "preset": "veryfast"}
        elif codec == "libvpx-vp9":
            self._vs.options = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        if self._audio is not None:
            self._add_audio(av, self._audio)

    def _add_audio(self, av: Any, audio: VideoInfo) -> None:
        """The output's audio stream: a copy of the input's, or (a codec the container cannot hold) a re-encoding."""
        if audio.audio in self._audio_ok:
            self._in_audio = av.open(str(audio.path))
            self._as = self._box.add_stream_from_template(self._in_audio.streams.audio[0])
        elif self._audio_to is not None:
            self._in_audio = av.open(str(audio.path))
            src = self._in_audio.streams.audio[0]
            self._as = self._box.add_stream(self._audio_to, rate=TRANSCODE_RATES.get(self._audio_to, src.rate))
            self._as.layout = "stereo" if src.codec_context.layout.nb_channels > 1 else "mono"
            self._transcode = True
            log.info("audio (%s) is re-encoded as %s for %s", audio.audio, self._audio_to, self.path.suffix)
        else:
            log.warning("a %s has no sound: the audio (%s) is left out", self.path.suffix, audio.audio)

    def write(self, frame: np.ndarray, name: str) -> None:
        """frame: (H, W, 3) uint8 at ``size``; ``name`` names the PNG in folder mode."""
        if self._box is None:
            Image.fromarray(frame).save(self._tmp / f"{name}.png")
        else:
            av = _av()
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: self._vs.height, : self._vs.width]),
                                            format="rgb24")
            for packet in self._vs.encode(vf):
                self._box.mux(packet)
        self.count += 1

    def close(self) -> Path:
        """Finish the file (flush the encoder, copy the audio) and rename it into place."""
        if self._box is not None:
            for packet in self._vs.encode():
                self._box.mux(packet)
            if self._as is not None:
                self._write_audio()
                self._in_audio.close()
            self._box.close()
            os.replace(self._tmp, self.path)
        else:
            if self.path.exists():
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            os.replace(self._tmp, self.path)
        return self.path

    def _write_audio(self) -> None:
        src = self._in_audio.streams.audio[0]
        if self._transcode:  # decode, re-encode (the encoder resamples to its own format, layout and rate)
            for frame in self._in_audio.decode(src):
                frame.pts = None
                for packet in self._as.encode(frame):
                    self._box.mux(packet)
            for packet in self._as.encode():
                self._box.mux(packet)
            return
        for packet in self._in_audio.demux(src):
            if packet.dts is None:
                continue
            packet.stream = self._as
            self._box.mux(packet)

    def abort(self) -> None:
        """Remove the temporary output (an interrupted or failed run)."""
        try:
            if self._box is not None:
                self._box.close()
            if self._in_audio is not None:
                self._in_audio.close()
        except Exception:  # noqa: BLE001 - cleaning up after another error
            pass
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._tmp.unlink(missing_ok=True)


__all__ = ["FrameWriter", "Frame", "VideoInfo", "check_output", "natural_key", "probe", "read_frames",
           "VIDEO_INPUTS", "VIDEO_OUTPUTS"]
