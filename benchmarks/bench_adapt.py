"""Per-style adaptation (issue 29): held-out styles, held-out contents, against pretrained AdaIN.

For each of ``--styles`` held-out styles (``configs/heldout_styles.txt``, a spread that includes abstract ones):
``semstyle adapt`` with the default recipe on BSDS500 train photos, and its ablation without the adversarial
term (λ_adv = 0, the same steps); then every decoder stylises ``--contents`` BSDS500 test photos at ``--size``
px with that style. Per style and mean, relative to the pretrained decoder with the style picture: style distance
(mean/std, relu1_1…relu4_1), Gram loss, sliced Wasserstein distance of the VGG feature distributions
(docs/METRICS.md) and content loss; the adaptation's time. Writes docs/ADAPT.md and docs/adapt_<n>.png
(content | pretrained | adapted | adapted without the discriminator), unless --no-write.

    python benchmarks/bench_adapt.py --styles 2 --steps 300        # ~25 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, save_image, to_tensor
from semstyle.pipelines.stylize import Stylizer
from semstyle.training.adapt import RECIPE_WEIGHTS, adapt
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PICK = (4, 20, 1, 14, 9, 25)  # indices into the held-out list: a spread of painters, abstract ones among them


def heldout_styles(n: int) -> list[Path]:
    names = [ln.strip() for ln in (ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    return [DATA / "style" / names[i % len(names)] for i in PICK[:n]]


def score(st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image, size: int
          ) -> tuple[np.ndarray, list[Image.Image]]:
    """(style distance, Gram, SWD, content) means over the contents, and the pictures."""
    s_f = M.vgg_features(st.encoder, to_tensor(resize_longest(style_img, size)))
    rows, pics = [], []
    for c in contents:
        out = st.stylize(c, style_arg, size=size).image
        o_f = M.vgg_features(st.encoder, to_tensor(out))
        c_f = M.vgg_features(st.encoder, to_tensor(c.resize(out.size)))
        rows.append((M.mean_std_style_loss(o_f, s_f), M.gram_style_loss(o_f, s_f),
                     M.sliced_wasserstein_distance(o_f, s_f), M.content_loss(o_f, c_f)))
        pics.append(out)
    return np.asarray(rows).mean(0), pics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", type=int, default=6)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--contents", type=int, default=6, help="held-out content photos scored per style")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    train = DATA / "content" / "BSDS500" / "train"
    tests = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    contents = [resize_longest(load_image(p), args.size) for p in tests]
    pre = Stylizer(NetworkConfig(), defaults=StylizeOptions(size=args.size, style_size=512))
    rows, work = [], Path(tempfile.mkdtemp(prefix="adapt-"))
    for k, style in enumerate(heldout_styles(args.styles)):
        style_img = load_image(style)
        base, base_pics = score(pre, style, contents, style_img, args.size)
        found: dict[str, tuple[np.ndarray, list[Image.Image], float]] = {}
        for name, weights in (("adapted", None), ("no D", replace(RECIPE_WEIGHTS, adv=0.0))):
            t0 = time.perf_counter()
            model = adapt(style, work / f"{k}_{name.replace(' ', '')}.safetensors", contents=[train],
                          steps=args.steps, minutes=60, weights=weights, progress=False).model
            took = time.perf_counter() - t0
            st = Stylizer(NetworkConfig(decoder=str(model)), defaults=StylizeOptions(size=args.size, style_size=512))
            sc, pics = score(st, model, contents, style_img, args.size)
            found[name] = (sc, pics, took)
            rel = 100 * (sc / base - 1)
            print(f"{style.name:40s} {name:8s} style {rel[0]:+6.1f} %  gram {rel[1]:+6.1f} %  swd {rel[2]:+6.1f} %  "
                  f"content {rel[3]:+6.1f} %  {took / 60:.1f} min", flush=True)
            rows.append((style.name, name, *rel, took))
        if not args.no_write:
            sheet = grid([[style_img, contents[0], base_pics[0], found["adapted"][1][0], found["no D"][1][0]]],
                         titles=["style", "content", "pretrained", "adapted", "adapted, no D"])
            save_image(sheet, ROOT / "docs" / f"adapt_{k}.png", overwrite=True)
    table = ["| style | decoder | style distance | Gram | sliced Wasserstein | content | minutes |",
             "|---|---|---:|---:|---:|---:|---:|"]
    table += [f"| {s} | {n} | {a:+.1f} % | {g:+.1f} % | {w:+.1f} % | {c:+.1f} % | {t / 60:.1f} |"
              for s, n, a, g, w, c, t in rows]
    for name in ("adapted", "no D"):
        m = np.mean([r[2:6] for r in rows if r[1] == name], axis=0)
        table.append(f"| **mean** | {name} | {m[0]:+.1f} % | {m[1]:+.1f} % | {m[2]:+.1f} % | {m[3]:+.1f} % | |")
    print("\n".join(table))
    if not args.no_write:
        (ROOT / "docs" / "ADAPT_TABLE.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
