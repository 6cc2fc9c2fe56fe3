"""How the discriminator judges: real style crops vs noise vs other styles, under each style's condition.

    python benchmarks/judge_scores.py                         # the shipped discriminator
    python benchmarks/judge_scores.py old.safetensors finetuned  # several, one table row block each

For each bundled painting: four fixed 128 px crops of the painting resized to 512 (training's scale),
the condition = the crops' own VGG statistics; the mean score of the crops ("own"), of uniform noise
("noise") and of the other paintings' crops ("others", mean) under that condition. A judge must rank
own > others > noise (docs/TRAINING.md, the judge stage; tests/test_shipped_weights.py asserts it).
"""

from __future__ import annotations

import argparse

import torch

from semstyle import assets
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.models.weights import load_into
from semstyle.networks import load_encoder


def style_crops(side: int = 128, n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for p in assets.style_images():
        x = to_tensor(resize_longest(load_image(p), 512))
        h, w = x.shape[-2:]
        ys = torch.randint(0, h - side + 1, (n,), generator=g).tolist()
        xs = torch.randint(0, w - side + 1, (n,), generator=g).tolist()
        out[p.stem] = torch.cat([x[..., y : y + side, x0 : x0 + side] for y, x0 in zip(ys, xs)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="*", default=["finetuned"], help="discriminator weights: finetuned or a file")
    args = ap.parse_args()
    torch.set_num_threads(2)
    enc = load_encoder("pretrained", torch.device("cpu"))
    crops = style_crops()
    noise = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    print("| discriminator | style | own | noise | others |\n|---|---|---:|---:|---:|")
    with torch.no_grad():
        cond = {k: style_vector(enc(v, STYLE_LAYERS)) for k, v in crops.items()}
        for src in args.sources:
            disc = MultiScaleDiscriminator()
            load_into(disc, src, "discriminator")
            disc.eval()
            for name, vec in cond.items():
                own = float(disc.score(crops[name], vec).mean())
                nz = float(disc.score(noise, vec).mean())
                others = [float(disc.score(crops[o], vec).mean()) for o in crops if o != name]
                print(f"| {src} | {name} | {own:.3f} | {nz:.3f} | {sum(others) / len(others):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
