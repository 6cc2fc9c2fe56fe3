"""Distil the real-time student of a style model (``semstyle adapt --student``).

The student is the fast model (``models.fast``: VGG19's shape at a quarter of the width, no VGG19 at inference)
made for one style: it starts from the shipped fast encoder and decoder, which already stylise with any style, and
both are fine-tuned on this style alone, its statistics taken each step by the student's own encoder from the style
picture at ``STYLE_SIDE`` px — what inference computes, so the pipeline runs the student as any fast model (α,
colour preservation, tiling, video). Trained from scratch, a small U-shaped network learned nothing usable in the
default budget (docs/ADAPT.md); a start that already stylises is what makes minutes enough.

The teacher is the style model's own adapted decoder behind the VGG19 encoder and AdaIN, at the model's α. It
stylises every training photo once, whole, at ``StudentRecipe.side`` px (the scale the student learns: texture
size follows the picture's scale); each step then crops the same window of a photo and of its teacher picture,
and every term sees the crop without its outer ``StudentRecipe.margin`` px (a student rewarded there learned to
paint a frame that bought the style statistics; docs/ADAPT.md, "The frame"). The student learns from four terms:
L1 to the teacher's picture, the teacher picture's VGG features (relu4_1, scale-free MSE), the style's channel
mean/std (AdaIN's style term, against the style picture) and the adaptation's LSGAN discriminator, frozen (the
adversarial term). Checkpoints go to the model's run
folder (``<model>.run/student``), so ``--resume`` continues exactly and Ctrl-C keeps one.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle import functional as FN
from semstyle.config import STUDENT_STEPS
from semstyle.errors import InputError
from semstyle.io.images import resize_longest, to_tensor
from semstyle.losses import StyleTargets
from semstyle.models.decoder import Decoder
from semstyle.models.discriminator import DiscriminatorConfig, MultiScaleDiscriminator, style_vector
from semstyle.models.fast import FastDecoder, FastEncoder
from semstyle.models.style_model import StyleModel
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.models.weights import fast_shape, load_into
from semstyle.networks import load_encoder
from semstyle.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from semstyle.training.data import ImageBank, collect, random_crops, step_generator
from semstyle.training.distill import nmse
from semstyle.training.schedule import Pace, lr_factor, set_lr
from semstyle.training.temporal import Motion, moved, random_grids

log = logging.getLogger(__name__)

STYLE_SIDE = 512  # the style picture's longest side for its statistics (inference's default style_size)


@dataclass(frozen=True)
class StudentRecipe:
    """How the student is trained (docs/ADAPT.md has the trials that chose these)."""

    steps: int = STUDENT_STEPS  # student updates of the default budget
    crop: int = 160  # training crop side, px (a multiple of 8)
    batch: int = 8  # crops per step
    lr: float = 5e-4  # Adam learning rate at the start (cosine decay to lr · min_lr)
    min_lr: float = 0.05  # the decay's end, as a fraction of lr
    side: int = 384  # longest side of the photos the teacher stylises (the scale the student learns)
    images: int = 200  # photos used at most (a seeded sample of larger folders)
    pixel: float = 10.0  # weight of the L1 distance to the teacher's picture
    feature: float = 5.0  # weight of the teacher picture's features (scale-free MSE, summed over feature_taps)
    feature_taps: tuple[str, ...] = ("relu4_1",)  # where the student copies them
    style: float = 10.0  # weight of the mean/std distance to the style (relu1_1 … relu4_1), AdaIN's λ
    content: float = 0.0  # weight of AdaIN's content term: relu4_1 distance to the AdaIN target (VGG19, at α)
    content_orig: float = 0.0  # weight of relu4_1 distance to the photo's own VGG19 features (the adaptation's term)
    adv: float = 0.05  # weight of the LSGAN term of the adaptation's (frozen) discriminator
    temporal: float = 0.0  # weight of the temporal term (training.temporal's random motions; 0 = off)
    margin: int = 16  # px of each side of a crop's picture left out of every term (no reward for border effects)
    ckpt_every: int = 50  # steps between checkpoints
    seed: int = 0  # every random choice derives from (seed, step)


def style_tensor(picture: Image.Image) -> torch.Tensor:
    """The style picture as inference encodes it: longest side ``STYLE_SIDE``, reflection-padded to multiples of 8."""
    return FN.pad_to_multiple(to_tensor(resize_longest(picture, STYLE_SIDE)))[0]


def teacher_pictures(photos: list[np.ndarray], model: StyleModel, alpha: float, bf16: bool, *,
                     encoder: torch.nn.Module, style_stats: tuple[torch.Tensor, torch.Tensor]) -> list[np.ndarray]:
    """Each (H, W, 3) uint8 photo stylised whole by the model's decoder at ``alpha`` (uint8, the same size), with
    the VGG19 ``encoder`` and the style's relu4_1 (mean, std) as inference takes them (``style_tensor``)."""
    decoder = Decoder()
    decoder.load_state_dict(model.decoder)
    decoder.eval().requires_grad_(False)
    s_mean, s_std = style_stats
    out = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for arr in photos:
            x, (h, w) = FN.pad_to_multiple(torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255)
            c4 = encoder(x, ("relu4_1",))["relu4_1"].float()  # (1, 512, H/8, W/8)
            t = FN.mix(c4, FN.adain_from_stats(c4, s_mean, s_std), alpha)
            y = decoder(t).float()[..., :h, :w].clamp(0, 1)  # (1, 3, h, w)
            out.append((y[0].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy())
    return out


class StudentDistiller:
    """Teacher pictures, student, optimiser and checkpoints of one student distillation."""

    def __init__(self, model: StyleModel, contents: str, run: Path, *, recipe: StudentRecipe, bf16: bool,
                 resume: bool, scales: tuple[float, ...] = ()) -> None:
        self.recipe, self.run, self.bf16, self.step = recipe, run / "student", bf16, 0
        torch.manual_seed(recipe.seed)
        paths = collect(contents)
        if len(paths) > recipe.images:
            keep = np.random.default_rng(recipe.seed).choice(len(paths), recipe.images, replace=False)
            paths = [paths[i] for i in sorted(keep)]
        bank = ImageBank(paths, recipe.crop, recipe.side)
        bank.add_scales(scales, recipe.crop)
        alpha = float(model.meta.get("alpha", 1.0))
        self.encoder = load_encoder("pretrained", torch.device("cpu"))  # the frozen loss network, and the teacher's
        self.style = style_tensor(model.image)  # (1, 3, h, w), h and w multiples of 8
        with torch.no_grad():
            feats = {k: v.float() for k, v in self.encoder(self.style, STYLE_LAYERS).items()}
            self.targets = StyleTargets.from_feats(feats)
            self.cond = style_vector(feats)  # (1, 1920)
        log.info("the teacher stylises %d photos at α = %.2f", len(bank), alpha)
        teacher = teacher_pictures(bank.images, model, alpha, bf16, encoder=self.encoder,
                                   style_stats=FN.mean_std(feats["relu4_1"]))  # the style encoded once, for both
        self.pairs = [np.concatenate([c, t], axis=2) for c, t in zip(bank.images, teacher, strict=True)]  # (H, W, 6)
        self.disc = self._discriminator(run)
        self.alpha = alpha
        shape = fast_shape("pretrained")
        self.s_encoder, self.s_decoder = FastEncoder(shape), FastDecoder(shape)  # the student: starts as the fast model
        load_into(self.s_encoder, "pretrained", "fast_encoder")
        load_into(self.s_decoder, "pretrained", "fast_decoder")
        self.opt = torch.optim.Adam([*self.s_encoder.parameters(), *self.s_decoder.parameters()], lr=recipe.lr)
        self.teacher = {"steps": int(model.meta.get("steps", 0)), "alpha": alpha}  # which teacher it learns from
        ckpt = latest_checkpoint(self.run) if resume else None
        if ckpt is not None and json.loads((ckpt / "state.json").read_text()).get("teacher") != self.teacher:
            log.warning("the adaptation changed since the student's checkpoint: the student starts afresh")
            shutil.rmtree(self.run, ignore_errors=True)
            ckpt = None
        if ckpt is not None:
            self.step = int(load_checkpoint(ckpt, self._modules(), {"optim": self.opt})["step"])
            log.info("student resumed at step %d", self.step)

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.s_encoder, "decoder": self.s_decoder}

    def student(self, photo: torch.Tensor) -> torch.Tensor:
        """The student's picture of (N, 3, H, W) photos, as inference makes it (the style's statistics by its
        own encoder)."""
        s_mean, s_std = FN.mean_std(self.s_encoder.encode(self.style).float())
        f = self.s_encoder.encode(photo).float()  # (N, C, H/8, W/8)
        return self.s_decoder(FN.mix(f, FN.adain_from_stats(f, s_mean, s_std), self.alpha)).float()

    @staticmethod
    def _discriminator(run: Path) -> MultiScaleDiscriminator:
        """The adaptation's discriminator (its newest checkpoint), frozen; the fine-tuned one without a run."""
        disc = MultiScaleDiscriminator(DiscriminatorConfig(num_scales=2))
        ckpt = latest_checkpoint(run)
        source = str(ckpt / "discriminator.safetensors") if ckpt is not None else "finetuned"
        load_into(disc, source, "discriminator")
        return disc.eval().requires_grad_(False)

    def train_step(self) -> dict[str, float]:
        r = self.recipe
        set_lr(self.opt, r.lr * lr_factor(self.step, r.steps, 10, "cosine", r.min_lr))
        g = step_generator(r.seed, self.step)
        both, _ = random_crops(self.pairs, g, r.batch, r.crop)  # (N, 6, S, S)
        photo, teacher = both[:, :3], both[:, 3:]
        self.opt.zero_grad(set_to_none=True)
        terms = self._terms(photo, teacher, g)
        total = torch.stack([getattr(r, k) * v.float() for k, v in terms.items()]).sum()
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"], 1.0)
        self.opt.step()
        self.step += 1
        return {"total": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def _terms(self, photo: torch.Tensor, teacher: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss terms of the student's pictures of ``photo`` (N, 3, S, S); a term weighted 0 is not computed
        (``g`` draws the temporal term's motions)."""
        r, auto = self.recipe, torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)
        cut = r.margin
        with torch.no_grad(), auto:
            t_feats = ({k: v.float() for k, v in self.encoder(FN.inside(teacher, cut), r.feature_taps).items()}
                       if r.feature else {})
            c4 = (self.encoder(FN.inside(photo, cut), ("relu4_1",))["relu4_1"].float()  # (N, 512, S'/8, S'/8)
                  if r.content or r.content_orig else None)
        with auto:
            full = self.student(photo)  # (N, 3, S, S)
            out = FN.inside(full, cut)  # (N, 3, S', S'), S' = S − 2·margin: the terms never see the picture's border
            feats = {k: v.float() for k, v in self.encoder(out, tuple(dict.fromkeys((*STYLE_LAYERS, *r.feature_taps)))
                                                           ).items()}
            n = out.shape[0]
            terms = {"pixel": F.l1_loss(out, FN.inside(teacher, cut)),
                     "style": FN.mean_std_loss_to([feats[k] for k in STYLE_LAYERS],
                                                  [self.targets.means[k].expand(n, -1, -1, -1) for k in STYLE_LAYERS],
                                                  [self.targets.stds[k].expand(n, -1, -1, -1) for k in STYLE_LAYERS])}
            if r.feature:
                terms["feature"] = torch.stack([nmse(feats[k], t_feats[k]) for k in r.feature_taps]).sum()
            if r.adv:
                terms["adv"] = FN.lsgan_g_loss(self.disc(out, self.cond.expand(n, -1)))
            if r.temporal:  # the picture of a moved photo against the moved picture
                m = Motion()  # the decoder's motions (configs/temporal.yaml's are these defaults)
                grid = random_grids(g, n, full.shape[2], full.shape[3], m)  # (N, S, S, 2)
                out_m = self.student(moved(photo, grid, g, m.noise))
                terms["temporal"] = FN.temporal_loss(out_m.float(), FN.warp_by_grid(full.float(), grid),
                                                     FN.grid_inside(grid, m.margin))
            if c4 is not None and r.content_orig:  # the photo's own features
                terms["content_orig"] = FN.content_loss(feats["relu4_1"], c4)
            if c4 is not None and r.content:  # AdaIN's content term, to the AdaIN target at α
                s_mean, s_std = self.targets.means["relu4_1"], self.targets.stds["relu4_1"]
                terms["content"] = FN.content_loss(feats["relu4_1"], FN.mix(c4, FN.adain_from_stats(c4, s_mean, s_std),
                                                                            self.alpha))
        return terms

    def save(self) -> None:
        save_checkpoint(self.run, self.step, self._modules(), {"optim": self.opt},
                        {"recipe": asdict(self.recipe), "teacher": self.teacher}, keep_last=2)

    def fit(self, deadline: float | None, progress: bool,
            on_step: Callable[[int], None] | None = None) -> list[dict[str, float]]:
        """Train to ``recipe.steps`` or ``deadline`` (``time.monotonic()``); a checkpoint at the end and on Ctrl-C.
        ``on_step`` is called with the step count after each update. The recipe's steps are fitted to what the
        deadline leaves after every update (``Pace``): the cosine schedule completes instead of being cut."""
        from tqdm import tqdm

        history: list[dict[str, float]] = []
        bar = tqdm(total=self.recipe.steps, initial=self.step, disable=not progress, unit="step", desc="student",
                   dynamic_ncols=True)
        pace = Pace(deadline, what="the student's schedule")
        try:
            while self.step < self.recipe.steps:
                if pace.up():
                    log.info("time is up at student step %d of %d", self.step, self.recipe.steps)
                    break
                stats = self.train_step()
                if (horizon := pace.horizon(self.step, self.recipe.steps)) != self.recipe.steps:
                    self.recipe = replace(self.recipe, steps=horizon)
                    bar.total = horizon
                if on_step is not None:
                    on_step(self.step)
                history.append({"step": self.step, **stats})
                bar.update(1)
                bar.set_postfix(loss=f"{stats.get('total', math.nan):.3f}")
                if self.step % self.recipe.ckpt_every == 0:
                    self.save()
        finally:
            bar.close()
            self.save()
        return history

    def state(self) -> dict[str, torch.Tensor]:
        """The student's tensors as a style model keeps them (``encoder.*``, ``decoder.*``)."""
        return {f"{name}.{k}": v.detach().clone() for name, m in self._modules().items()
                for k, v in m.state_dict().items()}


def check_recipe(recipe: StudentRecipe) -> None:
    if recipe.crop % 8 or not 32 <= recipe.crop <= 1024:
        raise InputError(f"the student's crop must be a multiple of 8 between 32 and 1024, got {recipe.crop}")
    if recipe.margin < 0 or recipe.crop - 2 * recipe.margin < 32:
        raise InputError(f"the student's margin must leave at least 32 px of its {recipe.crop} px crop, "
                         f"got {recipe.margin}: lower the margin or raise the crop")
    if min(recipe.steps, recipe.batch, recipe.images) < 1:
        raise InputError("the student's steps, batch and images must be >= 1")


def recipe_json(recipe: StudentRecipe) -> dict[str, Any]:
    return asdict(recipe)


__all__ = ["StudentDistiller", "StudentRecipe", "check_recipe", "recipe_json", "teacher_pictures"]
