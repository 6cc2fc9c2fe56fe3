"""How far past AdaIN's α curve can a picture go? The metric's own frontier, by optimising pixels (issue 29).

Issue 29 asks an adapted decoder for ≥ 20 % less style distance than pretrained AdaIN at the same content loss.
Before asking a network for it, this measures whether the two yardsticks allow it at all: starting from the
pretrained AdaIN output, Adam on the pixels minimises content loss (relu4_1 to the photo, as scored) + λ × the
mean/std style distance (relu1_1…relu4_1, as scored), for a few λ. Each λ gives one (style, content) point; the
pretrained decoder's α sweep gives its curve. Points left of and below the curve are what a decoder could reach.
Not a method (seconds of optimisation per picture): a bound on what the adaptation recipe leaves on the table.

    python benchmarks/adapt_frontier.py --styles 1 --contents 2 --lambdas 1,3,10 --iters 80   # ~3 min, 2 cores
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_adapt import ALPHAS, DATA, heldout_styles  # benchmarks/, beside this script

from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.pipelines.stylize import Stylizer


def feats(enc: torch.nn.Module, img: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metric features as ordinary tensors (the optimisation's constants must not be inference tensors)."""
    return {k: v.clone() for k, v in M.vgg_features(enc, img).items()}


def optimise(enc: torch.nn.Module, start: torch.Tensor, c_f: dict[str, torch.Tensor], s_f: dict[str, torch.Tensor],
             lam: float, iters: int) -> torch.Tensor:
    """Pixels minimising content loss + λ·(mean/std style distance), from ``start`` (1, 3, H, W) in [0, 1]."""
    layers = M.STYLE_LAYERS
    taps = tuple(dict.fromkeys((*layers, "relu4_1")))
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(iters):
        f = enc(x, taps)
        loss = FN.content_loss(f["relu4_1"], c_f["relu4_1"]) + lam * FN.mean_std_style_loss(
            [f[k] for k in layers], [s_f[k] for k in layers])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def scores(o_f: M.Feats, s_f: M.Feats, c_f: M.Feats) -> tuple[float, float, float]:
    """(style distance, sliced Wasserstein, content loss) of an output's metric features."""
    return M.mean_std_style_loss(o_f, s_f), M.sliced_wasserstein_distance(o_f, s_f), M.content_loss(o_f, c_f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--styles", type=int, default=1, help="the first N held-out styles of bench_adapt")
    ap.add_argument("--contents", type=int, default=2, help="BSDS500 test photos")
    ap.add_argument("--lambdas", default="1,3,10")
    ap.add_argument("--iters", type=int, default=80)
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args()
    lams = [float(v) for v in args.lambdas.split(",")]
    tests = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    contents = [resize_longest(load_image(p), args.size) for p in tests]
    pre = Stylizer(NetworkConfig(precision="fp32"), defaults=StylizeOptions(size=args.size, style_size=512))
    enc = pre.encoder
    for p in enc.parameters():
        p.requires_grad_(False)
    rows: dict[str, list[tuple[float, float]]] = {}
    for style in heldout_styles(args.styles):
        s_f = feats(enc, to_tensor(resize_longest(load_image(style), args.size)))
        for c in contents:
            c_f = feats(enc, to_tensor(c))
            for a in ALPHAS:
                o_f = M.vgg_features(enc, to_tensor(pre.stylize(c, style, alpha=a).image))
                rows.setdefault(f"pretrained, α {a}", []).append(scores(o_f, s_f, c_f))
            start = to_tensor(pre.stylize(c, style).image).clone()
            for lam in lams:
                o_f = M.vgg_features(enc, optimise(enc, start, c_f, s_f, lam, args.iters))
                rows.setdefault(f"pixels optimised, λ {lam:g}", []).append(scores(o_f, s_f, c_f))
    base = np.mean(rows["pretrained, α 1.0"], 0)
    print(f"{args.styles} style(s) × {args.contents} photo(s) at {args.size} px, {args.iters} Adam steps; "
          "relative to pretrained AdaIN at α = 1\n\n| picture | style distance | sliced Wasserstein | content loss |\n"
          "|---|---:|---:|---:|")
    for name, vals in rows.items():
        m = np.mean(vals, 0) / base - 1
        print(f"| {name} | {100 * m[0]:+.1f} % | {100 * m[1]:+.1f} % | {100 * m[2]:+.1f} % |")


if __name__ == "__main__":
    main()
