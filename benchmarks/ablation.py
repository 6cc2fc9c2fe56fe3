"""Issue 14's evidence: (a) the pretrained decoder, (b) fine-tuning without the adversarial term, (c) the
adversarial fine-tuning — on BSDS500 test contents × the held-out styles, an α-sweep, and the judge.

    .venv/bin/python benchmarks/ablation.py                      # runs/recipe_long{,_noadv} at step 4000
    .venv/bin/python benchmarks/ablation.py --contents 2 --styles 3 --sweep-every 9 --docs /tmp/d  # a quick look

1. the table: per decoder the mean and median over pairs of Gram style, mean/std style, content loss (to the
   AdaIN target), checkerboard and high-frequency energy (benchmarks/eval_finetune.py's metrics), and each
   one's change against (a), plus on how many pairs (c) has the lower Gram loss than (a) and than (b);
2. the α-sweep (α = 0.2 … 1 on every ``--sweep-every``-th held-out style): median style against median
   content per decoder, and whether (c)'s curve lies on or below (a)'s (style at equal content, linear
   between (a)'s points): docs/finetune_alpha_sweep.png;
3. the judge: (c)'s discriminator (and the shipped one) on the held-out styles — real crops against crops
   of the outputs, and the matching-aware AUC (semstyle.evaluation.judge.judge_heldout);
4. a picture grid on the bundled public-domain images (docs/finetune_grid.png) and (c)'s loss curves.
Writes docs/finetune_ablation.md (quoted by docs/finetune_evidence.md); prints everything it writes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from PIL import Image

from semstyle import Stylizer, assets
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.evaluation.judge import judge_heldout, style_crops
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.weights import load_into
from semstyle.networks import load_encoder
from semstyle.viz import grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_finetune import DATA, ROOT, curves, evaluate, heldout  # noqa: E402

KEYS = ("gram_style", "meanstd_style", "content_to_target", "checkerboard", "high_freq")
ALPHAS = (0.2, 0.4, 0.6, 0.8, 1.0)
STEP = "step_0004000"


def stylizers(decoders: dict[str, str], size: int) -> dict[str, Stylizer]:
    return {
        k: Stylizer(NetworkConfig(decoder=v, precision="fp32"), defaults=StylizeOptions(size=size, style_size=size))
        for k, v in decoders.items()
    }


def table(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    """One row per metric: each decoder's mean and median over the pairs, with the change against (a)."""
    names = list(rows)
    out = [
        "| metric | "
        + " | ".join(f"{n} mean" for n in names)
        + " | "
        + " | ".join(f"{n} median" for n in names)
        + " |",
        "|---|" + "---:|" * 2 * len(names),
    ]
    for k in KEYS:
        cells = []
        for agg in (statistics.fmean, statistics.median):
            v0 = agg(r[k] for r in rows["(a)"])
            for n in names:
                v = agg(r[k] for r in rows[n])
                cells.append(f"{v:.4g}" + ("" if n == "(a)" else f" ({100 * (v / v0 - 1):+.1f} %)"))
        out.append(f"| {k} | " + " | ".join(cells) + " |")
    return out


def below(curve: list[tuple[float, float]], ref: list[tuple[float, float]]) -> list[bool]:
    """For each (content, style) point of ``curve``: is its style ≤ ``ref``'s at that content (linear
    between ``ref``'s points, its end segments extended)?"""
    r = sorted(ref)
    res = []
    for x, y in curve:
        i = min(max(next((j for j in range(1, len(r)) if r[j][0] >= x), len(r) - 1), 1), len(r) - 1)
        (x0, y0), (x1, y1) = r[i - 1], r[i]
        yref = y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else min(y0, y1)
        res.append(y <= yref)
    return res


def sweep(
    sts: dict[str, Stylizer],
    disc: MultiScaleDiscriminator,
    contents: list[Path],
    styles: list[Path],
    size: int,
    docs: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, st in sts.items():
        pts[name] = {"gram_style": [], "meanstd_style": []}
        for a in ALPHAS:
            rows = [evaluate(st, disc, c, s, size, alpha=a)[0] for c in contents for s in styles]
            content = statistics.median(r["content_to_photo"] for r in rows)
            for k in pts[name]:
                pts[name][k].append((content, statistics.median(r[k] for r in rows)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    lines = [
        f"α-sweep on {len(contents)} × {len(styles)} pairs, α = {', '.join(map(str, ALPHAS))} "
        "(medians; content loss to the photo's relu4_1):",
        "",
    ]
    for ax, k in zip(axes, ("gram_style", "meanstd_style")):
        for name, p in pts.items():
            ax.plot([x for x, _ in p[k]], [y for _, y in p[k]], "o-", label=name)
        ax.set_xlabel("content loss (to the photo)")
        ax.set_ylabel(k.replace("_", " "))
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        for other in ("(b)", "(c)"):
            ok = below(pts[other][k], pts["(a)"][k])
            lines.append(
                f"- {k}: {other} on or below (a) at {sum(ok)} of {len(ok)} α "
                f"({'everywhere' if all(ok) else 'not everywhere'})"
            )
    fig.suptitle("style against content as α goes 0.2 → 1 (lower left is better)")
    fig.tight_layout()
    fig.savefig(docs / "finetune_alpha_sweep.png", dpi=72)
    plt.close(fig)
    for name, p in pts.items():
        lines.append(
            f"- {name}: "
            + "; ".join(
                f"α {a}: content {c:.3g}, Gram {g:.3g}, mean/std {m:.3g}"
                for a, (c, g), (_, m) in zip(ALPHAS, p["gram_style"], p["meanstd_style"])
            )
        )
    return lines


def judge_lines(discs: dict[str, str], st: Stylizer, contents: list[Path], styles: list[Path], size: int) -> list[str]:
    enc = load_encoder("pretrained", torch.device("cpu"))
    crops = style_crops(styles, side=128, n=4, scale=size)
    outputs = {}
    for s in styles:
        outs = [
            to_tensor(st.stylize(resize_longest(load_image(c), size), resize_longest(load_image(s), size)).image)
            for c in contents
        ]
        outputs[s.stem] = torch.cat([o[..., :128, :128] for o in outs])  # (m, 3, 128, 128): a corner of each
    lines = [
        "| discriminator | real vs output AUC | real vs output accuracy | matching-aware AUC |",
        "|---|---:|---:|---:|",
    ]
    for name, src in discs.items():
        disc = MultiScaleDiscriminator()
        load_into(disc, src, "discriminator")
        disc.eval()
        j = judge_heldout(disc, enc, crops, outputs)
        lines.append(f"| {name} | {j.real_vs_output_auc:.3f} | {j.real_vs_output_acc:.3f} | {j.matching_auc:.3f} |")
    return lines


def _pictures(sts: dict, path: Path) -> None:
    """The bundled public-domain pairs under (a), (b) and (c): a contact sheet (the research data stays out)."""
    pd_pairs = list(zip(assets.content_images() * 2, assets.style_images()))
    cells = [[load_image(c), load_image(s), *(st.stylize(c, s).image for st in sts.values())] for c, s in pd_pairs]
    titles = ["content", "style", "(a) pretrained", "(b) no adversarial", "(c) adversarial"]
    sheet = grid(cells, cell=160, titles=titles)
    sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adv", type=Path, default=ROOT / "runs" / "recipe_long", help="run (c)")
    ap.add_argument("--noadv", type=Path, default=ROOT / "runs" / "recipe_long_noadv", help="run (b)")
    ap.add_argument("--step", default=STEP, help="checkpoint folder of both runs")
    ap.add_argument("--contents", type=int, default=6)
    ap.add_argument("--styles", type=int, default=0, help="limit the held-out styles (0 = all 27)")
    ap.add_argument("--sweep-every", type=int, default=3, help="the α-sweep takes every N-th held-out style")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = {k: run / "checkpoints" / args.step for k, run in (("(b)", args.noadv), ("(c)", args.adv))}
    for k, c in ckpt.items():
        if not (c / "decoder_ema.safetensors").is_file():
            raise SystemExit(f"{k}: {c} has no decoder_ema.safetensors; train it first (scripts/long_run.sh)")
    decoders = {"(a)": "pretrained", **{k: str(c / "decoder_ema.safetensors") for k, c in ckpt.items()}}
    contents = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.contents]
    styles = heldout()[: args.styles or None]
    disc = MultiScaleDiscriminator()
    load_into(disc, "finetuned", "discriminator")
    disc.eval()
    sts = stylizers(decoders, args.size)

    # 1. the table
    rows = {k: [evaluate(st, disc, c, s, args.size)[0] for c in contents for s in styles] for k, st in sts.items()}
    n = len(rows["(a)"])
    lines = [
        f"{len(contents)} BSDS500 test contents × {len(styles)} held-out styles = {n} pairs at {args.size} px; "
        "(a) pretrained, (b) no adversarial term, (c) adversarial; change against (a).",
        "",
        *table(rows),
        "",
    ]
    for other in ("(a)", "(b)"):
        wins = sum(c["gram_style"] < o["gram_style"] for c, o in zip(rows["(c)"], rows[other]))
        lines.append(f"- (c) has the lower Gram style loss than {other} on {wins} of {n} pairs")
    # 2. the α-sweep
    lines += ["", *sweep(sts, disc, contents, styles[:: args.sweep_every], args.size, args.docs)]
    # 3. the judge
    discs = {"(c)'s discriminator": str(ckpt["(c)"] / "discriminator.safetensors"), "shipped judge": "finetuned"}
    lines += [
        "",
        "The judge on the held-out styles (4 crops of 128 px per style at "
        f"{args.size} px; output crops from {len(contents)} contents stylised by (c)):",
        "",
        *judge_lines(discs, sts["(c)"], contents, styles, args.size),
    ]
    # 4. pictures
    _pictures(sts, args.docs / "finetune_grid.png")
    if (args.adv / "metrics.jsonl").is_file():
        curves(args.adv, args.docs / "finetune_curves.png")
    text = "\n".join(lines)
    print(text)
    (args.docs / "finetune_ablation.md").write_text(
        "# Issue 14's ablation (generated by benchmarks/ablation.py)\n\n" + text + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
