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

    python benchmarks/bench_adapt.py --styles 3                                  # ~50 min on 2 CPU cores
    python benchmarks/bench_adapt.py --styles 3 --work /tmp/adapt --reuse        # scores the models kept there
    python benchmarks/bench_adapt.py --fps painting.safetensors                   # its student's frames/s only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from semstyle import assets
from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.allocator import keep_freed_memory
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.losses import LossWeights
from semstyle.models.style_model import StyleModel, load_style_model
from semstyle.networks import Networks, native_bf16
from semstyle.pipelines.stylize import Stylizer
from semstyle.training.adapt import DEFAULT_MINUTES, DEFAULT_STEPS, RECIPE_WEIGHTS, adapt
from semstyle.training.student import StudentRecipe
from semstyle.types import StyleStats
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PICK = (4, 20, 1, 14, 9, 25)  # indices into the held-out list: a spread of painters, abstract ones among them


def heldout_styles(n: int) -> list[Path]:
    names = [ln.strip() for ln in (ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    return [DATA / "style" / names[i % len(names)] for i in PICK[:n]]


ALPHAS = (1.2, 1.1, 1.0, 0.9, 0.8, 0.7)  # the α sweep of each decoder (past 1: AdaIN's step extrapolated)


def score(st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image, size: int,
          alpha: float = 1.0, judge: torch.nn.Module | None = None, band: int = 0
          ) -> tuple[np.ndarray, list[Image.Image]]:
    """(style distance, Gram, SWD, content) means over the contents, and the pictures; measured with the VGG19
    encoder ``judge`` (default: the Stylizer's own, which must then be VGG19) on the pictures without a ``band``
    px wide frame (the style picture whole): what a network paints along the border does not count."""
    enc = judge or st.encoder
    s_f = M.vgg_features(enc, to_tensor(resize_longest(style_img, size)))
    rows, pics = [], []
    for c in contents:
        out = st.stylize(c, style_arg, size=size, alpha=alpha).image
        o_f = M.vgg_features(enc, FN.inside(to_tensor(out), band))
        c_f = M.vgg_features(enc, FN.inside(to_tensor(c.resize(out.size)), band))
        rows.append((M.mean_std_style_loss(o_f, s_f), M.gram_style_loss(o_f, s_f),
                     M.sliced_wasserstein_distance(o_f, s_f), M.content_loss(o_f, c_f)))
        pics.append(out)
    return np.asarray(rows).mean(0), pics


def per_layer(pre: Stylizer, st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image,
              size: int, alpha: float, band: int = 0) -> list[str]:
    """Rows "| layer | style distance | sliced Wasserstein |" of ``st`` against ``pre`` (the style image), per VGG
    layer: where the adaptation moves the feature distributions and where it does not."""
    s_f = M.vgg_features(pre.encoder, to_tensor(resize_longest(style_img, size)))
    vals = []
    for runner, arg, a in ((pre, style_img, 1.0), (st, style_arg, alpha)):
        feats = [M.vgg_features(pre.encoder, FN.inside(to_tensor(runner.stylize(c, arg, size=size, alpha=a).image),
                                                       band)) for c in contents]
        vals.append(np.asarray([[(M.mean_std_style_loss(o_f, s_f, layers=(k,)),
                                  M.sliced_wasserstein_distance(o_f, s_f, layers=(k,))) for k in M.STYLE_LAYERS]
                                for o_f in feats]).mean(0))  # (layers, 2)
    rel = 100 * (vals[1] / vals[0] - 1)
    return [f"| {k} | {r[0]:+.1f} % | {r[1]:+.1f} % |" for k, r in zip(M.STYLE_LAYERS, rel, strict=True)]


def sweep(st: Stylizer, style_arg: object, contents: list[Image.Image], style_img: Image.Image, size: int,
          band: int = 0) -> np.ndarray:
    """(len(ALPHAS), 4) scores of the α sweep."""
    return np.stack([score(st, style_arg, contents, style_img, size, a, band=band)[0] for a in ALPHAS])


def at_content(curve: np.ndarray, content: float) -> tuple[float, float]:
    """The curve's (style distance, α) interpolated at ``content`` loss (content grows with α)."""
    order = np.argsort(curve[:, 3])
    alphas = np.asarray(ALPHAS)[order]
    return (float(np.interp(content, curve[order, 3], curve[order, 0])),
            float(np.interp(content, curve[order, 3], alphas)))


def ensure_model(style: Path, model: Path, train: Path, steps: int, minutes: float, weights: LossWeights | None,
                 student: bool, reuse: bool, student_recipe: StudentRecipe | None = None) -> StyleModel:
    """Adapt ``style`` into ``model`` (with ``reuse``, keep a model already there: one made before the student and
    the default α existed is resumed, which adds them and keeps its decoder)."""
    if reuse and model.exists():
        m = load_style_model(model)
        if (student and m.student is None) or "alpha" not in m.meta:
            adapt(style, model, contents=[train], steps=steps, minutes=minutes, weights=weights, student=student,
                  student_recipe=student_recipe, resume=True, progress=False)
    else:
        adapt(style, model, contents=[train], steps=steps, minutes=minutes, weights=weights, student=student,
              student_recipe=student_recipe, progress=False, overwrite=True)
    return load_style_model(model)


def median_fps(call: Callable[[], object], frames: int) -> float:
    """Calls per second: the median of ``frames`` timed calls after 3 warm-up calls."""
    for _ in range(3):
        call()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1.0 / float(np.median(times))


def student_fps(model: Path, width: int = 640, height: int = 272, frames: int = 30) -> dict[str, float]:
    """Frames/s of the student at width×height: the networks alone (a frame tensor in, a picture tensor out) and
    the whole ``Stylizer.stylize`` call (a PIL frame in and out), in bf16 (where the CPU has it) and fp32."""
    frame = load_image(assets.content_images()[0]).resize((width, height))
    out = {}
    for precision in ("bf16", "fp32") if native_bf16(torch.device("cpu")) else ("fp32",):
        st = Stylizer.from_style_model(model, student=True, config=NetworkConfig(precision=precision))
        stats = st.encode_style(model, st.defaults.updated(style_size=512))
        x = to_tensor(frame).contiguous(memory_format=torch.channels_last)
        alpha, nets = st.defaults.alpha, st.networks

        def networks_only(nets: Networks = nets, x: torch.Tensor = x, stats: StyleStats = stats,
                          alpha: float = alpha) -> None:
            with torch.inference_mode():
                f = nets.encode(x)["relu4_1"]
                nets.decode(FN.mix(f, FN.adain_from_stats(f, stats.mean, stats.std), alpha))

        out[f"networks {precision}"] = median_fps(networks_only, frames)
        out[f"stylize {precision}"] = median_fps(partial(st.stylize, frame, model, size=0, style_size=512), frames)
    return out


def figure(work: Path, train: Path, steps: int, minutes: float, size: int, reuse: bool) -> Image.Image:
    """The picture for the docs, from public-domain images only (the shared data is research-only): the bundled
    Composition VII (abstract) adapted on the training photos; the bundled photos stylised by each decoder."""
    style = assets.style_images()[0]
    contents = [resize_longest(load_image(p), size) for p in assets.content_images()]
    cells: list[tuple[str, Stylizer, object]] = [("pretrained", Stylizer(defaults=StylizeOptions(size=size)), style)]
    student: tuple[str, Stylizer, object] | None = None
    for name, weights in (("adapted", None), ("adapted, no D", replace(RECIPE_WEIGHTS, adv=0.0))):
        model = work / f"figure_{'adapted' if weights is None else 'noD'}.safetensors"
        m = ensure_model(style, model, train, steps, minutes, weights, weights is None, reuse)
        steps, minutes = int(m.meta.get("horizon", m.meta["steps"])), 60.0  # the ablation: the same steps
        own = StylizeOptions(size=size, alpha=m.alpha)  # each model at its own α
        cells.append((f"{name}, alpha {m.alpha:.2f}" if weights is None else name,
                      Stylizer.from_style_model(model, defaults=own), model))
        if weights is None:
            student = ("student", Stylizer.from_style_model(model, student=True, defaults=own), model)
    cells += [student] if student else []
    rows = [[c, *(st.stylize(c, arg).image for _, st, arg in cells)] for c in contents]
    return grid(rows, cell=160, titles=["content", *(n for n, _, _ in cells)])


def table(rows: list[tuple], curves: list[tuple]) -> list[str]:
    """The markdown tables of the scores and of the α sweeps."""
    out = ["| style | decoder | style distance | Gram | sliced Wasserstein | content | minutes |",
           "|---|---|---:|---:|---:|---:|---:|"]
    out += [f"| {s} | {n} | {a:+.1f} % | {g:+.1f} % | {w:+.1f} % | {c:+.1f} % | {t / 60:.1f} |"
            for s, n, a, g, w, c, t in rows]
    for name in dict.fromkeys(r[1] for r in rows):
        m = np.mean([r[2:6] for r in rows if r[1] == name], axis=0)
        out.append(f"| **mean** | {name} | {m[0]:+.1f} % | {m[1]:+.1f} % | {m[2]:+.1f} % | {m[3]:+.1f} % | |")
    out += ["", "| style | decoder | style distance at pretrained α = 1's content | α for content +10 % | "
            "style distance there |", "|---|---|---:|---:|---:|"]
    out += [f"| {s} | {n} | {e:+.1f} % | {a:.2f} | {t:+.1f} % |" for s, n, e, a, t in curves]
    for name in dict.fromkeys(c[1] for c in curves):
        m = np.mean([c[2:] for c in curves if c[1] == name], axis=0)
        out.append(f"| **mean** | {name} | {m[0]:+.1f} % | {m[1]:.2f} | {m[2]:+.1f} % |")
    return out


T = TypeVar("T")


def with_fields(base: T, text: str) -> T:
    """``base`` (a frozen dataclass) with the number fields of "name=value,…" replaced, each cast to its type."""
    return replace(base, **{k: type(getattr(base, k))(float(v)) for k, v in (kv.split("=") for kv in text.split(",")
                                                                            if kv)})


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", type=int, default=6)
    ap.add_argument("--fps", type=Path, metavar="MODEL", help="only the student's frames/s of this style model")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP styles (scored in an earlier run)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="as semstyle adapt's (default %(default)s)")
    ap.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                    help="each adaptation's time budget, as semstyle adapt's; the schedule is fitted to it "
                         "(default %(default)s)")
    ap.add_argument("--contents", type=int, default=6, help="held-out content photos scored per style")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-student", action="store_true", help="leave out the real-time students")
    ap.add_argument("--no-ablation", action="store_true", help="leave out the decoders without D (for trials)")
    ap.add_argument("--per-layer", action="store_true", help="also print each adapted decoder's scores per layer")
    ap.add_argument("--band", type=int, default=0, help="score the pictures without a frame this many px wide "
                    "(what a network paints along the border does not count; the style picture stays whole)")
    ap.add_argument("--inside", type=int, default=0, help="also score the decoders and students without a frame this "
                    "many px wide (extra rows, no α sweep)")
    ap.add_argument("--work", type=Path, help="folder of the models (default: a new temporary one)")
    ap.add_argument("--reuse", action="store_true", help="score the models already in --work instead of adapting")
    ap.add_argument("--student-recipe", default="", help="trial StudentRecipe fields, e.g. feature=20,steps=450")
    ap.add_argument("--weights", default="", help="trial loss weights instead of the recipe's, e.g. "
                    "content=1,content_orig=0,style_gram=1 (the first recipe, before 2026-12-06); its ablation "
                    "is the same with adv=0")
    return ap


@dataclass
class Bench:
    """What every style's rows are measured with, and the rows gathered so far."""

    args: argparse.Namespace
    pre: Stylizer  # the pretrained decoder: the reference and the judge
    contents: list[Image.Image]  # the held-out photos, scored
    train: Path  # the photos adapted on
    work: Path  # where the models are written
    recipe: LossWeights
    student_recipe: StudentRecipe
    rows: list[tuple] = field(default_factory=list)
    curves: list[tuple] = field(default_factory=list)
    speeds: list[tuple[str, dict[str, float]]] = field(default_factory=list)


def _style(b: Bench, k: int, style: Path) -> None:
    """Adapt to ``style`` (and its ablation without D), score every decoder and student, sweep α."""
    args, pre, contents = b.args, b.pre, b.contents
    style_img = load_image(style)
    base, _ = score(pre, style, contents, style_img, args.size, band=args.band)
    base_in = score(pre, style, contents, style_img, args.size, band=args.inside)[0] if args.inside else base
    s10, a10 = at_content(sweep(pre, style, contents, style_img, args.size, args.band), 1.1 * base[3])
    b.curves.append((style.name, "pretrained", 0.0, a10, 100 * (s10 / base[0] - 1)))  # its own α within +10 %
    steps, minutes = args.steps, args.minutes
    for name, weights in (("adapted", b.recipe), ("no D", replace(b.recipe, adv=0.0)))[: 1 if args.no_ablation else 2]:
        model = b.work / f"{k}_{name.replace(' ', '')}.safetensors"
        student = name == "adapted" and not args.no_student
        m = ensure_model(style, model, b.train, steps, minutes, weights, student, args.reuse, b.student_recipe)
        steps, minutes = int(m.meta.get("horizon", m.meta["steps"])), 60.0  # the ablation: the same steps, not time
        took = float(m.meta["seconds"])
        opts = StylizeOptions(size=args.size, style_size=512)
        st = Stylizer.from_style_model(model, defaults=opts)
        runs = [(name, st, 1.0)]
        if name == "adapted":
            runs.append((f"adapted, α {m.alpha:.2f}", st, m.alpha))
        if student:
            runs.append(("student", Stylizer.from_style_model(model, student=True, defaults=opts), m.alpha))
            b.speeds.append((style.name, student_fps(model)))
        for label, runner, alpha in runs:
            sc, _ = score(runner, model, contents, style_img, args.size, alpha, judge=pre.encoder, band=args.band)
            rel = 100 * (sc / base - 1)
            print(f"{style.name:40s} {label:16s} style {rel[0]:+6.1f} %  gram {rel[1]:+6.1f} %  "
                  f"swd {rel[2]:+6.1f} %  content {rel[3]:+6.1f} %  {took / 60:.1f} min", flush=True)
            b.rows.append((style.name, label if label != f"adapted, α {m.alpha:.2f}" else "adapted, own α", *rel, took))
        for label, runner, alpha in (runs[::2] if args.inside else []):  # the decoder at α 1 and the student
            inner, _ = score(runner, model, contents, style_img, args.size, alpha, judge=pre.encoder, band=args.inside)
            b.rows.append((style.name, f"{label}, inside {args.inside} px", *(100 * (inner / base_in - 1)), took))
        if args.per_layer and name == "adapted":
            print(f"\n{style.name}, adapted against pretrained, per layer\n\n| layer | style distance | sliced "
                  "Wasserstein |\n|---|---:|---:|\n" + "\n".join(per_layer(pre, st, model, contents, style_img,
                                                                           args.size, m.alpha, args.band)), flush=True)
        curve = sweep(st, model, contents, style_img, args.size, args.band)
        eq_style, _ = at_content(curve, base[3])
        s10, a10 = at_content(curve, 1.1 * base[3])
        b.curves.append((style.name, name, 100 * (eq_style / base[0] - 1), a10, 100 * (s10 / base[0] - 1)))


def main() -> None:
    ap = _parser()
    args = ap.parse_args()
    keep_freed_memory()  # as semstyle's entry point does (semstyle.allocator; benchmarks/bench_allocator.py)
    if args.fps:
        print(" | ".join(f"{k} {v:.1f} frames/s" for k, v in student_fps(args.fps).items()))
        return
    try:
        recipe = with_fields(RECIPE_WEIGHTS, args.weights)
    except (AttributeError, TypeError, ValueError) as e:
        ap.error(f"--weights takes LossWeights fields as name=number,…: {e}")
    try:
        student_recipe = with_fields(StudentRecipe(), args.student_recipe)
    except (AttributeError, TypeError, ValueError) as e:
        ap.error(f"--student-recipe takes StudentRecipe number fields as name=number,…: {e}")
    train = DATA / "content" / "BSDS500" / "train"
    tests = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    work = args.work or Path(tempfile.mkdtemp(prefix="adapt-"))
    work.mkdir(parents=True, exist_ok=True)
    b = Bench(args, Stylizer(NetworkConfig(), defaults=StylizeOptions(size=args.size, style_size=512)),
              [resize_longest(load_image(p), args.size) for p in tests], train, work, recipe, student_recipe)
    for k, style in enumerate(heldout_styles(args.styles)):
        if k >= args.skip:
            _style(b, k, style)
    print("\n".join(table(b.rows, b.curves)))
    if b.speeds:
        print("\n| style | " + " | ".join(f"frames/s, {k}" for k in b.speeds[0][1]) + " |")
        print("|---|" + "---:|" * len(b.speeds[0][1]))
        for name, fps in b.speeds:
            print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in fps.values()) + " |")
    if not args.no_write:
        print("(paste the tables into docs/ADAPT.md)")
        pic = figure(work, train, args.steps, args.minutes, 192, args.reuse)  # a 256-colour PNG: a third of the bytes
        pic.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(ROOT / "docs" / "adapt_grid.png", optimize=True)

if __name__ == "__main__":
    main()
