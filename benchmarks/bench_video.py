"""Video benchmark (issue 16): flicker, style and content of the temporal-consistency settings.

On the shared sequences (``../shared/data/video``: Sintel ``ambush_3``, ``mountain_2`` and ``cats``,
research use only) and, for the committed pictures, a pan over a bundled public-domain photo, every
setting stylises the same frames in one run:

- ``per-frame``: consistency 0, texture 0;
- ``features``: the previous fused relu4_1 features carried along the DIS flow (the default);
- ``texture T``: also the previous result's texture carried at the output with weight T.

Per setting: the **warping error** (docs/METRICS.md: mean over reliable pixels of
‖O_t − warp(O_{t−1})‖², with Farneback flow on the input frames — not the method's DIS), the
**style distance** (mean/std at relu1_1…relu4_1 to the style, per frame) and the **content loss**
(relu4_1 to the frame), each relative to per-frame; and frames per second.

    python benchmarks/bench_video.py                     # 12 frames a sequence at 256 px; writes docs/
    python benchmarks/bench_video.py --frames 6 --no-write
    python benchmarks/bench_video.py --large 1920x1080   # tiled vs untiled frames: peak memory, time, difference
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle import assets, motion
from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, save_image, to_tensor
from semstyle.io.video import natural_key
from semstyle.pipelines.stylize import Stylizer
from semstyle.pipelines.video import stylize_frames
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video"
SEQUENCES = ("ambush_3", "mountain_2", "cats")
SETTINGS: dict[str, tuple[float, float, float, str]] = {  # name → (consistency, texture, hidden, decoder stage)
    "per-frame": (0.0, 0.0, 0.0, "s4_2"), "features only": (0.8, 0.0, 0.0, "s4_2"),
    "texture 0.2": (0.8, 0.2, 0.0, "s4_2"), "hidden 0.5": (0.8, 0.0, 0.5, "s4_2"),
    "hidden 0.7 (default)": (0.8, 0.0, 0.7, "s4_2"), "hidden 0.8": (0.8, 0.0, 0.8, "s4_2"),
    "hidden 0.7 at stage up4": (0.8, 0.0, 0.7, "up4"), "hidden 0.7 at stage s4_4": (0.8, 0.0, 0.7, "s4_4"),
}
DEFAULT_SETTING = "hidden 0.7 (default)"


def speed(frames: int = 8, size: int = 512) -> None:
    """Frames per second of the default settings at ``size`` on ambush_3 (after one warm-up frame), with
    the default precision (bf16 where the CPU has it natively) and with fp32."""
    import os

    import torch

    from semstyle.networks import native_bf16

    files = sorted((DATA / "ambush_3").glob("*.jpg"), key=lambda p: natural_key(p.name))[:frames]
    clip = [load_image(f) for f in files]
    bf16 = native_bf16(torch.device("cpu"))
    print(f"{torch.get_num_threads()} threads, native bf16: {bf16}, load average {os.getloadavg()[0]:.2f}")
    for model in ("vgg19", "fast"):
        for precision in ("auto", "fp32"):
            st = Stylizer(
                NetworkConfig(model=model, precision=precision), defaults=StylizeOptions(size=size, style_size=size)
            )
            it = stylize_frames(st, clip, assets.style_images()[1])
            next(it)  # the style's encoding and the first frame
            t0 = time.perf_counter()
            n = sum(1 for _ in it)
            print(
                f"{model}, precision {precision}: {n / (time.perf_counter() - t0):.2f} frames/s at {size} px "
                f"({clip[0].size} input frames)"
            )


def memory(n: int, size: int = 128) -> None:
    """Peak and current RSS while a long synthetic pan streams from an mp4 into an mp4 (``stylize_video``):
    flat after the first frames if memory does not grow with the clip's length."""
    import tempfile

    import av

    from semstyle.pipelines.video import stylize_video

    def rss(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
        return -1

    photo = pan_frames(60, size)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "long.mp4"
        with av.open(str(src), "w") as box:
            vs = box.add_stream("libx264", rate=24)
            vs.width, vs.height, vs.pix_fmt = photo[0].width, photo[0].height // 2 * 2, "yuv420p"
            for t in range(n):  # back and forth over the pan, n frames
                im = photo[t % 60 if (t // 60) % 2 == 0 else 59 - t % 60]
                for p in vs.encode(av.VideoFrame.from_ndarray(np.asarray(im)[: vs.height], format="rgb24")):
                    box.mux(p)
            for p in vs.encode():
                box.mux(p)
        st = Stylizer(defaults=StylizeOptions(size=size, style_size=size))
        marks: list[tuple[int, int, int]] = []

        def step(i: int, _: object) -> None:
            if i % max(1, n // 8) == 0 or i == 10:
                marks.append((i, rss("VmRSS"), rss("VmHWM")))

        stylize_video(st, src, assets.style_images()[1], Path(tmp) / "out.mp4", callback=step)
    print(f"{n} frames at {size} px through mp4 → mp4:")
    for i, cur, peak in sorted(marks):
        print(f"  after frame {i:5d}: RSS {cur} MB, peak {peak} MB")


def large(size: str, frames: int = 3) -> None:
    """Frames over the tiling threshold (``--size 0``), with the default carries: each of ``tile`` auto
    (tiled) and -1 (whole frames) in its own process, for its peak resident memory; the seconds per frame
    after the first; and the largest difference between the two clips' frames (grey levels)."""
    import json
    import subprocess
    import sys
    import tempfile

    w, h = (int(v) for v in size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        outs: dict[str, np.ndarray] = {}
        for tile in ("0", "-1"):
            out = Path(tmp) / f"tile{tile}.npy"
            res = subprocess.run(
                [sys.executable, __file__, "--large-worker", f"{w}x{h}", tile, str(frames), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(res.stdout.strip().splitlines()[-1])
            outs[tile] = np.load(out)
            kind = "tiled" if tile == "0" else "whole frames"
            print(
                f"{w}x{h}, tile {tile:>2s} ({kind}): peak RSS {got['peak_mb']} MB, {got['s_per_frame']:.1f} s/frame, "
                f"precision {got['precision']}",
                flush=True,
            )
        d = np.abs(outs["0"].astype(np.int16) - outs["-1"].astype(np.int16))
        print(f"tiled vs whole: max {int(d.max())} grey levels, mean {float(d.mean()):.4f}")


def _large_worker(size: str, tile: int, frames: int, out: str) -> None:
    import json

    from semstyle.io.images import load_image as load

    w, h = (int(v) for v in size.split("x"))
    photo = load(assets.content_images()[0]).convert("RGB")
    photo = photo.resize((w + 8 * frames, round(photo.height * (w + 8 * frames) / photo.width)))
    photo = photo.resize((photo.width, max(photo.height, h)))
    clip = [photo.crop((8 * t, 0, 8 * t + w, h)) for t in range(frames)]  # a pan, 8 px a frame
    st = Stylizer(defaults=StylizeOptions(size=0, style_size=512, tile=tile))
    done, t0 = [], 0.0
    for i, im in enumerate(stylize_frames(st, clip, assets.style_images()[1])):
        done.append(np.asarray(im))
        t0 = time.perf_counter() if i == 0 else t0
    per = (time.perf_counter() - t0) / max(1, frames - 1)
    np.save(out, np.stack(done))
    peak = next(
        int(x.split()[1]) // 1024 for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:")
    )
    print(json.dumps({"peak_mb": peak, "s_per_frame": per, "precision": "bf16" if st.bf16 else "fp32"}))


def pan_frames(n: int, size: int) -> list[Image.Image]:
    """A pan over the bundled astronaut photo (public domain), 4 px a frame at ``size``."""
    photo = load_image(assets.content_images()[0]).convert("RGB")
    photo = photo.resize((size + 4 * n + 8, round(photo.height * (size + 4 * n + 8) / photo.width)))
    h = size * 2 // 3
    top = (photo.height - h) // 2
    return [photo.crop((4 * t, top, 4 * t + size, top + h)) for t in range(n)]


def score(st: Stylizer, ins: list[np.ndarray], outs: list[np.ndarray], style: Image.Image) -> tuple[float, ...]:
    s_f = M.vgg_features(st.encoder, to_tensor(style))
    warp = [motion.warping_error(outs[t - 1], outs[t], ins[t - 1], ins[t]) for t in range(1, len(outs))]
    sd, cl = [], []
    for o, i in zip(outs, ins):
        o_f = M.vgg_features(st.encoder, to_tensor(Image.fromarray(o)))
        sd.append(M.mean_std_style_loss(o_f, s_f))
        cl.append(M.content_loss(o_f, M.vgg_features(st.encoder, to_tensor(Image.fromarray(i)))))
    return float(np.nanmean(warp)), float(np.mean(sd)), float(np.mean(cl)), *warp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24, help="frames per sequence")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated parts of setting names to run (per-frame always)")
    ap.add_argument("--speed", action="store_true", help="only frames per second at 512 px, VGG19 and fast")
    ap.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="N",
        help="only the resident memory while streaming a synthetic clip of N frames through a file",
    )
    ap.add_argument(
        "--large",
        default="",
        metavar="WxH",
        help="only large frames (e.g. 1920x1080): tiled vs whole, peak memory, time (--frames, at most 3)",
    )
    ap.add_argument("--large-worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large_worker:
        size, tile, n, out = args.large_worker
        _large_worker(size, int(tile), int(n), out)
        return
    if args.large:
        large(args.large, min(args.frames, 3))
        return
    if args.speed:
        speed()
        return
    if args.memory:
        memory(args.memory)
        return
    st = Stylizer(defaults=StylizeOptions(size=args.size, style_size=args.size))
    style_path = assets.style_images()[1]
    style = st.encode_style(style_path).image
    clips: dict[str, list[Image.Image]] = {"pan (bundled photo)": pan_frames(args.frames, args.size)}
    for name in SEQUENCES:
        files = sorted((DATA / name).glob("*.jpg"), key=lambda p: natural_key(p.name))[: args.frames]
        if not files:
            raise SystemExit(f"no frames in {DATA / name}; the shared data is missing")
        clips[name] = [resize_longest(load_image(f), args.size) for f in files]
    rows, curves, pictures = [], {}, {}
    for clip, frames in clips.items():
        ins = [np.asarray(f) for f in frames]
        base: tuple[float, ...] | None = None
        for name, (w, tex, hid, layer) in SETTINGS.items():
            if args.only and name != "per-frame" and not any(o in name for o in args.only.split(",")):
                continue
            t0 = time.perf_counter()
            outs = [
                np.asarray(im)
                for im in stylize_frames(
                    st, frames, style_path, consistency=w, texture=tex, hidden=hid, hidden_layer=layer
                )
            ]
            fps = len(outs) / (time.perf_counter() - t0)
            sc = score(st, ins, outs, style)
            base = base or sc
            rows.append((clip, name, sc[0] / base[0], sc[1] / base[1] - 1, sc[2] / base[2] - 1, fps))
            curves[(clip, name)] = sc[3:]
            if clip.startswith("pan"):
                pictures[name] = outs
            print(
                f"{clip:20s} {name:18s} warp {sc[0] / base[0]:.3f}x  style {100 * (sc[1] / base[1] - 1):+.1f} %  "
                f"content {100 * (sc[2] / base[2] - 1):+.1f} %  {fps:.2f} frames/s",
                flush=True,
            )
    table = [
        "| clip | setting | warping error vs per-frame | style distance | content loss | frames/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    table += [f"| {c} | {n} | {w:.2f}× | {100 * s:+.1f} % | {100 * k:+.1f} % | {f:.2f} |" for c, n, w, s, k, f in rows]
    means = [
        "",
        "Mean over the three shared sequences:",
        "",
        "| setting | warping error vs per-frame | style distance | content loss |",
        "|---|---:|---:|---:|",
    ]
    for name in SETTINGS:
        r = [x for x in rows if x[1] == name and not x[0].startswith("pan")]
        if not r:
            continue
        r = [x for x in rows if x[1] == name and not x[0].startswith("pan")]
        means.append(
            f"| {name} | {np.mean([x[2] for x in r]):.3f}× | {100 * np.mean([x[3] for x in r]):+.1f} % | "
            f"{100 * np.mean([x[4] for x in r]):+.1f} % |"
        )
    text = "\n".join(table + means)
    print("\n" + text)
    if args.no_write:
        return
    _figures(pictures, curves, args.size)
    _write(
        ROOT / "docs" / "VIDEO.md",
        text,
        f"{args.frames} frames a clip at {args.size} px, style {style_path.stem}; VGG19, 2 threads.",
    )


def _figures(pictures: dict[str, list[np.ndarray]], curves: dict, size: int) -> None:
    """docs/video_frames.png (the pan, three frames per setting), docs/video_warp.png (error over time),
    docs/video_pan.gif (per-frame next to the default)."""
    names = [n for n in ("per-frame", "features only", "texture 0.2", DEFAULT_SETTING) if n in pictures]
    rows = [[Image.fromarray(pictures[n][t]) for t in (1, 4, 7) if t < len(pictures[n])] for n in names]
    save_image(
        grid(rows, cell=160, titles=["frame 2", "frame 5", "frame 8"]).quantize(256),
        ROOT / "docs" / "video_frames.png",
        overwrite=True,
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3), sharey=False)
    for ax, clip in zip(axes, dict.fromkeys(c for c, _ in curves)):
        for (c, n), ys in curves.items():
            if c == clip:
                ax.plot(range(2, len(ys) + 2), ys, label=n)
        ax.set_title(clip)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("warping error")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "video_warp.png", dpi=80)
    both = [
        Image.fromarray(np.concatenate([a, b], axis=1))
        for a, b in zip(pictures["per-frame"], pictures[DEFAULT_SETTING])
    ]
    both = [f.resize((f.width // 2, f.height // 2), Image.Resampling.LANCZOS) for f in both]
    pal = both[0].quantize(64)  # one palette for every frame: a small file
    q = [f.quantize(palette=pal, dither=Image.Dither.NONE) for f in both]
    q[0].save(ROOT / "docs" / "video_pan.gif", save_all=True, append_images=q[1:], duration=120, loop=0, optimize=True)


BEGIN, END = "<!-- results:begin (written by benchmarks/bench_video.py) -->", "<!-- results:end -->"


def _write(path: Path, table: str, meta: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Video\n\n{BEGIN}\n{END}\n"
    block = f"{BEGIN}\n{meta}\n\n{table}\n{END}"
    text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
