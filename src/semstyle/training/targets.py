"""VGG encodings computed once per training image and cached: the style targets of the trainer's ``whole``
mode, the style feature maps a feature-space discriminator judges as real, and the content features.

Inference matches the whole style image at ``--style-size`` (512 by default), but a 128 px training crop
of a 768 px painting is a local swatch. With ``style_targets: whole`` the style terms (Gram, mean/std
at relu1_1…relu4_1), the AdaIN statistics at relu4_1 and the discriminator's condition come from the
whole style image at ``style_size``, encoded once per image and cached; the generated crops are scored
against them, and the discriminator still sees real crops of that image (pixels, or windows of the cached
feature maps for a feature-space discriminator).

``ContentFeatureBank`` does the same for the content side: each photo (and its mirror image) is encoded whole
once, and a training crop's relu4_1 features are a window of that map, as at inference, where the decoder
sees the features of the whole photo; it saves the content's VGG pass on every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from semstyle import functional as FN
from semstyle.io.images import resize_longest, to_tensor
from semstyle.losses import StyleTargets
from semstyle.models.vgg import STYLE_LAYERS

STRIDES = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8}  # pixels per feature cell


class WholeStyleTargets:
    """``get(indices)`` → the batch's ``StyleTargets``, each image's computed on first use and kept."""

    def __init__(self, images: Sequence[np.ndarray], encoder: nn.Module, size: int, device: torch.device,
                 layers: Sequence[str] = STYLE_LAYERS, map_taps: Sequence[str] = ()) -> None:
        self.images, self.encoder, self.size, self.device = images, encoder, size, device
        self.layers = tuple(dict.fromkeys((*layers, *STYLE_LAYERS, "relu4_1", *map_taps)))
        self.map_taps = tuple(map_taps)  # taps whose whole feature maps are kept (fp16) for ``windows``
        self._cache: dict[int, StyleTargets] = {}
        self._maps: dict[int, dict[str, torch.Tensor]] = {}

    def targets_of(self, i: int) -> StyleTargets:
        """Image ``i``'s targets (computed freshly; ``get`` caches them)."""
        return self._encode(i)[0]

    def _encode(self, i: int) -> tuple[StyleTargets, dict[str, torch.Tensor]]:
        img = resize_longest(Image.fromarray(self.images[i]), self.size)
        x, _ = FN.pad_to_multiple(to_tensor(img))
        with torch.no_grad():
            feats = {k: v.float() for k, v in self.encoder(x.to(self.device), self.layers).items()}
        return StyleTargets.from_feats(feats, self.layers), {k: feats[k].half() for k in self.map_taps}

    def _fill(self, i: int) -> None:
        if i not in self._cache:
            self._cache[i], self._maps[i] = self._encode(i)

    def get(self, indices: Sequence[int]) -> StyleTargets:
        for i in indices:
            self._fill(i)
        return StyleTargets.cat([self._cache[i] for i in indices])

    def windows(self, g: torch.Generator, indices: Sequence[int], size: int) -> dict[str, torch.Tensor]:
        """Random windows of the cached feature maps covering ``size`` × ``size`` pixels of each style image at
        ``style_size`` (one position per sample, on the 8 px grid, shared by the taps):
        {tap: (N, C, size/stride, size/stride)}, fp32."""
        out: dict[str, list[torch.Tensor]] = {t: [] for t in self.map_taps}
        for i in indices:
            self._fill(i)
            maps = self._maps[i]
            h, w = (int(v) * STRIDES[self.map_taps[0]] for v in maps[self.map_taps[0]].shape[-2:])  # padded pixels
            y = 8 * int(torch.randint((h - size) // 8 + 1, (1,), generator=g)) if h > size else 0
            x = 8 * int(torch.randint((w - size) // 8 + 1, (1,), generator=g)) if w > size else 0
            for t in self.map_taps:
                st, m = STRIDES[t], maps[t]
                if h < size or w < size:  # a style image thinner than a crop: its map stretched to cover it
                    m = F.interpolate(m.float(), size=(max(h, size) // st, max(w, size) // st), mode="bilinear",
                                      align_corners=False)
                out[t].append(m[..., y // st : (y + size) // st, x // st : (x + size) // st])
        return {t: torch.cat([x.float() for x in v]) for t, v in out.items()}

    def __len__(self) -> int:
        return len(self._cache)


class ContentFeatureBank:
    """relu4_1 features of whole content photos, encoded once per (photo, mirrored) on first use and kept in
    fp16; ``crops`` draws training crops as windows of them (and the matching pixel crops, for logging)."""

    def __init__(self, images: Sequence[np.ndarray], encoder: nn.Module, device: torch.device) -> None:
        self.images, self.encoder, self.device = images, encoder, device
        self._cache: dict[tuple[int, bool], torch.Tensor] = {}

    def _feats(self, i: int, flip: bool) -> torch.Tensor:
        key = (i, flip)
        if key not in self._cache:
            x, _ = FN.pad_to_multiple(self._image(i, flip))
            with torch.no_grad():
                self._cache[key] = self.encoder(x.to(self.device), ("relu4_1",))["relu4_1"].half()
        return self._cache[key]

    def _image(self, i: int, flip: bool) -> torch.Tensor:
        x = torch.from_numpy(self.images[i].copy()).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
        return x.flip(-1) if flip else x

    def fill(self) -> None:
        """Encode every photo both ways round now (a long run reaches this state after a few hundred steps)."""
        for i in range(len(self.images)):
            for flip in (False, True):
                self._feats(i, flip)

    def crops(self, g: torch.Generator, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random crops on the 8 px grid with random mirroring: (relu4_1 (N, 512, size/8, size/8) fp32,
        pixels (N, 3, size, size)). Every photo must hold a crop (``ImageBank``'s ``min_side``)."""
        idx = torch.randint(len(self.images), (n,), generator=g).tolist()
        feats, pixels = [], []
        for i in idx:
            flip = bool(torch.rand((), generator=g) < 0.5)
            h, w = self.images[i].shape[:2]
            if min(h, w) < size:
                raise ValueError(f"content image {i} ({w}×{h}) is smaller than the crop ({size} px)")
            y = 8 * int(torch.randint((h - size) // 8 + 1, (1,), generator=g))
            x = 8 * int(torch.randint((w - size) // 8 + 1, (1,), generator=g))
            f = self._feats(i, flip)
            feats.append(f[..., y // 8 : (y + size) // 8, x // 8 : (x + size) // 8])
            pixels.append(self._image(i, flip)[..., y : y + size, x : x + size])
        return torch.cat([f.float() for f in feats]), torch.cat(pixels)

    def __len__(self) -> int:
        return len(self._cache)


__all__ = ["ContentFeatureBank", "WholeStyleTargets"]
