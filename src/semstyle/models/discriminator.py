"""A multi-scale, style-conditional PatchGAN discriminator trained with the LSGAN loss.

Design (see docs/TRAINING.md for the reasoning):

- **Multi-scale** as in pix2pixHD: the same PatchGAN architecture runs on the image at full
  resolution and on 2×, 4×… average-pooled copies, so one scale judges fine texture (brush
  strokes) and another the larger layout of colour and shape.
- **Conditional by projection** (Miyato & Koyama 2018): semstyle is arbitrary-style, so
  "looks like a painting" is not enough; the question is "carries *this* style". The style
  image is summarised by its VGG channel means and stds at relu1_1…relu4_1 (1,920 numbers —
  exactly the statistics AdaIN transfers), embedded by a linear layer per scale, and the
  patch score is ``w·h + <embed(style), h>`` for each patch feature ``h``. Projection is
  cheaper and more stable than concatenating the condition to the input, and it asks the
  network to learn the *agreement* between patches and the style.
- **Spectral normalisation** on every conv/linear layer: it bounds each layer's Lipschitz
  constant, which keeps LSGAN's gradients well scaled with small batches (no batch-norm
  statistics mixing real and fake batches) and costs one power iteration per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

STYLE_DIM = 2 * (64 + 128 + 256 + 512)  # means and stds of relu1_1…relu4_1


@dataclass(frozen=True)
class DiscriminatorConfig:
    num_scales: int = 2  # image pyramids judged: full, 1/2, (1/4…)
    base_channels: int = 64  # channels of the first PatchGAN conv
    n_layers: int = 3  # stride-2 convs per scale (receptive field ≈ 70 px at n_layers=3)
    style_dim: int = STYLE_DIM  # length of the style condition vector


class PatchDiscriminator(nn.Module):
    """One scale: strided 4×4 convs → per-patch features h (N, F, h, w) → projection score."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        ch = cfg.base_channels
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(3, ch, 4, 2, 1)), nn.LeakyReLU(0.2)]
        for _ in range(1, cfg.n_layers):
            nxt = min(ch * 2, 512)
            layers += [spectral_norm(nn.Conv2d(ch, nxt, 4, 2, 1)), nn.LeakyReLU(0.2)]
            ch = nxt
        nxt = min(ch * 2, 512)
        layers += [spectral_norm(nn.Conv2d(ch, nxt, 3, 1, 1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Conv2d(nxt, 1, 1))  # unconditional term w·h
        self.embed = spectral_norm(nn.Linear(cfg.style_dim, nxt))  # projection of the style condition

    def forward(self, img: torch.Tensor, style_vec: torch.Tensor) -> torch.Tensor:
        h = self.body(img * 2 - 1)  # (N, F, h, w)
        e = self.embed(style_vec)[:, :, None, None]  # (N, F, 1, 1)
        return self.out(h) + (h * e).sum(dim=1, keepdim=True) / h.shape[1] ** 0.5  # (N, 1, h, w)


class MultiScaleDiscriminator(nn.Module):
    """Patch scores at ``num_scales`` resolutions: a list of (N, 1, h_s, w_s) maps, finest first."""

    def __init__(self, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DiscriminatorConfig()
        self.scales = nn.ModuleList(PatchDiscriminator(self.cfg) for _ in range(self.cfg.num_scales))

    def forward(self, img: torch.Tensor, style_vec: torch.Tensor) -> list[torch.Tensor]:
        """img: (N, 3, H, W) in [0, 1]; style_vec: (N, style_dim) from ``style_vector``."""
        outs = []
        for i, d in enumerate(self.scales):
            if i:
                img = F.avg_pool2d(img, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(img, style_vec))
        return outs

    def score(self, img: torch.Tensor, style_vec: torch.Tensor) -> torch.Tensor:
        """Mean patch score per image (N,), averaged over scales; 1 ≈ "real, this style"."""
        return torch.stack([o.mean(dim=(1, 2, 3)) for o in self(img, style_vec)]).mean(0)


def style_vector(
    feats: dict[str, torch.Tensor], layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
) -> torch.Tensor:
    """(N, 1920) condition vector: per-layer log(1 + channel mean) and log channel std of VGG features."""
    parts = []
    for name in layers:
        f = feats[name].flatten(2)  # (N, C, HW), non-negative (post-ReLU)
        parts += [torch.log1p(f.mean(2)), torch.log(f.std(2) + 1e-5)]
    return torch.cat(parts, dim=1)
