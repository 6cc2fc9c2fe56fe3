"""Evidence for adversarial fine-tuning: pretrained vs fine-tuned decoder on held-out styles.

    .venv/bin/python benchmarks/eval_finetune.py [--contents 10] [--size 256]
        [--decoder finetuned] [--discriminator finetuned] [--run runs/finetune]

BSDS500 test contents × the held-out styles (configs/heldout_styles.txt). Per decoder: Gram
style loss, mean/std style loss, content loss (to the AdaIN target and to the content),
checkerboard and high-frequency energy relative to the content, the discriminator's score.
Writes docs/finetune_evidence.md, docs/finetune_grid.png and (given --run) docs/finetune_curves.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from semstyle import Stylizer, assets
from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.models.weights import load_into
from semstyle.viz import grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TAPS = (*STYLE_LAYERS,)


def heldout() -> list[Path]:
    lines = (ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
    return [DATA / "style" / ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def feats(st: Stylizer, img: torch.Tensor) -> dict[str, torch.Tensor]:
    x, _ = FN.pad_to_multiple(img)
    with torch.inference_mode():
        return {k: v.float() for k, v in st.encoder(x, TAPS).items()}


def evaluate(
    st: Stylizer, disc: MultiScaleDiscriminator, content: Path, style: Path, size: int, **options: object
) -> tuple[dict[str, float], object]:
    c_img = resize_longest(load_image(content), size)
    s_img = resize_longest(load_image(style), size)
    t0 = time.perf_counter()
    out = st.stylize(c_img, s_img, **options).image  # options: per-call overrides (alpha)
    secs = time.perf_counter() - t0
    o, c, s = to_tensor(out), to_tensor(c_img), to_tensor(s_img)
    fo, fc, fs = feats(st, o), feats(st, c), feats(st, s)
    with torch.inference_mode():
        target = FN.adain(fc["relu4_1"], fs["relu4_1"])
        score = float(disc.score(o, style_vector(fs)).mean())
    return {
        "gram_style": M.gram_style_loss(fo, fs),
        "meanstd_style": M.mean_std_style_loss(fo, fs),
        "content_to_target": M.content_loss(fo, target),
        "content_to_photo": M.content_loss(fo, fc),
        "checkerboard": M.checkerboard_ratio(o, c),
        "high_freq": M.high_frequency_ratio(o, c),
        "d_score": score,
        "seconds": secs,
    }, out


def curves(run: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    keys = [
        ("g/content", "content"),
        ("g/style_gram", "Gram style"),
        ("g/style_meanstd", "mean/std style"),
        ("g/adv", "adversarial (G)"),
        ("d/loss", "D loss"),
        ("d/score_real", "D(real)"),
        ("d/score_fake", "D(fake)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    steps = [r["step"] for r in rows]

    def smooth(v: list[float], k: int = 9) -> list[float]:
        return [statistics.fmean(v[max(0, i - k + 1) : i + 1]) for i in range(len(v))]

    for ax, group in zip(axes, (keys[:3], keys[3:5], keys[5:])):
        for key, label in group:
            ax.plot(steps, smooth([r.get(key, float("nan")) for r in rows]), label=label)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.suptitle("adversarial fine-tuning (moving average of 9 logged points)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def _table(results: dict[str, list[dict[str, float]]]) -> str:
    """Mean and median of every metric, pretrained against fine-tuned, as a Markdown table."""
    lines = [
        "| metric | pretrained mean | fine-tuned mean | change | pretrained median | fine-tuned median | change |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in results["pretrained"][0]:
        a = statistics.fmean(r[k] for r in results["pretrained"])
        b = statistics.fmean(r[k] for r in results["finetuned"])
        ma = statistics.median(r[k] for r in results["pretrained"])
        mb = statistics.median(r[k] for r in results["finetuned"])
        change, mchange = 100 * (b - a) / abs(a), 100 * (mb - ma) / abs(ma)
        lines.append(f"| {k} | {a:.4g} | {b:.4g} | {change:+.1f}% | {ma:.4g} | {mb:.4g} | {mchange:+.1f}% |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contents", type=int, default=10)
    ap.add_argument("--styles", type=int, default=0, help="limit the held-out styles (0 = all)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--decoder", default="finetuned")
    ap.add_argument("--discriminator", default="finetuned")
    ap.add_argument("--run", type=Path, help="training run whose metrics.jsonl gives the loss curves")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 is faster on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    contents = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    styles = heldout()[: args.styles or None]
    disc = MultiScaleDiscriminator()
    load_into(disc, args.discriminator, "discriminator")
    disc.eval().requires_grad_(False)
    decoders = {"pretrained": "pretrained", "finetuned": args.decoder}
    results: dict[str, list[dict[str, float]]] = {k: [] for k in decoders}
    for name, source in decoders.items():
        st = Stylizer(
            NetworkConfig(decoder=source, precision="fp32"),
            defaults=StylizeOptions(size=args.size, style_size=args.size),
        )
        for c in contents:
            for s in styles:
                m, _ = evaluate(st, disc, c, s, args.size)
                results[name].append(m)
        print(f"{name}: {len(results[name])} pairs")

    table = _table(results)
    wins = sum(rb["gram_style"] < ra["gram_style"] for ra, rb in zip(results["pretrained"], results["finetuned"]))
    print(table)
    print(f"fine-tuned has the lower Gram style loss on {wins} of {len(results['finetuned'])} pairs")

    args.docs.mkdir(exist_ok=True)
    # the committed grid uses the bundled public-domain images (the research data stays out of the repo)
    pd_pairs = [(c, s) for c, s in zip(assets.content_images() * 2, assets.style_images())]
    sts = {
        k: Stylizer(
            NetworkConfig(decoder=v, precision="fp32"), defaults=StylizeOptions(size=args.size, style_size=args.size)
        )
        for k, v in decoders.items()
    }
    rows = [[load_image(c), load_image(s), *(st.stylize(c, s).image for st in sts.values())] for c, s in pd_pairs]
    sheet = grid(rows, cell=160, titles=["content", "style", "pretrained", "fine-tuned"])
    sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(args.docs / "finetune_grid.png")
    if args.run:
        curves(args.run, args.docs / "finetune_curves.png")
    n = len(results["finetuned"])
    (args.docs / "finetune_evidence.md").write_text(
        f"# Adversarial fine-tuning: evidence\n\n{len(contents)} BSDS500 test contents × {len(styles)} held-out styles "
        f"= {n} pairs at {args.size} px.\nCommand: `.venv/bin/python benchmarks/eval_finetune.py "
        f"--contents {args.contents} --size {args.size}`\n\n{table}\n\n"
        f"The fine-tuned decoder has the lower Gram style loss on {wins} of {n} pairs.\n"
    )


if __name__ == "__main__":
    main()
