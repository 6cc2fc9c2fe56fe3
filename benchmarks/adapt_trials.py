"""The adversarial trials of issue 29: each variant of the adaptation recipe on the held-out styles, scored as
``bench_adapt.py`` scores (α = 1 against pretrained AdaIN, and the style distance at pretrained α = 1's content).

    python benchmarks/adapt_trials.py --styles 3 --work /tmp/trials --trials mismatch,late,scales,vgg
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_adapt import DATA, at_content, heldout_styles, score, sweep  # noqa: E402

from semstyle.config import NetworkConfig, StylizeOptions  # noqa: E402
from semstyle.io.images import load_image, resize_longest  # noqa: E402
from semstyle.losses import LossWeights  # noqa: E402
from semstyle.models.style_model import MAX_SIDE, StyleModel  # noqa: E402
from semstyle.pipelines.stylize import Stylizer  # noqa: E402
from semstyle.training.adapt import RECIPE_WEIGHTS, adapt_config, run_folder  # noqa: E402
from semstyle.training.trainer import Trainer  # noqa: E402

LATE = {"adv_from": 1 / 3}  # λ_adv raised to 0.5 after the first third (warm-up and D's own start)
TRIALS: dict[str, tuple[dict[str, Any], LossWeights]] = {
    "mismatch": ({}, RECIPE_WEIGHTS),  # the mismatch term off for one style (what every trial has)
    "late": (LATE, replace(RECIPE_WEIGHTS, adv=0.5)),
    "scales": ({**LATE, "real_scales": 3}, replace(RECIPE_WEIGHTS, adv=0.5)),
    "vgg": ({**LATE, "d_space": "vgg"}, replace(RECIPE_WEIGHTS, adv=0.5)),
}


def train(style: Path, model: Path, contents: Path, steps: int, overrides: dict[str, Any], weights: LossWeights
          ) -> None:
    run = run_folder(model)
    shutil.rmtree(run, ignore_errors=True)
    (run / "style").mkdir(parents=True)
    pic = load_image(style)
    resize_longest(pic, min(max(pic.size), MAX_SIDE)).save(run / "style" / "style.png")
    cfg = replace(adapt_config(run, str(contents), steps, weights=weights), **overrides)
    trainer = Trainer(cfg)
    trainer.fit(progress=False)
    trainer.close()
    assert trainer.ema is not None
    decoder = copy.deepcopy(trainer.ema.module).float()
    StyleModel(decoder.state_dict(), load_image(run / "style" / "style.png"), {"steps": trainer.step}).save(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--trials", default=",".join(TRIALS))
    args = ap.parse_args()
    trainset = DATA / "content" / "BSDS500" / "train"
    tests = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[:6]
    contents = [resize_longest(load_image(p), args.size) for p in tests]
    pre = Stylizer(NetworkConfig(), defaults=StylizeOptions(size=args.size, style_size=512))
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.trials.split(","):
        overrides, weights = TRIALS[name]
        for k, style in enumerate(heldout_styles(args.styles)):
            style_img = load_image(style)
            base, _ = score(pre, style, contents, style_img, args.size)
            model = args.work / f"{k}_{name}.safetensors"
            if not model.exists():
                train(style, model, trainset, args.steps, overrides, weights)
            st = Stylizer.from_style_model(model, defaults=StylizeOptions(size=args.size, style_size=512))
            sc, _ = score(st, model, contents, style_img, args.size, judge=pre.encoder)
            eq, _ = at_content(sweep(st, model, contents, style_img, args.size), base[3])
            rel = [*(100 * (sc / base - 1)), 100 * (eq / base[0] - 1)]
            rows.append((name, style.name, rel))
            print(f"{name:9s} {style.name:24s} style {rel[0]:+6.1f} %  gram {rel[1]:+6.1f} %  swd {rel[2]:+6.1f} %  "
                  f"content {rel[3]:+6.1f} %  style at equal content {rel[4]:+6.1f} %", flush=True)
    print("\n| trial | style distance | Gram | sliced Wasserstein | content | style at equal content |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(r[0] for r in rows):
        m = np.mean([r[2] for r in rows if r[0] == name], axis=0)
        print(f"| {name} | " + " | ".join(f"{v:+.1f} %" for v in m) + " |")


if __name__ == "__main__":
    main()
