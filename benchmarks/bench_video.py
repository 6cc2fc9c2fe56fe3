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
    python benchmarks/bench_video.py --floor --size 512  # the metric's floor: frame 0's texture locked to a flow
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from video_common import PER_FRAME, SEQUENCES, Setting, carried_through, clip, relative, run, score, shared_clip

from semstyle import assets, motion
from semstyle.allocator import keep_freed_memory
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, save_image
from semstyle.io.video import natural_key
from semstyle.pipelines.stylize import Stylizer
from semstyle.pipelines.video import stylize_frames
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video"
SETTINGS: dict[str, Setting] = {  # name → the carries (consistency, texture, hidden, decoder stage)
    "per-frame": PER_FRAME, "features only": Setting(0.8), "consistency 0.5": Setting(0.5),
    "texture 0.2": Setting(0.8, 0.2), "hidden 0.5": Setting(0.8, hidden=0.5),
    "hidden 0.7 (default ≤ 256 px)": Setting(0.8, hidden=0.7), "hidden 0.8": Setting(0.8, hidden=0.8),
    "hidden 0.7 at stage up4": Setting(0.8, hidden=0.7, layer="up4"),
    "hidden 0.7 at stage s4_4": Setting(0.8, hidden=0.7, layer="s4_4"),
}
DEFAULT_SETTING = "hidden 0.7 (default ≤ 256 px)"


def speed(decoders: list[str], frames: int = 8, size: int = 512) -> None:
    """Frames per second of the default settings at ``size`` on ambush_3 (after one warm-up frame), with
    the default precision (bf16 where the CPU has it natively) and with fp32."""
    import os

    import torch

    from semstyle.networks import native_bf16

    files = sorted((DATA / "ambush_3").glob("*.jpg"), key=lambda p: natural_key(p.name))[:frames]
    frames_in = [load_image(f) for f in files]
    bf16 = native_bf16(torch.device("cpu"))
    print(f"{torch.get_num_threads()} threads, native bf16: {bf16}, load average {os.getloadavg()[0]:.2f}")
    for model, decoder in (*(("vgg19", d) for d in decoders), ("fast", "pretrained")):
        for precision in ("auto", "fp32"):
            st = Stylizer(NetworkConfig(model=model, decoder=decoder, precision=precision),
                          defaults=StylizeOptions(size=size, style_size=size))
            it = stylize_frames(st, frames_in, assets.style_images()[1])
            next(it)  # the style's encoding and the first frame
            t0 = time.perf_counter()
            n = sum(1 for _ in it)
            print(
                f"{model}, precision {precision}: {n / (time.perf_counter() - t0):.2f} frames/s at {size} px "
                f"({frames_in[0].size} input frames, decoder {st.config.decoder})"
            )


def floor(frames: int, size: int) -> None:
    """What a texture locked to the content scores: frame 0's per-frame result carried through each shared clip along
    the method's flow (DIS) and along the benchmark's own (Farneback), against per-frame stylisation."""
    st = Stylizer(defaults=StylizeOptions(size=size, style_size=size))
    style_path = assets.style_images()[1]
    style = st.encode_style(style_path).image
    means: dict[str, list[dict[str, float]]] = {"dis": [], "farneback": []}
    for name in SEQUENCES:
        c = shared_clip(name, frames, size)
        outs, _ = run(st, c, style_path, PER_FRAME)
        base = score(st, c, outs, style)
        for method, rs in means.items():
            flows = c.flows if method == "farneback" else motion.backward_flows(c.ins, method)
            rs.append(r := relative(score(st, c, carried_through(outs[0], flows), style), base))
            print(f"{name:12s} frame 0 carried along {method:9s} warp {r['warp']:.3f}x  long {r['long']:.3f}x  "
                  f"style {100 * r['style']:+.1f} %  content {100 * r['content']:+.1f} %", flush=True)
    for method, rs in means.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        print(f"mean         frame 0 carried along {method:9s} warp {m['warp']:.3f}x  long {m['long']:.3f}x  "
              f"style {100 * m['style']:+.1f} %  content {100 * m['content']:+.1f} %")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24, help="frames per sequence")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated parts of setting names to run (per-frame always)")
    ap.add_argument("--decoders", default="pretrained",
                    help="comma-separated decoders (a source, or NAME=SOURCE), each run with every setting; the "
                         "first one's per-frame run is the baseline (e.g. pretrained,temporal)")
    ap.add_argument("--plot", default="", metavar="PNG", help="also draw the flicker–style trade-off there")
    ap.add_argument("--replot", default="", metavar="JSON", help="only redraw the trade-off figure from --plot's rows")
    ap.add_argument("--clips", default="", help="comma-separated clips (pan and the shared sequences by default)")
    ap.add_argument("--floor", action="store_true",
                    help="only the metric's floor: frame 0's result carried along each flow through the clip")
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
    if args.replot:  # the trade-off figure again from a run's saved rows
        tradeoff([tuple(r) for r in json.loads(Path(args.replot).read_text())], Path(args.replot).with_suffix(".png"))
        return
    if args.floor:
        floor(args.frames, args.size)
        return
    if args.speed:  # as `semstyle video` runs: freed memory kept (SEMSTYLE_MALLOC=default: glibc's defaults)
        print(f"freed memory kept: {keep_freed_memory()}")
        speed(args.decoders.split(","))
        return
    if args.memory:
        memory(args.memory)
        return
    table = measure(args)
    print("\n" + table)
    if args.no_write:
        return
    _write(ROOT / "docs" / "VIDEO.md", table, f"{args.frames} frames a clip at {args.size} px, style "
           f"{assets.style_images()[1].stem}; VGG19, 2 threads. Long range: frame t against t−10 (chained flow).")


def measure(args: argparse.Namespace) -> str:
    """Every (decoder, setting) on every clip, relative to the first decoder's per-frame run; the table as text
    (and the figures, for the default decoders)."""
    named = dict(d.partition("=")[::2] if "=" in d else (d, d) for d in args.decoders.split(",") if d)
    decoders = list(named)
    sts = {d: Stylizer(NetworkConfig(decoder=named[d]), defaults=StylizeOptions(size=args.size, style_size=args.size))
           for d in decoders}
    judge = sts[decoders[0]]
    style_path = assets.style_images()[1]
    style = judge.encode_style(style_path).image
    names = [n for n in (args.clips.split(",") if args.clips else ("pan", *SEQUENCES))]
    rows, curves, pictures = [], {}, {}
    for name in names:
        c = clip(pan_frames(args.frames, args.size)) if name == "pan" else shared_clip(name, args.frames, args.size)
        label = "pan (bundled photo)" if name == "pan" else name
        base = None
        for dec in decoders:
            for sname, setting in SETTINGS.items():
                if sname != "per-frame" and args.only and not any(o in sname for o in args.only.split(",")):
                    continue
                outs, fps = run(sts[dec], c, style_path, setting)
                sc = score(judge, c, outs, style, fps)
                base = base or sc
                r = relative(sc, base)
                key = sname if len(decoders) == 1 else f"{dec}: {sname}"
                rows.append((label, key, r, fps))
                curves[(label, key)] = sc.curve
                if name == "pan" and dec == decoders[0]:
                    pictures[sname] = outs
                print(f"{label:20s} {key:32s} warp {r['warp']:.3f}x  long {r['long']:.3f}x  style "
                      f"{100 * r['style']:+.1f} %  content {100 * r['content']:+.1f} %  {fps:.2f} frames/s", flush=True)
    if not args.no_write and "pan" in names and len(decoders) == 1:
        _figures(pictures, curves, args.size)
    if args.plot:
        Path(args.plot).with_suffix(".json").write_text(json.dumps(rows, indent=0) + "\n")  # the plot's data
        tradeoff(rows, Path(args.plot))
    return table(rows)


def tradeoff(rows: list[tuple[str, str, dict[str, float], float]], path: Path) -> None:
    """The flicker–style trade-off: each (decoder, setting)'s mean over the shared sequences, warping error
    against style distance, both relative to the baseline's per-frame run; one line per setting across decoders."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys(n for _, n, _, _ in rows):
        rs = [r for c, n, r, _ in rows if n == key and not c.startswith("pan")]
        means[key] = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for setting in dict.fromkeys(k.split(": ", 1)[-1] for k in means):
        keys = [k for k in means if k.split(": ", 1)[-1] == setting]
        keys.sort(key=lambda k: means[k]["style"])
        xs, ys = [100 * means[k]["style"] for k in keys], [means[k]["warp"] for k in keys]
        ax.plot(xs, ys, "o-", label=setting)
        for k, x, y in zip(keys, xs, ys):
            ax.annotate(k.split(": ", 1)[0], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.40, color="grey", lw=0.8, ls="--")
    ax.axvline(10, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("style distance vs per-frame pretrained (%)")
    ax.set_ylabel("warping error vs per-frame pretrained")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def table(rows: list[tuple[str, str, dict[str, float], float]]) -> str:
    """Per clip and the mean over the shared sequences (the pan left out)."""
    cols = "warping error vs per-frame | long range (t−10) | style distance | content loss"
    lines = [f"| clip | setting | {cols} | frames/s |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {c} | {n} | {r['warp']:.2f}× | {r['long']:.2f}× | {100 * r['style']:+.1f} % | "
              f"{100 * r['content']:+.1f} % | {f:.2f} |" for c, n, r, f in rows]
    lines += ["", "Mean over the shared sequences:", "", f"| setting | {cols} |", "|---|---:|---:|---:|---:|"]
    for key in dict.fromkeys(n for _, n, _, _ in rows):
        rs = [r for c, n, r, _ in rows if n == key and not c.startswith("pan")]
        if rs:
            m = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
            lines.append(f"| {key} | {m['warp']:.3f}× | {m['long']:.3f}× | {100 * m['style']:+.1f} % | "
                         f"{100 * m['content']:+.1f} % |")
    return "\n".join(lines)


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
    for ax, name in zip(axes, dict.fromkeys(c for c, _ in curves)):
        for (c, n), ys in curves.items():
            if c == name:
                ax.plot(range(2, len(ys) + 2), ys, label=n)
        ax.set_title(name)
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
