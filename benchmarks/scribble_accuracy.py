"""Pixel accuracy of the regions grown from simulated scribbles (issue 31), content and style pictures of DPST pairs.

The quick yardstick the growth is chosen by (docs/semantic_benchmark.md, "How the growth was chosen"): for every
pair, the simulated strokes of ``bench_semantic.py`` (the same seeds), grown by ``segmentation.scribbles.grow``
and compared with the ground-truth labels, pixel by pixel; the mean over both pictures of each pair, then over pairs.

    python benchmarks/scribble_accuracy.py --strokes 1,3          # pairs 1-30 at 512 px, ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_semantic import load_pair, parse_pairs  # benchmarks/, beside this script
from scribble_sim import simulate

from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.pipelines.stylize import Stylizer
from semstyle.segmentation.scribbles import grow, read_scribbles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strokes", default="1,3", help="strokes per region, comma-separated")
    ap.add_argument("--pairs", default="1-30")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    st = Stylizer(NetworkConfig(), defaults=StylizeOptions(size=args.size, style_size=args.size))
    pairs = parse_pairs(args.pairs)
    for n_strokes in (int(v) for v in args.strokes.split(",")):
        t0, accs = time.perf_counter(), []
        for n in pairs:
            c_img, s_img, c_gt, s_gt = load_pair(n, st)
            both = []
            for img, gt, offset in ((c_img, c_gt, 0), (s_img, s_gt, 500)):  # bench_semantic's seeds
                seeds = read_scribbles(simulate(gt, n_strokes, 1000 * n + offset + n_strokes), img.size)
                with torch.inference_mode():
                    both.append(float((grow(st.encode, img, seeds) == gt).mean()))
            accs.append(np.mean(both))
        print(f"{n_strokes} stroke(s) per region: pixel accuracy {100 * np.mean(accs):.1f} % (worst pair "
              f"{100 * np.min(accs):.1f} %), {len(pairs)} pairs at {args.size} px, "
              f"{(time.perf_counter() - t0) / len(pairs):.2f} s a pair", flush=True)


if __name__ == "__main__":
    main()
