"""The stylisation pipeline: encoder → (region-matched) AdaIN → decoder.

``Stylizer.__call__``/``stylize`` reads as numbered steps; every check happens in
``check_inputs`` before any work is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from semstyle import functional as FN
from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.io.images import ImageInput, load_image, resize_longest, to_pil, to_tensor
from semstyle.io.labels import LabelMap
from semstyle.losses import GeneratorObjective, LossWeights
from semstyle.models import Decoder, VGGEncoder
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.fast import FastDecoder, FastEncoder
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.models.weights import fast_shape, load_into
from semstyle.pipelines.refine import RefineConfig, RefineReport, refine
from semstyle.pipelines.semantic import StyleEntry, fuse_regions, resolve_labels
from semstyle.pipelines.tiling import stylize_tiled, tile_plan
from semstyle.segmentation.auto import DEFAULT as DEFAULT_COSEG
from semstyle.segmentation.auto import FAST as FAST_COSEG
from semstyle.segmentation.auto import cosegment

log = logging.getLogger(__name__)

LabelInput = ImageInput | LabelMap
MIN_SIDE = 16  # images smaller than this (after resizing) are refused


@dataclass
class StylizeResult:
    """What ``Stylizer.stylize`` returns."""

    image: Image.Image  # the stylised image, same size as the (resized) content
    content_labels: np.ndarray | None = None  # (H, W) labels used for the content, if any
    style_labels: list[np.ndarray | None] = field(default_factory=list)  # per style image
    from_colors: bool = False  # labels are packed RGB colours (for colourising)
    matches: dict[int, object] = field(default_factory=dict)  # content label → style label/"global"/"keep"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    refine: RefineReport | None = None  # per-round discriminator scores when refinement ran


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """True when the hardware runs bf16 convolutions natively (AVX512-BF16/AMX, or CUDA)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pad_to_multiple(x: torch.Tensor, m: int = 8) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad (N, C, H, W) on the bottom/right to multiples of ``m``; returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class Stylizer:
    """Arbitrary (and semantic) style transfer with the pretrained VGG19 encoder and decoder.

    Example:
        >>> from semstyle import Stylizer
        >>> from PIL import Image
        >>> st = Stylizer(size=64, style_size=64)
        >>> out = st.stylize(Image.new("RGB", (80, 60), "white"), Image.new("RGB", (64, 64), "blue"))
        >>> out.image.size
        (64, 48)
    """

    def __init__(self, config: StylizeConfig | None = None, **overrides: object) -> None:
        self.config = (config or StylizeConfig()).updated(**overrides)
        self.device = pick_device(self.config.device)
        prec = self.config.precision
        self.bf16 = prec == "bf16" or (prec == "auto" and native_bf16(self.device))
        fast = self.config.model == "fast"
        shape = fast_shape(self.config.encoder) if fast else None  # width etc. as trained
        if fast:
            log.warning("the fast model is experimental: ~14x faster than VGG19 but weaker in style "
                        "(docs/FAST_MODEL.md)")
        self.encoder: nn.Module = FastEncoder(shape) if fast else VGGEncoder()
        self.decoder: nn.Module = FastDecoder(shape) if fast else Decoder()
        load_into(self.encoder, self.config.encoder, "fast_encoder" if fast else "encoder")
        load_into(self.decoder, self.config.decoder, "fast_decoder" if fast else "decoder")
        # the co-segmentation's features: the fast model has no relu5_1, so it clusters relu3_1 + relu4_1
        self.coseg_options = FAST_COSEG if fast else DEFAULT_COSEG
        self.channels = shape.channels()["relu4_1"] if shape else 512  # relu4_1 channels: AdaIN works there
        for net in (self.encoder, self.decoder):
            net.eval().requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        # torch.compile (inductor) fuses convolutions with their activations and padding; docs/speed_study.md
        self._run_encoder = torch.compile(self.encoder) if self.config.compile else self.encoder
        self._run_decoder = torch.compile(self.decoder) if self.config.compile else self.decoder
        self._styles: OrderedDict[tuple, StyleEntry] = OrderedDict()
        self._disc: MultiScaleDiscriminator | None = None

    # ------------------------------------------------------------------ networks
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode(self, img: torch.Tensor, taps: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) in [0, 1], H and W multiples of 8 → fp32 features per tap."""
        x = img.to(self.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            feats = self._run_encoder(x, taps)
        return {k: v.float() for k, v in feats.items()}

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            out = self._run_decoder(feat.contiguous(memory_format=torch.channels_last))
        return out.float()

    @staticmethod
    def _fast_colours(
        out: torch.Tensor, content: Image.Image, entries: Sequence[StyleEntry], weights: Sequence[float], alpha: float
    ) -> torch.Tensor:
        """The fast model's colour correction: the distilled student, trained on a CPU budget, renders the style's
        colours only in part (docs/FAST_MODEL.md: it lowers the Gram loss ~20 %), so the output's RGB channel means
        and stds are set to the style's (blended by weight, then by α with the content's)."""
        rgb = [FN.mean_std(to_tensor(e.image)) for e in entries]
        s_mean, s_std = FN.blend_stats([m for m, _ in rgb], [s for _, s in rgb], list(weights))
        c_mean, c_std = FN.mean_std(to_tensor(content))
        return FN.match_rgb_stats(out, alpha * s_mean + (1 - alpha) * c_mean, alpha * s_std + (1 - alpha) * c_std)

    def cosegment(self, content: Image.Image, styles: Sequence[Image.Image]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Automatic joint labels of ``content`` and ``styles`` with this model's features (see segmentation.auto)."""
        cfg = self.config
        return cosegment(self.encode, content, styles, cfg.regions, cfg.seed, self.coseg_options)

    # ------------------------------------------------------------------ styles
    def encode_style(self, style: ImageInput) -> StyleEntry:
        """Load, resize and encode a style image once; later calls with the same image reuse it."""
        img = resize_longest(load_image(style, self.config.max_pixels, "style image"), self.config.style_size)
        if min(img.size) < MIN_SIDE:
            raise InputError(
                f"style image is {img.size[0]}x{img.size[1]} after resizing; it needs at least {MIN_SIDE} px a side"
            )
        key = (hashlib.sha1(img.tobytes()).hexdigest(), img.size)
        if key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        x, (h, w) = pad_to_multiple(to_tensor(img))
        with torch.inference_mode():
            feat = self.encode(x)["relu4_1"]  # (1, 512, ceil(h/8), ceil(w/8))
            mean, std = FN.mean_std(feat)
        entry = StyleEntry(img, feat, mean, std)
        if self.config.style_cache > 0:
            self._styles[key] = entry
            while len(self._styles) > self.config.style_cache:
                self._styles.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ checks
    def check_inputs(
        self,
        styles: Sequence[ImageInput],
        alpha: float,
        style_weights: Sequence[float] | None,
        mask: LabelInput | None,
        region_styles: Mapping[int, int] | None,
        semantic: str,
        content_labels: LabelInput | None,
        style_labels: Sequence[LabelInput | None] | None,
        refine: int | None = None,
    ) -> None:
        if not styles:
            raise InputError("at least one style image is needed")
        if self.config.model == "fast" and (self.config.refine if refine is None else refine):
            raise InputError("refinement needs the VGG19 model's discriminator; set refine to 0 or use model vgg19")
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {alpha}")
        if style_weights is not None:
            if len(style_weights) != len(styles):
                raise InputError(
                    f"got {len(style_weights)} style weights for {len(styles)} styles; give one weight per style"
                )
            if any(w < 0 for w in style_weights) or sum(style_weights) <= 0:
                raise InputError(f"style weights must be non-negative with a positive sum, got {list(style_weights)}")
        if region_styles is not None and mask is None and semantic == "none":
            raise InputError("region_styles needs a mask (or a semantic mode) that defines the regions")
        if region_styles:
            bad = [s for s in region_styles.values() if not 0 <= s < len(styles)]
            if bad:
                raise InputError(f"region_styles points at style {bad[0]}, but only {len(styles)} styles were given")
        if mask is not None and semantic != "none":
            raise InputError("give either a mask (one style per region) or a semantic mode, not both")
        if semantic == "labels":
            named = set((region_styles or {}).values())  # styles named for a label may come without a map
            given = list(style_labels or [])
            if (
                content_labels is None
                or any(i not in named for i in range(len(given), len(styles)))
                or any(s is None and i not in named for i, s in enumerate(given))
            ):
                raise InputError("--semantic labels needs --content-labels and --style-labels (one per style)")
            if len(given) > len(styles):
                raise InputError(f"got {len(given)} style label maps for {len(styles)} styles")

    # ------------------------------------------------------------------ main entry
    def stylize(
        self,
        content: ImageInput,
        style: ImageInput | Sequence[ImageInput],
        *,
        alpha: float | None = None,
        style_weights: Sequence[float] | None = None,
        preserve_color: bool | None = None,
        mask: LabelInput | None = None,
        region_styles: Mapping[int, int] | None = None,
        semantic: str | None = None,
        content_labels: LabelInput | None = None,
        style_labels: Sequence[LabelInput | None] | LabelInput | None = None,
        refine: int | None = None,
        refine_target: float | None = None,
    ) -> StylizeResult:
        """Stylise ``content`` with one or several ``style`` images.

        Args:
            content: path, PIL image, numpy array or tensor.
            style: one style or a list of styles (interpolated with ``style_weights``).
            alpha: content/style trade-off in [0, 1] (default from the config).
            style_weights: one non-negative weight per style (default: equal).
            preserve_color: keep the content's colours (luminance-only transfer).
            mask: a label map over the content; each region takes the style given by
                ``region_styles`` (label → style index); by default the sorted labels take the
                styles in order.
            semantic: "none", "auto", "labels" or "segformer" (default from the config).
            content_labels, style_labels: label maps for ``semantic="labels"`` (one per style;
                a style named in ``region_styles`` may have None and gives its whole-image statistics).
            region_styles: with a mask or a semantic mode, label → style index: that label takes
                only that style (``--style LABEL=PATH``); other labels blend the styles by weight.
            refine: rounds of discriminator-guided refinement (0 = off), ``refine_target`` the
                score at which it stops.
        """
        cfg = self.config
        alpha = cfg.alpha if alpha is None else float(alpha)
        preserve_color = cfg.preserve_color if preserve_color is None else preserve_color
        semantic = cfg.semantic if semantic is None else semantic
        refine_rounds = cfg.refine if refine is None else int(refine)
        refine_target = cfg.refine_target if refine_target is None else float(refine_target)
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if style_labels is not None and not isinstance(style_labels, (list, tuple)):
            style_labels = [style_labels]
        weights = (
            list(style_weights)
            if style_weights is not None
            else (list(cfg.style_weights) if cfg.style_weights and len(cfg.style_weights) == len(styles) else None)
        )
        self.check_inputs(
            styles, alpha, weights, mask, region_styles, semantic, content_labels, style_labels, refine_rounds
        )
        weights = weights or [1.0] * len(styles)
        t: dict[str, float] = {}
        t0 = time.perf_counter()

        # 1. load and resize the content; encode (or reuse) every style
        content_img = resize_longest(load_image(content, cfg.max_pixels, "content image"), cfg.size)
        if min(content_img.size) < MIN_SIDE:
            raise InputError(
                f"content image is {content_img.size[0]}x{content_img.size[1]} after resizing; "
                f"it needs at least {MIN_SIDE} px a side"
            )
        entries = [self.encode_style(s) for s in styles]
        t["load+style"] = time.perf_counter() - t0
        plan = tile_plan(cfg.tile, content_img.size, refine_rounds)
        if plan is not None:  # large content: tiled encoder/decoder with global statistics (bounded memory)
            return stylize_tiled(
                self,
                plan,
                content_img,
                entries,
                weights,
                alpha,
                preserve_color,
                semantic,
                mask,
                region_styles,
                content_labels,
                style_labels,
                t,
            )

        with torch.inference_mode():
            # 2. encode the content (padded to a multiple of 8 by reflection)
            x, (h, w) = pad_to_multiple(to_tensor(content_img))
            c_feat = self.encode(x)["relu4_1"]  # (1, 512, H/8, W/8)
            t["encode"] = time.perf_counter() - t0 - sum(t.values())

            # 3. regions: which labels cover the content and each style
            labels = resolve_labels(
                self, semantic, content_img, entries, mask, region_styles, content_labels, style_labels, c_feat
            )
            t["segment"] = time.perf_counter() - t0 - sum(t.values())

            # 4. fuse: AdaIN (global, interpolated, per-region or region-matched), then mix by alpha
            if labels is None:
                mean, std = FN.blend_stats([e.mean for e in entries], [e.std for e in entries], weights)
                target = FN.adain_from_stats(c_feat, mean, std)
                matches: dict[int, object] = {}
            else:
                target, matches = fuse_regions(c_feat, entries, weights, labels, cfg, (h, w))
            fused = FN.mix(c_feat, target, alpha)

            # 5. decode and crop the padding
            if not refine_rounds:
                out = self.decode(fused)[..., :h, :w].clamp(0, 1).cpu()
                if self.config.model == "fast" and not preserve_color:
                    out = self._fast_colours(out, content_img, entries, weights, alpha)
            t["decode"] = time.perf_counter() - t0 - sum(t.values())

        # 6. optionally refine: the discriminator judges, the fusion is adjusted, decoded again
        report = None
        if refine_rounds:
            main = max(range(len(entries)), key=lambda i: weights[i])
            out, report = self._refine(
                fused.clone(), target.clone(), entries[main], (h, w), refine_rounds, refine_target
            )
            out = out.cpu()
            t["refine"] = time.perf_counter() - t0 - sum(t.values())

        # 7. optionally restore the content's colours
        if preserve_color:
            out = FN.keep_luminance(out, to_tensor(content_img))

        return StylizeResult(
            image=to_pil(out),
            content_labels=None if labels is None else labels.content,
            style_labels=[] if labels is None else labels.styles,
            from_colors=bool(labels and labels.from_colors),
            matches=matches,
            timings=t,
            refine=report,
        )

    __call__ = stylize

    # ------------------------------------------------------------------ refinement
    def discriminator(self) -> MultiScaleDiscriminator:
        """The style-conditional discriminator (loaded on first use)."""
        if self._disc is None:
            disc = MultiScaleDiscriminator()
            load_into(disc, self.config.discriminator, "discriminator")
            self._disc = disc.eval().requires_grad_(False).to(self.device)
        return self._disc

    def _refine(
        self,
        fused: torch.Tensor,
        anchor: torch.Tensor,
        style: StyleEntry,
        hw: tuple[int, int],
        rounds: int,
        target: float,
    ) -> tuple[torch.Tensor, RefineReport]:
        disc = self.discriminator()
        objective = GeneratorObjective(self.encoder, LossWeights())
        x, _ = pad_to_multiple(to_tensor(style.image))
        with torch.no_grad():
            s_feats = {k: v.float() for k, v in self.encoder(x.to(self.device), STYLE_LAYERS).items()}
            s_vec = style_vector(s_feats)
        cfg = RefineConfig(rounds=rounds, target=target)
        return refine(fused, anchor, self.decoder, objective, disc, s_feats, s_vec, hw, cfg)
