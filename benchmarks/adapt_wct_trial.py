"""Trial (stop 52, not kept), the second part: the whitening-colouring transform (WCT, Li et al. 2017) at relu4_1
mixed into AdaIN's target, target = β·WCT(c) + (1 − β)·AdaIN(c), then α as usual, with the pretrained decoder on
the held-out styles that ``bench_adapt.py`` does not adapt to; scored as ``bench_adapt.score`` (6 BSDS500 test
photos at 384 px, against pretrained AdaIN at α 1), each style's α curve interpolated at fixed content losses.
The first part (the six adapted models) is commit 071e3d2.

    python benchmarks/adapt_wct_trial.py 12     # ~20 min on 2 cores; docs/ADAPT.md "The covariance at inference"
"""

from __future__ import annotations

import sys

import bench_adapt as B  # benchmarks/, beside this script
import numpy as np
import torch

from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.pipelines.stylize import Stylizer

STATE: dict = {"beta": 0.0, "style": None}
_mix = FN.mix


def sym_power(cov: torch.Tensor, power: float, eps: float = 1e-5) -> torch.Tensor:
    """cov^power over the eigenvalues above eps × the largest (float64)."""
    e, v = torch.linalg.eigh(cov.double())
    keep = e > eps * e.max()
    e, v = e[keep], v[:, keep]
    return (v * e.pow(power)) @ v.T


def centred(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(C, N) features → their mean (C, 1), the centred features and their covariance (C, C)."""
    f = f.double()
    m = f.mean(1, keepdim=True)
    fc = f - m
    return m, fc, fc @ fc.T / (fc.shape[1] - 1)


def wct(c: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) content features whitened, then coloured with the style's covariance and mean."""
    _, ch, h, w = c.shape
    _, fc, cov = centred(c[0].reshape(ch, -1))
    s_mean, s_half = STATE["style"]
    return (s_half @ (sym_power(cov, -0.5) @ fc) + s_mean).reshape(1, ch, h, w).to(c.dtype)


def mix(c: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    b = STATE["beta"]
    if b and c.shape[1] == 512:
        target = b * wct(c) + (1 - b) * target
    return _mix(c, target, alpha)


def main() -> None:
    FN.mix = mix  # the pipeline calls FN.mix: every fused target goes through the trial's
    size = 384
    tests = sorted((B.DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[:6]
    contents = [resize_longest(load_image(p), size) for p in tests]
    opts = StylizeOptions(size=size, style_size=512)
    pre = Stylizer(NetworkConfig(), defaults=opts)
    rows: dict = {}
    names = [ln.strip() for ln in (B.ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    others = [B.DATA / "style" / name for i, name in enumerate(names) if i not in B.PICK][:n]
    for style in others:  # the held-out styles the adaptation benchmark does not use: the pretrained decoder only
        style_img = load_image(style)
        f = B.M.vgg_features(pre.encoder, to_tensor(resize_longest(style_img, 512)), ("relu4_1",))["relu4_1"][0]
        s_mean, _, s_cov = centred(f.reshape(f.shape[0], -1))
        STATE["style"], STATE["beta"] = (s_mean, sym_power(s_cov, 0.5)), 0.0
        base, _ = B.score(pre, style, contents, style_img, size)
        for alpha, beta in ((0.9, 0.0), (1.1, 0.0), (0.9, 0.5), (1.0, 0.5), (1.1, 0.5)):
            STATE["beta"] = beta
            sc, _ = B.score(pre, style, contents, style_img, size, alpha, judge=pre.encoder)
            r = 100 * (sc / base - 1)
            print(f"{style.name:28s} pretrained a{alpha} b{beta} style {r[0]:+6.1f} gram {r[1]:+6.1f} "
                  f"swd {r[2]:+6.1f} content {r[3]:+6.1f}", flush=True)
            rows.setdefault(("pretrained", beta), {}).setdefault(alpha, []).append(r)
    equal_content(rows)


def equal_content(rows: dict) -> None:
    """Each style's α curve (per decoder and β) interpolated at fixed content losses; the means over the styles."""
    for dec, aims in (("pretrained", (5.0, 10.0)),):
        for aim in aims:
            for beta in (0.0, 0.5):
                curve = dict(rows.get((dec, beta), {}))
                if dec == "pretrained" and beta == 0.0:
                    curve[1.0] = [np.zeros(4)] * len(next(iter(curve.values())))  # the reference itself
                alphas = sorted(curve)
                per_style, outside = [], 0
                for i in range(len(curve[alphas[0]])):
                    v = np.asarray([curve[a][i] for a in alphas])  # (alphas, 4)
                    o = np.argsort(v[:, 3])
                    outside += not v[o[0], 3] <= aim <= v[o[-1], 3]  # np.interp holds the end point there
                    per_style.append([np.interp(aim, v[o, 3], v[o, j]) for j in range(3)])
                m = np.mean(per_style, 0)
                note = f"  ({outside} styles outside the α grid)" if outside else ""
                print(f"{dec:10s} content {aim:+5.1f} %  β {beta:.1f}: style {m[0]:+6.1f} %  Gram {m[1]:+6.1f} %  "
                      f"sliced Wasserstein {m[2]:+6.1f} %{note}")


if __name__ == "__main__":
    main()
