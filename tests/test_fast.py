"""The distilled fast model: shapes, the distillation trainer (learns, resumes exactly), the shipped
weights (sha256, loading), a quality floor on a fixed pair, semantic mode, and its error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from semstyle import Stylizer
from semstyle import functional as FN
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.models.fast import FAST_TAPS, FastConfig, FastDecoder, FastEncoder, embeddings
from semstyle.models.weights import packaged_file, sha256_of
from semstyle.training.checkpoint import latest_checkpoint
from semstyle.training.distill import DistillConfig, Distiller, nmse

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest

ROOT = Path(__file__).resolve().parents[1]

ASSETS = Path(__file__).resolve().parents[1] / "src" / "semstyle" / "assets"


# ---------------------------------------------------------------- networks
def test_encoder_taps_have_the_teachers_resolutions_at_a_quarter_width() -> None:
    enc = FastEncoder()
    feats = enc(torch.rand(2, 3, 64, 48), FAST_TAPS)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "relu1_1": (2, 16, 64, 48), "relu2_1": (2, 32, 32, 24), "relu3_1": (2, 64, 16, 12), "relu4_1": (2, 128, 8, 6)}
    assert all(bool((v >= 0).all()) for v in feats.values())  # taps are after ReLU
    assert tuple(FastDecoder()(feats["relu4_1"]).shape) == (2, 3, 64, 48)


def test_encoder_stops_at_the_deepest_tap_asked_for() -> None:
    enc = FastEncoder()
    x = torch.rand(1, 3, 32, 32)
    ran: list[int] = []
    hooks = [b.register_forward_pre_hook(lambda m, i, k=k: ran.append(k)) for k, b in enumerate(enc.blocks[3])]
    assert list(enc(x, ("relu2_1",))) == ["relu2_1"]
    assert ran == []  # block 4 (relu3_1 → relu4_1) never ran
    enc(x, ("relu4_1",))
    assert ran == list(range(len(enc.blocks[3])))
    for h in hooks:
        h.remove()
    torch.testing.assert_close(enc(x, ("relu2_1",))["relu2_1"], enc(x, FAST_TAPS)["relu2_1"])
    with pytest.raises(ValueError, match="relu5_1"):
        enc(x, ("relu5_1",))


def test_student_does_about_a_sixteenth_of_the_teachers_work() -> None:
    from semstyle.models import Decoder, VGGEncoder

    def params(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    ratio = (params(FastEncoder()) + params(FastDecoder())) / (params(VGGEncoder()) + params(Decoder()))
    assert ratio < 1 / 12, ratio  # VGGEncoder also holds relu5_1's layers, so parameters are a loose proxy


def test_embeddings_map_student_taps_to_teacher_channels() -> None:
    emb = embeddings(FastConfig())
    feats = FastEncoder()(torch.rand(1, 3, 32, 32), FAST_TAPS)
    assert [emb[t](feats[t]).shape[1] for t in FAST_TAPS] == [64, 128, 256, 512]


def test_nmse_is_scale_free() -> None:
    t = torch.randn(2, 8, 4, 4)
    assert float(nmse(t, t)) == 0.0
    torch.testing.assert_close(nmse(2 * t, t), nmse(20 * t, 10 * t))
    torch.testing.assert_close(nmse(torch.zeros_like(t), t), torch.tensor(1.0))


# ---------------------------------------------------------------- distillation
def _pattern(w: int, h: int, seed: int, freq: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ph = rng.uniform(0, 6.28, 3)
    img = np.stack([0.5 + 0.45 * np.sin(freq * (xx * (k + 1) + yy * (2 - k)) / 3 + ph[k]) for k in range(3)], -1)
    return (np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("distill_data")
    for sub, specs in (("content", [(0, 0.15), (1, 0.2)]), ("style", [(2, 2.5), (3, 1.8)])):
        (root / sub).mkdir()
        for seed, freq in specs:
            Image.fromarray(_pattern(40, 40, seed, freq)).save(root / sub / f"{seed}.png")
    return root


def _cfg(data: Path, out: Path, steps: int) -> DistillConfig:
    return DistillConfig(content_dir=str(data / "content"), style_dir=str(data / "style"), out=str(out), steps=steps,
                         size=32, batch=2, lr=2e-3, precision="fp32", log_every=1, ckpt_every=3)


def _rows(run: Path) -> list[dict[str, float]]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]


def test_distillation_learns_and_resumes_exactly(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = Distiller(_cfg(data, tmp_path / "a", 8))
    ref.fit(progress=False)
    rows = _rows(tmp_path / "a")
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert np.mean([r["total"] for r in rows[-2:]]) < 0.8 * np.mean([r["total"] for r in rows[:2]]), rows
    assert {"feat", "pix", "perc", "rec", "lr"} <= set(rows[0])

    first = Distiller(_cfg(data, tmp_path / "b", 8))
    real_step = first.train_step

    def interrupted() -> dict[str, float]:
        if first.step == 4:  # step 4 is logged, not checkpointed (ckpt_every=3)
            raise KeyboardInterrupt("stopped at step 4")
        return real_step()

    monkeypatch.setattr(first, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 4"):  # ours, not a Ctrl-C
        first.fit(progress=False)
    assert latest_checkpoint(tmp_path / "b").name == "step_0000003"
    resumed = Distiller(_cfg(data, tmp_path / "b", 8), resume=True)
    assert resumed.step == 3
    resumed.fit(progress=False)
    got = _rows(tmp_path / "b")
    assert [r["step"] for r in got] == list(range(1, 9))  # the lost step's line was replaced
    torch.testing.assert_close(torch.tensor([r["total"] for r in got], dtype=torch.float64),
                               torch.tensor([r["total"] for r in rows], dtype=torch.float64), rtol=1e-5, atol=1e-7)
    for k, v in ref.decoder.state_dict().items():
        torch.testing.assert_close(resumed.decoder.state_dict()[k], v, rtol=1e-5, atol=1e-7)


def test_distill_refuses_an_existing_run_and_a_missing_one(data: Path, tmp_path: Path) -> None:
    from semstyle.errors import InputError

    Distiller(_cfg(data, tmp_path / "r", 3)).fit(progress=False)
    with pytest.raises(InputError, match="--resume"):
        Distiller(_cfg(data, tmp_path / "r", 3))
    with pytest.raises(InputError, match="no checkpoint"):
        Distiller(_cfg(data, tmp_path / "none", 3), resume=True)


def test_distill_config_checks_types_and_ranges(data: Path, tmp_path: Path) -> None:
    from semstyle.errors import InputError

    with pytest.raises(InputError, match="'lr' must be a float, got '2e-3'"):
        _cfg(data, tmp_path / "x", 3).updated(lr="2e-3").check()
    with pytest.raises(InputError, match="ckpt_every"):
        _cfg(data, tmp_path / "x", 3).updated(ckpt_every=0).check()
    with pytest.raises(InputError, match="init must be kaiming or default"):
        _cfg(data, tmp_path / "x", 3).updated(init="teacher").check()


def test_resume_refuses_a_changed_config(data: Path, tmp_path: Path) -> None:
    from semstyle.errors import InputError

    Distiller(_cfg(data, tmp_path / "r", 3)).fit(progress=False)
    with pytest.raises(InputError, match="different batch, lr"):
        Distiller(_cfg(data, tmp_path / "r", 6).updated(batch=3, lr=1e-3), resume=True)
    assert Distiller(_cfg(data, tmp_path / "r", 6), resume=True).step == 3  # more steps is allowed


def test_warm_start_continues_the_student_and_adds_the_style_terms(data: Path, tmp_path: Path) -> None:
    """Stage 2 (configs/distill_stage2.yaml): init_from loads stage 1's student; the AdaIN terms are logged and
    the record of the shipped model chains both stages (scripts/ship_weights.py)."""
    import importlib.util

    Distiller(_cfg(data, tmp_path / "s1", 3)).fit(progress=False)
    assert all(r["style"] == r["content"] == 0 for r in _rows(tmp_path / "s1"))  # off unless weighted
    cfg2 = _cfg(data, tmp_path / "s2", 6).updated(init_from=str(tmp_path / "s1"), w_style=1.0, w_content=1.0)
    second = Distiller(cfg2)
    stage1 = latest_checkpoint(tmp_path / "s1")
    for name, module in (("fast_encoder", second.encoder), ("fast_decoder", second.decoder)):
        for k, v in load_file(str(stage1 / f"{name}.safetensors")).items():
            torch.testing.assert_close(module.state_dict()[k], v)
    assert second.step == 0  # a fresh run (schedule and optimiser), not a resume
    second.fit(progress=False)
    rows = _rows(tmp_path / "s2")
    assert all(r["style"] > 0 and r["content"] > 0 for r in rows)
    for r in rows:  # the total is the weighted sum, style and content included
        want = r["feat"] + 10 * r["pix"] + r["perc"] + 5 * r["rec"] + r["style"] + r["content"]
        assert r["total"] == pytest.approx(want, rel=1e-4)

    spec = importlib.util.spec_from_file_location("ship_weights", ROOT / "scripts" / "ship_weights.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    chain = ship.stages(tmp_path / "s2", 6, json.loads((tmp_path / "s2" / "config.json").read_text()))
    assert [(Path(st["run"]).name, st["step"]) for st in chain] == [("s1", 3), ("s2", 6)]
    assert all(st["wall_time_s"] > 0 for st in chain)


def test_warm_start_and_loss_weight_errors(data: Path, tmp_path: Path) -> None:
    from semstyle.errors import InputError

    with pytest.raises(InputError, match="neither a checkpoint folder nor a run"):
        Distiller(_cfg(data, tmp_path / "x", 3).updated(init_from=str(tmp_path / "nowhere")))
    Distiller(_cfg(data, tmp_path / "w8", 2).updated(width=8)).fit(progress=False)
    with pytest.raises(InputError, match="width and block3_convs must match"):
        Distiller(_cfg(data, tmp_path / "y", 3).updated(init_from=str(tmp_path / "w8")))
    with pytest.raises(InputError, match=r"loss weights \(w_\*\) must be >= 0"):
        _cfg(data, tmp_path / "z", 3).updated(w_style=-1.0).check()


def test_cli_distill_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "d.yaml"
    bad.write_text("stepz: 3\n")
    assert main(["distill", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown distillation config keys ['stepz']" in err and len(err.splitlines()) == 1
    assert main(["distill", "--steps", "3"]) == 2
    assert "needs --content-dir" in capsys.readouterr().err


# ---------------------------------------------------------------- shipped model
def test_shipped_fast_weights_match_their_manifest() -> None:
    for role in ("fast_encoder", "fast_decoder"):
        path, sha, _ = packaged_file(role)
        assert path.stat().st_size < 2_000_000, path  # fp16, a fraction of a megabyte
        assert sha256_of(path) == sha, role
    manifest = json.loads((path.parent / "MANIFEST.json").read_text())
    record = manifest["fast_record"]
    assert record["command"].startswith("semstyle distill --config configs/distill.yaml")
    assert record["step"] == sum(st["step"] for st in record["stages"]) and record["wall_time_s"] > 0


@pytest.fixture(scope="module")
def fast() -> Stylizer:
    return Stylizer(NetworkConfig(model="fast", precision="fp32"), defaults=StylizeOptions(size=128, style_size=128))


def test_fast_colours_past_alpha_1_never_invert_a_flat_style(fast: Stylizer) -> None:
    """α past 1 extrapolates the colour correction's spread from the content's to the style's: a flat grey style
    asks for 1.25 · 0 − 0.25 · (the content's spread), less than none. The spread is held at 0 (a flat picture, as
    the style), never negated (the content's picture inverted)."""
    content = Image.open(ASSETS / "content" / "chelsea.jpg").convert("RGB")
    flat = Image.new("RGB", (128, 128), (128, 128, 128))
    out = np.asarray(fast.stylize(content, flat, alpha=1.25).image, dtype=np.float64)
    assert out.reshape(-1, 3).std(axis=0).max() < 2.0  # flat; an inverted content would spread tens of levels


def test_fast_model_output_takes_the_style(fast: Stylizer, exact: Stylizer) -> None:
    """Quality floor (issue 7): the output's VGG19 mean/std style loss is within 1.5x the VGG19 path's on the pair.

    Measured on this pair (fp32, 128 px): VGG19 path 2.55, shipped fast model 2.81 (1.10x), the stage-1 checkpoint
    shipped before it (84f296f) 7.17 (2.81x), the content itself 9.92; so falling back to the older checkpoint fails."""
    from semstyle.models import VGGEncoder
    from semstyle.models.weights import load_into

    content = Image.open(ASSETS / "content" / "chelsea.jpg").convert("RGB")
    style = Image.open(ASSETS / "style" / "starry_night.jpg").convert("RGB")
    out = fast.stylize(content, style).image
    assert out.size == (128, round(128 * content.height / content.width))
    vgg = VGGEncoder().eval()
    load_into(vgg, "pretrained", "encoder")

    def feats(img: Image.Image) -> list[torch.Tensor]:
        x = torch.from_numpy(np.asarray(img.resize((128, 128)), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            return list(vgg(x, ("relu1_1", "relu2_1", "relu3_1", "relu4_1")).values())

    s = feats(style.resize((128, 128)))
    d_out = float(FN.mean_std_style_loss(feats(out), s))
    d_vgg = float(FN.mean_std_style_loss(feats(exact.stylize(content, style).image), s))  # conftest: 128 px, fp32
    d_content = float(FN.mean_std_style_loss(feats(content), s))
    assert d_vgg < 0.5 * d_content, (d_vgg, d_content)  # the reference itself takes the style
    assert d_out <= 1.5 * d_vgg, (d_out, d_vgg)


def test_fast_model_alpha_zero_keeps_the_content_close(fast: Stylizer) -> None:
    content = Image.open(ASSETS / "content" / "coffee.jpg").convert("RGB")
    style = Image.open(ASSETS / "style" / "wave.jpg").convert("RGB")
    out = np.asarray(fast.stylize(content, style, alpha=0.0).image, dtype=np.float32)
    ref = np.asarray(content.resize(fast.stylize(content, style, alpha=0.0).image.size), dtype=np.float32)
    full = np.asarray(fast.stylize(content, style).image, dtype=np.float32)
    assert np.abs(out - ref).mean() < 0.5 * np.abs(full - ref).mean()


def test_fast_model_semantic_auto_and_labels(fast: Stylizer) -> None:
    content = Image.open(ASSETS / "content" / "astronaut.jpg").convert("RGB")
    style = Image.open(ASSETS / "style" / "the_scream.jpg").convert("RGB")
    res = fast.stylize(content, style, semantic="auto")
    assert res.content_labels is not None and len(np.unique(res.content_labels)) >= 2
    w, h = res.image.size
    lab = np.zeros((h, w), np.int64)
    lab[:, w // 2 :] = 1
    s_lab = np.zeros((128, 128), np.int64)
    s_lab[:64] = 1  # crossed: the style's top (label 1) for the content's right half, its bottom for the left
    style_sq = style.resize((128, 128))
    two = fast.stylize(content, style_sq, semantic="labels", content_labels=lab, style_labels=[s_lab])
    plain = np.asarray(fast.stylize(content, style_sq).image, dtype=np.float32)
    got = np.asarray(two.image, dtype=np.float32)
    assert got.shape == plain.shape
    assert np.abs(got - plain).mean() > 3.0  # not global AdaIN
    top, bottom = np.asarray(style_sq, dtype=np.float32)[:64].mean((0, 1)), np.asarray(style_sq)[64:].mean((0, 1))

    def dist(img: np.ndarray) -> tuple[float, float, float, float]:
        """(left–top, left–bottom, right–top, right–bottom) distances of the halves' mean colours."""
        left, right = img[:, : w // 2 - 8].mean((0, 1)), img[:, w // 2 + 8 :].mean((0, 1))
        return tuple(float(np.linalg.norm(a - b)) for a in (left, right) for b in (top, bottom))

    # global AdaIN leans the other way (the photo's left half is the brighter), so this cannot pass by chance
    lt, lb, rt, rb = dist(plain)
    assert lt < lb and rb < rt, (lt, lb, rt, rb)
    # each half takes its own style region's look: the left the bottom's, the right the top's. Measured: 6 vs 66
    # and 5 vs 67; with one half's match lost (kept or global) both halves drift (the colour correction is global)
    # to about 0.4 of the other distance
    lt, lb, rt, rb = dist(got)
    assert lb < 0.25 * lt and rt < 0.25 * rb, (lt, lb, rt, rb)


def test_fast_model_refuses_refinement_and_the_finetuned_decoder(
    fast: Stylizer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="no fine-tuned decoder"):
        StylizeConfig(NetworkConfig(model="fast", decoder="finetuned"))
    with pytest.raises(ValueError, match="refinement needs the VGG19 model"):
        StylizeConfig(NetworkConfig(model="fast"), StylizeOptions(refine=1))
    from semstyle.pipelines.optimize import OptimizeConfig, optimize

    with pytest.raises(ValueError, match="loss network is VGG19"):
        optimize(ASSETS / "content" / "coffee.jpg", ASSETS / "style" / "wave.jpg", OptimizeConfig(steps=1, size=32),
                 networks=fast.networks)
    c, s = ASSETS / "content" / "coffee.jpg", ASSETS / "style" / "wave.jpg"
    code = main(["stylize", str(c), str(s), "-o", str(tmp_path / "o.png"), "--model", "fast", "--refine", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "refinement needs the VGG19 model" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()
    assert main(["stylize", str(c), str(s), "-o", str(tmp_path / "f.png"), "--model", "fast", "--size", "96"]) == 0
    assert Image.open(tmp_path / "f.png").size[0] == 96


def test_fast_model_runs_tiled() -> None:
    """Smoke: tiling (global statistics over tiles) runs on the student's 128-channel features."""
    st = Stylizer(NetworkConfig(model="fast", precision="fp32"),
                  defaults=StylizeOptions(size=0, style_size=96, tile=64))
    assert st.networks.channels == 128
    content = Image.open(ASSETS / "content" / "coffee.jpg").convert("RGB").resize((160, 120))
    style = Image.open(ASSETS / "style" / "wave.jpg").convert("RGB")
    tiled = np.asarray(st.stylize(content, style).image, dtype=np.float32)
    assert tiled.shape == (120, 160, 3) and tiled.std() > 5
    assert np.abs(tiled - np.asarray(content, dtype=np.float32)).mean() > 5  # it changed the picture
