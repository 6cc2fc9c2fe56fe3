"""Adapt a decoder to one style in minutes (``semstyle adapt``): the trainer, run on one style picture with the
adaptation recipe, and its result written as a style model (``models.style_model``).

The recipe (``RECIPE``) starts from the pretrained decoder and the fine-tuned discriminator; the objective is the
specification's (content, Gram style, total variation, LSGAN adversarial) plus AdaIN's mean/std term, the style
terms against the whole style picture; the discriminator judges crops of this style against the decoder's outputs.
Every term and the discriminator see each decoded crop without a 16 px margin (``TrainConfig.margin``): without it
the decoder learned to paint a frame along the border that bought the style statistics (docs/ADAPT.md).
The run folder (``<model>.run/``, beside the model) holds the checkpoints, so ``--resume`` continues exactly and
Ctrl-C keeps a checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semstyle import assets
from semstyle.config import ADAPT_MINUTES, ADAPT_STEPS
from semstyle.errors import InputError
from semstyle.io.files import list_images
from semstyle.io.images import load_image, resize_longest
from semstyle.losses import LossWeights
from semstyle.models.style_model import MAX_SIDE, StyleModel
from semstyle.networks import load_decoder, load_encoder, native_bf16
from semstyle.training.adapt_scores import ALPHAS, Judge, Scores, calibrate
from semstyle.training.config import TrainConfig
from semstyle.training.data import collect
from semstyle.training.student import StudentDistiller, StudentRecipe, check_recipe, recipe_json
from semstyle.training.trainer import Trainer

log = logging.getLogger(__name__)

MIN_CONTENTS = 3  # photos an adaptation needs at the least
FEW_CONTENTS = 20  # under this many photos (the bundled ones), each is also shown at SCALES
SCALES = (0.75, 0.5)  # the extra scales of a handful of photos
ADAPT_SHARE = 0.35  # the adaptation's share of --minutes when a student follows (300 steps: ~3 min of 10)
JUDGE_PHOTOS = 6  # photos the end scores and the default α are measured on
DEFAULT_STEPS = ADAPT_STEPS  # generator updates of the default budget (the values live in config.py, light)
DEFAULT_MINUTES = ADAPT_MINUTES
# The adaptation recipe: issue 29's prototype (one style, whole-style targets, EMA) on 192 px crops at batch 2:
# the work of its 128 px at batch 4 (1.1× the pixels), but each crop's inside (160 px) carries more of the style's
# statistics (six styles: style −18 % at equal content, against −3 %; docs/ADAPT.md, "Crop size").
RECIPE: dict[str, Any] = {
    "size": 192, "margin": 16, "batch": 2, "lr": 1e-4, "lr_d": 1e-4, "warmup": 20, "schedule": "cosine", "min_lr": 0.1,
    "ema": 0.99, "style_targets": "whole", "style_size": 512, "d_steps": 1, "grad_clip": 1.0,
    "decoder_init": "pretrained", "discriminator_init": "finetuned", "num_scales": 2,
    "log_every": 10, "image_every": 0, "ckpt_every": 50, "keep_last": 2,
}
# The content term is to the photo's own relu4_1 (as scored), not to the AdaIN target, and the Gram term is small:
# on a held-out style this moved the decoder off the pretrained α curve (style −32 % at content +0 %; with AdaIN's
# target and Gram 1: −34 % at +11 %, on the curve). docs/ADAPT.md, "The recipe's objective". Its weight 3 (not 2)
# leaves the decoder below pretrained's content at α = 1 and lets the end's α past 1 spend the budget: six styles,
# the same style at the default α, −23 % at equal content against −18 % (docs/ADAPT.md, "A more faithful decoder").
RECIPE_WEIGHTS = LossWeights(content=0.0, content_orig=3.0, style_gram=0.1, style_meanstd=10.0, tv=0.0, adv=0.05)


@dataclass(frozen=True)
class AdaptEvent:
    """Progress of an adaptation, for a callback (the web page's bar)."""

    stage: str  # "adapt" (the decoder), "scores" (the default α and the end scores) or "student"
    step: int  # updates done in this stage (resumed ones included)
    total: int  # updates this stage does at most (it may stop earlier, at the time limit)


@dataclass
class AdaptResult:
    """What an adaptation made."""

    model: Path  # the style model file
    steps: int  # generator updates done in all (resumed runs included)
    horizon: int  # the steps its schedule ran to: ``steps`` asked, or fewer where the time budget fits fewer
    seconds: float  # wall time of this call
    scores: Scores  # the default α and the scores measured at the end


def run_folder(model: Path) -> Path:
    """The run folder of a model file: checkpoints and the style picture, beside it."""
    return model.with_name(model.name + ".run")


def check_model_path(out: str | os.PathLike, resume: bool, overwrite: bool) -> Path:
    p = Path(out)
    if p.suffix.lower() != ".safetensors":
        raise InputError(f"the style model is a .safetensors file, got '{p}'")
    if not p.parent.is_dir():
        raise InputError(f"the folder of '{p}' does not exist")
    if p.exists() and not (overwrite or resume):
        raise InputError(f"'{p}' already exists; pass --overwrite to replace it (or --resume to continue its run)")
    return p


def content_folders(contents: Sequence[str | os.PathLike]) -> tuple[str, int]:
    """The content folders as the trainer's comma-separated list, and how many photos they hold; without any,
    the bundled photos (a warning: the user's own photos work better)."""
    if not contents:
        log.warning("no --contents given: adapting on the %d bundled photos; your own photos (game frames, your "
                    "photo library) work better", len(assets.content_images()))
        folders = [assets.content_images()[0].parent]
    else:
        folders = [Path(c) for c in contents]
    n = 0
    for f in folders:
        if not f.is_dir():
            raise InputError(f"contents folder '{f}' {'is a file' if f.exists() else 'does not exist'}")
        n += len(list_images(f))
    if n < MIN_CONTENTS:
        raise InputError(f"the contents hold {n} photo{'s' * (n != 1)}; an adaptation needs at least {MIN_CONTENTS}")
    return ",".join(str(f) for f in folders), n


def adapt_config(run: Path, contents: str, steps: int, precision: str | None = None, crop: int | None = None,
                 style_size: int | None = None, weights: LossWeights | None = None) -> TrainConfig:
    """The trainer's config of an adaptation: the recipe on this style (``run/style``) and these contents
    (``crop`` and ``style_size`` override the recipe's crop side and the style picture's side for its targets)."""
    bf16 = precision == "bf16" or (precision is None and native_bf16(torch.device("cpu")))
    size = crop or RECIPE["size"]
    margin = min(RECIPE["margin"], max(0, (size - 32) // 16 * 8))  # a small crop keeps ≥ 32 px inside its margin
    recipe = {**RECIPE, "size": size, "margin": margin, "style_size": style_size or RECIPE["style_size"]}
    return TrainConfig(content_dir=contents, style_dir=str(run / "style"), out=str(run), steps=steps,
                       precision="bf16" if bf16 else "fp32", weights=weights or RECIPE_WEIGHTS, **recipe)


def adapt(
    style: str | os.PathLike,
    out: str | os.PathLike,
    *,
    contents: Sequence[str | os.PathLike] = (),
    steps: int = DEFAULT_STEPS,
    minutes: float = DEFAULT_MINUTES,
    resume: bool = False,
    overwrite: bool = False,
    precision: str | None = None,
    crop: int | None = None,
    style_size: int | None = None,
    weights: LossWeights | None = None,
    temporal: float = 0.0,
    student: bool = False,
    student_recipe: StudentRecipe | None = None,
    progress: bool = True,
    callback: Callable[[AdaptEvent], None] | None = None,
) -> AdaptResult:
    """Adapt the pretrained decoder to ``style`` and write the style model ``out`` (see the module docstring).

    Runs ``steps`` updates or, where ``minutes`` hold fewer, as many as fit: the schedule is fitted to the time
    after a few timed updates, so that it completes, and the end's scoring keeps its time (with ``student``, the
    adaptation gets ``ADAPT_SHARE`` of the time and the student the rest); a KeyboardInterrupt keeps a checkpoint
    (``resume`` continues from it) and writes no model. ``crop`` (px, a multiple of 8) and ``style_size`` override
    the recipe's training crop and the side of the style picture its targets are measured at; ``weights`` the
    recipe's loss weights (an ablation: ``RECIPE_WEIGHTS`` with ``adv=0``); ``temporal`` > 0 adds the temporal
    term with that weight (stable video, as ``--decoder temporal``; the student's recipe has its own weight);
    ``student`` also distils the real-time student (``training.student``) into the model. ``callback`` gets an
    ``AdaptEvent`` after every update and before the end scores (its total: the fitted horizon)."""
    t0 = time.monotonic()
    recipe = _check_budget(steps, minutes, temporal, student_recipe)
    weights = replace(weights or RECIPE_WEIGHTS, temporal=temporal) if temporal else weights
    model = check_model_path(out, resume, overwrite)
    picture = load_image(style, what="style image")  # a style that is not an image fails here, in milliseconds
    folders, n = content_folders(contents)
    run = _stage_run(picture, model, resume)
    cfg = adapt_config(run, folders, steps, precision, crop, style_size, weights)
    log.info("adapting to %s on %d photos: %d steps at most, %.1f min at most (%s)", style, n, steps, minutes,
             cfg.precision)
    judge = _judge(run, folders)  # first: its pace tells the time the end keeps from the budget
    # the adaptation's time: its share when a student follows, else the budget less the end's α sweep (and one more)
    train_s = 60.0 * minutes * ADAPT_SHARE if student else 60.0 * minutes - (len(ALPHAS) + 2) * judge.seconds
    decoder, done, horizon = _adapted_decoder(
        cfg, resume=resume, few=n < FEW_CONTENTS, deadline=t0 + train_s, progress=progress,
        on_step=None if callback is None else lambda s, total: callback(AdaptEvent("adapt", s, total)))
    if callback is not None:
        callback(AdaptEvent("scores", done, done))
    scores = calibrate(judge, decoder)
    log.info("default alpha %.2f: style distance %+.1f %%, content %+.1f %% against pretrained AdaIN", scores.alpha,
             100 * scores.style, 100 * scores.content)
    meta = {"style_sha256": hashlib.sha256(Path(style).read_bytes()).hexdigest(), "recipe": cfg.to_json(),
            "steps": done, "horizon": horizon, "contents": n, "alpha": scores.alpha}
    result = StyleModel(decoder.state_dict(), load_image(run / "style" / "style.png"), meta)
    if student:
        distiller = StudentDistiller(result, folders, run, recipe=recipe, bf16=cfg.precision == "bf16",
                                     resume=resume, scales=SCALES if n < FEW_CONTENTS else ())
        on_student = None if callback is None else lambda s: callback(AdaptEvent("student", s, distiller.recipe.steps))
        distiller.fit(t0 + 60.0 * minutes - 2 * judge.seconds, progress, on_student)  # its scoring (+ one) after it
        scores = _keep_student(result, distiller, judge, scores)
    result.meta.update(scores=scores.to_json(), seconds=round(time.monotonic() - t0, 1))
    result.save(model)
    return AdaptResult(model, done, horizon, time.monotonic() - t0, scores)


def _check_budget(steps: int, minutes: float, temporal: float, recipe: StudentRecipe | None) -> StudentRecipe:
    """The student's recipe (the default when None), after checking it and the adaptation's budget."""
    if steps < 1 or not minutes > 0:
        raise InputError(f"steps must be >= 1 and minutes > 0, got {steps} and {minutes}")
    if not 0.0 <= temporal <= 1e4:
        raise InputError(f"temporal must be in [0, 10000], got {temporal}")
    recipe = recipe or StudentRecipe()
    check_recipe(recipe)
    return recipe


def _stage_run(picture: Image.Image, model: Path, resume: bool) -> Path:
    """The run folder of ``model``, holding the style picture (an earlier run of it, not resumed, is cleared)."""
    run = run_folder(model)
    if not resume and run.exists():
        shutil.rmtree(run)  # an earlier run of this model, not resumed: start afresh
    (run / "style").mkdir(parents=True, exist_ok=True)
    resize_longest(picture, min(max(picture.size), MAX_SIDE)).save(run / "style" / "style.png")
    return run


def _judge(run: Path, folders: str) -> Judge:
    """The end scores' judge: pretrained AdaIN on the run's style picture and a sample of the contents."""
    cpu = torch.device("cpu")  # the end runs on the CPU, wherever the trainer ran
    return Judge(load_encoder("pretrained", cpu), load_decoder("pretrained", cpu),
                 load_image(run / "style" / "style.png"), sample_photos(folders, JUDGE_PHOTOS))


def _adapted_decoder(cfg: TrainConfig, *, resume: bool, few: bool, deadline: float, progress: bool,
                     on_step: Callable[[int, int], None] | None) -> tuple[torch.nn.Module, int, int]:
    """Train the adaptation (a handful of photos, ``few``, are also shown at ``SCALES``), its schedule fitted to
    the ``deadline``; its decoder (the EMA's) in fp32 on the CPU, the updates done and the schedule's horizon.
    Ctrl-C keeps a checkpoint."""
    trainer = Trainer(cfg, resume=resume)
    if few:
        trainer.contents.add_scales(SCALES, max(cfg.size, cfg.late_size))
    try:
        trainer.fit(progress=progress, deadline=deadline, fit_horizon=True,
                    on_step=None if on_step is None else lambda s: on_step(s, trainer.cfg.steps))
    except KeyboardInterrupt:
        trainer.save()
        raise
    finally:
        trainer.close()
    decoder = copy.deepcopy(trainer.ema.module if trainer.ema is not None else trainer.decoder)
    return decoder.float().to(torch.device("cpu")), trainer.step, trainer.cfg.steps


def _keep_student(result: StyleModel, distiller: StudentDistiller, judge: Judge, scores: Scores) -> Scores:
    """The distilled student into the model with its recipe and steps; the scores with the student's."""
    if distiller.step == 0:  # no time was left: a model without a student, said so
        log.warning("no time was left for the student: the model has none; add --resume and more --minutes")
        return scores
    result.student = distiller.state()
    s_style, s_content = judge.relative(distiller.student)
    result.meta.update(student_recipe=recipe_json(distiller.recipe), student_steps=distiller.step)
    return replace(scores, student_style=s_style, student_content=s_content)


def sample_photos(folders: str, n: int) -> list[Image.Image]:
    """``n`` of the adaptation's photos (a seeded sample, the same every run) for its end scores."""
    paths = collect(folders)
    pick = sorted(np.random.default_rng(0).choice(len(paths), min(n, len(paths)), replace=False))
    return [load_image(paths[i], what="content photo") for i in pick]


__all__ = ["AdaptEvent", "AdaptResult", "DEFAULT_MINUTES", "DEFAULT_STEPS", "RECIPE", "RECIPE_WEIGHTS", "adapt",
           "adapt_config", "run_folder"]
