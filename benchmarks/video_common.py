"""What the video benchmarks share: the shared clips, one setting's run, and its scores.

A clip is loaded once with its Farneback flows (t → t−1, with the forward–backward check), which every decoder and
setting scored on it reuses: the short-term **warping error** (frame t against t−1) and the **long-range** one
(frame t against t−``LONG`` through the chained flow, CCPL's long-term figure; docs/METRICS.md), the **style
distance** to the style and the **content loss** to each input frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle import metrics as M
from semstyle import motion
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.io.video import natural_key
from semstyle.pipelines.stylize import Stylizer
from semstyle.pipelines.video import stylize_frames

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video"
SEQUENCES = ("ambush_3", "mountain_2", "cats")
LONG = 10  # frames between the two of the long-range error


@dataclass(frozen=True)
class Setting:
    consistency: float  # --consistency: the fused features carried
    texture: float = 0.0  # --texture: the result's high frequencies carried
    hidden: float = 0.0  # --hidden: the decoder activation carried
    layer: str = "s4_2"  # the decoder stage carried


PER_FRAME = Setting(0.0)


@dataclass
class Clip:
    frames: list[Image.Image]  # the input frames at the benchmark's size
    ins: list[np.ndarray]  # the same, uint8 arrays
    flows: list[tuple[np.ndarray, np.ndarray]]  # entry t−1: Farneback flow t → t−1 and where it is reliable


@dataclass
class Scores:
    warp: float  # mean short-term warping error (t vs t−1)
    long: float  # mean long-range warping error (t vs t−LONG, chained flow); NaN for clips shorter than LONG + 1
    style: float  # mean style distance (mean/std, relu1_1…relu4_1) to the style
    content: float  # mean content loss (relu4_1) to the input frame
    curve: list[float]  # the short-term error per frame
    fps: float = 0.0  # frames per second of the run


def clip(frames: list[Image.Image]) -> Clip:
    ins = [np.asarray(f.convert("RGB")) for f in frames]
    return Clip(frames, ins, motion.backward_flows(ins, "farneback"))


def shared_clip(name: str, n: int, size: int) -> Clip:
    files = sorted((DATA / name).glob("*.jpg"), key=lambda p: natural_key(p.name))[:n]
    if not files:
        raise SystemExit(f"no frames in {DATA / name}; the shared data is missing")
    return clip([resize_longest(load_image(f), size) for f in files])


def run(st: Stylizer, c: Clip, style: str | Path, s: Setting) -> tuple[list[np.ndarray], float]:
    """The stylised frames of one setting and its frames per second."""
    t0 = time.perf_counter()
    outs = [np.asarray(im) for im in stylize_frames(st, c.frames, style, consistency=s.consistency, texture=s.texture,
                                                    hidden=s.hidden, hidden_layer=s.layer)]
    return outs, len(outs) / (time.perf_counter() - t0)


def score(judge: Stylizer, c: Clip, outs: list[np.ndarray], style: Image.Image, fps: float = 0.0) -> Scores:
    s_f = M.vgg_features(judge.encoder, to_tensor(style))
    curve = [motion.carried_error(outs[t - 1], outs[t], *c.flows[t - 1]) for t in range(1, len(outs))]
    long = [motion.carried_error(outs[t - LONG], outs[t], *motion.chained(c.flows, t, LONG))
            for t in range(LONG, len(outs))]
    sd, cl = [], []
    for o, i in zip(outs, c.ins):
        o_f = M.vgg_features(judge.encoder, to_tensor(Image.fromarray(o)))
        sd.append(M.mean_std_style_loss(o_f, s_f))
        cl.append(M.content_loss(o_f, M.vgg_features(judge.encoder, to_tensor(Image.fromarray(i)))))
    return Scores(float(np.nanmean(curve)), float(np.nanmean(long)) if long else float("nan"), float(np.mean(sd)),
                  float(np.mean(cl)), curve, fps)


def carried_through(first: np.ndarray, flows: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Frame 0's result ``first`` (H, W, 3) uint8 carried through the clip along ``flows`` (entry t−1: t → t−1), each
    frame sampled once from ``first`` at the chained position (bicubic; nothing compounds, nothing is re-rendered):
    a texture locked to that flow. Its warping error is what the benchmark gives a perfectly flow-locked texture of
    per-frame contrast — the floor of the metric for that flow (``bench_video.py --floor``)."""
    f = np.zeros((*first.shape[:2], 2), np.float32)  # where each pixel of frame t was in frame 0
    outs = [first]
    for back, _ in flows:
        f = back + motion.warp(f, back)  # t → t−1, then t−1 → 0 read there
        outs.append(np.clip(motion.warp(first.astype(np.float32), f, cubic=True) + 0.5, 0, 255).astype(np.uint8))
    return outs


def relative(s: Scores, base: Scores) -> dict[str, float]:
    """``s`` against the per-frame baseline ``base``: warping errors as ratios, style and content as changes."""
    return {"warp": s.warp / base.warp, "long": s.long / base.long, "style": s.style / base.style - 1,
            "content": s.content / base.content - 1}
