"""Video style transfer with temporal consistency: a stream of frames in, a stream of stylised frames out.

Per-frame AdaIN flickers: its texture jumps between frames. Every frame here uses the same style
statistics (the style is encoded once and cached), and with ``consistency`` W > 0 the previous
frame's *fused relu4_1 features* are carried along the optical flow of the content frames (DIS,
``semstyle.motion``) where the flow is reliable (forward–backward check), mixed into the current
fused features with weight W, then decoded: this costs nothing in style but removes little flicker,
because the decoder renders texture on the stride-8 feature grid, which does not move with the
content. With ``hidden`` H > 0 the previous frame's *decoder activation* at a stride-4
layer is carried too (bicubic warp, contrast restored per channel): the texture rendered there moves
with the content, and the layers after it re-render the fine detail, so the style survives where a
pixel blend would wash it out. With ``texture`` T > 0 the previous *result's* high frequencies, warped along the flow,
replace the current ones with weight T (``carry_texture``): the texture then moves with the content
(warping error down to about a third) but it washes out over the frames (style distance up by half);
docs/VIDEO.md has the measurements. By default W and H are what the measurements choose for the frames' size
(``default_carries``, ``config.VIDEO_CARRIES``): the same carries freeze more of the texture the larger the frame.

In semantic ``auto`` mode the regions are found once, on the first frame, and later frames take
their labels carried along the flow, so the regions do not flicker either.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle import motion
from semstyle.config import VIDEO_CARRIES, VIDEO_TEXTURE, StylizeOptions
from semstyle.errors import InputError
from semstyle.io import video as V
from semstyle.io.images import ImageInput, load_image, resize_longest
from semstyle.io.labels import LabelMap
from semstyle.models.decoder import Decoder, stage_index
from semstyle.pipelines.stylize import Stylizer
from semstyle.pipelines.transfer import Tile
from semstyle.types import StylizeRequest, StylizeResult, as_request

log = logging.getLogger(__name__)

DEFAULT_TEXTURE = VIDEO_TEXTURE  # texture carry: off (the values live in config.py, which the CLI's parser reads)


def default_carries(side: int) -> tuple[float, float]:
    """The (consistency, hidden) the measurements choose for frames whose longest side is ``side`` px:
    ``config.VIDEO_CARRIES``' first row that reaches ``side``, or its last row for larger frames."""
    for up_to, consistency, hidden in VIDEO_CARRIES:
        if side <= up_to:
            return consistency, hidden
    return VIDEO_CARRIES[-1][1], VIDEO_CARRIES[-1][2]


def check_consistency(w: float | None, name: str = "consistency") -> None:
    """A carry's weight: in [0, 1) (0 = off), or None (chosen by the frame size)."""
    if w is not None and not 0.0 <= w < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (0 = off), got {w}")


def check_video_options(opts: StylizeOptions) -> None:
    """The options a clip cannot use: per-frame label maps and per-image refinement."""
    if opts.semantic not in ("none", "auto", "scribbles"):
        raise InputError(f"video supports semantic none, auto or scribbles (regions follow the flow), got "
                         f"{opts.semantic!r}")
    if opts.refine:
        raise InputError("refinement works per image; drop --refine for video")


@dataclass
class _Carry:
    """What one frame leaves for the next, besides the networks' carry (``FrameCarry``)."""

    gray: np.ndarray | None = None  # (H, W) uint8 previous content frame
    labels: np.ndarray | None = None  # (H, W) previous content labels (semantic auto or scribbles)
    out: np.ndarray | None = None  # (H, W, 3) uint8 previous result
    style_labels: list[np.ndarray] = field(default_factory=list)


def _feature_flow(f: np.ndarray, ok: np.ndarray, hw: tuple[int, int], stride: int = 8
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel flow (H, W, 2) and reliability (H, W) → a grid_sample grid (1, h, w, 2) and weights (1, 1, h, w)
    at a feature grid of ``stride`` px (the image padded to (stride·h, stride·w), flow divided by stride)."""
    h, w = hw
    ph, pw = max(stride * h - f.shape[0], 0), max(stride * w - f.shape[1], 0)
    f = np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge")[: stride * h, : stride * w]
    okp = np.pad(ok.astype(np.float32), ((0, ph), (0, pw)), mode="edge")[: stride * h, : stride * w]
    ft = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None]  # (1, 2, s·h, s·w)
    small = F.avg_pool2d(ft, stride) / float(stride)  # (1, 2, h, w) in feature px
    weight = F.avg_pool2d(torch.from_numpy(np.ascontiguousarray(okp))[None, None], stride)  # reliable share
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    gx = (xx + small[0, 0]) / max(w - 1, 1) * 2 - 1
    gy = (yy + small[0, 1]) / max(h - 1, 1) * 2 - 1
    return torch.stack([gx, gy], dim=-1)[None], weight


HIDDEN_STAGE = "s4_2"  # the decoder stage whose activation ``hidden`` carries: the 2nd conv at stride 4 (256 ch, ReLU)
HIDDEN_SAMPLING = "bicubic"  # warping the activation: bilinear blurs it (0.50× at +11.4 % vs +8.3 %, stage s4_1)


class FrameCarry:
    """The networks' temporal carry of a clip, tile by tile (a ``transfer.Carry``).

    Features: the previous frame's fused relu4_1 features, warped along the flow (t → t−1), mixed into the
    current ones with weight ``features_w`` where the flow is reliable. Decoder activation (``hidden_w`` > 0):
    the same at the output of decoder layer ``layer``, bicubic; then, per channel and over the whole frame,
    the mixed activation's contrast is restored to the current one's (two partly aligned activations
    average to a flatter one, and carried frame after frame that loss compounds). The layers after it render
    the texture again from the mixed activation, so it stays sharp where a pixel blend would average two
    unaligned ones. Each carried map covers the whole padded frame, whatever the tiling: a tile reads the
    previous map over its crop and writes its core into the next one.
    """

    def __init__(self, features_w: float, hidden_w: float, layer: str | None = HIDDEN_STAGE) -> None:
        self.features_w, self.hidden_w = features_w, hidden_w
        self._layer = layer if hidden_w > 0 else None
        self.flow: np.ndarray | None = None  # (H, W, 2) this frame's pixel flow t → t−1
        self.ok: np.ndarray | None = None  # (H, W) bool, where that flow is reliable
        self.fused: torch.Tensor | None = None  # (1, C, Hp/8, Wp/8) the previous frame's features as decoded
        self.hidden: torch.Tensor | None = None  # (1, C', Hp/s, Wp/s) its activation at ``layer`` as decoded
        self._next_fused: torch.Tensor | None = None
        self._next_hidden: torch.Tensor | None = None
        self._stride = 0  # px per cell of the activation
        self._sums: list[torch.Tensor] = []  # float64 count, channel sums and sums of squares of the current one
        self._mixing = self._settled = False
        self._grids: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def split(self) -> str | None:
        return self._layer

    def next_frame(self, flow: np.ndarray | None, ok: np.ndarray | None) -> None:
        """Start a frame whose flow to the previous one is ``flow`` (None: the first, or after a cut)."""
        self.fused = self._next_fused if self._next_fused is not None else self.fused
        self.hidden = self._next_hidden if self._next_hidden is not None else self.hidden
        self._next_fused = self._next_hidden = None
        self.flow, self.ok = flow, ok
        self._sums, self._mixing, self._settled, self._grids = [], False, False, {}

    def _warped(self, prev: torch.Tensor, tile: Tile, size: tuple[int, int], stride: int, mode: str
                ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The previous map over the tile's crop, warped along the flow, and the flow's reliability there."""
        h, w = size[0] // stride, size[1] // stride
        if self.flow is None or self.ok is None or prev.shape[-2:] != (h, w):
            return None
        if (key := (stride, h, w)) not in self._grids:
            self._grids[key] = _feature_flow(self.flow, self.ok, (h, w), stride)
        grid, weight = self._grids[key]
        fy, fx = tile.crop(stride)
        warped = F.grid_sample(prev.float(), grid[:, fy, fx].to(prev.device), mode=mode, padding_mode="border",
                               align_corners=True)
        return warped, weight[:, :, fy, fx].to(prev.device)

    def features(self, fused: torch.Tensor, tile: Tile, size: tuple[int, int]) -> torch.Tensor:
        out = fused
        got = self._warped(self.fused, tile, size, 8, "bilinear") if self.fused is not None else None
        if got is not None and self.features_w > 0 and got[0].shape == fused.shape:
            prev, weight = got
            out = fused + (self.features_w * weight).to(fused.dtype) * (prev.to(fused.dtype) - fused)
        if self._next_fused is None:
            self._next_fused = fused.new_zeros(1, fused.shape[1], size[0] // 8, size[1] // 8)
        self._next_fused[(..., *tile.core(8))] = out[(..., *tile.core_in_crop(8))]
        return out

    def collect(self, act: torch.Tensor, tile: Tile, size: tuple[int, int]) -> None:
        self._stride = s = (tile.cy1 - tile.cy0) // act.shape[-2]
        cur = mixed = act.float()
        got = self._warped(self.hidden, tile, size, s, HIDDEN_SAMPLING) if self.hidden is not None else None
        if got is not None and got[0].shape == cur.shape:
            prev, weight = got
            mixed = cur + (self.hidden_w * weight) * (prev - cur)
            self._mixing = True
        core = cur[(..., *tile.core_in_crop(s))].double()
        sums = [torch.tensor(float(core[0, 0].numel()), dtype=torch.float64), core.sum((0, 2, 3)),
                core.square().sum((0, 2, 3))]
        self._sums = sums if not self._sums else [a + b for a, b in zip(self._sums, sums)]
        if self._next_hidden is None:
            self._next_hidden = cur.new_zeros(1, cur.shape[1], size[0] // s, size[1] // s)
        self._next_hidden[(..., *tile.core(s))] = mixed[(..., *tile.core_in_crop(s))]

    def activation(self, tile: Tile) -> torch.Tensor:
        assert self._next_hidden is not None, "collect every tile first"
        if not self._settled:
            self._settled = True
            if self._mixing:
                self._restore_contrast(self._next_hidden)
        return self._next_hidden[(..., *tile.crop(self._stride))]

    def _restore_contrast(self, mixed: torch.Tensor) -> None:
        """In place, per channel: the mixed activation's mean and std set to the current one's (unbiased)."""
        n, s, ss = self._sums
        c_mean = s / n
        c_std = ((ss - s * c_mean) / (n - 1)).clamp_min(0).sqrt()
        m = mixed.double()
        x_mean, x_std = m.mean((0, 2, 3)), m.std((0, 2, 3))
        scale = c_std / x_std.clamp_min(1e-6)
        shift = c_mean - x_mean * scale
        mixed.mul_(scale.float()[None, :, None, None]).add_(shift.float()[None, :, None, None])


def carry_texture(current: np.ndarray, previous: np.ndarray, flow_px: np.ndarray, ok: np.ndarray, w: float,
                  sigma: float = 2.0) -> np.ndarray:
    """The output-stage carry that keeps the texture: the previous result, warped along the flow, gives
    the high frequencies (its texture, moved with the content) with weight w where the flow is reliable;
    the low frequencies (colour, light) stay the current frame's. Blending whole pixels instead would
    average two unaligned textures and wash them out. The mixed texture is rescaled per channel to the
    current texture's contrast (std): two partly aligned textures average to a flatter one, and
    carried frame after frame (each warp resampling it) that loss compounds — restoring it cut the
    style cost of w = 0.3 from +61 % to +18 % (docs/VIDEO.md). (H, W, 3) uint8 → uint8."""
    cv2 = motion._cv2()
    cur = current.astype(np.float32)
    prev = motion.warp(previous.astype(np.float32), flow_px, cubic=True)
    low_c = cv2.GaussianBlur(cur, (0, 0), sigma)
    low_p = cv2.GaussianBlur(prev, (0, 0), sigma)
    m = (w * ok.astype(np.float32))[..., None]
    texture = cur - low_c
    high = (1 - m) * texture + m * (prev - low_p)
    contrast = texture.reshape(-1, 3).std(0) / np.maximum(high.reshape(-1, 3).std(0), 1e-6)  # (3,)
    out: np.ndarray = np.clip(low_c + high * contrast + 0.5, 0, 255).astype(np.uint8)
    return out


def stylize_frames(
    stylizer: Stylizer,
    frames: Iterable[ImageInput],
    style: ImageInput | Sequence[ImageInput],
    *,
    style_weights: Sequence[float] | None = None,
    consistency: float | None = None,
    texture: float = DEFAULT_TEXTURE,
    hidden: float | None = None,
    hidden_layer: str = HIDDEN_STAGE,
    callback: Callable[[int, StylizeResult], None] | None = None,
    options: StylizeOptions | None = None,
    content_scribbles: Any = None,
    style_scribbles: Sequence[Any] | None = None,
) -> Iterator[Image.Image]:
    """Stylise ``frames`` (paths, PIL images or arrays, one at a time) with ``style``; yield each result.

    ``consistency`` in [0, 1): the weight of the previous frame's features carried along the flow
    (0 = per-frame: nothing at all is carried); ``hidden`` in [0, 1): the weight of the previous frame's
    decoder activation at ``hidden_layer`` carried along the flow (``FrameCarry``); either left None takes the
    measurements' choice for the frames' size (``default_carries``: larger frames carry less);
    ``texture`` in [0, 1): the weight of the previous result's texture carried along the flow at the
    output (``carry_texture``: far less flicker, at a cost in style; docs/VIDEO.md).
    ``options`` are the clip's options (default: the Stylizer's; semantic "none", "auto" or "scribbles", no
    refinement); with "scribbles", ``content_scribbles`` are strokes over the first frame and ``style_scribbles``
    one stroke picture per style: the regions grow on the first frame, then follow the flow as "auto"'s do;
    ``callback`` gets the number of frames done and the frame's full result (its regions, timings).
    The styles are loaded and encoded once, before the first frame.
    """
    check_consistency(consistency)
    check_consistency(texture, "texture")
    check_consistency(hidden, "hidden")
    stage_index(hidden_layer)  # a ValueError naming the stages
    opts = stylizer.options(options)
    check_video_options(opts)
    given: list[ImageInput] = list(style) if isinstance(style, (list, tuple)) else [style]  # type: ignore[list-item]
    styles = [stylizer.encode_style(s, opts) for s in given]
    carry = _Carry()
    layer = hidden_layer if isinstance(stylizer.decoder, Decoder) else None
    nets: FrameCarry | None = None
    frame_opts = opts.updated(size=0)  # frames are resized here, once, so the flow sees what is stylised
    for i, frame in enumerate(frames):
        img = resize_longest(load_image(frame, opts.max_pixels, "video frame"), opts.size)
        g = motion.gray(np.asarray(img, dtype=np.uint8))
        if i == 0:
            nets, texture = _frame_carry(consistency, hidden, texture, max(img.size), layer)
        flow_px, ok = _flow_back(carry, g, img.size, i)
        req = as_request(img, styles, style_weights=style_weights, content_scribbles=content_scribbles,
                         style_scribbles=style_scribbles)
        req, run_opts = _carried_regions(req, frame_opts, carry, flow_px)
        if nets is not None:
            nets.next_frame(flow_px, ok)
        res = stylizer.run(req, run_opts, carry=nets)
        if texture > 0 and carry.out is not None and flow_px is not None and ok is not None:
            res.image = Image.fromarray(carry_texture(np.asarray(res.image), carry.out, flow_px, ok, texture))
        _remember(carry, res, g, opts.semantic)
        if callback is not None:
            callback(i + 1, res)
        yield res.image


def _frame_carry(consistency: float | None, hidden: float | None, texture: float, side: int, layer: str | None
                 ) -> tuple[FrameCarry | None, float]:
    """The clip's networks' carry and texture weight, the carries left None chosen for frames of ``side`` px;
    consistency 0 is per-frame: nothing at all is carried."""
    by_size = default_carries(side)
    features = by_size[0] if consistency is None else consistency
    activation = by_size[1] if hidden is None else hidden
    log.info("video carries for %d px frames: consistency %g, hidden %g", side, features, activation)
    if features == 0:
        return None, 0.0
    return FrameCarry(features, activation, layer), texture  # the fast model (layer None): features only


def _flow_back(carry: _Carry, g: np.ndarray, size: tuple[int, int], i: int
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Frame ``i``'s flow to the previous frame (t → t−1: where each pixel was) and where it is reliable; (None,
    None) for the first frame; InputError when the frame's size changed."""
    if carry.gray is None:
        return None, None
    if carry.gray.shape != g.shape:
        raise InputError(f"frame {i + 1} is {size[0]}x{size[1]}, unlike the frames before it")
    flow_px = motion.flow(g, carry.gray)
    return flow_px, motion.reliable(flow_px, motion.flow(carry.gray, g))


def _carried_regions(req: StylizeRequest, frame_opts: StylizeOptions, carry: _Carry, flow_px: np.ndarray | None
                     ) -> tuple[StylizeRequest, StylizeOptions]:
    """After the first frame, "auto" and "scribbles" regions are the previous frame's, moved along the flow."""
    if frame_opts.semantic not in ("auto", "scribbles") or carry.labels is None or flow_px is None:
        return req, frame_opts
    labels = motion.warp(carry.labels.astype(np.float32), flow_px, nearest=True).round().astype(np.int64)
    return (StylizeRequest(req.content, req.styles, req.style_weights, content_labels=LabelMap(labels),
                           style_labels=tuple(LabelMap(s) for s in carry.style_labels)),
            frame_opts.updated(semantic="labels"))


def _remember(carry: _Carry, res: StylizeResult, g: np.ndarray, semantic: str) -> None:
    """What this frame leaves for the next: its grey picture, its result and, in semantic modes, its regions."""
    carry.out = np.asarray(res.image)
    if semantic in ("auto", "scribbles"):
        carry.labels = res.content_labels
        if not carry.style_labels:
            carry.style_labels = [s for s in res.style_labels if s is not None]
    carry.gray = g


def stylize_video(
    stylizer: Stylizer,
    source: str | Path,
    style: ImageInput | Sequence[ImageInput],
    output: str | Path,
    *,
    overwrite: bool = False,
    consistency: float | None = None,
    texture: float = DEFAULT_TEXTURE,
    hidden: float | None = None,
    callback: Callable[[int, StylizeResult], None] | None = None,
    options: StylizeOptions | None = None,
    content_scribbles: Any = None,
    style_scribbles: Sequence[Any] | None = None,
) -> Path:
    """Stylise the clip ``source`` (video file or folder of frames) into ``output`` (mp4, webm, gif or a
    folder of PNGs), as a stream; returns the output's path. The frame rate is kept and the audio copied
    where the container can hold it; nothing is left at ``output`` unless every frame was written."""
    check_consistency(consistency)
    check_consistency(texture, "texture")
    check_consistency(hidden, "hidden")
    out = V.check_output(output, overwrite)
    opts = stylizer.options(options)
    info = V.probe(source, opts.max_pixels)
    names: deque[str] = deque()

    def frames() -> Iterator[Image.Image]:
        for f in V.read_frames(info, opts.max_pixels):
            names.append(f.name)
            yield f.image

    writer: V.FrameWriter | None = None
    try:
        for img in stylize_frames(stylizer, frames(), style, consistency=consistency, texture=texture, hidden=hidden,
                                  callback=callback, options=opts, content_scribbles=content_scribbles,
                                  style_scribbles=style_scribbles):
            if writer is None:
                writer = V.FrameWriter(out, info.fps, img.size, audio_from=info)
            writer.write(np.asarray(img, dtype=np.uint8), names.popleft())
        if writer is None:
            raise InputError(f"video '{info.path}' has no frames")
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


__all__ = ["DEFAULT_TEXTURE", "HIDDEN_STAGE", "FrameCarry", "carry_texture", "check_consistency", "check_video_options",
           "default_carries", "stylize_frames", "stylize_video"]
