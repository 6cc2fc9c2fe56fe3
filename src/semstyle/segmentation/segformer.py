"""A pretrained ADE20K SegFormer as an optional source of semantic labels (``pip install semstyle[segformer]``).

The model is loaded through ``transformers`` on first use: from the Hugging Face hub (downloaded
once, then read from the HF cache) or from a local folder written by ``save_pretrained``, named by
the ``model_id_or_path`` argument or the ``SEMSTYLE_SEGFORMER`` environment variable.

Both images are segmented by the same network, so its class ids are already shared labels: "sky"
in the content is "sky" in the style. With ``coarse=True`` the 150 ADE20K classes are folded into
a few broad groups (sky, building, vegetation, water, ground, person, mountain, other), so that
related classes — a skyscraper and a house, a tree and a palm — also match across images. The
group of a pixel is the one with the largest summed class probability, not the group of its
single most likely class.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle.errors import WeightsError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nvidia/segformer-b0-finetuned-ade-512-512"
ENV_VAR = "SEMSTYLE_SEGFORMER"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The 150 ADE20K (SceneParsing) classes in the order of the model's id2label.
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel",
    "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip

# Coarse groups: id → name, and which class names (first synonym, lower case) belong to each.
COARSE_NAMES: dict[int, str] = {
    0: "other", 1: "sky", 2: "building", 3: "vegetation", 4: "water", 5: "ground", 6: "person", 7: "mountain",
}  # fmt: skip
COARSE_MEMBERS: dict[int, frozenset[str]] = {
    1: frozenset({"sky"}),
    2: frozenset({"wall", "building", "ceiling", "house", "skyscraper", "hovel", "tower", "column", "bridge",
                  "grandstand", "booth", "awning", "canopy", "fence", "railing"}),
    3: frozenset({"tree", "grass", "plant", "flower", "palm"}),
    4: frozenset({"water", "sea", "river", "lake", "waterfall", "swimming pool", "fountain"}),
    5: frozenset({"floor", "road", "sidewalk", "earth", "field", "rug", "sand", "path", "stairs", "runway",
                  "stairway", "dirt track", "land", "step", "pier"}),
    6: frozenset({"person"}),
    7: frozenset({"mountain", "hill", "rock"}),
}  # fmt: skip


def _first_name(label: str) -> str:
    """'building;edifice' or 'building, edifice' → 'building'."""
    return label.replace(";", ",").split(",")[0].strip().lower()


def coarse_group(name: str) -> int:
    """The coarse group id of a class name (0, "other", when it belongs to no group)."""
    first = _first_name(name)
    return next((g for g, members in COARSE_MEMBERS.items() if first in members), 0)


def coarse_lut(id2label: Mapping[int, str]) -> np.ndarray:
    """(num_classes,) int64: class id → coarse group id, by class name."""
    lut = np.zeros(max(id2label) + 1, dtype=np.int64)
    for i, name in id2label.items():
        lut[int(i)] = coarse_group(name)
    return lut


ADE20K_COARSE: dict[int, int] = {i: coarse_group(n) for i, n in enumerate(ADE20K_CLASSES)}


def resolve_source(model_id_or_path: str | os.PathLike[str] | None = None) -> str:
    """The model to load: the argument, else ``$SEMSTYLE_SEGFORMER``, else the default hub id."""
    src = model_id_or_path if model_id_or_path is not None else os.environ.get(ENV_VAR) or DEFAULT_MODEL
    return os.fspath(src)


def _looks_local(src: str) -> bool:
    """A filesystem path rather than a hub id ("namespace/name")."""
    return (
        os.path.isabs(src) or src.startswith((".", "~")) or "\\" in src or src.count("/") > 1
        or Path(src).expanduser().exists()
    )


def load_model(src: str) -> Any:
    """Load a ``SegformerForSemanticSegmentation`` from a hub id or local folder, with one-line errors."""
    try:
        from transformers import SegformerForSemanticSegmentation
    except ImportError as e:
        raise WeightsError(
            f"the SegFormer segmenter needs the transformers package ({e}); "
            "install it with: pip install semstyle[segformer]"
        ) from e
    if _looks_local(src):
        folder = Path(src).expanduser()
        if not (folder / "config.json").is_file():
            raise WeightsError(
                f"no SegFormer model folder at {src} (it needs config.json and the weights, as written by "
                f"save_pretrained); fix {ENV_VAR} or the path, or unset it to download {DEFAULT_MODEL}"
            )
        src = str(folder)
    log.info("loading SegFormer %s", src)
    try:
        return SegformerForSemanticSegmentation.from_pretrained(src)
    except (OSError, ValueError) as e:
        reason = " ".join(str(e).split())[:200]
        raise WeightsError(
            f"could not download or load the SegFormer model {src!r} ({reason}); connect once to huggingface.co "
            f"so it is cached, or set {ENV_VAR} to a local model folder"
        ) from e


def inference_size(w: int, h: int, size: int, multiple: int = 32) -> tuple[int, int]:
    """(w, h) with the longest side near ``size``, aspect kept, both rounded to ``multiple``."""
    scale = size / max(w, h) if size > 0 else 1.0
    return tuple(max(multiple, round(v * scale / multiple) * multiple) for v in (w, h))  # type: ignore[return-value]


def upsample_argmax(scores: torch.Tensor, hw: tuple[int, int], budget: int = 1 << 25) -> torch.Tensor:
    """Argmax over channels of ``scores`` (C, h, w) upsampled bilinearly to ``hw``, in channel chunks.

    Bilinear interpolation is per channel, so a running maximum over chunks gives exactly
    ``interpolate(scores).argmax(0)`` (ties keep the lower index) without holding C full-size maps.
    """
    c = scores.shape[0]
    chunk = max(1, min(c, budget // max(1, hw[0] * hw[1])))
    best = idx = None
    for start in range(0, c, chunk):
        part = scores[None, start : start + chunk].float()
        up = F.interpolate(part, size=hw, mode="bilinear", align_corners=False)[0]
        val, arg = up.max(0)
        arg = arg + start
        if best is None:
            best, idx = val, arg
        else:
            assert idx is not None
            better = val > best
            best = torch.where(better, val, best)
            idx = torch.where(better, arg, idx)
    assert idx is not None  # c >= 1: at least one chunk ran
    return idx


class SegformerSegmenter:
    """An image → (H, W) int64 label map of ADE20K classes (or coarse groups) at the image's size.

    Args:
        model_id_or_path: hub id or local ``save_pretrained`` folder; default ``$SEMSTYLE_SEGFORMER``
            or ``nvidia/segformer-b0-finetuned-ade-512-512``.
        device: where the network runs.
        model: an already built ``SegformerForSemanticSegmentation`` (skips loading; used by tests).
        coarse: return coarse group ids (``COARSE_NAMES``) instead of class ids.
        size: longest side, in pixels, at which the network sees the image.
    """

    def __init__(
        self,
        model_id_or_path: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        model: Any | None = None,
        *,
        coarse: bool = False,
        size: int = 512,
    ) -> None:
        self.device = torch.device(device)
        self.source = "<given model>" if model is not None else resolve_source(model_id_or_path)
        net = model if model is not None else load_model(self.source)
        self.model = net.eval().requires_grad_(False).to(self.device)
        self.coarse = coarse
        self.size = size
        self.id2label = {int(k): str(v) for k, v in self.model.config.id2label.items()}
        self.num_classes = int(self.model.config.num_labels)
        lut = coarse_lut(self.id2label)[: self.num_classes]
        self._lut = torch.as_tensor(np.pad(lut, (0, self.num_classes - len(lut))), device=self.device)

    def names(self) -> dict[int, str]:
        """Label id → name for the ids this segmenter returns (coarse groups or the config's id2label)."""
        return dict(COARSE_NAMES) if self.coarse else dict(self.id2label)

    def _preprocess(self, img: Image.Image) -> torch.Tensor:
        rgb = img.convert("RGB")
        rgb = rgb.resize(inference_size(*rgb.size, self.size), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return ((x - mean) / std)[None].to(self.device)

    def scores(self, img: Image.Image) -> torch.Tensor:
        """(C, h, w) low-resolution scores: class logits, or log group probabilities when coarse."""
        with torch.inference_mode():
            logits = self.model(pixel_values=self._preprocess(img)).logits[0].float()  # (num_labels, h/4, w/4)
            if not self.coarse:
                return logits
            probs = logits.softmax(0)
            groups = torch.zeros(len(COARSE_NAMES), *probs.shape[1:], device=probs.device)
            groups.index_add_(0, self._lut, probs)
            return groups.clamp_min(1e-12).log()

    def __call__(self, img: Image.Image) -> np.ndarray:
        """(H, W) int64 labels of ``img``: scores upsampled bilinearly to the image's size, then argmax."""
        with torch.inference_mode():
            labels = upsample_argmax(self.scores(img), (img.height, img.width))
        return labels.cpu().numpy().astype(np.int64)


@functools.lru_cache(maxsize=2)
def _shared(source: str, device: str, coarse: bool) -> SegformerSegmenter:
    return SegformerSegmenter(source, device, coarse=coarse)


def shared_segmenter(device: str | torch.device = "cpu", coarse: bool = False) -> SegformerSegmenter:
    """One segmenter per (model, device, coarse) and process, loaded on first use."""
    return _shared(resolve_source(), str(torch.device(device)), coarse)


def clear_shared() -> None:
    """Forget the shared segmenters (frees their memory; the next call loads again)."""
    _shared.cache_clear()


__all__ = [
    "ADE20K_CLASSES",
    "ADE20K_COARSE",
    "COARSE_NAMES",
    "DEFAULT_MODEL",
    "SegformerSegmenter",
    "clear_shared",
    "coarse_group",
    "coarse_lut",
    "shared_segmenter",
]
