"""Per-style adaptation (issue 29): held-out styles, held-out contents, against pretrained AdaIN.

For each of ``--styles`` held-out styles (``configs/heldout_styles.txt``, a spread that includes abstract ones):
``semstyle adapt`` with the default recipe on BSDS500 train photos, and its ablation without the adversarial
term (λ_adv = 0, the same steps); then every decoder stylises ``--contents`` BSDS500 test photos at ``--size``
px with that style. Per style and mean, relative to the pretrained decoder with the style picture: style distance
(mean/std, relu1_1…relu4_1), Gram loss, sliced Wasserstein distance of the VGG feature distributions
(docs/METRICS.md) and content loss; the adaptation's time. Then an α sweep of every decoder: its style distance
interpolated at the pretrained decoder's content loss (α = 1) — more style at the same content, or not — and the
α at which the adapted decoder's content loss is +10 % with its scores there. Prints the tables (for
docs/ADAPT.md) and writes
docs/adapt_grid.png (public-domain images only: the bundled Composition VII adapted, the bundled photos
stylised by pretrained | adapted | adapted without the discriminator), unless --no-write.

    python benchmarks/bench_adapt.py --styles 3 --steps 300                      # ~20 min on 2 CPU cores
    python benchmarks/bench_adapt.py --styles 3 --work /tmp/adapt --reuse        # scores the models kept there
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle import assets
from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, save_image, to_tensor
from semstyle.models.style_model import load_style_model
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


ALPHAS = (1.0, 0.9, 0.8, 0.7)


def score(st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image, size: int,
          alpha: float = 1.0) -> tuple[np.ndarray, list[Image.Image]]:
    """(style distance, Gram, SWD, content) means over the contents, and the pictures."""
    s_f = M.vgg_features(st.encoder, to_tensor(resize_longest(style_img, size)))
    rows, pics = [], []
    for c in contents:
        out = st.stylize(c, style_arg, size=size, alpha=alpha).image
        o_f = M.vgg_features(st.encoder, to_tensor(out))
        c_f = M.vgg_features(st.encoder, to_tensor(c.resize(out.size)))
        rows.append((M.mean_std_style_loss(o_f, s_f), M.gram_style_loss(o_f, s_f),
                     M.sliced_wasserstein_distance(o_f, s_f), M.content_loss(o_f, c_f)))
        pics.append(out)
    return np.asarray(rows).mean(0), pics


def sweep(st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image, size: int
          ) -> np.ndarray:
    """(len(ALPHAS), 4) scores of the α sweep."""
    return np.stack([score(st, style_arg, contents, style_img, size, a)[0] for a in ALPHAS])


def at_content(curve: np.ndarray, content: float) -> tuple[float, float]:
    """The curve's (style distance, α) interpolated at ``content`` loss (content grows with α)."""
    order = np.argsort(curve[:, 3])
    alphas = np.asarray(ALPHAS)[order]
    return (float(np.interp(content, curve[order, 3], curve[order, 0])),
            float(np.interp(content, curve[order, 3], alphas)))


def figure(work: Path, train: Path, steps: int, size: int, reuse: bool) -> Image.Image:
    """The picture for the docs, from public-domain images only (the shared data is research-only): the bundled
    Composition VII (abstract) adapted on the training photos; the bundled photos stylised by each decoder."""
    style = assets.style_images()[0]
    contents = [resize_longest(load_image(p), size) for p in assets.content_images()]
    decoders: list[tuple[str, Stylizer]] = [("pretrained", Stylizer(defaults=StylizeOptions(size=size)))]
    for name, weights in (("adapted", None), ("adapted, no D", replace(RECIPE_WEIGHTS, adv=0.0))):
        model = work / f"figure_{'adapted' if weights is None else 'noD'}.safetensors"
        if not (reuse and model.exists()):
            adapt(style, model, contents=[train], steps=steps, minutes=60, weights=weights, progress=False,
                  overwrite=True)
        decoders.append((name, Stylizer(NetworkConfig(decoder=str(model)), defaults=StylizeOptions(size=size))))
    rows = [[c, *(st.stylize(c, style if n == "pretrained" else st.config.decoder).image for n, st in decoders)]
            for c in contents]
    return grid(rows, cell=160, titles=["content", *(n for n, _ in decoders)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", type=int, default=6)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--contents", type=int, default=6, help="held-out content photos scored per style")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--work", type=Path, help="folder of the models (default: a new temporary one)")
    ap.add_argument("--reuse", action="store_true", help="score the models already in --work instead of adapting")
    args = ap.parse_args()
    train = DATA / "content" / "BSDS500" / "train"
    tests = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    contents = [resize_longest(load_image(p), args.size) for p in tests]
    pre = Stylizer(NetworkConfig(), defaults=StylizeOptions(size=args.size, style_size=512))
    rows, curves, work = [], [], args.work or Path(tempfile.mkdtemp(prefix="adapt-"))
    work.mkdir(parents=True, exist_ok=True)
    for k, style in enumerate(heldout_styles(args.styles)):
        style_img = load_image(style)
        base, base_pics = score(pre, style, contents, style_img, args.size)
        found: dict[str, tuple[np.ndarray, list[Image.Image], float]] = {}
        for name, weights in (("adapted", None), ("no D", replace(RECIPE_WEIGHTS, adv=0.0))):
            model = work / f"{k}_{name.replace(' ', '')}.safetensors"
            if not (args.reuse and model.exists()):
                adapt(style, model, contents=[train], steps=args.steps, minutes=60, weights=weights, progress=False,
                      overwrite=True)
            took = float(load_style_model(model).meta["seconds"])
            st = Stylizer(NetworkConfig(decoder=str(model)), defaults=StylizeOptions(size=args.size, style_size=512))
            sc, pics = score(st, model, contents, style_img, args.size)
            found[name] = (sc, pics, took)
            curve = sweep(st, model, contents, style_img, args.size)
            eq_style, _ = at_content(curve, base[3])
            s10, a10 = at_content(curve, 1.1 * base[3])
            curves.append((style.name, name, 100 * (eq_style / base[0] - 1), a10, 100 * (s10 / base[0] - 1)))
            rel = 100 * (sc / base - 1)
            print(f"{style.name:40s} {name:8s} style {rel[0]:+6.1f} %  gram {rel[1]:+6.1f} %  swd {rel[2]:+6.1f} %  "
                  f"content {rel[3]:+6.1f} %  {took / 60:.1f} min", flush=True)
            rows.append((style.name, name, *rel, took))
    table = ["| style | decoder | style distance | Gram | sliced Wasserstein | content | minutes |",
             "|---|---|---:|---:|---:|---:|---:|"]
    table += [f"| {s} | {n} | {a:+.1f} % | {g:+.1f} % | {w:+.1f} % | {c:+.1f} % | {t / 60:.1f} |"
              for s, n, a, g, w, c, t in rows]
    for name in ("adapted", "no D"):
        m = np.mean([r[2:6] for r in rows if r[1] == name], axis=0)
        table.append(f"| **mean** | {name} | {m[0]:+.1f} % | {m[1]:+.1f} % | {m[2]:+.1f} % | {m[3]:+.1f} % | |")
    table += ["", "| style | decoder | style distance at pretrained α = 1's content | α for content +10 % | "
              "style distance there |", "|---|---|---:|---:|---:|"]
    table += [f"| {s} | {n} | {e:+.1f} % | {a:.2f} | {t:+.1f} % |" for s, n, e, a, t in curves]
    for name in ("adapted", "no D"):
        m = np.mean([c[2:] for c in curves if c[1] == name], axis=0)
        table.append(f"| **mean** | {name} | {m[0]:+.1f} % | {m[1]:.2f} | {m[2]:+.1f} % |")
    print("\n".join(table))
    if not args.no_write:
        print("(paste the tables into docs/ADAPT.md)")
        save_image(figure(work, train, args.steps, 192, args.reuse), ROOT / "docs" / "adapt_grid.png", overwrite=True)


if __name__ == "__main__":
    main()
