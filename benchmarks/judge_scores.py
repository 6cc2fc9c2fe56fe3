"""How the discriminator judges: real style crops vs noise vs other styles, under each style's condition.

    python benchmarks/judge_scores.py                            # the shipped discriminator
    python benchmarks/judge_scores.py old.safetensors finetuned  # several, one block of rows each

For each bundled painting: four fixed 128 px crops of the painting resized to 512 (training's scale),
the condition = the crops' own VGG statistics; the mean score of the crops ("own"), of uniform noise
("noise") and of the other paintings' crops ("others", mean) under that condition
(``semstyle.evaluation.judge``). A judge must rank own above others and noise (docs/TRAINING.md, the
judge stage; tests/test_shipped_weights.py asserts it).
"""

from __future__ import annotations

import argparse

import torch

from semstyle import assets
from semstyle.evaluation.judge import judge, style_crops
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.weights import load_into
from semstyle.networks import load_encoder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="*", default=["finetuned"], help="discriminator weights: finetuned or a file")
    args = ap.parse_args()
    torch.set_num_threads(2)
    enc = load_encoder("pretrained", torch.device("cpu"))
    crops = style_crops(assets.style_images())
    print("| discriminator | style | own | noise | others |\n|---|---|---:|---:|---:|")
    for src in args.sources:
        disc = MultiScaleDiscriminator()
        load_into(disc, src, "discriminator")
        for r in judge(disc.eval(), enc, crops):
            print(f"| {src} | {r.style} | {r.own:.3f} | {r.noise:.3f} | {r.others:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
