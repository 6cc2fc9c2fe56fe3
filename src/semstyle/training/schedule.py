"""Learning-rate schedule and the generator's exponential moving average (pure helpers of the trainer)."""

from __future__ import annotations

import copy
import logging
import math
import time

import torch
from torch import nn

log = logging.getLogger(__name__)


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


class Pace:
    """A training loop's pace against a ``deadline`` (a ``time.monotonic()`` time, or None): whether time is up,
    and (with ``fit``) the schedule's horizon that fits before it. After ``skip`` untimed (warm-up) and ``timed``
    timed updates of this call, every update refits the horizon to the mean pace since the timing began (a
    machine's pace drifts by 10 % over minutes): a cosine schedule so fitted follows the time and ends at its low
    learning rate, where one cut by the deadline would stop in mid-course."""

    def __init__(self, deadline: float | None, *, fit: bool = True, what: str = "the schedule", skip: int = 2,
                 timed: int = 6, margin: float = 0.97) -> None:
        if skip < 1 or timed < 1 or not 0.0 < margin <= 1.0:
            raise ValueError(f"skip and timed must be >= 1 and margin in (0, 1], got {skip}, {timed}, {margin}")
        self.deadline, self.fit, self.what = deadline, fit, what
        self.skip, self.timed, self.margin = skip, timed, margin
        self._done = 0  # updates of this call
        self._mark = (0, 0.0)  # (update, time) the timing began at
        self._cap: int | None = None  # the steps asked: the horizon never passes them
        self._told = False  # whether the log has said that the time holds fewer

    def up(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def horizon(self, step: int, steps: int) -> int:
        """Call after each update (``step`` done in all; ``steps`` the horizon so far): the horizon, at most the
        steps first asked and at least ``step`` (where the next update would pass the deadline, it ends here);
        ``margin`` of the time left is planned for, for the machine's noise."""
        self._done += 1
        self._cap = steps if self._cap is None else self._cap
        if self.deadline is None or not self.fit or self._done < self.skip:
            return steps
        now = time.monotonic()
        if self._done == self.skip:
            self._mark = (self._done, now)
            return steps
        if self._done < self.skip + self.timed:
            return steps
        per_step = max((now - self._mark[1]) / (self._done - self._mark[0]), 1e-9)
        fit = max(step, min(self._cap, step + int(self.margin * (self.deadline - now) / per_step)))
        if fit < self._cap and not self._told:  # said once, when the time first holds fewer than asked
            log.info("%s is fitted to the time: %d steps of %d (%.2f s a step)", self.what, fit, self._cap, per_step)
            self._told = True
        return fit


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


__all__ = ["EMA", "Pace", "lr_factor", "set_lr"]
