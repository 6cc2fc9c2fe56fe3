"""Learning-rate schedule and the generator's exponential moving average (pure helpers of the trainer)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def lr_factor(step: int, total: int, warmup: int = 0, schedule: str = "constant", min_lr: float = 0.1) -> float:
    """The learning rate of update ``step`` (0-based) as a share of the configured one: a linear warm-up over
    ``warmup`` steps, then constant or a cosine from 1 down to ``min_lr`` at the last step."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be constant or cosine, got {schedule!r}")
    span = max(1, total - 1 - warmup)
    t = min(1.0, max(0.0, (step - warmup) / span))
    return min_lr + (1.0 - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


class EMA(nn.Module):
    """A frozen copy of a module whose parameters follow ema ← d·ema + (1 − d)·live after each update;
    buffers are copied. Saved and resumed like any module of the run."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, live: nn.Module) -> None:
        ema_p: list[torch.Tensor] = list(self.module.parameters())
        live_p = [p.detach() for p in live.parameters()]
        torch._foreach_lerp_(ema_p, live_p, 1.0 - self.decay)
        for b, lb in zip(self.module.buffers(), live.buffers(), strict=True):
            b.copy_(lb)


__all__ = ["EMA", "lr_factor", "set_lr"]
