"""Colour steps after decoding, on the (H, W, 3) uint8 output in strips (bounded memory at any size).

Both steps need whole-image statistics, so each makes two passes over the rows: sums first, then
the affine map of ``functional`` applied strip by strip. The tiled and the untiled run share them.

- ``match_rgb``: give the output per-channel RGB means/stds (the fast model's colour correction);
- ``keep_luminance``: colour preservation, the output's luminance matched to the content's, with
  the content's chrominance (Gatys et al. 2016), for uint8 arrays of any size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from semstyle import functional as FN

ROWS = 256  # rows per strip


def _strips(arr: np.ndarray, rows: int = ROWS) -> Iterator[tuple[slice, torch.Tensor]]:
    """(row slice, (1, 3, r, W) float32 tensor in [0, 1]) for each strip of an (H, W, 3) uint8 array."""
    for r in range(0, arr.shape[0], rows):
        sl = slice(r, r + rows)
        yield sl, torch.from_numpy(np.array(arr[sl])).permute(2, 0, 1)[None].float().div_(255)


def _store(out: np.ndarray, sl: slice, strip: torch.Tensor) -> None:
    out[sl] = strip.clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy()


def channel_stats(
    arr: np.ndarray, to_channels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-image per-channel mean and std (1, K, 1, 1) of a uint8 (H, W, 3) array in [0, 1] units, as
    ``functional.mean_std``; ``to_channels`` (K, 3) maps RGB to other channels first (e.g. YUV)."""
    n = 0
    s = ss = None
    for _, strip in _strips(arr):
        x = strip.double()
        if to_channels is not None:
            x = torch.einsum("ij,njhw->nihw", to_channels.double(), x)
        flat = x.flatten(2)[0]  # (K, P)
        n += flat.shape[1]
        s = flat.sum(1) if s is None else s + flat.sum(1)
        ss = (flat * flat).sum(1) if ss is None else ss + (flat * flat).sum(1)
    assert s is not None and ss is not None
    total = torch.tensor([[float(n)]], dtype=torch.float64)  # (1, 1)
    mean, std = FN.stats_from_moments(total[None], s[None, None], ss[None, None], unbiased=True)  # (1, 1, K, 1, 1)
    return mean[:, 0], std[:, 0]


def match_rgb(out: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> None:
    """In place: the output's RGB channel means/stds set to ``mean``/``std`` (1, 3, 1, 1), clamped."""
    o_mean, o_std = channel_stats(out)
    for sl, strip in _strips(out):
        _store(out, sl, FN.renormalize(strip, o_mean, o_std, mean.float(), std.float()))


def keep_luminance(out: np.ndarray, content: np.ndarray) -> None:
    """In place: colour preservation by luminance-only transfer (Gatys et al. 2016) — the output's luminance (Y),
    matched in mean/std to the content's, with the content's chrominance (U, V); uint8 arrays of any size."""
    if out.shape != content.shape:
        raise ValueError(f"output {out.shape} and content {content.shape} differ")
    luma = torch.tensor([FN.LUMA])
    y_mean, y_std = channel_stats(out, luma)
    c_mean, c_std = channel_stats(content, luma)
    for (sl, strip), (_, c_strip) in zip(_strips(out), _strips(content)):
        y = FN.renormalize(FN.rgb_to_yuv(strip)[:, :1], y_mean, y_std, c_mean, c_std)
        _store(out, sl, FN.yuv_to_rgb(torch.cat([y, FN.rgb_to_yuv(c_strip)[:, 1:]], dim=1)))


__all__ = ["channel_stats", "keep_luminance", "match_rgb"]
