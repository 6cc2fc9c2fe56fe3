"""Score decoders on a small held-out set, relative to the pretrained one: the trials' yardstick (issue 14).

    python benchmarks/score_decoders.py runs/t1/checkpoints/latest/decoder_ema.safetensors runs/t2/...
    python benchmarks/score_decoders.py finetuned --contents 6 --size 256

BSDS500 test contents (the first ``--contents``) × the held-out styles (every ``--every``-th of
configs/heldout_styles.txt), stylised at ``--size`` with each decoder (``pretrained`` is always the
first, the reference); per decoder the median over pairs of Gram style, mean/std style, content loss
to the AdaIN target, checkerboard and high-frequency energy (benchmarks/eval_finetune.py's metrics),
and each median's change against the pretrained decoder's, in per cent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from semstyle import Stylizer
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.weights import load_into

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_finetune import DATA, evaluate, heldout  # noqa: E402

KEYS = ("gram_style", "meanstd_style", "content_to_target", "checkerboard", "high_freq")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("decoders", nargs="*", help="decoder weights: finetuned, a .safetensors/.pth file")
    ap.add_argument("--contents", type=int, default=4)
    ap.add_argument("--every", type=int, default=4, help="take every N-th held-out style (27 / 4 → 7)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split", choices=("heldout", "train"), default="heldout",
                    help="train: BSDS500 train contents × training styles instead (a diagnostic: does a fine-tune "
                         "that loses on held-out pairs win on what it trained on?)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bsds = {"heldout": "test", "train": "train"}[args.split]
    contents = sorted((DATA / "content" / "BSDS500" / bsds).glob("*.jpg"))[: args.contents]
    styles = heldout()[:: args.every]
    if args.split == "train":
        held = set(heldout())
        styles = [p for p in sorted((DATA / "style").rglob("*.jpg")) if p not in held][:: 4 * args.every][: len(styles)]
    disc = MultiScaleDiscriminator()
    load_into(disc, "finetuned", "discriminator")
    disc.eval()
    medians: dict[str, dict[str, float]] = {}
    for src in ["pretrained", *args.decoders]:
        st = Stylizer(
            NetworkConfig(device="cpu", precision="fp32", decoder=src),
            defaults=StylizeOptions(size=args.size, style_size=args.size),
        )
        rows = [evaluate(st, disc, c, s, args.size)[0] for c in contents for s in styles]
        medians[src] = {k: statistics.median(r[k] for r in rows) for k in KEYS}
    ref = medians["pretrained"]
    print(
        f"{len(contents)} contents × {len(styles)} {args.split} styles at {args.size} px; "
        "median (change vs pretrained)\n"
    )
    print("| decoder | " + " | ".join(KEYS) + " |\n|---|" + "---:|" * len(KEYS))
    for src, m in medians.items():
        cells = [
            f"{m[k]:.4g}" + ("" if src == "pretrained" else f" ({100 * (m[k] / ref[k] - 1):+.1f} %)") for k in KEYS
        ]
        print(f"| {src} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
