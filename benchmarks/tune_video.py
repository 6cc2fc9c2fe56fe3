"""Tune the video carries on one clip, report them on the others (issue 30's protocol).

The carries (``--consistency``, ``--hidden``) are chosen on the tuning clip only: the setting with the lowest
warping error whose style distance and content loss stay within ``--budget`` of per-frame stylisation with the
baseline decoder (when none does, the one closest to the budget, said so). The choice is then measured on the
clips it was not tuned on, each separately, and on all three. Every figure is relative to per-frame stylisation
with the baseline decoder (``pretrained``) on the same clip.

    python benchmarks/tune_video.py --decoder temporal                   # tune on cats, report ambush_3, mountain_2
    python benchmarks/tune_video.py --decoder pretrained --tune mountain_2
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from video_common import LONG, PER_FRAME, SEQUENCES, Setting, relative, run, score, shared_clip

from semstyle import assets
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.pipelines.stylize import Stylizer

CONSISTENCY = (0.5, 0.8)  # the grid searched on the tuning clip (and per-frame: nothing carried)
HIDDEN = (0.0, 0.5, 0.7, 0.85)


def measure(sts: dict[str, Stylizer], name: str, frames: int, size: int,
            settings: list[Setting]) -> list[dict[str, float]]:
    """Each setting with the tuned decoder on clip ``name``, relative to the baseline's per-frame run."""
    c = shared_clip(name, frames, size)
    style_path = assets.style_images()[1]
    judge = sts["baseline"]
    style = judge.encode_style(style_path).image
    base = score(judge, c, run(judge, c, style_path, PER_FRAME)[0], style)
    return [relative(score(judge, c, run(sts["tuned"], c, style_path, s)[0], style), base) for s in settings]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decoder", default="temporal", help="the decoder the carries are tuned for")
    ap.add_argument("--baseline", default="pretrained", help="the per-frame decoder every figure is relative to")
    ap.add_argument("--tune", default="cats", choices=SEQUENCES, help="the clip the carries are tuned on")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--budget", type=float, default=0.10, help="largest style and content change allowed")
    ap.add_argument("--consistency", default=",".join(map(str, CONSISTENCY)), help="the grid's feature carries")
    ap.add_argument("--hidden", default=",".join(map(str, HIDDEN)), help="the grid's activation carries")
    args = ap.parse_args()
    opts = StylizeOptions(size=args.size, style_size=args.size)
    sts = {"baseline": Stylizer(NetworkConfig(decoder=args.baseline), defaults=opts)}
    sts["tuned"] = sts["baseline"] if args.decoder == args.baseline else Stylizer(
        NetworkConfig(decoder=args.decoder), defaults=opts)
    cs, hs = ([float(v) for v in a.split(",")] for a in (args.consistency, args.hidden))
    grid = [PER_FRAME] + [Setting(c, hidden=h) for c, h in itertools.product(cs, hs) if c > 0]
    print(f"tuning {args.decoder} on {args.tune} ({args.frames} frames at {args.size} px), relative to per-frame "
          f"{args.baseline}:")
    rows = measure(sts, args.tune, args.frames, args.size, grid)
    for s, r in zip(grid, rows):
        print(f"  consistency {s.consistency:.2f} hidden {s.hidden:.2f}: warp {r['warp']:.3f}x long {r['long']:.3f}x "
              f"style {100 * r['style']:+.1f} % content {100 * r['content']:+.1f} %", flush=True)
    ok = [(r["warp"], i) for i, r in enumerate(rows) if max(r["style"], r["content"]) <= args.budget]
    pick = min(ok)[1] if ok else min(range(len(rows)), key=lambda i: max(rows[i]["style"], rows[i]["content"]))
    best = grid[pick]
    why = "" if ok else f" (no setting is within {100 * args.budget:.0f} %: the one closest to it)"
    print(f"chosen on {args.tune}: consistency {best.consistency}, hidden {best.hidden}{why}\n")
    held = [n for n in SEQUENCES if n != args.tune]
    out = {args.tune: rows[pick], **{n: measure(sts, n, args.frames, args.size, [best])[0] for n in held}}
    print(f"| clip | warping error vs per-frame | long range (t−{LONG}) | style distance | content loss |")
    print("|---|---:|---:|---:|---:|")
    for name, label in [*((n, f"{n} (held out)") for n in held), (args.tune, f"{args.tune} (tuned on)")]:
        r = out[name]
        print(f"| {label} | {r['warp']:.2f}× | {r['long']:.2f}× | {100 * r['style']:+.1f} % | "
              f"{100 * r['content']:+.1f} % |")
    for label, names in (("mean of the held-out clips", held), ("mean of all three", list(SEQUENCES))):
        m = {k: float(np.mean([out[n][k] for n in names])) for k in out[args.tune]}
        print(f"| {label} | {m['warp']:.2f}× | {m['long']:.2f}× | {100 * m['style']:+.1f} % | "
              f"{100 * m['content']:+.1f} % |")


if __name__ == "__main__":
    main()
