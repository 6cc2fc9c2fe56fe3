"""Alternating generator/discriminator training of the decoder (the encoder stays frozen).

One step: sample content and style crops (a pure function of seed, step and rank), build the
AdaIN target (global, or region-matched on co-segmented crops), update the decoder on
λ_c·content + λ_s·style + λ_tv·TV + λ_adv·LSGAN-G, then update the discriminator ``d_steps``
times on LSGAN-D with matching-aware negatives. Non-finite losses skip the step and are logged.
Runs under ``torchrun`` as DDP (gloo on CPU, NCCL on CUDA).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from semstyle import functional as FN
from semstyle.config import StylizeOptions
from semstyle.errors import InputError
from semstyle.io.images import to_pil
from semstyle.losses import GeneratorObjective, StyleTargets, discriminator_terms, noise_images
from semstyle.models import Decoder
from semstyle.models.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from semstyle.models.weights import load_into
from semstyle.networks import load_encoder
from semstyle.pipelines.fusion import fuse_regions
from semstyle.pipelines.semantic import merged
from semstyle.segmentation.auto import cosegment
from semstyle.training.checkpoint import (
    append_metrics,
    check_resumable,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    saved_config,
    trim_metrics,
)
from semstyle.training.config import TrainConfig, drop_removed
from semstyle.training.data import ImageBank, collect, read_list, step_generator
from semstyle.training.schedule import EMA, Pace, lr_factor, set_lr
from semstyle.training.targets import WholeStyleTargets
from semstyle.training.temporal import moved, random_grids
from semstyle.types import Regions, StyleStats, Timings

log = logging.getLogger(__name__)
# config fields a resumed run may change: where it stops (steps also stretches a cosine schedule and moves late_from's
# step, from the resume on), what it logs and how it checkpoints; any other change would not continue the run
RESUMABLE: frozenset[str] = frozenset({"out", "steps", "log_every", "image_every", "ckpt_every", "keep_last"})


@dataclass
class DistInfo:
    rank: int = 0  # this process's rank
    world: int = 1  # number of processes
    device: torch.device = torch.device("cpu")  # where this process computes


def init_distributed() -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1:
        return DistInfo(device=torch.device("cuda" if cuda else "cpu"))
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if cuda else torch.device("cpu")
    return DistInfo(rank, world, device)


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, DDP) else m


@dataclass
class Moved:
    """The temporal term's inputs for one batch (``Trainer._motion``)."""

    target: torch.Tensor  # (N, 512, H/8, W/8) AdaIN target of the moved crops
    grid: torch.Tensor  # (N, H, W, 2) the motion, as a sampling grid
    mask: torch.Tensor  # (N, 1, H, W) pixels the motion carries (1) or brings in from outside (0)


def image_grid(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack (N, 3, H, W) tensors as grid rows → (3, rows·H, N·W) for TensorBoard."""
    return torch.cat([torch.cat(list(r.clamp(0, 1)), dim=2) for r in rows], dim=1)


class Trainer:
    """Owns the networks, optimisers, data and run folder of one training run."""

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        cfg.check()
        self.cfg = cfg
        self.d = init_distributed()
        self.run = Path(cfg.out)
        torch.manual_seed(cfg.seed + self.d.rank)
        dev = self.d.device

        self.encoder = load_encoder(cfg.encoder, dev)  # the frozen loss network
        decoder = Decoder()
        load_into(decoder, cfg.decoder_init, "decoder")
        disc = MultiScaleDiscriminator(DiscriminatorConfig(num_scales=cfg.num_scales))
        if cfg.discriminator_init:
            load_into(disc, cfg.discriminator_init, "discriminator")
        decoder.to(dev).train()
        if cfg.channels_last:
            decoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        disc.to(dev).train()
        self.opt_g = torch.optim.Adam(decoder.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.decoder: nn.Module = DDP(decoder) if self.d.world > 1 else decoder
        self.disc: nn.Module = DDP(disc) if self.d.world > 1 else disc
        self.objective = GeneratorObjective(self.encoder, cfg.weights)
        self.scaler = torch.amp.GradScaler("cuda") if dev.type == "cuda" else None

        exclude = read_list(cfg.exclude_styles) if cfg.exclude_styles else None
        crop_max = max(cfg.size, cfg.late_size)
        self.contents = ImageBank(collect(cfg.content_dir), crop_max, cfg.content_size or 768)
        self.styles = ImageBank(collect(cfg.style_dir, exclude), crop_max, cfg.style_bank_size or 768)
        self.styles.augment(cfg.style_augment)
        self.ema = EMA(decoder, cfg.ema) if cfg.ema > 0 else None  # evaluated and shipped instead of the live one
        self.whole = (WholeStyleTargets(self.styles.images, self.encoder, cfg.style_size, dev, cfg.weights.style_layers)
                      if cfg.style_targets == "whole" else None)
        self.profile = Timings()  # seconds per part of the last step (benchmarks/profile_trainer.py)
        self.step = 0
        if resume:
            self._resume()
        elif self.d.rank == 0 and latest_checkpoint(self.run) is not None:
            raise InputError(f"run folder '{self.run}' already has checkpoints; pass --resume or choose another --out")
        if self.d.rank == 0:  # created only once the start is valid: a refused start leaves nothing behind
            self.run.mkdir(parents=True, exist_ok=True)
            if not resume:
                trim_metrics(self.run, 0)  # lines of an earlier start that never reached a checkpoint
            (self.run / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))
        self.writer = self._writer() if self.d.rank == 0 else None

    # ------------------------------------------------------------------ plumbing
    def _writer(self):  # SummaryWriter or None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed; scalars go to metrics.jsonl only (pip install semstyle[train])")
            return None
        return SummaryWriter(str(self.run / "tensorboard"), purge_step=self.step + 1 if self.step else None)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.d.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        if self.cfg.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _modules(self) -> dict[str, nn.Module]:
        mods = {"decoder": _unwrap(self.decoder), "discriminator": _unwrap(self.disc)}
        if self.ema is not None:
            mods["decoder_ema"] = self.ema.module
        return mods

    def crop_size(self, step: int) -> int:
        """Crop side of update ``step``: ``size``, then ``late_size`` for the last part of training."""
        cfg = self.cfg
        return cfg.late_size if cfg.late_size and step >= cfg.late_from * cfg.steps else cfg.size

    def _optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim_g": self.opt_g, "optim_d": self.opt_d}

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run)
        if ckpt is None:
            raise InputError(f"--resume: no checkpoint found in '{self.run / 'checkpoints'}'")
        saved = drop_removed(saved_config(ckpt), f"checkpoint {ckpt}'s config")  # a run of removed trial code
        check_resumable(saved, self.cfg.to_json(), RESUMABLE)  # before weights that may not fit
        state = load_checkpoint(ckpt, self._modules(), self._optims())
        self.step = int(state["step"])  # the torch RNG was restored too; sampling depends only on (seed, step, rank)
        if self.scaler is not None and state.get("grad_scaler"):  # CUDA: the loss scale it had reached
            self.scaler.load_state_dict(state["grad_scaler"])
        if self.d.rank == 0:  # drop log lines written after the checkpoint
            trim_metrics(self.run, self.step)
        log.info("resumed from %s at step %d", ckpt, self.step)

    def save(self) -> Path | None:
        if self.d.rank != 0:
            return None
        if self.writer is not None:  # the scalars up to this step are on disk before a resume could start after it
            self.writer.flush()
        extra = {"config": self.cfg.to_json()}
        if self.scaler is not None:
            extra["grad_scaler"] = self.scaler.state_dict()
        return save_checkpoint(self.run, self.step, self._modules(), self._optims(), extra, self.cfg.keep_last)

    def _backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
        else:
            loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()

    # ------------------------------------------------------------------ one step
    def _targets(self, c4: torch.Tensor, s4: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.cfg.semantic == "none":
            return FN.adain(c4, s4)
        def encode(x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
            return {k: v.float() for k, v in self.encoder(x.to(self.d.device), tuple(taps)).items()}

        out = []
        for i in range(c4.shape[0]):
            c_lab, (s_lab,) = cosegment(encode, to_pil(content[i]), [to_pil(style[i])], 3, self.cfg.seed + self.step)
            m, s = FN.mean_std(s4[i : i + 1])
            crop = StyleStats(None, s4[i : i + 1], m, s)  # a training crop: features, no image
            regions = merged(Regions(c_lab, [s_lab]), StylizeOptions())  # inference's default min_region
            t, _ = fuse_regions(c4[i : i + 1], [crop], [1.0], regions)
            out.append(t)
        return torch.cat(out)

    def train_step(self) -> dict[str, float]:
        cfg, dev = self.cfg, self.d.device
        t = self.profile = Timings()
        factor = lr_factor(self.step, cfg.steps, cfg.warmup, cfg.schedule, cfg.min_lr)
        set_lr(self.opt_g, cfg.lr * factor)
        set_lr(self.opt_d, cfg.lr_d * factor)
        with t("data"):
            g = step_generator(cfg.seed, self.step, self.d.rank)
            size = self.crop_size(self.step)
            content, _ = self.contents.crops(g, cfg.batch, size)
            style, s_idx = self.styles.crops(g, cfg.batch, size)
        taps = tuple(dict.fromkeys((*cfg.weights.style_layers, "relu1_1", "relu2_1", "relu3_1", "relu4_1")))
        with torch.no_grad(), self._autocast(), t("encode"):
            c4 = self.encoder(self._fmt(content.to(dev)), ("relu4_1",))["relu4_1"].float()
            if self.whole is not None:  # the whole style images' targets (cached); the crops only feed D
                s_targets = self.whole.get(s_idx)
                target = FN.adain_from_stats(c4, s_targets.means["relu4_1"], s_targets.stds["relu4_1"])
            else:
                s_feats = {k: v.float() for k, v in self.encoder(self._fmt(style.to(dev)), taps).items()}
                s_targets = StyleTargets.from_feats(s_feats, cfg.weights.style_layers)
                target = self._targets(c4, s_feats["relu4_1"], content.to(dev), style.to(dev))
            svec = s_targets.cond
            perm = torch.roll(torch.arange(cfg.batch), 1)
            mismatch = svec[perm] if cfg.batch > 1 else None
            motion = self._motion(g, content, s_targets) if cfg.weights.temporal > 0 else None
            loss_in = self._loss_inputs(content.to(dev), c4, target, s_targets)

        stats: dict[str, float] = {}
        with t("generator"):  # the discriminator is frozen for it; a judge stage only decodes
            out = self._generator_step(target, s_targets, svec, loss_in, stats, motion)
        with t("discriminator"):
            fake = FN.inside(out, self.cfg.margin).detach().float()
            noise = noise_images(g, cfg.batch, size).to(dev) if cfg.d_noise > 0 else None
            self._discriminator_step(style.to(dev), fake, svec, mismatch, noise, stats)
        self.step += 1
        if self.writer is not None and cfg.image_every and self.step % cfg.image_every == 0:
            n = min(4, cfg.batch)
            self.writer.add_image(
                "samples/content_style_output", image_grid([content[:n].cpu(), style[:n], fake[:n].cpu()]), self.step
            )
        return stats

    def _motion(self, g: torch.Generator, content: torch.Tensor, s_targets: StyleTargets) -> Moved:
        """The temporal term's inputs: each crop moved a little (with noise), its AdaIN target under the same
        style statistics, the motion's grid and the pixels it carries (call without grad)."""
        cfg, dev = self.cfg, self.d.device
        n, _, h, w = content.shape
        grid = random_grids(g, n, h, w, cfg.motion)  # (N, H, W, 2)
        shifted = moved(content, grid, g, cfg.motion.noise).to(dev)  # (N, 3, H, W)
        c4m = self.encoder(self._fmt(shifted), ("relu4_1",))["relu4_1"].float()
        target = FN.adain_from_stats(c4m, s_targets.means["relu4_1"], s_targets.stds["relu4_1"])
        return Moved(target, grid.to(dev), FN.grid_inside(grid, cfg.motion.margin).to(dev))

    def _loss_inputs(self, content: torch.Tensor, c4: torch.Tensor, target: torch.Tensor, s_targets: StyleTargets
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(AdaIN target, content relu4_1) the generator's terms compare with: the whole crop's, or with a margin
        those of the crop's inside, encoded on its own as the loss network sees the cut output (call without grad)."""
        if not self.cfg.margin:
            return target, c4
        inner = FN.inside(content, self.cfg.margin)  # (N, 3, S', S'), S' = S − 2·margin
        c4_in = self.encoder(self._fmt(inner), ("relu4_1",))["relu4_1"].float()  # (N, 512, S'/8, S'/8)
        return FN.adain_from_stats(c4_in, s_targets.means["relu4_1"], s_targets.stds["relu4_1"]), c4_in

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _generator_step(self, target: torch.Tensor, s_targets: StyleTargets, svec: torch.Tensor,
                        loss_in: tuple[torch.Tensor, torch.Tensor], stats: dict[str, float],
                        motion: Moved | None = None) -> torch.Tensor:
        """One decoder update (none in a judge stage); returns the decoded batch. The terms see the batch without
        its margin and compare with ``loss_in`` (``_loss_inputs``). With ``motion``, the temporal term: the moved
        crops' outputs against the moved outputs (whole crops: the motion's own margin leaves the border out)."""
        cfg = self.cfg
        disc_raw = _unwrap(self.disc)
        assert isinstance(disc_raw, MultiScaleDiscriminator)
        if not cfg.train_generator:
            with torch.no_grad(), self._autocast():
                return self.decoder(self._fmt(target))
        disc_raw.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.decoder(self._fmt(target))
            terms = self.objective(FN.inside(out, cfg.margin).float(), loss_in[0], s_targets,
                                   disc_raw if cfg.weights.adv > 0 else None, svec, loss_in[1])
            if motion is not None:
                out_m = self.decoder(self._fmt(motion.target)).float()  # (N, 3, H, W) the moved crops' outputs
                terms["temporal"] = FN.temporal_loss(out_m, FN.warp_by_grid(out.float(), motion.grid), motion.mask)
                terms["total"] = terms["total"] + cfg.weights.temporal * terms["temporal"]
        disc_raw.requires_grad_(True)
        if torch.isfinite(terms["total"]):
            self._backward_step(terms["total"], self.opt_g, list(self.decoder.parameters()))
        else:
            log.warning("step %d: non-finite generator loss, update skipped", self.step)
            stats["skipped_g"] = 1.0
        stats.update({f"g/{k}": float(v.detach()) for k, v in terms.items()})
        if self.ema is not None:
            self.ema.update(_unwrap(self.decoder))
        return out

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, svec: torch.Tensor,
                            mismatch: torch.Tensor | None, noise: torch.Tensor | None, stats: dict[str, float]) -> None:
        """``d_steps`` discriminator updates: real crops vs the decoded batch (and mismatched conditions, noise).
        The logged scores are those of the first update's pass (before it)."""
        cfg = self.cfg
        for i in range(cfg.d_steps):
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast():
                d_loss, scores = discriminator_terms(self.disc, real, fake, svec, mismatch, noise, cfg.d_noise)
            if torch.isfinite(d_loss):
                self._backward_step(d_loss, self.opt_d, list(self.disc.parameters()))
            else:
                log.warning("step %d: non-finite discriminator loss, update skipped", self.step)
                stats["skipped_d"] = 1.0
            stats["d/loss"] = float(d_loss.detach())
            if i == 0:
                stats.update({f"d/score_{k}": v for k, v in scores.items() if k != "mismatch"})

    # ------------------------------------------------------------------ loop
    def fit(self, progress: bool = True, deadline: float | None = None,
            on_step: Callable[[int], None] | None = None, fit_horizon: bool = False) -> list[dict[str, float]]:
        """Train until ``cfg.steps`` (or ``deadline``, a ``time.monotonic()`` time: then a checkpoint is written);
        returns the logged metrics of this call. ``on_step`` is called with the step count after each update.
        ``fit_horizon`` fits ``cfg.steps`` after every update to what fits before the deadline (``Pace``), so that
        the schedule completes instead of being cut."""
        from tqdm import tqdm

        cfg = self.cfg
        history: list[dict[str, float]] = []
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not progress or self.d.rank != 0,
            unit="step",
            dynamic_ncols=True,
        )
        t0 = time.perf_counter()
        pace = Pace(deadline, fit=fit_horizon)
        while self.step < self.cfg.steps:
            if pace.up():
                log.info("time is up at step %d of %d", self.step, self.cfg.steps)
                self.save()
                break
            stats = self.train_step()
            if (horizon := pace.horizon(self.step, self.cfg.steps)) != self.cfg.steps:
                self.cfg = cfg = replace(self.cfg, steps=horizon)
                bar.total = horizon
            if on_step is not None:
                on_step(self.step)
            bar.update(1)
            bar.set_postfix(g=f"{stats.get('g/total', math.nan):.3f}", d=f"{stats.get('d/loss', math.nan):.3f}")
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                row = {"step": self.step, "time": round(time.perf_counter() - t0, 2), **stats}
                history.append(row)
                if self.d.rank == 0:
                    append_metrics(self.run, row)
                    if self.writer is not None:
                        for k, v in stats.items():
                            self.writer.add_scalar(k, v, self.step)
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        if self.writer is not None:
            self.writer.flush()
        return history

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
