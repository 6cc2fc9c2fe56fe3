"""The stylisation pipeline: encoder → (region-matched) AdaIN → decoder, as numbered steps.

``Stylizer`` is built from a ``NetworkConfig`` (its networks) and default ``StylizeOptions``;
``Stylizer.stylize`` turns the call's explicit keyword options into one validated ``StylizeOptions``,
checks the request once (``check_request``), then runs the one execution path (``transfer.stylize_array``: a
normal image is one tile) and the colour steps (``postprocess``) — the same for every size.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from semstyle import functional as FN
from semstyle.config import (
    MIN_SIDE,
    OPTION_FIELDS,
    Fusion,
    NetworkConfig,
    Semantic,
    StylizeConfig,
    StylizeOptions,
    Unmatched,
    check_pair,
)
from semstyle.errors import InputError
from semstyle.io.images import ImageInput, load_image, resize_longest, to_tensor
from semstyle.losses import GeneratorObjective, LossWeights
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.style_model import StyleModel, is_style_model, load_style_model
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.networks import Networks
from semstyle.pipelines import postprocess
from semstyle.pipelines.refine import REGION_LOSS_WEIGHTS, RefineConfig, refine, region_style_targets
from semstyle.pipelines.requests import check_request, check_size
from semstyle.pipelines.semantic import cosegment_images, resolve_labels
from semstyle.pipelines.transfer import Carry, Fuse, TilePlan, fused_features, stylize_array, tile_plan
from semstyle.types import (
    Attention,
    Callback,
    Match,
    RefineReport,
    Regions,
    StyleStats,
    StylizeRequest,
    StylizeResult,
    Timings,
    as_request,
    report,
)

log = logging.getLogger(__name__)

PROXY_SIDE = 1024  # tiled semantic "auto"/"scribbles": find the regions on a copy this size, then upscale them


def _sized_style(style: ImageInput, opts: StylizeOptions) -> tuple[Image.Image, tuple[str, tuple[int, int]]]:
    """A style picture loaded, resized to ``opts.style_size`` and checked, and its style-cache key."""
    img = resize_longest(load_image(style, opts.max_pixels, "style image"), opts.style_size)
    check_size(img, "style image")
    return img, (hashlib.sha1(img.tobytes()).hexdigest(), img.size)


class Stylizer:
    """Arbitrary (and semantic) style transfer with the pretrained VGG19 encoder and decoder.

    Example:
        >>> from semstyle import Stylizer, StylizeOptions
        >>> from PIL import Image
        >>> st = Stylizer(defaults=StylizeOptions(size=64, style_size=64))
        >>> out = st.stylize(Image.new("RGB", (80, 60), "white"), Image.new("RGB", (64, 64), "blue"), alpha=0.8)
        >>> out.image.size
        (64, 48)
    """

    def __init__(self, config: NetworkConfig | None = None, *, defaults: StylizeOptions | None = None,
                 networks: Networks | None = None) -> None:
        if not isinstance(config, NetworkConfig | None) or not isinstance(defaults, StylizeOptions | None):
            raise TypeError("Stylizer(config: NetworkConfig, *, defaults: StylizeOptions); for a StylizeConfig "
                            "(both) use Stylizer.from_config(cfg)")
        self.config = config or NetworkConfig()  # the networks: fixed for this Stylizer's life
        self.defaults = defaults or StylizeOptions()  # each call's options unless it says otherwise
        try:
            check_pair(self.config, self.defaults)
        except ValueError as e:
            raise InputError(str(e)) from None
        self.networks = networks or Networks.from_config(self.config)  # handed in, or built from the config
        self._styles: OrderedDict[tuple[str, tuple[int, int]], StyleStats] = OrderedDict()
        self.style_model: StyleModel | None = None  # the style model whose networks these are (from_style_model)
        self._own: tuple[StyleModel, tuple[int, int], Image.Image, tuple[str, tuple[int, int]]] | None = None  # sized

    @classmethod
    def from_config(cls, cfg: StylizeConfig) -> Stylizer:
        """A Stylizer for a front end's settings: its networks and its default options."""
        return cls(cfg.networks, defaults=cfg.options)

    @classmethod
    def from_style_model(cls, model: str | os.PathLike[str] | StyleModel, *, student: bool = False,
                         config: NetworkConfig | None = None, defaults: StylizeOptions | None = None) -> Stylizer:
        """A Stylizer for a style model (``semstyle adapt``; a path or a loaded ``StyleModel``): its adapted decoder,
        or with ``student`` its real-time student (the fast model made for it), and the model's α as the default
        strength (``defaults``, when given, are used as they are, their α included). Stylise with the model (or its
        path) as the style:

            st = Stylizer.from_style_model("wave.safetensors")
            st.stylize("photo.jpg", st.style_model).image
        """
        sm = model if isinstance(model, StyleModel) else load_style_model(model)
        if student and sm.student is None:
            raise InputError("this style model has no student; make one with semstyle adapt --student")
        # a file is named as the decoder (so its path is accepted as the style); a loaded model has no path
        decoder = "pretrained" if isinstance(model, StyleModel) else str(Path(model).resolve())
        cfg = (config or NetworkConfig()).updated(model="fast" if student else "vgg19", decoder=decoder)
        try:
            check_pair(cfg, defaults or StylizeOptions())
        except ValueError as e:
            raise InputError(str(e)) from None
        nets = Networks.from_config(cfg, sm)  # its weights, read once
        st = cls(cfg, defaults=defaults or StylizeOptions(alpha=sm.alpha), networks=nets)
        st.style_model = sm
        return st

    # ------------------------------------------------------------------ networks (views of ``networks``)
    @property
    def encoder(self) -> nn.Module:
        return self.networks.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.networks.decoder

    @property
    def device(self) -> torch.device:
        return self.networks.device

    @property
    def bf16(self) -> bool:
        return self.networks.bf16

    def encode(self, img: torch.Tensor, taps: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) in [0, 1], H and W multiples of 8 → fp32 features per tap."""
        return self.networks.encode(img, taps)

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        return self.networks.decode(feat)

    def discriminator(self) -> MultiScaleDiscriminator:
        """The style-conditional discriminator (loaded on first use)."""
        return self.networks.discriminator()

    def cosegment(self, content: Image.Image, styles: Sequence[Image.Image]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Automatic joint labels of ``content`` and ``styles`` with this model's features (see segmentation.auto)."""
        return cosegment_images(self.networks, content, styles, self.defaults)

    # ------------------------------------------------------------------ options and styles
    def options(self, base: StylizeOptions | None = None, overrides: Mapping[str, Any] | None = None) -> StylizeOptions:
        """A call's options: ``base`` (default: this Stylizer's defaults) with ``overrides`` (None = keep),
        validated once; a bad value or an unknown name is an InputError that names it."""
        try:
            opts = (base or self.defaults).updated(**(overrides or {}))
            check_pair(self.config, opts)
        except ValueError as e:
            raise InputError(str(e)) from None
        return opts

    def encode_style(self, style: ImageInput, opts: StylizeOptions | None = None) -> StyleStats:
        """Load, resize and encode a style image once; later calls with the same image reuse it. A style model
        (``semstyle adapt``) gives its style picture, and needs its own decoder in this Stylizer."""
        opts = opts or self.defaults
        own = self._check_style_model(style)  # its own model, a path or loaded: the picture it loaded, not the file
        img, key = self._own_picture(own, opts) if own is not None else _sized_style(style, opts)
        if key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        x, _ = FN.pad_to_multiple(to_tensor(img))
        with torch.inference_mode():
            feat = self.encode(x)["relu4_1"]  # (1, C, ceil(h/8), ceil(w/8))
            mean, std = FN.mean_std(feat)
        entry = StyleStats(img, feat, mean, std)
        if self.config.style_cache > 0:
            self._styles[key] = entry
            while len(self._styles) > self.config.style_cache:
                self._styles.popitem(last=False)
        return entry

    def _own_picture(self, own: StyleModel, opts: StylizeOptions) -> tuple[Image.Image, tuple[str, tuple[int, int]]]:
        """Its own model's picture resized for ``opts`` and its cache key, once per size, not once per frame."""
        want, memo = (opts.style_size, opts.max_pixels), self._own  # read once: threads may replace it
        if memo is None or memo[0] is not own or memo[1] != want:
            memo = self._own = (own, want, *_sized_style(own, opts))
        return memo[2], memo[3]

    def _check_style_model(self, style: ImageInput) -> StyleModel | None:
        """A style model is its decoder and its picture together: refuse it under another decoder. Returns this
        Stylizer's own loaded style model (``from_style_model``) when ``style`` is it or its path, else None."""
        if isinstance(style, StyleModel):
            if style is not self.style_model:
                raise InputError("a loaded style model needs its own networks: Stylizer.from_style_model(model)")
            return style
        if not isinstance(style, (str, os.PathLike)):
            return None
        mine = Path(self.config.decoder).expanduser()
        same = mine.resolve() == Path(style).resolve()  # the file this Stylizer's decoder was loaded from
        if self.style_model is not None and same:
            return self.style_model  # its own file, loaded with the networks: not opened again
        if not is_style_model(style):
            return None
        if not (same and mine.exists()):
            raise InputError(f"style model '{style}' needs its own decoder: Stylizer(NetworkConfig(decoder="
                             f"'{style}')) (the CLI does this itself)")
        return None

    # ------------------------------------------------------------------ main entry
    def stylize(
        self,
        content: ImageInput,
        style: ImageInput | Sequence[ImageInput],
        *,
        style_weights: Sequence[float] | None = None,
        mask: Any = None,
        region_styles: Mapping[int, int] | None = None,
        content_labels: Any = None,
        style_labels: Any = None,
        content_scribbles: Any = None,
        style_scribbles: Any = None,
        options: StylizeOptions | None = None,
        callback: Callback | None = None,
        alpha: float | None = None,
        size: int | None = None,
        style_size: int | None = None,
        preserve_color: bool | None = None,
        max_pixels: int | None = None,
        refine: int | None = None,
        refine_target: float | None = None,
        semantic: Semantic | None = None,
        regions: int | None = None,
        unmatched: Unmatched | None = None,
        segformer_coarse: bool | None = None,
        feather: float | None = None,
        shrink: float | None = None,
        fusion: Fusion | None = None,
        attention_temperature: float | None = None,
        attention_prior: float | None = None,
        min_region: float | None = None,
        seed: int | None = None,
        tile: int | None = None,
    ) -> StylizeResult:
        """Stylise ``content`` with one or several ``style`` images.

        Args:
            content: path, PIL image, numpy array or tensor.
            style: one style or a list of styles (interpolated with ``style_weights``).
            style_weights: one non-negative weight per style (default: the options', else equal).
            mask: a label map over the content; each region takes the style given by
                ``region_styles`` (label → style index); by default the sorted labels take the
                styles in order.
            region_styles: with a mask or a semantic mode, label → style index: that label takes
                only that style (``--style LABEL=PATH``); other labels blend the styles by weight.
            content_labels, style_labels: label maps for ``semantic="labels"`` (one per style;
                a style named in ``region_styles`` may have None and gives its whole-image statistics).
            content_scribbles, style_scribbles: for ``semantic="scribbles"``, a few painted strokes per
                picture (RGBA path, PIL image or (H, W, 4) array, transparent where nothing is painted; one
                per style): each colour grows into a region, the same colour on both sides is matched.
            options: this call's options as a record (default: the Stylizer's ``defaults``).
            callback: called with a ``ProgressEvent`` per step (tiles encoded and decoded, rounds refined).
            alpha … tile: the fields of ``StylizeOptions`` (see there), each overriding ``options`` for
                this call when given.
        """
        overrides = {k: v for k, v in locals().items() if k in OPTION_FIELDS and k != "style_weights"}
        req = as_request(content, style, style_weights=style_weights, mask=mask, region_styles=region_styles,
                         content_labels=content_labels, style_labels=style_labels,
                         content_scribbles=content_scribbles, style_scribbles=style_scribbles)
        return self.run(req, self.options(options, overrides), callback)

    __call__ = stylize

    def run(self, req: StylizeRequest, opts: StylizeOptions | None = None, callback: Callback | None = None,
            carry: Carry | None = None) -> StylizeResult:
        """Stylise one request under ``opts`` (default: the Stylizer's defaults; build them with ``options``).
        ``carry`` is a clip's temporal carry (``pipelines.video.FrameCarry``), applied tile by tile."""
        # 1. the options (validated when built) and the request, checked once
        opts = opts or self.defaults
        weights = check_request(req, opts)
        t = Timings()

        # 2. load and resize the content; encode (or reuse) every style
        with t("load+style"):
            content_img = resize_longest(load_image(req.content, opts.max_pixels, "content image"), opts.size)
            check_size(content_img, "content image")
            entries = [s if isinstance(s, StyleStats) else self.encode_style(s, opts) for s in req.styles]
        plan = tile_plan(opts.tile, content_img.size, opts.refine)

        # 3. regions: which labels cover the content and each style
        with t("segment"):
            regions = self._regions(req, opts, content_img, entries, plan)

        # 4. the one execution path: encode, fuse (AdaIN per region or global, mixed by α), decode; with
        #    refinement, the whole image's fused features adjusted while the discriminator judges them
        attention = Attention(opts.attention_temperature, opts.attention_prior) if opts.fusion == "attention" else None
        fuse = Fuse(entries, weights, opts.alpha, regions, opts.unmatched, opts.feather, attention, opts.shrink)
        content = np.asarray(content_img, dtype=np.uint8)
        refine_report: RefineReport | None = None
        if opts.refine:
            if carry is not None:
                raise ValueError("refinement works per image; a clip's carry cannot be refined")
            out, matches, refine_report = self._refine(content, fuse, opts, regions, callback, t)
        else:
            out, matches = stylize_array(self.networks, content, fuse, plan, callback, t, carry)

        # 5. colour: the fast model's correction, or the content's colours kept
        with t("color"):
            if opts.preserve_color:
                postprocess.keep_luminance(out, np.asarray(content_img, dtype=np.uint8))
            elif self.networks.model == "fast" and not self.networks.student:
                self._fast_colours(out, content_img, entries, weights, opts.alpha)

        return StylizeResult(
            image=Image.fromarray(out, mode="RGB"),
            content=content_img,
            styles=[e.image for e in entries if e.image is not None],
            content_labels=None if regions is None else regions.content,
            style_labels=[] if regions is None else regions.styles,
            from_colors=bool(regions and regions.from_colors),
            matches=matches,
            timings=dict(t),
            refine=refine_report,
        )

    # ------------------------------------------------------------------ steps
    def _regions(
        self, req: StylizeRequest, opts: StylizeOptions, content: Image.Image, entries: list[StyleStats],
        plan: TilePlan | None,
    ) -> Regions | None:
        """The regions of this call; a tiled automatic (or scribbled) run finds them on a ≤ ``PROXY_SIDE`` px copy,
        then upscales them."""
        img = content
        found = opts.semantic in ("auto", "scribbles") and req.mask is None  # regions this call finds itself
        if plan is not None and found and max(img.size) > PROXY_SIDE:
            s = PROXY_SIDE / max(img.size)
            img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))),
                             Image.Resampling.BILINEAR)
        regions = resolve_labels(self.networks, opts, img, entries, mask=req.mask, region_styles=req.region_styles,
                                 content_labels=req.content_labels, style_labels=req.style_labels,
                                 content_scribbles=req.content_scribbles, style_scribbles=req.style_scribbles)
        if regions is not None and regions.content.shape != content.size[::-1]:
            lab = Image.fromarray(regions.content.astype(np.int32), mode="I")
            lab = lab.resize(content.size, Image.Resampling.NEAREST)
            regions.content = np.asarray(lab).astype(regions.content.dtype)
        return regions

    @staticmethod
    def _fast_colours(
        out: np.ndarray, content: Image.Image, entries: Sequence[StyleStats], weights: Sequence[float], alpha: float
    ) -> None:
        """The fast model's colour correction: the distilled student, trained on a CPU budget, renders the style's
        colours only in part (docs/FAST_MODEL.md: it lowers the Gram loss ~20 %), so the output's RGB channel means
        and stds are set to the style's (blended by weight, then by α with the content's)."""
        rgb = [postprocess.channel_stats(np.asarray(e.image, dtype=np.uint8)) for e in entries if e.image is not None]
        s_mean, s_std = FN.blend_stats([m for m, _ in rgb], [s for _, s in rgb], list(weights))
        c_mean, c_std = postprocess.channel_stats(np.asarray(content, dtype=np.uint8))
        std = (alpha * s_std + (1 - alpha) * c_std).clamp(min=0.0)  # α past 1 extrapolates; a spread stays ≥ 0
        postprocess.match_rgb(out, alpha * s_mean + (1 - alpha) * c_mean, std)

    def _refine(
        self, content: np.ndarray, fuse: Fuse, opts: StylizeOptions, regions: Regions | None,
        callback: Callback | None, t: Timings,
    ) -> tuple[np.ndarray, dict[int, Match], RefineReport]:
        """Discriminator-guided refinement (``opts.refine`` rounds, ``refine``) of the whole image's fused features;
        with regions whose dominant style has labels, its objective also matches the regions' statistics.
        Returns the (H, W, 3) uint8 result, the regions' matches and the per-round report."""
        nets = self.networks
        with t("encode"):
            feat, target, fused, matches = fused_features(nets, content, fuse, callback)
        with t("refine"):
            disc = nets.discriminator()
            top = max(range(len(fuse.styles)), key=lambda i: fuse.weights[i])
            style = fuse.styles[top]
            assert style.image is not None
            x, _ = FN.pad_to_multiple(to_tensor(style.image))
            with torch.no_grad():
                s_feats = {k: v.float() for k, v in nets.encoder(x.to(nets.device), STYLE_LAYERS).items()}
                s_vec = style_vector(s_feats)
            cfg = RefineConfig(rounds=opts.refine, target=opts.refine_target)
            targets = None
            if regions is not None and len(regions.styles) > top and (s_lab := regions.styles[top]) is not None:
                targets = region_style_targets(regions.content, s_lab, s_feats, STYLE_LAYERS)
            objective = GeneratorObjective(nets.encoder, LossWeights() if targets is None else REGION_LOSS_WEIGHTS)
            img, rep = refine(fused, target, nets.decoder, objective, disc, s_feats, s_vec, content.shape[:2], cfg,
                              progress=lambda r: report(callback, "refine", r, cfg.rounds), regions=targets,
                              content=feat)
        out = np.clip(img[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out, matches, rep


__all__ = ["MIN_SIDE", "Stylizer", "StylizeOptions", "StylizeResult", "check_request", "check_size"]
