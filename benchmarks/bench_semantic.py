"""Benchmark semantic style transfer on the Deep Photo Style Transfer pairs (issue 3, item 7).

For every pair (content ``input/inN.jpg``, style ``style/tarN.jpg``, ground-truth colour masks
``segmentation/inN.png`` and ``tarN.png``) three methods run through the real ``Stylizer``:

- ``global``: plain AdaIN (``semantic="none"``);
- ``semantic-GT``: region-matched AdaIN with the ground-truth label maps (``semantic="labels"``);
- ``semantic-auto``: region-matched AdaIN with automatic co-segmentation (``semantic="auto"``).

More with ``--methods``: attention fusion, ``scribbles-N`` (regions grown from N simulated strokes per region,
``scribble_sim.simulate``, painted as ``--painter`` says) and ``naive-N`` (the same strokes spread by the issue's
naive propagation, ``scribble_sim.naive_propagation``, run as label maps).

Metrics (``semstyle.metrics``, formulas in docs/METRICS.md; the VGG19 encoder runs in fp32 for
them, whatever precision the Stylizer uses):

- **region-wise style distance**: for each ground-truth label covering at least ``MIN_SHARE`` of
  both the content (= output) and the style, and for each layer relu1_1..relu4_1, the channel
  means μ and standard deviations σ of the output and of the style inside that label (ground-truth
  masks area-downsampled to the layer's resolution, ``masked_mean_std``);
  d_layer = (‖μo − μs‖₂ + ‖σo − σs‖₂) / √C, averaged over the four layers, then averaged over
  labels weighted by the label's share of the content. Scored with the ground-truth labels for
  every method (so automatic labels are judged by what they achieve, not by their own labels).
- **content loss**: MSE between the relu4_1 features of the output and of the content
  (normalised by C·H·W);
- **SSIM**: grayscale SSIM (11×11 Gaussian window, σ = 1.5) between output and content;
- **mIoU** of the automatic labels against the ground truth: one label matching shared by both
  images (pixels of content and style pooled), chosen to maximise the summed IoU (exact, by
  dynamic programming over subsets); the mean runs over every ground-truth label of the pair, an
  unmatched label scoring 0.

Usage::

    python benchmarks/bench_semantic.py                       # pairs 1-30 at 512 px, writes docs/ and runs/
    python benchmarks/bench_semantic.py --size 256 --pairs 1-5 --no-write
    python benchmarks/bench_semantic.py --seg-only            # only the co-segmentation mIoU
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scribble_sim import PAINTERS, Painter, naive_propagation, simulate  # benchmarks/, beside this script

from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.io.labels import DPST_COLORS, LabelMap, fit_to, snap_colors
from semstyle.pipelines.stylize import Stylizer
from semstyle.segmentation.auto import Options
from semstyle.segmentation.scribbles import read_scribbles
from semstyle.viz import grid, overlay

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paired" / "deep-photo-styletransfer"
ROOT = Path(__file__).resolve().parents[1]
# method name → per-call options of Stylizer.stylize (semantic "labels" gets the ground-truth maps)
METHODS: dict[str, dict[str, object]] = {
    "global": {"semantic": "none"},
    "semantic-GT": {"semantic": "labels"},
    "semantic-auto": {"semantic": "auto"},
    "semantic-GT-attention": {"semantic": "labels", "fusion": "attention"},
    "semantic-auto-attention": {"semantic": "auto", "fusion": "attention"},
    # simulated scribbles (benchmarks/scribble_sim.py): n short strokes in every ground-truth region, seeded
    **{f"scribbles-{n}": {"semantic": "scribbles", "strokes": n} for n in (1, 2, 3)},
    # the same strokes, grown by the naive propagation (scribble_sim.naive_propagation) into label maps
    **{f"naive-{n}": {"semantic": "labels", "strokes": n} for n in (1, 3)},
}
BASE_METHODS = ("global", "semantic-GT", "semantic-auto")  # always run: the per-pair table and the verdict use them
DEFAULT_METHODS = "global,semantic-GT,semantic-auto,semantic-GT-attention,semantic-auto-attention"
MIN_SHARE = 0.005  # a GT label must cover this share of both images to be scored (as min_region)
TARGET_CUT = 45.0  # % cut of the region-wise style distance with GT labels
TARGET_RISE = 10.0  # % allowed rise of the content loss
TARGET_AUTO = 0.80  # share of the GT cut that automatic labels must reach


# ----------------------------------------------------------------------------- running
@dataclass
class PairResult:
    n: int
    dist: dict[str, float] = field(default_factory=dict)
    closs: dict[str, float] = field(default_factory=dict)
    ssim: dict[str, float] = field(default_factory=dict)
    secs: dict[str, float] = field(default_factory=dict)
    miou: float = float("nan")
    seg_secs: float = float("nan")
    images: dict[str, Image.Image] = field(default_factory=dict)
    auto_labels: tuple[np.ndarray, np.ndarray] | None = None


def parse_pairs(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def gt_labels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A DPST mask as packed-RGB labels at ``size``: snapped to the nine-colour palette, then edges cleaned.

    Every pixel first takes the nearest palette colour (the masks are antialiased, and one, in8.png,
    is grayscale). A naive nearest-colour snap turns the antialiased border between a black and a
    white region into a thin *grey* band, i.e. a spurious "grey" label along every border, so the
    result then goes through ``snap_colors`` (the library's reader of colour maps): colours without
    flat interior pixels are edge bands, and their pixels join the neighbouring region.
    """
    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 1, 3).astype(np.int32)
    pal = np.array(list(DPST_COLORS.values()), dtype=np.int32)  # (9, 3)
    nearest = ((rgb - pal[None]) ** 2).sum(-1).argmin(1)
    snapped = pal[nearest].reshape(*Image.open(path).size[::-1], 3).astype(np.uint8)
    return fit_to(LabelMap(snap_colors(snapped), from_colors=True), size).labels


def load_pair(n: int, st: Stylizer) -> tuple[Image.Image, Image.Image, np.ndarray, np.ndarray]:
    cfg = st.defaults
    c_img = resize_longest(load_image(DATA / f"input/in{n}.jpg"), cfg.size)
    s_img = resize_longest(load_image(DATA / f"style/tar{n}.jpg"), cfg.style_size)
    return c_img, s_img, gt_labels(DATA / f"segmentation/in{n}.png", c_img.size), \
        gt_labels(DATA / f"segmentation/tar{n}.png", s_img.size)


def vgg(st: Stylizer, img: Image.Image) -> dict[str, torch.Tensor]:
    return M.vgg_features(st.encoder, to_tensor(img))


def run_pair(n: int, st: Stylizer, seg_only: bool, methods: dict[str, dict[str, object]] = METHODS,
             painter: Painter = PAINTERS["quick"]) -> PairResult:
    c_img, s_img, c_gt, s_gt = load_pair(n, st)
    res = PairResult(n)
    t0 = time.perf_counter()
    with torch.inference_mode():
        a_c, (a_s,) = st.cosegment(c_img, [s_img])
    res.seg_secs = time.perf_counter() - t0
    res.miou = M.matched_miou([c_gt, s_gt], [a_c, a_s])
    res.auto_labels = (a_c, a_s)
    if seg_only:
        return res
    c_f, s_f = vgg(st, c_img), vgg(st, s_img)
    for name, kw in methods.items():
        extra: dict[str, object] = {}
        kw = dict(kw)
        if "strokes" in kw:  # the same strokes for every method with n of them
            n_strokes = int(kw.pop("strokes"))  # type: ignore[call-overload]
            extra = {"content_scribbles": simulate(c_gt, n_strokes, 1000 * n + n_strokes, painter),
                     "style_scribbles": [simulate(s_gt, n_strokes, 1000 * n + 500 + n_strokes, painter)]}
        if kw["semantic"] == "labels":
            c_lab, s_lab = c_gt, s_gt
            if "content_scribbles" in extra:  # naive-n: the same strokes, propagated into label maps
                c_lab = naive_propagation(c_img, read_scribbles(extra["content_scribbles"], c_img.size))
                s_lab = naive_propagation(s_img, read_scribbles(extra["style_scribbles"][0], s_img.size))  # type: ignore[index]
            extra = {"content_labels": LabelMap(c_lab, from_colors=True),
                     "style_labels": [LabelMap(s_lab, from_colors=True)]}
        t0 = time.perf_counter()
        out = st.stylize(c_img, s_img, **kw, **extra).image
        res.secs[name] = time.perf_counter() - t0
        o_f = vgg(st, out)
        res.dist[name] = M.region_style_distance(o_f, s_f, c_gt, s_gt, min_share=MIN_SHARE)
        res.closs[name] = M.content_loss(o_f, c_f)
        res.ssim[name] = M.ssim_gray(to_tensor(out), to_tensor(c_img))
        res.images[name] = out
    res.images["content"], res.images["style"] = c_img, s_img
    return res


# ----------------------------------------------------------------------------- reporting
def summarise(
    results: list[PairResult], seg_only: bool, methods: list[str] | None = None
) -> tuple[str, dict[str, float]]:
    """A markdown table (per method means over pairs) and the headline numbers."""
    miou = float(np.mean([r.miou for r in results]))
    seg = float(np.mean([r.seg_secs for r in results]))
    if seg_only:
        return f"| auto mIoU | {miou:.3f} |\n| segmentation s/pair | {seg:.2f} |\n", {"miou": miou}
    ok = [r for r in results if not np.isnan(r.dist["global"])]
    head = {}
    lines = ["| method | style distance | cut vs global | content loss | rise vs global | SSIM | s/pair |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    g_d = float(np.mean([r.dist["global"] for r in ok]))
    g_c = float(np.mean([r.closs["global"] for r in results]))
    for name in methods or list(results[0].dist):
        d = float(np.mean([r.dist[name] for r in ok]))
        c = float(np.mean([r.closs[name] for r in results]))
        s = float(np.mean([r.ssim[name] for r in results]))
        secs = float(np.mean([r.secs[name] for r in results]))
        cut, rise = 100 * (1 - d / g_d), 100 * (c / g_c - 1)
        head[f"{name}_cut"], head[f"{name}_rise"] = cut, rise
        lines.append(f"| {name} | {d:.4f} | {cut:+.1f} % | {c:.4f} | {rise:+.1f} % | {s:.3f} | {secs:.2f} |")
    head["miou"] = miou
    lines.append("")
    lines.append(f"Automatic co-segmentation: mIoU {miou:.3f} against the ground truth, {seg:.2f} s per pair.")
    return "\n".join(lines) + "\n", head


def per_pair_table(results: list[PairResult]) -> str:
    lines = ["| pair | dist global | dist GT | dist auto | closs global | closs GT | closs auto | auto mIoU |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        d, c = r.dist, r.closs
        lines.append(f"| {r.n} | {d['global']:.4f} | {d['semantic-GT']:.4f} | {d['semantic-auto']:.4f} | "
                     f"{c['global']:.4f} | {c['semantic-GT']:.4f} | {c['semantic-auto']:.4f} | {r.miou:.3f} |")
    return "\n".join(lines) + "\n"


def picture(results: list[PairResult], pairs: list[int], path: Path, cell: int = 160) -> None:
    rows = []
    for r in results:
        if r.n not in pairs or r.auto_labels is None:
            continue
        im = r.images
        a_c, a_s = r.auto_labels
        rows.append([im["content"], im["style"], im["global"], im["semantic-GT"], im["semantic-auto"],
                     overlay(im["content"], a_c), overlay(im["style"], a_s)])
    titles = ["content", "style", "global AdaIN", "semantic (GT)", "semantic (auto)", "auto: content", "auto: style"]
    grid(rows, cell=cell, titles=titles).save(path, optimize=True)


def key_values(cls: type, spec: str, flag: str) -> dict[str, object]:
    """``key=value,…`` as keyword arguments of the dataclass ``cls``, each value cast to its field's default's type."""
    defaults = cls()
    changes: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in {f.name for f in fields(cls)}:
            raise SystemExit(f"{flag}: unknown option {key!r}")
        old = getattr(defaults, key)
        changes[key] = (value.lower() in ("1", "true", "yes") if isinstance(old, bool)
                        else value if isinstance(old, str) else type(old)(value))
    return changes


def coseg_options(base: Options, spec: str) -> Options:
    """``base`` with ``key=value,…`` applied."""
    return replace(base, **key_values(Options, spec, "--coseg"))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="content and style longest side (px)")
    ap.add_argument("--pairs", default="1-30", help="pair numbers, e.g. 1-30 or 1,4,7-9")
    ap.add_argument("--seg-only", action="store_true", help="only time and score the automatic segmentation")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/")
    ap.add_argument("--grid-pairs", default="1,14,21,24,28", help="pairs shown in the picture grid")
    ap.add_argument("--feather", type=float, default=None)
    ap.add_argument("--shrink", type=float, default=None, help="region statistics shrunk toward the picture's")
    ap.add_argument("--min-region", type=float, default=None)
    ap.add_argument("--unmatched", default=None)
    ap.add_argument("--regions", type=int, default=None)
    ap.add_argument("--per-pair", action="store_true", help="also print the per-pair table")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--refine", type=int, default=0,
                    help="also run semantic-GT and semantic-auto with this many region-guided refinement rounds")
    ap.add_argument("--refine-weights", default="",
                    help="trial λ of the refinement's objective, e.g. style_region=100,style_gram=0")
    ap.add_argument("--refine-modes", default="GT,auto", help="the labels refined: GT, auto, scribbles (1 stroke)")
    ap.add_argument("--refine-opts", default="", help="trial RefineConfig fields, e.g. per_region=1,lr=0.05")
    ap.add_argument("--coseg", default="", help="co-segmentation options: method=nmf,graph=1.5")
    ap.add_argument("--painter", default="quick", choices=list(PAINTERS), help="how the simulated strokes are painted "
                    "(benchmarks/scribble_sim.py)")
    ap.add_argument("--decoder", default="pretrained", help="decoder weights (e.g. a decoder fine-tuned on attention)")
    return ap.parse_args()


def apply_trial_knobs(args: argparse.Namespace) -> None:
    """``--refine-weights`` / ``--refine-opts``: what the refiner builds its objective and loop from, patched."""
    import functools

    import semstyle.pipelines.stylize as sm

    if args.refine_weights:  # every refined method has regions: their objective is REGION_LOSS_WEIGHTS
        changes = key_values(type(sm.REGION_LOSS_WEIGHTS), args.refine_weights, "--refine-weights")
        sm.REGION_LOSS_WEIGHTS = replace(sm.REGION_LOSS_WEIGHTS, **changes)  # type: ignore[misc]
    if args.refine_opts:
        sm.RefineConfig = functools.partial(  # type: ignore[misc]
            sm.RefineConfig, **key_values(sm.RefineConfig, args.refine_opts, "--refine-opts")
        )


def chosen_methods(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The base methods, ``--methods`` and, with ``--refine N``, the refined runs of ``--refine-modes``."""
    names = list(dict.fromkeys([*BASE_METHODS, *filter(None, args.methods.split(","))]))
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    methods = {m: METHODS[m] for m in names}
    if args.refine:
        modes = [(m, n) for m, n in (("labels", "GT"), ("auto", "auto"), ("scribbles", "scribbles-1"))
                 if n.split("-")[0] in args.refine_modes.split(",")]
        for mode, name in modes:  # refine_target 1: every round runs
            methods[f"semantic-{name}-refine{args.refine}"] = {
                "semantic": mode,
                "refine": args.refine,
                "refine_target": 1.0,
                **({"strokes": 1} if mode == "scribbles" else {}),
            }
    return methods


def print_pair(n: int, r: PairResult, seg_only: bool, methods: dict[str, dict[str, object]]) -> None:
    if seg_only:
        k = len(np.unique(r.auto_labels[0])) if r.auto_labels else 0
        print(f"pair {n:2d}: mIoU {r.miou:.3f}  k={k}  {r.seg_secs:.2f}s", flush=True)
    else:
        print(f"pair {n:2d}: " + "  ".join(f"{m} d={r.dist[m]:.4f} c={r.closs[m]:.4f}" for m in methods)
              + f"  mIoU {r.miou:.3f}", flush=True)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    st = Stylizer(NetworkConfig(decoder=args.decoder),
                  defaults=StylizeOptions().updated(size=args.size, style_size=args.size, feather=args.feather,
                                                    shrink=args.shrink, min_region=args.min_region,
                                                    unmatched=args.unmatched, regions=args.regions))
    if args.refine_weights or args.refine_opts:
        apply_trial_knobs(args)
    if args.coseg:
        st.networks.coseg = coseg_options(st.networks.coseg, args.coseg)
    methods = chosen_methods(args)
    results = []
    t0 = time.perf_counter()
    for n in parse_pairs(args.pairs):
        results.append(run_pair(n, st, args.seg_only, methods, PAINTERS[args.painter]))
        print_pair(n, results[-1], args.seg_only, methods)
    table, head = summarise(results, args.seg_only, list(methods))
    if args.coseg:
        print(f"co-segmentation: {args.coseg}")
    if args.refine_weights or args.refine_opts:
        print(f"refinement: weights {args.refine_weights or 'default'}, options {args.refine_opts or 'default'}")
    print(f"\n{len(results)} pairs at {args.size} px in {time.perf_counter() - t0:.0f} s\n")
    print(table)
    gt_cut = 0.0 if args.seg_only else head.get("semantic-GT_cut", 0.0)
    shares = {m: head[f"{m}_cut"] / gt_cut for m in methods
              if m.startswith(("scribbles", "naive", "semantic-s")) and gt_cut > 0}
    for m, share in shares.items():  # issue 31: ≥ 90 % of the label maps' cut with 1 stroke, ≥ 97 % with 3
        print(f"{m}: {100 * share:.1f} % of the full label maps' cut, content {head[f'{m}_rise']:+.1f} % vs global")
    if args.per_pair and not args.seg_only:
        print(per_pair_table(results))
    if not (args.no_write or args.seg_only):
        write_outputs(args, st, results, table, head)


def write_outputs(args: argparse.Namespace, st: Stylizer, results: list[PairResult], table: str,
                  head: dict[str, float]) -> None:
    """The picture grid (under runs/: the DPST photos are research-only) and the report block in docs/."""
    grid_path = ROOT / "runs" / "bench-semantic" / "semantic_grid.png"
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    picture(results, parse_pairs(args.grid_pairs), grid_path)
    print(f"picture grid: {grid_path}")
    meta = (
        f"{len(results)} pairs ({args.pairs}) at {args.size} px, feather {st.defaults.feather}, "
        f"shrink {st.defaults.shrink}, "
        f"min_region {st.defaults.min_region}, unmatched {st.defaults.unmatched}, regions {st.defaults.regions} "
        f"(0 = automatic), seed {st.defaults.seed}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'bf16' if st.bf16 else 'fp32'} networks."
    )
    write_report(ROOT / "docs/semantic_benchmark.md", table, per_pair_table(results), meta, head)
    print(head)


BEGIN, END = "<!-- results:begin (written by benchmarks/bench_semantic.py) -->", "<!-- results:end -->"


def write_report(path: Path, table: str, per_pair: str, meta: str, head: dict[str, float]) -> None:
    """Replace the generated block of ``path`` (created if missing); the prose around it is kept."""
    g_cut, a_cut, rise = head["semantic-GT_cut"], head["semantic-auto_cut"], head["semantic-GT_rise"]
    share = a_cut / g_cut if g_cut > 0 else float("nan")

    def ok(flag: bool) -> str:
        return "met" if flag else "missed"

    verdict = (
        f"GT labels cut the style distance by {g_cut:.1f} % (target ≥ {TARGET_CUT:.0f} %: "
        f"{ok(g_cut >= TARGET_CUT)}) with a content-loss rise of {rise:+.1f} % "
        f"(target ≤ {TARGET_RISE:.0f} %: {ok(rise <= TARGET_RISE)}); automatic labels reach "
        f"{100 * share:.0f} % of that cut (target ≥ {100 * TARGET_AUTO:.0f} %: {ok(share >= TARGET_AUTO)})."
    )
    details = f"<details><summary>Per pair</summary>\n\n{per_pair}\n</details>"
    block = f"{BEGIN}\n{meta}\n\n{table}\n{verdict}\n\n{details}\n{END}"
    text = f"# Semantic style transfer benchmark\n\n{BEGIN}\n{END}\n"
    if path.exists():
        text = path.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
