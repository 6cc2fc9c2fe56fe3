"""Style targets computed once per style image, the way inference sees it (the trainer's ``whole`` mode).

Inference matches the whole style image at ``--style-size`` (512 by default), but a 128 px training crop
of a 768 px painting is a local swatch. With ``style_targets: whole`` the style terms (Gram, mean/std
at relu1_1…relu4_1), the AdaIN statistics at relu4_1 and the discriminator's condition come from the
whole style image at ``style_size``, encoded once per image and cached; the generated crops are scored
against them, and the discriminator still sees real crops of that image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from semstyle import functional as FN
from semstyle.io.images import resize_longest, to_tensor
from semstyle.losses import StyleTargets
from semstyle.models.vgg import STYLE_LAYERS


class WholeStyleTargets:
    """``get(indices)`` → the batch's ``StyleTargets``, each image's computed on first use and kept."""

    def __init__(self, images: Sequence[np.ndarray], encoder: nn.Module, size: int, device: torch.device,
                 layers: Sequence[str] = STYLE_LAYERS) -> None:
        self.images, self.encoder, self.size, self.device = images, encoder, size, device
        self.layers = tuple(dict.fromkeys((*layers, *STYLE_LAYERS, "relu4_1")))
        self._cache: dict[int, StyleTargets] = {}

    def targets_of(self, i: int) -> StyleTargets:
        """Image ``i``'s targets (computed freshly; ``get`` caches them)."""
        img = resize_longest(Image.fromarray(self.images[i]), self.size)
        x, _ = FN.pad_to_multiple(to_tensor(img))
        with torch.no_grad():
            feats = {k: v.float() for k, v in self.encoder(x.to(self.device), self.layers).items()}
        return StyleTargets.from_feats(feats, self.layers)

    def get(self, indices: Sequence[int]) -> StyleTargets:
        for i in indices:
            if i not in self._cache:
                self._cache[i] = self.targets_of(i)
        return StyleTargets.cat([self._cache[i] for i in indices])

    def __len__(self) -> int:
        return len(self._cache)


__all__ = ["WholeStyleTargets"]
