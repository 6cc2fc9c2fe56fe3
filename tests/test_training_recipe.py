"""The training recipe's pieces: learning-rate schedule, EMA of the decoder, style targets from the whole
style image (cached = fresh), growing crops, and exact resume with all of them on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from test_training import SIZE, _cfg, make_data
from torch import nn

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.io.images import resize_longest, to_tensor
from semstyle.losses import StyleTargets
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.training.checkpoint import latest_checkpoint
from semstyle.training.schedule import EMA, lr_factor
from semstyle.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough for 32 px crops growing to 48 px."""
    return make_data(tmp_path_factory.mktemp("recipe_data"), ((64, 56), (56, 64), (72, 60), (60, 80)))


RECIPE: dict[str, Any] = {"ema": 0.9, "warmup": 2, "schedule": "cosine", "min_lr": 0.2,
                          "style_targets": "whole", "style_size": 48, "late_size": 48, "late_from": 0.5}


# ---------------------------------------------------------------- schedule
def test_lr_factor_warms_up_then_follows_a_cosine_to_min_lr() -> None:
    f = [lr_factor(s, 10, warmup=2, schedule="cosine", min_lr=0.1) for s in range(10)]
    assert f[:2] == [0.5, 1.0]  # linear warm-up: (step + 1) / warmup
    assert f[2] == pytest.approx(1.0) and f[9] == pytest.approx(0.1)
    mid = 2 + 7 / 2  # the cosine's half-way point lies between steps 5 and 6
    assert lr_factor(5, 10, 2, "cosine", 0.1) > 0.55 > lr_factor(6, 10, 2, "cosine", 0.1)
    assert all(a >= b for a, b in zip(f[2:], f[3:]))  # monotone after the warm-up
    assert 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (mid - 2) / 7)) == pytest.approx(0.55)
    assert [lr_factor(s, 10) for s in range(10)] == [1.0] * 10
    with pytest.raises(ValueError, match="constant or cosine"):
        lr_factor(0, 10, schedule="step")


def test_the_optimisers_get_the_scheduled_rate(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "lr", 3, lr=1e-3, lr_d=2e-3, warmup=2))
    seen = []
    for _ in range(3):
        tr.train_step()
        seen.append((tr.opt_g.param_groups[0]["lr"], tr.opt_d.param_groups[0]["lr"]))
    tr.close()
    assert seen == [(5e-4, 1e-3), (1e-3, 2e-3), (1e-3, 2e-3)]


# ---------------------------------------------------------------- EMA
def test_ema_update_is_the_moving_average_and_copies_buffers() -> None:
    live = nn.BatchNorm1d(3)
    ema = EMA(live, 0.75)
    start = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
        live.running_mean.fill_(2.0)
    ema.update(live)
    for e, s, p in zip(ema.module.parameters(), start, live.parameters(), strict=True):
        torch.testing.assert_close(e, 0.75 * s + 0.25 * p)
        assert not e.requires_grad
    assert torch.equal(ema.module.running_mean, torch.full((3,), 2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        EMA(live, 1.0)


# ---------------------------------------------------------------- style targets
def test_cached_whole_style_targets_equal_freshly_computed_ones(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "t", 1, **RECIPE))
    assert tr.whole is not None
    got = tr.whole.get([1, 0, 1])
    assert len(tr.whole) == 2  # each style image encoded once
    for k, i in enumerate([1, 0, 1]):
        # by hand: the style image at style_size, padded as inference pads it, encoded, its statistics
        img = resize_longest(Image.fromarray(tr.styles.images[i]), 48)
        x, _ = FN.pad_to_multiple(to_tensor(img))
        with torch.no_grad():
            fresh = StyleTargets.from_feats({t: v.float() for t, v in tr.encoder(x, STYLE_LAYERS).items()})
        for layer in STYLE_LAYERS:
            torch.testing.assert_close(got.grams[layer][k], fresh.grams[layer][0])
            torch.testing.assert_close(got.means[layer][k], fresh.means[layer][0])
            torch.testing.assert_close(got.stds[layer][k], fresh.stds[layer][0])
        torch.testing.assert_close(got.cond[k], fresh.cond[0])
    tr.close()


def test_targets_from_feats_give_the_old_style_losses() -> None:
    g = torch.Generator().manual_seed(0)
    feats = {k: torch.rand(2, c, 6, 6, generator=g) for k, c in zip(STYLE_LAYERS, (4, 8, 8, 16))}
    out = [torch.rand(2, c, 5, 5, generator=g) for c in (4, 8, 8, 16)]
    t = StyleTargets.from_feats(feats)
    s = [feats[k] for k in STYLE_LAYERS]
    torch.testing.assert_close(FN.gram_loss_to(out, [t.grams[k] for k in STYLE_LAYERS]), FN.gram_style_loss(out, s))
    torch.testing.assert_close(FN.mean_std_loss_to(out, [t.means[k] for k in STYLE_LAYERS],
                                                   [t.stds[k] for k in STYLE_LAYERS]), FN.mean_std_style_loss(out, s))


def test_crops_grow_for_the_last_part(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "g", 4, late_size=48, late_from=0.5))
    assert [tr.crop_size(s) for s in range(4)] == [SIZE, SIZE, 48, 48]
    tr.close()


def test_content_and_style_bank_sizes_set_the_longest_side_but_keep_a_full_crop(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "cs", 2, content_size=48, style_bank_size=48, late_size=40))
    assert [im.shape[:2] for im in tr.contents.images] == [(42, 48), (48, 42)]  # stored 64×56 and 56×64
    # stored 72×60 and 60×80: long side 48 would leave the second's short side at 36, under the 40 px crop
    assert [im.shape[:2] for im in tr.styles.images] == [(40, 48), (53, 40)]
    tr.close()


def test_style_augment_adds_hue_turned_quarter_turned_variants(data: Path, tmp_path: Path) -> None:
    import numpy as np

    from semstyle.training.data import style_variant

    tr = Trainer(_cfg(data, tmp_path / "aug", 2, style_augment=3))
    assert len(tr.styles) == 2 * 4
    orig = tr.styles.images[0]
    assert tr.styles.images[0] is orig or np.array_equal(tr.styles.images[0], orig)
    v1, v2 = tr.styles.images[1], tr.styles.images[2]
    assert v1.shape == orig.shape[1::-1] + (3,) and v2.shape == orig.shape  # a quarter turn, then a half turn
    luma = np.array([0.299, 0.587, 0.114])
    # the hue turns keep the luminance (up to clipping and rounding) and change the colour
    assert abs(float((np.rot90(v2, 2) @ luma).mean() - (orig @ luma).mean())) < 2.0
    assert np.abs(np.rot90(v2, 2).astype(float) - orig).mean() > 5.0
    assert np.array_equal(style_variant(orig, 4, 4), orig)  # a whole turn is the original
    tr.close()


@pytest.mark.parametrize(("changes", "match"), [
    ({"content_size": 16}, "content_size must be 0 or from the crop side"),
    ({"style_augment": 17}, "style_augment must be from 0 to 16"),
    ({"style_bank_size": 16}, "style_bank_size must be 0 or from the crop side"),
    ({"schedule": "step"}, "constant or cosine"), ({"ema": 1.0}, r"ema must be in \[0, 1\)"),
    ({"style_targets": "all"}, "crop or whole"), ({"late_size": 36}, "multiple of 8"),
    ({"warmup": -1}, "warmup must be >= 0"), ({"late_from": 1.5}, r"late_from must be in \[0, 1\]")])
def test_recipe_options_are_checked(data: Path, tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        _cfg(data, tmp_path, 2, **changes).check()


# ---------------------------------------------------------------- resume with everything on
def test_resume_with_ema_schedule_whole_targets_and_growing_crops_is_exact(data: Path, tmp_path: Path) -> None:
    ref = Trainer(_cfg(data, tmp_path / "ref", 4, ckpt_every=2, lr=1e-3, **RECIPE))
    ref.fit(progress=False)
    ref.close()
    first = Trainer(_cfg(data, tmp_path / "cut", 4, ckpt_every=2, lr=1e-3, **RECIPE))
    real_step = first.train_step

    def dies_at_2() -> dict[str, float]:
        if first.step == 2:  # after the checkpoint of step 2
            raise KeyboardInterrupt
        return real_step()

    first.train_step = dies_at_2  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.fit(progress=False)
    first.close()
    assert latest_checkpoint(tmp_path / "cut").name == "step_0000002"
    resumed = Trainer(_cfg(data, tmp_path / "cut", 4, ckpt_every=2, lr=1e-3, **RECIPE), resume=True)
    assert resumed.step == 2
    resumed.fit(progress=False)
    resumed.close()
    assert resumed.ema is not None and ref.ema is not None
    for a, b in ((resumed.decoder, ref.decoder), (resumed.ema.module, ref.ema.module), (resumed.disc, ref.disc)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-7, msg=k)
    # the EMA really averages: it differs from the live decoder
    assert any(not torch.equal(x, y) for x, y in zip(ref.ema.module.parameters(), ref.decoder.parameters()))
