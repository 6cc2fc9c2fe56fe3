"""The end of an adaptation: its default α and its scores, measured on a few of its photos against pretrained AdaIN.

The adapted decoder's content loss grows with α. ``calibrate`` sweeps α over ``ALPHAS`` (past 1 too: AdaIN's step
extrapolated) and finds the largest α whose content loss stays within ``CONTENT_AIM`` of pretrained AdaIN's at
α = 1 (interpolated between the sweep's points); of that α and the sweep's weaker ones, the one with the least style
distance is the model's default α (past about 1.1 the style overshoots: more α can mean less of the style).
The promise is ``CONTENT_BUDGET`` on the user's other photos; the few photos the sweep sees estimate it within a
few points either way, so it aims under it.
``Scores`` (kept in the model's metadata) are the style distance (channel mean/std, relu1_1 … relu4_1) and the content
loss (relu4_1) relative to pretrained AdaIN's, for the adapted decoder at that α and, when there is one, the student.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.io.images import resize_longest, to_tensor

ALPHAS = (1.2, 1.15, 1.1, 1.05, 1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6)  # the sweep, strongest first
CONTENT_BUDGET = 1.10  # the promise: at the default α, content loss within +10 % of pretrained AdaIN's
CONTENT_AIM = 1.08  # what the sweep aims at on its few photos: 2 points under the promise, for photos it never saw
SIDE = 384  # the photos' longest side when scored (smaller photos keep theirs)
STYLE_SIDE = 512  # the style picture's longest side for AdaIN's statistics

Render = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, H, W) photo in [0, 1] → (1, 3, H, W) picture


@dataclass(frozen=True)
class Scores:
    """Relative to pretrained AdaIN (α = 1) on the same photos: −0.3 is 30 % less."""

    photos: int  # photos scored (a sample of the adaptation's own)
    alpha: float  # the model's default α
    style: float  # adapted decoder at ``alpha``: style distance, relative
    content: float  # adapted decoder at ``alpha``: content loss, relative
    student_style: float | None = None  # the student's style distance, relative
    student_content: float | None = None  # the student's content loss, relative

    def to_json(self) -> dict[str, float | int | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Judge:
    """Scores pictures of ``photos`` against a style with the VGG19 encoder (the evaluation's features), relative to
    the ``pretrained`` decoder's at α = 1."""

    def __init__(self, encoder: nn.Module, pretrained: nn.Module, style: Image.Image, photos: list[Image.Image]
                 ) -> None:
        self.encoder = encoder
        self.photos = [to_tensor(resize_longest(p, min(SIDE, max(p.size)))) for p in photos]  # never upscaled
        self.padded = [FN.pad_to_multiple(x) for x in self.photos]  # (padded (1, 3, H', W'), (h, w)), rendered as is
        with torch.inference_mode():
            s_img = FN.pad_to_multiple(to_tensor(resize_longest(style, STYLE_SIDE)))[0]  # as inference encodes it
            self.s_mean, self.s_std = FN.mean_std(encoder(s_img, ("relu4_1",))["relu4_1"].float())
            # each padded photo's relu4_1, by the tensor's identity: an α sweep encodes every photo once, not per α
            self._c4 = {id(xp): encoder(xp, ("relu4_1",))["relu4_1"].float() for xp, _ in self.padded}
        style_feats = M.vgg_features(encoder, to_tensor(resize_longest(style, SIDE)))
        # the style's channel means and stds per metric tap, computed once: every score compares against the same
        stats = [FN.mean_std(style_feats[k]) for k in M.METRIC_TAPS]
        self.style_means, self.style_stds = [m for m, _ in stats], [sd for _, sd in stats]
        self.content_feats = [M.vgg_features(encoder, p) for p in self.photos]
        t0 = time.monotonic()
        self.base = self.score(self.adain(pretrained, 1.0))  # pretrained AdaIN's (style distance, content loss)
        self.seconds = time.monotonic() - t0  # one scoring of the photos: the pace of the end's sweep

    def adain(self, decoder: nn.Module, alpha: float) -> Render:
        """The VGG19 pipeline with ``decoder`` at ``alpha`` (whole-image AdaIN)."""
        def render(x: torch.Tensor) -> torch.Tensor:
            c4 = self._c4.get(id(x))  # (1, 512, H/8, W/8); one of the judge's own photos, or any other picture
            if c4 is None:
                c4 = self.encoder(x, ("relu4_1",))["relu4_1"].float()
            return decoder(FN.mix(c4, FN.adain_from_stats(c4, self.s_mean, self.s_std), alpha)).float()
        return render

    def score(self, render: Render) -> tuple[float, float]:
        """Mean (style distance, content loss) of ``render``'s pictures of the photos."""
        rows = []
        with torch.inference_mode():
            for (xp, (h, w)), c_f in zip(self.padded, self.content_feats, strict=True):
                out = render(xp)[..., :h, :w].clamp(0, 1)
                o_f = M.vgg_features(self.encoder, out)
                s_loss = FN.mean_std_loss_to([o_f[k] for k in M.METRIC_TAPS], self.style_means, self.style_stds)
                rows.append((float(s_loss), M.content_loss(o_f, c_f)))
        style, content = np.asarray(rows).mean(0)
        return float(style), float(content)

    def relative(self, render: Render) -> tuple[float, float]:
        """``score`` relative to pretrained AdaIN's: (style, content), −0.3 is 30 % less."""
        style, content = self.score(render)
        return style / self.base[0] - 1, content / self.base[1] - 1


def pick_alpha(contents: list[float], budget: float) -> float:
    """The largest α of ``ALPHAS`` (content losses ``contents``, one per α, strongest first) whose content loss is
    at most ``budget``, interpolated linearly between the sweep's points; the weakest α when none is."""
    if contents[0] <= budget:
        return ALPHAS[0]
    for i in range(1, len(ALPHAS)):
        if contents[i] <= budget:  # between ALPHAS[i] (within) and ALPHAS[i - 1] (over)
            t = (budget - contents[i]) / max(contents[i - 1] - contents[i], 1e-12)
            return float(ALPHAS[i] + t * (ALPHAS[i - 1] - ALPHAS[i]))
    return ALPHAS[-1]


def least_style(within: tuple[float, float, float], sweep: list[tuple[float, float, float]]
                ) -> tuple[float, float, float]:
    """Of ``within`` — (α, style, content) at the largest α within the content budget — and the ``sweep``'s
    (α, style, content) at weaker α, the one with the least style distance (the strongest α on a tie)."""
    candidates = [within, *(row for row in sweep if row[0] < within[0])]
    return min(candidates, key=lambda row: (row[1], -row[0]))


def calibrate(judge: Judge, adapted: nn.Module) -> Scores:
    """The adapted decoder's default α (see the module docstring) and its scores there."""
    sweep = [(a, *judge.score(judge.adain(adapted, a))) for a in ALPHAS]  # (α, style, content), strongest first
    alpha = round(pick_alpha([c for _, _, c in sweep], CONTENT_AIM * judge.base[1]), 3)
    alpha, style, content = least_style((alpha, *judge.score(judge.adain(adapted, alpha))), sweep)
    return Scores(len(judge.photos), alpha, style / judge.base[0] - 1, content / judge.base[1] - 1)


__all__ = ["ALPHAS", "CONTENT_AIM", "CONTENT_BUDGET", "Judge", "Scores", "calibrate", "least_style", "pick_alpha"]
