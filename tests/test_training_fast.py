"""The efficient trainer's pieces (issue 14): the feature-space discriminator, the cached style feature maps
it judges as real, the cached content encodings, the scores logged from the loss pass, ``--set`` overrides,
and exact resume with all of them on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from test_training import SIZE, _cfg, _one_line_error, make_data, one_thread, use_fake_trainer
from test_training_recipe import RECIPE

from semstyle import functional as FN
from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.io.images import resize_longest, to_tensor
from semstyle.losses import GeneratorObjective, LossWeights, discriminator_loss, discriminator_terms
from semstyle.models.discriminator import FeatureDiscriminator, FeatureDiscriminatorConfig
from semstyle.training.config import TrainConfig, apply_overrides
from semstyle.training.data import step_generator
from semstyle.training.trainer import Trainer

__all__ = ["one_thread"]  # test_training's autouse fixture: one thread for these tiny tensors
FEATURE: dict[str, Any] = {"discriminator": "feature", "style_targets": "whole", "style_size": 48}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("fast_data"), ((64, 56), (56, 64), (72, 60), (60, 80)))


def _feats(n: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"relu3_1": torch.rand(n, 256, size // 4, size // 4, generator=g),
            "relu4_1": torch.rand(n, 512, size // 8, size // 8, generator=g)}


# ---------------------------------------------------------------- the feature-space discriminator
def test_feature_discriminator_scores_each_tap_at_half_its_resolution() -> None:
    d = FeatureDiscriminator()
    scores = d(_feats(3, 64), torch.randn(3, 1920))
    assert [tuple(s.shape) for s in scores] == [(3, 1, 8, 8), (3, 1, 4, 4)]  # relu3_1 16² → 8², relu4_1 8² → 4²
    assert d.score(_feats(3, 64), torch.randn(3, 1920)).shape == (3,)
    assert d.space == "feature"
    with pytest.raises(ValueError, match="taps must be among"):
        FeatureDiscriminator(FeatureDiscriminatorConfig(taps=("relu5_1",)))


def test_the_condition_changes_the_feature_score() -> None:
    d = FeatureDiscriminator()
    f, v = _feats(2, 32), torch.randn(2, 1920)
    assert not torch.allclose(d.score(f, v), d.score(f, v.roll(1, 0)))  # projection: the style vector matters


def test_the_objective_hands_its_own_features_to_a_feature_discriminator(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "o", 1, **FEATURE))
    out = torch.rand(2, 3, SIZE, SIZE, requires_grad=True)
    target = torch.rand(2, 512, SIZE // 8, SIZE // 8)
    s_targets = tr.whole.get([0, 1]) if tr.whole is not None else None
    assert s_targets is not None
    tr.disc.eval()  # spectral norm: no power iteration between the two passes
    objective = GeneratorObjective(tr.encoder, LossWeights(adv=1.0))
    terms, feats = objective.evaluate(out, target, s_targets, tr.disc, s_targets.cond)  # type: ignore[arg-type]
    with torch.no_grad():
        fresh = tr.encoder(out, ("relu3_1", "relu4_1"))
        expected = FN.lsgan_g_loss(tr.disc(fresh, s_targets.cond))
    torch.testing.assert_close(terms["adv"], expected)  # judged on the features the losses were computed from
    torch.testing.assert_close(feats["relu4_1"], fresh["relu4_1"])
    terms["adv"].backward()
    assert out.grad is not None and out.grad.abs().sum() > 0  # its gradient reaches the image through VGG
    tr.close()


class _Const(torch.nn.Module):
    """A judge that scores every sample ``good`` under condition 1 and ``bad`` otherwise."""

    space = "image"

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        return [torch.where(cond[:, :1, None, None] > 0, 1.0, 0.25).expand(x.shape[0], 1, 2, 2)]


def test_discriminator_terms_give_the_loss_and_the_scores_of_the_same_pass() -> None:
    x, good, other = torch.rand(2, 3, 8, 8), torch.ones(2, 4), -torch.ones(2, 4)
    loss, scores = discriminator_terms(_Const(), x, x, good, other)
    assert float(loss) == pytest.approx(float(discriminator_loss(_Const(), x, x, good, other)))
    assert scores == {"real": 1.0, "fake": 1.0, "mismatch": 0.25}
    assert float(loss) == pytest.approx(0.5 * 1.0 + 0.5 * 0.5 * 0.25**2)  # ½(0)² + ½·1² , + ½·½·0.25²


# ---------------------------------------------------------------- cached encodings
def _slice_matches(window: torch.Tensor, full: torch.Tensor, cells: int) -> bool:
    """Is ``window`` (1, C, n, n) exactly ``full[..., y:y+n, x:x+n]`` at some offset on a ``cells`` grid?"""
    n = window.shape[-1]
    return any(torch.equal(window, full[..., y : y + n, x : x + n])
               for y in range(0, full.shape[-2] - n + 1, cells) for x in range(0, full.shape[-1] - n + 1, cells))


def test_style_windows_are_slices_of_the_whole_style_encoding(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "w", 1, **FEATURE))
    assert tr.whole is not None
    win = tr.whole.windows(step_generator(0, 0), [1, 0], SIZE)
    assert {k: tuple(v.shape) for k, v in win.items()} == {"relu3_1": (2, 256, 8, 8), "relu4_1": (2, 512, 4, 4)}
    for k, i in enumerate([1, 0]):
        x, _ = FN.pad_to_multiple(to_tensor(resize_longest(Image.fromarray(tr.styles.images[i]), 48)))
        with torch.no_grad():
            full = {t: v.half().float() for t, v in tr.encoder(x, ("relu3_1", "relu4_1")).items()}
        assert _slice_matches(win["relu4_1"][k : k + 1], full["relu4_1"], 1)
        assert _slice_matches(win["relu3_1"][k : k + 1], full["relu3_1"], 2)  # the same place, 2 cells per cell
    tr.close()


def test_content_crops_are_windows_of_the_whole_photo_encoding(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "c", 1, content_cache=True))
    assert tr.content_bank is not None
    feats, pixels = tr.content_bank.crops(step_generator(0, 0), 6, SIZE)
    assert feats.shape == (6, 512, SIZE // 8, SIZE // 8) and pixels.shape == (6, 3, SIZE, SIZE)
    assert len(tr.content_bank) <= 4  # two photos, each at most twice (as is and mirrored)
    photos = [torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255 for im in tr.contents.images]
    for k in range(6):
        hits = []
        for x in photos:
            for flipped in (x, x.flip(-1)):
                if _slice_matches(pixels[k : k + 1], flipped, 8):
                    with torch.no_grad():
                        full = tr.encoder(FN.pad_to_multiple(flipped)[0], ("relu4_1",))["relu4_1"].half().float()
                    hits.append(_slice_matches(feats[k : k + 1], full, 1))
        assert hits and all(hits)  # the pixel crop's place in its photo is where its features came from
    tr.close()


def test_a_photo_smaller_than_the_crop_is_refused(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "s", 1, content_cache=True))
    assert tr.content_bank is not None
    with pytest.raises(ValueError, match="smaller than the crop"):
        tr.content_bank.crops(step_generator(0, 0), 2, 128)
    tr.close()


# ---------------------------------------------------------------- training with them
def test_feature_training_updates_both_networks_and_logs_the_pass_scores(data: Path, tmp_path: Path) -> None:
    tr = Trainer(_cfg(data, tmp_path / "t", 2, content_cache=True, **FEATURE))
    d0 = {k: v.clone() for k, v in tr.disc.state_dict().items()}
    g0 = {k: v.clone() for k, v in tr.decoder.state_dict().items()}
    history = tr.fit(progress=False)
    tr.close()
    assert isinstance(tr.disc, FeatureDiscriminator)
    assert any(not torch.equal(v, d0[k]) for k, v in tr.disc.state_dict().items())
    assert any(not torch.equal(v, g0[k]) for k, v in tr.decoder.state_dict().items())
    assert {"g/adv", "d/loss", "d/score_real", "d/score_fake"} <= set(history[-1])


def test_resume_with_the_feature_discriminator_and_the_content_cache_is_exact(data: Path, tmp_path: Path) -> None:
    kw = {**RECIPE, **FEATURE, "content_cache": True, "ckpt_every": 2, "lr": 1e-3}
    ref = Trainer(_cfg(data, tmp_path / "ref", 4, **kw))
    ref.fit(progress=False)
    ref.close()
    cut = Trainer(_cfg(data, tmp_path / "cut", 4, **kw))
    while cut.step < 2:
        cut.train_step()
    cut.save()
    cut.close()
    resumed = Trainer(_cfg(data, tmp_path / "cut", 4, **kw), resume=True)  # fresh caches, same crops
    resumed.fit(progress=False)
    resumed.close()
    for a, b in ((resumed.decoder, ref.decoder), (resumed.disc, ref.disc)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-7, msg=k)


def test_targets_from_whole_images_need_no_style_crop_encoding(data: Path, tmp_path: Path) -> None:
    """With whole targets and a feature D the style crops are never encoded: the encoder sees only outputs."""
    tr = Trainer(_cfg(data, tmp_path / "e", 1, content_cache=True, **FEATURE))
    assert tr.whole is not None and tr.content_bank is not None
    tr.whole.get([0, 1])
    tr.content_bank.fill()
    shapes: list[tuple[int, ...]] = []
    hook = tr.encoder.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    tr.train_step()
    hook.remove()
    tr.close()
    assert shapes == [(2, 3, SIZE, SIZE)]  # one VGG pass a step: the decoded batch's


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize(("changes", "match"), [
    ({"discriminator": "pixel"}, "image or feature"), ({"discriminator": "feature", "d_taps": ("relu5_1",)}, "d_taps"),
    ({"discriminator": "feature", "discriminator_init": "finetuned"}, "judges images"),
    ({"content_cache": True, "semantic": "auto"}, "content_cache needs semantic none")])
def test_new_options_are_checked(data: Path, tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        _cfg(data, tmp_path, 2, **changes).check()


def test_overrides_reach_nested_fields_and_read_values_as_yaml() -> None:
    base = {"steps": 10, "weights": {"adv": 0.05, "tv": 0.0}}
    got = apply_overrides(base, ["weights.adv=0", "discriminator=feature", "d_taps=[relu4_1]", "content_cache=true",
                                 "discriminator_init="])
    assert got == {"steps": 10, "weights": {"adv": 0, "tv": 0.0}, "discriminator": "feature", "d_taps": ["relu4_1"],
                   "content_cache": True, "discriminator_init": ""}
    assert base["weights"] == {"adv": 0.05, "tv": 0.0}  # the input is not changed
    cfg = TrainConfig.from_dict(got)
    assert cfg.weights.adv == 0 and cfg.d_taps == ("relu4_1",) and cfg.content_cache is True
    with pytest.raises(InputError, match="KEY=VALUE"):
        apply_overrides(base, ["weights.adv"])
    with pytest.raises(InputError, match="not a mapping"):
        apply_overrides(base, ["steps.x=1"])


def test_cli_set_overrides_the_config_file(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = use_fake_trainer(monkeypatch)
    (tmp_path / "c.yaml").write_text(f"content_dir: {data / 'content'}\nstyle_dir: {data / 'style'}\n"
                                     "weights:\n  adv: 0.05\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--set", "weights.adv=0.2", "--set",
                 "discriminator=feature", "--out", str(tmp_path / "r")]) == 0
    assert seen[0].weights.adv == 0.2 and seen[0].discriminator == "feature"


@pytest.mark.parametrize(("pair", "match"), [("weights.adv", "KEY=VALUE"), ("weights.nope=1", "nope"),
                                             ("stpes=3", "stpes"), ("lr_d=fast", "lr_d must be a float")])
def test_cli_bad_set_is_one_line(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], pair: str,
                                 match: str) -> None:
    code = main(["train", "--content-dir", str(data / "content"), "--style-dir", str(data / "style"),
                 "--out", str(tmp_path / "r"), "--set", pair])
    _one_line_error(capsys, code, match)
    assert not (tmp_path / "r").exists()

