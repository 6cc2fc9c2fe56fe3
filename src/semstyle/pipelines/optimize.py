"""Optimisation-based style transfer (Gatys et al. 2016), plain and semantic-guided.

The pixels of the output are the parameters: starting from the content (or the AdaIN result)
they move to minimise

    λ_c · content(relu4_1) + λ_s · Σ_{relu1_1..relu4_1} Gram + λ_tv · TV

with the same VGG19 encoder the feed-forward pipeline uses (formulas in docs/METRICS.md).
With label maps of the content and the style the Gram term becomes *guided* (Champandard's
neural doodle, pystiche's guided losses): for every label present in both maps, the Gram
matrix of the features masked by that label's area-downsampled mask, normalised by the mask's
area, is matched to the style's Gram inside the same label; content pixels whose label the
style lacks are matched to the whole style's Gram. Each label's term is weighted by its share
of the content.

Slow by design (minutes on a CPU): it is the quality yardstick and a mode for users who
accept the wait. Runs in fp32; L-BFGS by default, Adam as an option.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.errors import InputError
from semstyle.io.images import ImageInput, load_image, resize_longest, to_pil, to_tensor
from semstyle.io.labels import LabelMap, fit_to, harmonize, load_labels
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.networks import Networks
from semstyle.pipelines.optimize_config import INITS, OPTIMIZERS, OptimizeConfig
from semstyle.pipelines.requests import check_size
from semstyle.pipelines.stylize import Stylizer
from semstyle.segmentation import regions as R

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu4_1"
TAPS: tuple[str, ...] = tuple(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER)))
@dataclass
class OptimizeResult:
    """What ``optimize`` returns."""

    image: Image.Image  # the optimised image, same size as the (resized) content
    history: list[float]  # weighted total loss at every evaluation, the last one of the returned image
    parts: dict[str, list[float]] = field(default_factory=dict)  # unweighted content/style/tv, same entries
    seconds: float = 0.0  # wall time of the optimisation loop
    guided_labels: list[int] = field(default_factory=list)  # labels matched region to region (guided only)


# ----------------------------------------------------------------------------- guided Gram
def masks_at(labels: np.ndarray, ids: list[int], hw: tuple[int, int]) -> torch.Tensor:
    """(1, K, h, w) area-downsampled one-hot masks of ``ids`` (a feature pixel straddling a
    border belongs to both labels in proportion)."""
    return R.region_masks(labels, ids, hw, normalize=False)


def guided_gram(feat: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(K, C, C) Gram matrices of ``feat`` (1, C, h, w) masked by each of ``masks`` (1, K, h, w):
    G_k = (F·diag(m_k))(F·diag(m_k))ᵀ / Σ_p m_k,p. With a hard mask this is the Gram of the
    features inside the region normalised by its area; an empty mask gives zeros."""
    c = feat.shape[1]
    f = feat.reshape(c, -1)  # (C, P)
    m = masks[0].reshape(masks.shape[1], -1)  # (K, P)
    out = []
    for k in range(m.shape[0]):
        fm = f * m[k]
        out.append(fm @ fm.T / m[k].sum().clamp_min(1e-8))
    return torch.stack(out)


@dataclass
class _Guide:
    """Per-layer masks and style targets of the guided Gram loss."""

    content_masks: dict[str, torch.Tensor]  # tap → (1, K+1, h, w): matched labels, then "the rest"
    targets: dict[str, torch.Tensor]  # tap → (K+1, C, C): style Gram per label, then the global Gram
    weights: torch.Tensor  # (K+1,) share of the content covered by each
    labels: list[int]


def _load_pair_labels(
    content_labels: Any, style_labels: Any, c_size: tuple[int, int], s_size: tuple[int, int], cfg: OptimizeConfig
) -> tuple[np.ndarray, np.ndarray]:
    c_lm = fit_to(load_labels(content_labels, cfg.max_pixels, what="content label map"), c_size, "content label map")
    s_lm = fit_to(load_labels(style_labels, cfg.max_pixels, what="style label map"), s_size, "style label map")
    c_lm, s_lm = harmonize(c_lm, s_lm)
    c_lab = R.merge_small_regions(c_lm.labels, cfg.min_region)
    s_lab = R.merge_small_regions(s_lm.labels, cfg.min_region)
    R.check_common(LabelMap(c_lab).unique(), LabelMap(s_lab).unique(), c_lm.name)
    return c_lab, s_lab


def _build_guide(
    c_lab: np.ndarray, s_lab: np.ndarray, c_feats: dict[str, torch.Tensor], s_feats: dict[str, torch.Tensor]
) -> _Guide:
    c_ids, s_ids = set(np.unique(c_lab).tolist()), set(np.unique(s_lab).tolist())
    ids = sorted(c_ids & s_ids)
    share = [float((c_lab == i).mean()) for i in ids]
    rest = 1.0 - sum(share)
    c_masks, targets = {}, {}
    for tap in STYLE_LAYERS:
        cm = masks_at(c_lab, ids, (c_feats[tap].shape[-2], c_feats[tap].shape[-1]))
        cm = torch.cat([cm, (1 - cm.sum(1, keepdim=True)).clamp_min(0)], dim=1)  # the rest: unmatched labels
        sm = masks_at(s_lab, ids, (s_feats[tap].shape[-2], s_feats[tap].shape[-1]))
        s_feat = s_feats[tap]
        targets[tap] = torch.cat([guided_gram(s_feat, sm), FN.gram(s_feat)], dim=0)
        c_masks[tap] = cm.to(s_feat.device)
    weights = torch.tensor([*share, max(rest, 0.0)], dtype=torch.float32)
    return _Guide(c_masks, targets, weights, ids)


# ----------------------------------------------------------------------------- the loop
class _Loss:
    """Evaluates the weighted objective for an image; remembers the unweighted parts."""

    def __init__(
        self,
        encoder: torch.nn.Module,
        cfg: OptimizeConfig,
        content_feat: torch.Tensor,
        style_feats: dict[str, torch.Tensor],
        guide: _Guide | None,
    ) -> None:
        self.encoder, self.cfg, self.guide = encoder, cfg, guide
        self.content_feat = content_feat
        self.style_grams = {k: FN.gram(style_feats[k]) for k in STYLE_LAYERS}
        self.last: dict[str, float] = {}

    def style(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = feats[CONTENT_LAYER].new_zeros(())
        for tap in STYLE_LAYERS:
            if self.guide is None:
                loss = loss + F.mse_loss(FN.gram(feats[tap])[0], self.style_grams[tap][0])
            else:
                g = guided_gram(feats[tap], self.guide.content_masks[tap])  # (K+1, C, C)
                per = ((g - self.guide.targets[tap]) ** 2).mean(dim=(1, 2))  # (K+1,)
                loss = loss + (per * self.guide.weights.to(per.device)).sum()
        return loss

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x, TAPS)
        c = FN.content_loss(feats[CONTENT_LAYER], self.content_feat)
        s = self.style(feats)
        tv = FN.tv_loss(x)
        self.last = {"content": float(c.detach()), "style": float(s.detach()), "tv": float(tv.detach())}
        return self.cfg.content_weight * c + self.cfg.style_weight * s + self.cfg.tv_weight * tv


def _optimizer(flat: torch.Tensor, cfg: OptimizeConfig) -> torch.optim.Optimizer:
    """L-BFGS running all ``steps`` iterations in one call (strong-Wolfe line search), or Adam."""
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            [flat],
            lr=1.0,
            max_iter=cfg.steps,
            max_eval=cfg.steps * 5 // 4 + 1,
            history_size=50,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )
    return torch.optim.Adam([flat], lr=cfg.lr)


def _run(
    loss_fn: _Loss, x: torch.Tensor, cfg: OptimizeConfig, progress: bool
) -> tuple[torch.Tensor, list[float], dict[str, list[float]]]:
    """Optimise the pixels of ``x``; returns the final image (clamped to [0, 1]) and the losses.

    L-BFGS runs ``steps`` iterations in one call with a strong-Wolfe line search (so every accepted
    iterate lowers the loss; a line search may evaluate trial points that it rejects). Adam takes
    ``steps`` steps, clamping the pixels after each. The history holds the loss of every evaluation,
    then that of the returned (clamped) image.
    """
    history: list[float] = []
    parts: dict[str, list[float]] = {"content": [], "style": [], "tv": []}
    shape = x.shape
    # the parameter is flat so its gradient is contiguous whatever layout the encoder's convolutions use
    flat = x.detach().reshape(-1).clone().requires_grad_(True)
    bar = tqdm(total=cfg.steps, desc="optimize", unit="step", disable=not progress, leave=False)

    def record(value: float) -> None:
        if not np.isfinite(value):
            raise InputError("the optimisation diverged (the loss is not finite); lower --style-weight or use Adam")
        history.append(value)
        for k, v in loss_fn.last.items():
            parts[k].append(v)

    opt = _optimizer(flat, cfg)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(flat.view(shape))
        torch.autograd.backward(loss)
        record(float(loss.detach()))
        if cfg.optimizer == "lbfgs":
            bar.n = min(cfg.steps, int(opt.state[flat].get("n_iter", 0)))
        bar.set_postfix(loss=f"{history[-1]:.4g}", refresh=False)
        bar.refresh()
        return loss

    try:
        if cfg.optimizer == "lbfgs":
            opt.step(closure)  # type: ignore[arg-type]
        else:
            for _ in range(cfg.steps):
                opt.step(closure)  # type: ignore[arg-type]
                with torch.no_grad():
                    flat.clamp_(0, 1)
                bar.update()
    finally:
        bar.close()
    out = flat.detach().clamp(0, 1).view(shape)
    with torch.no_grad():
        record(float(loss_fn(out)))
    return out, history, parts


def _start(c_img: Image.Image, s_img: Image.Image, cfg: OptimizeConfig, nets: Networks) -> torch.Tensor:
    """The pixels the optimisation starts from: the content, or AdaIN's result for ``init="adain"``."""
    if cfg.init != "adain":
        return to_tensor(c_img).to(nets.device)
    pipeline = StylizeOptions(size=cfg.size, style_size=cfg.style_size, max_pixels=cfg.max_pixels)
    start = Stylizer(NetworkConfig(device=cfg.device), defaults=pipeline, networks=nets).stylize(c_img, s_img).image
    if start.size != c_img.size:
        start = start.resize(c_img.size, Image.Resampling.BICUBIC)
    return to_tensor(start).to(nets.device)


def optimize(
    content: ImageInput,
    style: ImageInput,
    config: OptimizeConfig | None = None,
    *,
    networks: Networks | None = None,
    content_labels: ImageInput | LabelMap | None = None,
    style_labels: ImageInput | LabelMap | None = None,
    progress: bool = False,
) -> OptimizeResult:
    """Gatys-style optimisation of the output pixels (see the module doc).

    Args:
        content, style: paths, PIL images, arrays or tensors.
        config: an ``OptimizeConfig`` (the defaults when None; ``OptimizeConfig(steps=50, size=256)`` for others).
        networks: the VGG19 ``Networks`` whose encoder (and, for ``init="adain"``, decoder) to use;
            built from the config when None.
        content_labels, style_labels: label maps for the guided (semantic) variant; give both or neither.
        progress: show a tqdm progress bar.
    """
    cfg = config or OptimizeConfig()
    if (content_labels is None) != (style_labels is None):
        raise InputError("the guided variant needs both --content-labels and --style-labels")
    c_img = resize_longest(load_image(content, cfg.max_pixels, "content image"), cfg.size)
    s_img = resize_longest(load_image(style, cfg.max_pixels, "style image"), cfg.style_size)
    check_size(c_img, "content image")
    check_size(s_img, "style image")
    labels = None
    if content_labels is not None:
        labels = _load_pair_labels(content_labels, style_labels, c_img.size, s_img.size, cfg)
    nets = networks or Networks.from_config(NetworkConfig(device=cfg.device))
    if nets.model != "vgg19":
        raise ValueError("the optimisation's loss network is VGG19: pass networks with model='vgg19'")
    encoder, device = nets.encoder, nets.device

    with torch.no_grad():
        c_feats = {k: v.float() for k, v in encoder(to_tensor(c_img).to(device), TAPS).items()}
        s_feats = {k: v.float() for k, v in encoder(to_tensor(s_img).to(device), STYLE_LAYERS).items()}
    guide = _build_guide(labels[0], labels[1], c_feats, s_feats) if labels is not None else None
    x = _start(c_img, s_img, cfg, nets)
    loss_fn = _Loss(encoder, cfg, c_feats[CONTENT_LAYER], s_feats, guide)

    t0 = time.perf_counter()
    out, history, parts = _run(loss_fn, x, cfg, progress)
    seconds = time.perf_counter() - t0
    log.info("optimised %d steps in %.1f s: loss %.4g → %.4g", cfg.steps, seconds, history[0], history[-1])
    return OptimizeResult(
        image=to_pil(out.clamp(0, 1).cpu()),
        history=history,
        parts=parts,
        seconds=seconds,
        guided_labels=[] if guide is None else list(guide.labels),
    )


__all__ = ["INITS", "OPTIMIZERS", "OptimizeConfig", "OptimizeResult", "guided_gram", "masks_at", "optimize"]
