"""Distil the VGG19 AdaIN model into the fast student (``semstyle.models.fast``).

Collaborative distillation, cheap enough for a 2-core CPU: every step draws content and style
crops; the frozen teacher (VGG19 encoder + AdaIN decoder) gives its relu1_1…relu4_1 features and
its stylised output, and the student encoder and decoder are trained together on

- **features**: ‖E_t(student_t(x)) − teacher_t(x)‖² / mean(teacher_t(x)²) for every tap t and
  both images, E_t a learned 1×1 embedding (student channels → teacher channels);
- **output**: L1 between the student's AdaIN output and the teacher's, plus the same normalised
  feature distance between the two outputs at the teacher's relu1_1…relu3_1 (a perceptual term);
- **reconstruction**: L1 between the student's decoding of the content's own features and the
  content (what α = 0 needs);
- **style and content** (AdaIN's own objective, measured by the teacher's VGG19 on the student's
  output): channel mean/std distance to the style image at relu1_1…relu4_1, and relu4_1 distance
  to the teacher's AdaIN target. Imitation alone regresses an under-capacity student to the mean
  (flat, grey outputs); these terms reward the statistics the evaluation measures.

``init_from`` warm-starts the student (and its embeddings) from an earlier run's checkpoint with
a fresh optimiser, so a run can add terms or change the schedule without starting over.

Resumable exactly like ``semstyle train`` (atomic safetensors checkpoints, sampling a pure
function of (seed, step)). Run: ``semstyle distill --config configs/distill.yaml``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.models.fast import FAST_TAPS, FastConfig, FastDecoder, FastEncoder, embeddings
from semstyle.networks import load_decoder, load_encoder
from semstyle.training.checkpoint import (
    append_metrics,
    check_resumable,
    checkpoint_of,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    saved_config,
    trim_metrics,
)
from semstyle.training.config import read_mapping
from semstyle.training.data import ImageBank, collect, read_list, step_generator

log = logging.getLogger(__name__)
PERCEPTUAL_TAPS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")
# config fields a resumed run may change (steps moves the end of the cosine schedule, nothing before it)
RESUMABLE: frozenset[str] = frozenset({"out", "steps", "log_every", "ckpt_every", "keep_last"})


@dataclass(frozen=True)
class DistillConfig:
    content_dir: str = ""  # folder(s) of content photos, comma-separated
    style_dir: str = ""  # folder(s) of style images, comma-separated
    exclude_styles: str = ""  # file listing held-out style files (one relative name a line)
    out: str = "runs/distill"  # run folder: checkpoints/, metrics.jsonl, config.json
    steps: int = 3000  # optimiser updates in total
    size: int = 128  # random crop side (pixels)
    batch: int = 8  # content/style pairs per step
    lr: float = 2e-3  # Adam learning rate at the start (cosine decay to lr/50)
    width: int = 16  # student block-1 channels (FastConfig.width)
    block3_convs: int = 4  # student convs in block 3 (FastConfig.block3_convs)
    w_feat: float = 1.0  # weight of the feature (encoder) distillation
    w_pix: float = 10.0  # weight of the output L1 to the teacher's output
    w_perc: float = 1.0  # weight of the output's perceptual distance to the teacher's output
    w_rec: float = 5.0  # weight of the content reconstruction L1
    w_style: float = 0.0  # weight of the output's mean/std style loss to the style (teacher VGG19, relu1_1…4_1)
    w_content: float = 0.0  # weight of the output's relu4_1 distance to the teacher's AdaIN target
    init_from: str = ""  # checkpoint (or run) folder whose student weights start a fresh run; "" = init
    init: str = "kaiming"  # "kaiming": He-normal convs (kaiming_init); "default": PyTorch's own initialisation
    precision: str = "bf16"  # fp32 | bf16 (CPU autocast)
    seed: int = 0  # every random choice derives from (seed, step)
    log_every: int = 10  # steps between metric lines
    ckpt_every: int = 100  # steps between checkpoints
    keep_last: int = 3  # checkpoints kept

    @classmethod
    def load(cls, path: str | Path) -> DistillConfig:
        data = read_mapping(path)
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise InputError(f"unknown distillation config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def updated(self, **changes: Any) -> DistillConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check(self) -> None:
        for f in fields(self):
            value, want = getattr(self, f.name), type(getattr(DistillConfig, f.name))
            ok = isinstance(value, want) or (want is float and isinstance(value, int) and not isinstance(value, bool))
            if not ok or (want is int and isinstance(value, bool)):
                raise InputError(f"distillation config '{f.name}' must be a {want.__name__}, got {value!r}")
        if min(self.w_feat, self.w_pix, self.w_perc, self.w_rec, self.w_style, self.w_content) < 0:
            raise InputError("loss weights (w_*) must be >= 0")
        if min(self.steps, self.batch, self.log_every, self.ckpt_every, self.keep_last, self.width,
               self.block3_convs) < 1:
            raise InputError("steps, batch, log_every, ckpt_every, keep_last, width and block3_convs must be >= 1")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if not 32 <= self.size <= 1024 or self.size % 8:
            raise InputError(f"size must be a multiple of 8 between 32 and 1024, got {self.size}")
        if self.precision not in ("fp32", "bf16"):
            raise InputError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.init not in ("kaiming", "default"):
            raise InputError(f"init must be kaiming or default, got {self.init!r}")
        if not self.content_dir or not self.style_dir:
            raise InputError("distillation needs --content-dir and --style-dir")


def kaiming_init(encoder: nn.Module, decoder: nn.Module) -> None:
    """He-normal convolutions with zero biases; the decoder's last conv starts near a flat mid-grey.

    PyTorch's default conv initialisation shrinks the signal by about 0.4× a layer through ReLUs,
    which leaves an 18-layer plain student (no normalisation) nearly untrainable on a CPU budget:
    its outputs stayed flat grey for 600 steps. He initialisation keeps the variance: the loss falls
    as far in 60 steps as it did in about 200 from the default start.
    """
    convs = [m for net in (encoder, decoder) for m in net.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    nn.init.normal_(convs[-1].weight, std=1e-3)
    if convs[-1].bias is not None:
        nn.init.constant_(convs[-1].bias, 0.45)


def nmse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error normalised by the target's mean square (scale-free across layers)."""
    return F.mse_loss(x, target) / target.pow(2).mean().clamp_min(1e-8)


class Distiller:
    """Teacher, student, optimiser, data and run folder of one distillation run."""

    def __init__(self, cfg: DistillConfig, resume: bool = False) -> None:
        cfg.check()
        self.cfg, self.run, self.step = cfg, Path(cfg.out), 0
        torch.manual_seed(cfg.seed)
        cpu = torch.device("cpu")
        self.teacher_enc, self.teacher_dec = load_encoder("pretrained", cpu), load_decoder("pretrained", cpu)
        fcfg = FastConfig(width=cfg.width, block3_convs=cfg.block3_convs)
        self.encoder, self.decoder, self.embed = FastEncoder(fcfg), FastDecoder(fcfg), embeddings(fcfg)
        params = [p for m in self._modules().values() for p in m.parameters()]
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        exclude = read_list(cfg.exclude_styles) if cfg.exclude_styles else None
        self.contents = ImageBank(collect(cfg.content_dir), cfg.size)
        self.styles = ImageBank(collect(cfg.style_dir, exclude), cfg.size)
        if cfg.init == "kaiming":  # a resumed run overwrites these weights from its checkpoint
            kaiming_init(self.encoder, self.decoder)
        if cfg.init_from and not resume:
            self._warm_start(Path(cfg.init_from))
        if resume:
            ckpt = latest_checkpoint(self.run)
            if ckpt is None:
                raise InputError(f"--resume: no checkpoint found in '{self.run / 'checkpoints'}'")
            check_resumable(saved_config(ckpt), asdict(cfg), RESUMABLE)  # before weights that may not fit
            state = load_checkpoint(ckpt, self._modules(), {"optim": self.opt})
            self.step = int(state["step"])
            trim_metrics(self.run, self.step)
        elif latest_checkpoint(self.run) is not None:
            raise InputError(f"run folder '{self.run}' already has checkpoints; pass --resume or choose another --out")
        else:
            trim_metrics(self.run, 0)  # lines of an earlier start that never reached a checkpoint
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    def _warm_start(self, src: Path) -> None:
        ckpt = checkpoint_of(src)
        if ckpt is None:
            raise InputError(f"init_from: '{src}' is neither a checkpoint folder nor a run with checkpoints")
        try:
            for name, m in self._modules().items():
                m.load_state_dict(load_file(str(ckpt / f"{name}.safetensors")))
        except (OSError, RuntimeError) as e:
            raise InputError(f"init_from: {ckpt} does not fit this student ({str(e).splitlines()[0]}); "
                             "width and block3_convs must match the run it came from") from e
        log.info("student warm-started from %s", ckpt)

    def _modules(self) -> dict[str, nn.Module]:
        return {"fast_encoder": self.encoder, "fast_decoder": self.decoder, "embed": self.embed}

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def lr_at(self, step: int) -> float:
        """Cosine decay from lr to lr/50 over the run."""
        t = min(1.0, step / max(1, self.cfg.steps))
        return self.cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        g = step_generator(cfg.seed, self.step)
        content, _ = self.contents.crops(g, cfg.batch, cfg.size)  # (B, 3, S, S)
        style, _ = self.styles.crops(g, cfg.batch, cfg.size)
        with torch.no_grad(), self._autocast():
            t_c = {k: v.float() for k, v in self.teacher_enc(content, FAST_TAPS).items()}
            t_s = {k: v.float() for k, v in self.teacher_enc(style, FAST_TAPS).items()}
            t_target = FN.adain(t_c["relu4_1"], t_s["relu4_1"])  # (B, 512, S/8, S/8)
            t_out = self.teacher_dec(t_target).float().clamp(0, 1)  # (B, 3, S, S)
            t_perc = {k: v.float() for k, v in self.teacher_enc(t_out, PERCEPTUAL_TAPS).items()}
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        with self._autocast():
            s_c = self.encoder(content, FAST_TAPS)
            s_s = self.encoder(style, FAST_TAPS)
            feat = sum(nmse(self.embed[t](s_c[t]).float(), t_c[t]) + nmse(self.embed[t](s_s[t]).float(), t_s[t])
                       for t in FAST_TAPS) / (2 * len(FAST_TAPS))
            out = self.decoder(FN.adain(s_c["relu4_1"].float(), s_s["relu4_1"].float())).float()
            rec = self.decoder(s_c["relu4_1"]).float()
            stats_terms = cfg.w_style > 0 or cfg.w_content > 0
            o_feat = self.teacher_enc(out, FAST_TAPS if stats_terms else PERCEPTUAL_TAPS)
            o_feat = {k: v.float() for k, v in o_feat.items()}
            perc = sum(nmse(o_feat[t], t_perc[t]) for t in PERCEPTUAL_TAPS) / len(PERCEPTUAL_TAPS)
        pix = F.l1_loss(out, t_out)
        rec_l = F.l1_loss(rec, content)
        zero = out.new_zeros(())
        style_l = FN.mean_std_style_loss([o_feat[t] for t in FAST_TAPS], [t_s[t] for t in FAST_TAPS]) \
            if stats_terms else zero
        content_l = FN.content_loss(o_feat["relu4_1"], t_target.float()) if stats_terms else zero
        total = (cfg.w_feat * feat + cfg.w_pix * pix + cfg.w_perc * perc + cfg.w_rec * rec_l
                 + cfg.w_style * style_l + cfg.w_content * content_l)
        if not torch.isfinite(total):
            raise FloatingPointError(f"distillation loss is {float(total)} at step {self.step}; lower --lr")
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for grp in self.opt.param_groups for p in grp["params"]], 5.0)
        self.opt.step()
        self.step += 1
        parts = {"total": total, "feat": feat, "pix": pix, "perc": perc, "rec": rec_l, "style": style_l,
                 "content": content_l}
        return {**{k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in parts.items()},
                "lr": self.lr_at(self.step - 1)}

    def save(self) -> Path:
        return save_checkpoint(self.run, self.step, self._modules(), {"optim": self.opt},
                               {"config": asdict(self.cfg)}, self.cfg.keep_last)

    def fit(self, progress: bool = True) -> list[dict[str, float]]:
        """Train until ``cfg.steps``; returns the metric lines logged by this call."""
        from tqdm import tqdm

        history: list[dict[str, float]] = []
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        while self.step < self.cfg.steps:
            stats = self.train_step()
            bar.update(1)
            bar.set_postfix(loss=f"{stats['total']:.3f}")
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                row = {"step": self.step, "time": round(time.perf_counter() - t0, 2), **stats}
                history.append(row)
                append_metrics(self.run, row)
            if self.step % self.cfg.ckpt_every == 0 or self.step == self.cfg.steps:
                self.save()
        bar.close()
        return history
