"""Random small motions for the temporal regularisation (issue 30): the trainer moves each content crop a little
(an affine warp plus a smooth random flow), adds noise, and asks that the decoder's output for the moved crop equal
its moved output (``functional.temporal_loss``). No video is needed: the motions stand in for a camera and for
objects moving between frames (ReReVST's compound regularisation, Wang et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from semstyle import functional as FN


@dataclass(frozen=True)
class Motion:
    """How far the random motions go (each drawn uniformly in ±the value, per sample)."""

    shift: float = 4.0  # translation (px)
    rotate: float = 1.0  # rotation (degrees)
    zoom: float = 0.02  # scale change (share)
    flow: float = 1.0  # largest displacement of the smooth random flow on top (px)
    flow_cells: int = 4  # the random flow is drawn on a grid of this many cells a side, then smoothly upsampled
    noise: float = 0.02  # std of the Gaussian noise added to the moved crop (images in [0, 1])
    margin: float = 0.05  # the loss ignores pixels whose source lies within this share of the half side of the border

    def check(self) -> None:
        for name in ("shift", "rotate", "zoom", "flow", "noise"):
            if not 0.0 <= getattr(self, name) <= 32.0:
                raise ValueError(f"motion {name} must be in [0, 32], got {getattr(self, name)}")
        if not 0.0 <= self.zoom < 0.5 or not 0.0 <= self.margin < 0.5 or not 1 <= self.flow_cells <= 64:
            raise ValueError(f"motion zoom and margin must be in [0, 0.5) and flow_cells in [1, 64], got "
                             f"{self.zoom}, {self.margin}, {self.flow_cells}")


def random_grids(g: torch.Generator, n: int, h: int, w: int, motion: Motion) -> torch.Tensor:
    """(n, h, w, 2) sampling grids (``F.grid_sample``'s, align_corners False) of random small motions: a random
    affine map (shift, rotation, zoom about the centre) plus a smooth random flow; a pure function of ``g``."""
    u = torch.rand(n, 6, generator=g) * 2 - 1  # (n, 6) in [-1, 1]
    ang = torch.deg2rad(u[:, 0] * motion.rotate)
    scale = 1.0 + u[:, 1] * motion.zoom
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin * h / w, sin * w / h, cos
    theta[:, 0, 2] = u[:, 2] * motion.shift * 2 / w  # px → normalised units
    theta[:, 1, 2] = u[:, 3] * motion.shift * 2 / h
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)  # (n, h, w, 2)
    if motion.flow > 0:
        cells = torch.rand(n, 2, motion.flow_cells + 1, motion.flow_cells + 1, generator=g) * 2 - 1
        flow = F.interpolate(cells, size=(h, w), mode="bicubic", align_corners=True).clamp(-1, 1)  # (n, 2, h, w)
        scale_px = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1) * motion.flow
        grid = grid + (flow * scale_px).permute(0, 2, 3, 1)
    return grid


def identity_grid(n: int, h: int, w: int) -> torch.Tensor:
    """(n, h, w, 2) the grid that samples every pixel at its own centre (no motion)."""
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(n, 2, 3)
    return F.affine_grid(theta, [n, 1, h, w], align_corners=False)


def moved(content: torch.Tensor, grid: torch.Tensor, g: torch.Generator, noise: float) -> torch.Tensor:
    """(N, 3, H, W) crops in [0, 1] moved by ``grid``, with Gaussian noise of std ``noise`` (seeded by ``g``)."""
    out = FN.warp_by_grid(content, grid.to(content.device))
    if noise > 0:
        out = out + noise * torch.randn(out.shape, generator=g).to(out)
    return out.clamp(0.0, 1.0)


__all__ = ["Motion", "identity_grid", "moved", "random_grids"]
