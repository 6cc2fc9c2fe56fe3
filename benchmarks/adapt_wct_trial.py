"""Trial (stop 52, not kept): the whitening-colouring transform (WCT, Li et al. 2017) at relu4_1 mixed into
AdaIN's target, target = β·WCT(c) + (1 − β)·AdaIN(c), then α as usual, for the six adapted models of
``bench_adapt.py`` (kept in /tmp/c3/K_adapted.safetensors) and the pretrained decoder, on an α grid, scored as
``bench_adapt.score`` (6 BSDS500 test photos at 384 px, against pretrained AdaIN at α 1).

    python benchmarks/adapt_wct_trial.py 6 > log     # 27 min on 2 cores; docs/ADAPT.md "The covariance at inference"
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bench_adapt as B  # benchmarks/, beside this script
import numpy as np
import torch

from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models.style_model import load_style_model
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
    size, nst = 384, int(sys.argv[1]) if len(sys.argv) > 1 else 6
    tests = sorted((B.DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[:6]
    contents = [resize_longest(load_image(p), size) for p in tests]
    opts = StylizeOptions(size=size, style_size=512)
    pre = Stylizer(NetworkConfig(), defaults=opts)
    rows: dict = {}
    for k, style in enumerate(B.heldout_styles(nst)):
        model = Path(f"/tmp/c3/{k}_adapted.safetensors")
        own = load_style_model(model).alpha
        style_img = load_image(style)
        f = B.M.vgg_features(pre.encoder, to_tensor(resize_longest(style_img, 512)), ("relu4_1",))["relu4_1"][0]
        s_mean, _, s_cov = centred(f.reshape(f.shape[0], -1))
        STATE["style"], STATE["beta"] = (s_mean, sym_power(s_cov, 0.5)), 0.0
        base, _ = B.score(pre, style, contents, style_img, size)
        st = Stylizer.from_style_model(model, defaults=opts)
        runs = [(f"adapted a{a} b{b}", st, model, a, b) for b in (0.0, 0.5, 1.0) for a in (1.0, 1.1, 1.2)]
        runs += [(f"pretrained a{a} b{b}", pre, style, a, b) for b in (0.0, 0.5, 1.0) for a in (0.9, 1.0, 1.1)
                 if not (a == 1.0 and b == 0.0)]
        for label, runner, arg, alpha, beta in runs:
            STATE["beta"] = beta
            t = time.time()
            sc, _ = B.score(runner, arg, contents, style_img, size, alpha, judge=pre.encoder)
            r = 100 * (sc / base - 1)
            print(f"{style.name:28s} {label:24s} own {own:.2f} style {r[0]:+6.1f} gram {r[1]:+6.1f} "
                  f"swd {r[2]:+6.1f} content {r[3]:+6.1f}  {time.time() - t:.0f}s", flush=True)
            rows.setdefault((label.split(" a")[0], beta), {}).setdefault(alpha, []).append(r)
    equal_content(rows)


def equal_content(rows: dict) -> None:
    """Each style's α curve (per decoder and β) interpolated at fixed content losses; the means over the styles."""
    for dec, aims in (("adapted", (4.0, 6.0, 8.0)), ("pretrained", (5.0, 10.0))):
        for aim in aims:
            for beta in (0.0, 0.5, 1.0):
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
