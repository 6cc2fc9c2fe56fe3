"""The temporal regularisation (issue 30): the random motions, the compound loss, the trainer's term, the chained
flow of the long-range error, and the shipped temporally trained decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_training import SIZE, make_data

from semstyle import assets, motion
from semstyle import functional as FN
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, check_networks
from semstyle.errors import InputError, WeightsError
from semstyle.losses import LossWeights
from semstyle.models import Decoder
from semstyle.models.weights import load_into, resolve
from semstyle.training.config import TrainConfig
from semstyle.training.temporal import Motion, identity_grid, moved, random_grids
from semstyle.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest


def _image(n: int = 2, h: int = 24, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the pure functions
def test_the_identity_warp_changes_nothing_and_costs_nothing() -> None:
    x = _image()
    grid = identity_grid(2, 24, 32)
    # sampling at the pixel centres: bilinear weights are exactly 1 and 0 up to float rounding of the coordinates
    torch.testing.assert_close(FN.warp_by_grid(x, grid), x, atol=1e-5, rtol=0)
    assert FN.grid_inside(grid).min() == 1.0
    mask = FN.grid_inside(grid)
    assert float(FN.temporal_loss(FN.warp_by_grid(x, grid), x, mask)) < 1e-10
    none = random_grids(torch.Generator().manual_seed(3), 2, 24, 32, Motion(shift=0, rotate=0, zoom=0, flow=0))
    torch.testing.assert_close(none, grid, atol=1e-6, rtol=0)


def test_a_whole_pixel_shift_moves_the_image_and_marks_the_new_border() -> None:
    x = _image(1)
    grid = identity_grid(1, 24, 32).clone()
    grid[..., 0] += 2 * 3 / 32  # sample 3 px to the right: the picture moves 3 px left
    got = FN.warp_by_grid(x, grid)
    torch.testing.assert_close(got[..., :, :-3], x[..., :, 3:], atol=1e-5, rtol=0)
    inside = FN.grid_inside(grid)
    assert inside[..., :, :-3].min() == 1.0 and inside[..., :, -1].max() == 0.0  # the last column comes from outside
    # the loss is the mean square over the marked pixels and the channels
    other = got + 0.1
    assert float(FN.temporal_loss(other, got, inside)) == pytest.approx(0.01, rel=1e-4)


def test_random_motions_are_seeded_bounded_and_differ_per_sample() -> None:
    m = Motion(shift=4.0, rotate=1.0, zoom=0.02, flow=1.0)
    a = random_grids(torch.Generator().manual_seed(7), 3, 64, 64, m)
    b = random_grids(torch.Generator().manual_seed(7), 3, 64, 64, m)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    px = (a - identity_grid(3, 64, 64)) * 32  # normalised units → pixels (64 px: 2 units)
    # bound: shift 4 + flow 1 + (rotation 1° + zoom 2 %) of the 45 px from the centre to a corner ≈ 6.7 px
    assert float(px.norm(dim=-1).max()) < 4 + 1 + 45 * (np.radians(1) + 0.02) + 0.5
    assert float(px.norm(dim=-1).mean()) > 0.3  # it does move
    assert not torch.allclose(px[0], px[1])
    shifted = moved(_image(3, 64, 64), a, torch.Generator().manual_seed(0), 0.02)
    assert shifted.shape == (3, 3, 64, 64) and 0.0 <= float(shifted.min()) and float(shifted.max()) <= 1.0


def test_bad_shapes_and_motions_are_refused() -> None:
    with pytest.raises(ValueError, match="grid must be"):
        FN.warp_by_grid(_image(2), identity_grid(1, 24, 32))
    with pytest.raises(ValueError, match="mask"):
        FN.temporal_loss(_image(2), _image(2), torch.ones(2, 3, 24, 32))
    with pytest.raises(ValueError, match="shift"):
        Motion(shift=-1).check()
    with pytest.raises(ValueError, match="zoom"):
        Motion(zoom=0.7).check()


# ----------------------------------------------------------------------------- the chained flow
def test_chained_flow_of_a_steady_pan_adds_up_and_loses_the_border() -> None:
    h, w, step, k = 20, 40, 2.0, 4
    flows = []
    for _ in range(6):  # frame t shows the scene moved `step` px left: each pixel was `step` px to the left before
        back = np.zeros((h, w, 2), np.float32)
        back[..., 0] = -step
        flows.append((back, np.ones((h, w), bool)))
    f, ok = motion.chained(flows, 5, k)
    np.testing.assert_allclose(f[:, k * 2 + 2 :, 0], -step * k, atol=1e-4)  # away from the replicated border
    assert not ok[:, : int(step * k)].any() and ok[:, int(step * k) + 1 :].all()
    # a frame whose content is the earlier one moved along the chain has no long-range error
    xx = np.arange(w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    then = (xx * 5).astype(np.uint8)
    now = ((xx - step * k).clip(0) * 5).astype(np.uint8)
    assert motion.carried_error(then, now, f, ok) < 1e-9
    with pytest.raises(ValueError, match="k <= t"):
        motion.chained(flows, 3, 4)


# ----------------------------------------------------------------------------- the trainer's term
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("temporal_data"), ((48, 40), (40, 44), (44, 40), (40, 48)))


def _cfg(data: Path, out: Path, steps: int, temporal: float, motion_: Motion, **kw: object) -> TrainConfig:
    weights = LossWeights(content=1.0, style_gram=0.0, style_meanstd=1.0, tv=0.0, adv=0.0, temporal=temporal)
    base: dict[str, object] = dict(content_dir=str(data / "content"), style_dir=str(data / "style"), out=str(out),
                                   steps=steps, size=SIZE, batch=2, lr=1e-4, d_steps=0, log_every=1, ckpt_every=100,
                                   image_every=0, precision="fp32", weights=weights, motion=motion_)
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_no_motion_gives_no_temporal_term(data: Path, tmp_path: Path) -> None:
    still = Motion(shift=0, rotate=0, zoom=0, flow=0, noise=0)
    tr = Trainer(_cfg(data, tmp_path / "run", 1, 1.0, still))
    stats = tr.train_step()
    tr.close()
    assert stats["g/temporal"] < 1e-8, stats  # the same crop decoded twice: exactly equal up to rounding


def _pan_error(decoder: torch.nn.Module, encoder: torch.nn.Module, style4: torch.Tensor) -> float:
    """Temporal error of ``decoder`` on a 3 px pan over a bundled photo (not a training image): the output of the
    moved frame against the moved output, inside the frame."""
    photo = Image.open(assets.content_images()[0]).convert("RGB").resize((72, 48))
    a = torch.from_numpy(np.asarray(photo.crop((0, 8, 64, 40)), np.float32) / 255).permute(2, 0, 1)[None]
    b = torch.from_numpy(np.asarray(photo.crop((3, 8, 67, 40)), np.float32) / 255).permute(2, 0, 1)[None]
    grid = identity_grid(1, 32, 64).clone()
    grid[..., 0] += 2 * 3 / 64  # b is a sampled 3 px to the right
    with torch.no_grad():
        m, s = FN.mean_std(style4)
        out_a = decoder(FN.adain_from_stats(encoder(a, ("relu4_1",))["relu4_1"], m, s))
        out_b = decoder(FN.adain_from_stats(encoder(b, ("relu4_1",))["relu4_1"], m, s))
    inside = FN.grid_inside(grid, 0.1)
    return float(FN.temporal_loss(out_b, FN.warp_by_grid(out_a, grid), inside))


def test_a_few_steps_lower_the_temporal_error_on_a_pan_it_never_saw(data: Path, tmp_path: Path) -> None:
    pan = Motion(shift=4.0, rotate=0.0, zoom=0.0, flow=0.0, noise=0.0)  # the motion a pan makes
    tr = Trainer(_cfg(data, tmp_path / "run", 8, 1000.0, pan, lr=3e-4))
    style = torch.from_numpy(np.asarray(Image.open(data / "style" / "x.png"), np.float32) / 255).permute(2, 0, 1)
    s4 = tr.encoder(style[None], ("relu4_1",))["relu4_1"]
    before = _pan_error(tr.decoder, tr.encoder, s4)
    hist = tr.fit(progress=False)
    after = _pan_error(tr.decoder, tr.encoder, s4)
    tr.close()
    assert all("g/temporal" in h for h in hist)
    # measured: 0.067 → 0.023 (−65 %) in 8 steps (fp32, one thread); the bound asks for −30 %, far above rounding
    assert after < 0.7 * before, (before, after)


def test_the_config_checks_the_temporal_term(tmp_path: Path) -> None:
    base = {"content_dir": "c", "style_dir": "s"}
    cfg = TrainConfig.from_dict({**base, "weights": {"temporal": 300.0}, "motion": {"shift": 2.0}})
    assert cfg.weights.temporal == 300.0 and cfg.motion.shift == 2.0 and cfg.to_json()["motion"]["shift"] == 2.0
    with pytest.raises(InputError, match="unknown motion keys"):
        TrainConfig.from_dict({**base, "motion": {"shfit": 2.0}})
    with pytest.raises(InputError, match="semantic: none"):
        TrainConfig(**base, semantic="auto", weights=LossWeights(temporal=1.0)).check()
    with pytest.raises(InputError, match="motion shift"):
        TrainConfig(**base, motion=Motion(shift=40.0)).check()
    with pytest.raises(InputError, match="weights.temporal"):
        TrainConfig(**base, weights=LossWeights(temporal=-1.0)).check()


# ----------------------------------------------------------------------------- the shipped decoder
def test_the_temporal_decoder_is_shipped_and_differs_from_the_pretrained_one() -> None:
    tuned, pre = Decoder(), Decoder()
    load_into(tuned, "temporal", "decoder")
    load_into(pre, "pretrained", "decoder")
    diffs = [float((a - b).abs().max()) for a, b in zip(tuned.state_dict().values(), pre.state_dict().values())]
    assert max(diffs) > 1e-3 and all(torch.isfinite(p).all() for p in tuned.parameters())
    with pytest.raises(WeightsError, match="temporally trained decoder"):
        resolve("temporal", "encoder")
    with pytest.raises(ValueError, match="no temporal decoder"):
        check_networks(NetworkConfig(model="fast", decoder="temporal"))


def test_video_with_the_temporal_decoder_and_no_carries_equals_the_still_path(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    photo = Image.open(assets.content_images()[0]).convert("RGB").resize((90, 60))
    for t in range(3):
        photo.crop((3 * t, 0, 3 * t + 64, 48)).save(frames / f"f{t}.png")
    style = str(assets.style_images()[1])
    common = ["--decoder", "temporal", "--precision", "fp32", "--size", "64", "--style-size", "64"]
    assert main(["video", str(frames), style, "-o", str(tmp_path / "out"), "--consistency", "0", "--hidden", "0",
                 *common]) == 0
    for t in range(3):
        assert main(["stylize", str(frames / f"f{t}.png"), style, "-o", str(tmp_path / f"s{t}.png"), *common]) == 0
        video = np.asarray(Image.open(tmp_path / "out" / f"f{t}.png"), np.int16)
        still = np.asarray(Image.open(tmp_path / f"s{t}.png"), np.int16)
        assert video.shape == still.shape == (48, 64, 3)
        assert np.abs(video - still).max() <= 1


# ----------------------------------------------------------------------------- adaptation
def test_adapt_takes_the_temporal_term_for_the_decoder_and_the_student(photos: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from semstyle.models.style_model import load_style_model
    from semstyle.training import adapt as A
    from semstyle.training.student import StudentRecipe

    style = assets.style_images()[3]
    out = tmp_path / "wave.safetensors"
    recipe = StudentRecipe(steps=2, crop=32, margin=0, batch=2, side=64, images=3, ckpt_every=2, temporal=300.0)
    A.adapt(style, out, contents=[photos], steps=2, crop=64, style_size=96, precision="fp32", progress=False,
            temporal=300.0, student=True, student_recipe=recipe)
    meta = load_style_model(out).meta
    assert meta["recipe"]["weights"]["temporal"] == 300.0 and meta["student_recipe"]["temporal"] == 300.0
    rows = (A.run_folder(out) / "metrics.jsonl").read_text().splitlines()
    assert all("g/temporal" in r for r in rows) and rows
    rc = main(["adapt", str(style), "--contents", str(photos), "-o", str(tmp_path / "m.safetensors"),
               "--temporal", "-1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "temporal must be in [0, 10000]" in err[0], err
    assert not (tmp_path / "m.safetensors").exists()
