"""Adapting to one style (issue 29): ``semstyle adapt``, the style model file, and every way a model is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import bundled_style, interrupt_on_call
from PIL import Image

from semstyle import assets
from semstyle.cli.main import main
from semstyle.config import NetworkConfig
from semstyle.errors import InputError
from semstyle.models.decoder import Decoder
from semstyle.models.style_model import FORMAT, StyleModel, load_style_model
from semstyle.models.weights import load_into
from semstyle.training import adapt as A

pytestmark = pytest.mark.usefixtures("one_thread_module")  # fp32 on one thread: the resume is compared bit for bit
TINY = {"steps": 4, "crop": 64, "style_size": 96, "precision": "fp32", "progress": False}


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_style(tmp_path_factory, 3, (96, 64))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, photos: Path, style: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "wave.safetensors"
    res = A.adapt(style, out, contents=[photos], **TINY)
    assert res.model == out and res.steps == 4
    return out


def test_a_tiny_adaptation_writes_a_model_that_is_the_style(model: Path, style: Path) -> None:
    m = load_style_model(model)
    pretrained = Decoder()
    load_into(pretrained, "pretrained", "decoder")
    moved = [k for k, v in pretrained.state_dict().items() if not torch.equal(v.half().float(), m.decoder[k])]
    assert moved  # the decoder changed
    assert np.array_equal(np.asarray(m.image), np.asarray(Image.open(style).convert("RGB")))  # the style, losslessly
    import hashlib

    assert m.meta["style_sha256"] == hashlib.sha256(style.read_bytes()).hexdigest()
    assert m.meta["steps"] == 4 and m.meta["recipe"]["size"] == 64 and m.meta["recipe"]["weights"]["adv"] > 0
    assert (A.run_folder(model) / "checkpoints").is_dir()  # resumable
    # the recipe's content term is to the photo's own features (as scored), not to the AdaIN target
    assert m.meta["recipe"]["weights"]["content_orig"] > 0 and m.meta["recipe"]["weights"]["content"] == 0
    logged = [json.loads(ln) for ln in (A.run_folder(model) / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in logged if "g/content_orig" in r] and all(r["g/content_orig"] > 0 for r in logged
                                                                if "g/content_orig" in r)


def test_the_model_alone_equals_decoder_model_with_its_style(model: Path, style: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    content = assets.content_images()[1]
    m = load_style_model(model)
    m.meta["alpha"] = 1.1  # a model's own α, past 1, is its default both ways (whatever α the tiny run chose)
    m.save(own := tmp_path / "own.safetensors")
    small = ["--size", "64", "--precision", "fp32"]
    assert main(["stylize", str(content), str(own), "-o", str(tmp_path / "a.png"), *small]) == 0
    assert main(["stylize", str(content), str(style), "--decoder", str(own), "-o", str(tmp_path / "b.png"),
                 *small]) == 0
    assert main(["stylize", str(content), str(style), "-o", str(tmp_path / "c.png"), *small]) == 0
    assert main(["stylize", str(content), str(style), "--decoder", str(own), "--alpha", "1", "-o",
                 str(tmp_path / "d.png"), *small]) == 0
    a, b, c, d = (np.asarray(Image.open(tmp_path / f"{n}.png"), dtype=np.int16) for n in "abcd")
    assert np.abs(a - b).max() <= 1  # the same decoder, the same style picture and the same α
    assert np.abs(a - c).mean() > 0.1  # and not the pretrained decoder's picture
    assert np.abs(b - d).mean() > 0.1  # an explicit --alpha wins over the model's
    capsys.readouterr()


def test_an_interrupted_adaptation_resumes_exactly(photos: Path, style: Path, model: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.training.trainer import Trainer

    out = tmp_path / "again.safetensors"
    real = interrupt_on_call(monkeypatch, Trainer, "train_step", 3)
    with pytest.raises(KeyboardInterrupt):
        A.adapt(style, out, contents=[photos], **TINY)
    assert not out.exists() and not list(tmp_path.glob(".again*"))  # no model, no half-written one
    monkeypatch.setattr(Trainer, "train_step", real)
    A.adapt(style, out, contents=[photos], resume=True, **TINY)
    a, b = load_style_model(model), load_style_model(out)
    for k, v in a.decoder.items():
        assert torch.equal(v, b.decoder[k]), k  # the resumed run is the uninterrupted one, bit for bit


def _junk_models(tmp: Path, model: Path) -> dict[str, tuple[Path, str]]:
    from safetensors.torch import save_file

    text = tmp / "notes.safetensors"
    text.write_text("not a model")
    plain = tmp / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    m = load_style_model(model)
    wrong = tmp / "wrong.safetensors"
    StyleModel({k: v[:1] for k, v in m.decoder.items()}, m.image, {}).save(wrong)
    newer = tmp / "newer.safetensors"
    save_file({"style.image": torch.zeros(4, 4, 3, dtype=torch.uint8)}, str(newer),
              metadata={"format": FORMAT, "version": "99"})
    return {"not safetensors": (text, "is not a safetensors file"),
            "not a model": (plain, "not a semstyle style model"),
            "wrong shapes": (wrong, "does not hold a decoder"),
            "newer": (newer, "format version 99; this semstyle reads up to 1: upgrade semstyle")}


@pytest.mark.parametrize("case", ["not safetensors", "not a model", "wrong shapes", "newer"])
def test_a_file_that_is_not_a_model_is_one_line(case: str, model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path, needle = _junk_models(tmp_path, model)[case]
    rc = main(["stylize", str(assets.content_images()[0]), str(path), "-o", str(tmp_path / "o.png"), "--size", "64"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0] and err[0].startswith("semstyle: error: "), err
    assert not (tmp_path / "o.png").exists()


def test_bad_adaptations_are_refused_before_anything_is_written(photos: Path, style: Path, model: Path,
                                                                 tmp_path: Path, capsys) -> None:
    few = tmp_path / "few"
    few.mkdir()
    Image.new("RGB", (64, 64)).save(few / "one.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = str(tmp_path / "m.safetensors")
    cases = [
        ([str(notes), "--contents", str(photos), "-o", out], "is not an image file"),
        ([str(style), "--contents", str(few), "-o", out], "hold 1 photo; an adaptation needs at least 3"),
        ([str(style), "--contents", str(tmp_path / "none"), "-o", out], "does not exist"),
        ([str(style), "--contents", str(photos), "-o", str(tmp_path / "m.pth")], "is a .safetensors file"),
        ([str(style), "--contents", str(photos), "-o", str(model)], "already exists; pass --overwrite"),
        ([str(style), "--contents", str(photos), "-o", out, "--steps", "0"], "steps must be >= 1"),
    ]
    for argv, needle in cases:
        rc = main(["adapt", *argv, "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0], (needle, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few", "notes.txt"]  # no model, no run folder


def test_a_model_is_one_style_with_its_own_decoder(model: Path, style: Path, tmp_path: Path, capsys) -> None:
    content = str(assets.content_images()[0])
    cases = [
        ([content, str(model), str(style)], "give it as the only style"),
        ([content, str(model), "--decoder", "finetuned"], "leave out --decoder"),
        ([content, str(model), "--model", "fast"], "has no student for --model fast; make one with semstyle adapt"),
    ]
    for argv, needle in cases:
        rc = main(["stylize", *argv, "-o", str(tmp_path / "o.png"), "--size", "64"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0], (needle, err)
    from semstyle import Stylizer

    with pytest.raises(InputError, match="needs its own decoder"):  # the API under another decoder
        Stylizer().encode_style(model)


def test_a_stylizer_reads_its_own_model_once(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle import StylizeOptions, Stylizer
    from semstyle.io import images
    from semstyle.pipelines import stylize

    st = Stylizer.from_style_model(model, config=NetworkConfig(precision="fp32"))
    opts = StylizeOptions(size=64, style_size=64, alpha=1.0)
    by_object = st.stylize(assets.content_images()[0], st.style_model, options=opts).image

    def no_reading(path: object) -> None:
        raise AssertionError(f"the style model file was opened again: {path}")

    monkeypatch.setattr(images, "load_style_model", no_reading)  # a frame loop passing the path opens nothing
    monkeypatch.setattr(stylize, "is_style_model", no_reading)
    sized: list[int] = []  # the sizes its style picture was resized to
    monkeypatch.setattr(stylize, "resize_longest", lambda img, side: (
        sized.append(side) if img is st.style_model.image else None) or images.resize_longest(img, side))
    by_path = [st.stylize(assets.content_images()[0], model, options=opts).image for _ in range(2)]
    assert all(np.array_equal(np.asarray(p), np.asarray(by_object)) for p in by_path)
    assert sized == []  # … nor resizes its picture again: the first call (by object) sized it
    assert st.encode_style(model, opts.updated(style_size=96)).image.size == (96, 64)
    assert st.encode_style(model, opts.updated(style_size=96)).image.size == (96, 64)
    assert sized == [96]  # a new size is made once
    with pytest.raises(InputError, match="pixels"):  # the memo keeps no picture past a lower pixel limit
        st.encode_style(model, opts.updated(style_size=96, max_pixels=1024))
    with pytest.raises(InputError, match="needs its own networks"):  # another loaded model is still refused
        st.encode_style(load_style_model(model))


def test_the_metadata_is_json(model: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(model), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT and meta["version"] == "1"
    assert json.loads(meta["recipe"])["style_targets"] == "whole"


@pytest.mark.parametrize(("crop", "margin"), [(128, 16), (64, 16), (48, 8), (40, 0), (32, 0)])
def test_the_margin_shrinks_with_a_small_crop(tmp_path: Path, crop: int, margin: int) -> None:
    cfg = A.adapt_config(tmp_path, "photos", 10, "fp32", crop)
    assert (cfg.size, cfg.margin) == (crop, margin)
    assert cfg.size - 2 * cfg.margin >= 32


def test_the_cli_says_when_the_time_budget_fitted_or_ended_the_adaptation(
        style: Path, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """On a slow CPU --minutes holds fewer than --steps: the user is told the schedule was fitted to fewer, or, when
    the machine slowed down past the fit, that time ended it and how to finish (``--resume``)."""
    import semstyle.cli.adapt as cli
    from semstyle.training.adapt import AdaptResult
    from semstyle.training.adapt_scores import Scores

    done = {"steps": 0, "horizon": 0}
    monkeypatch.setattr(cli, "adapt", lambda *a, **k: AdaptResult(tmp_path / "m.safetensors", done["steps"],
                                                                  done["horizon"], 600.0, Scores(4, 1.0, -0.1, 0.0)))
    argv = ["adapt", str(style), "--contents", str(photos), "-o", str(tmp_path / "m.safetensors"), "--steps", "300"]
    for steps, horizon, ended, fitted in ((165, 300, True, False), (165, 165, False, True), (300, 300, False, False)):
        done.update(steps=steps, horizon=horizon)
        assert main([*argv, "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert f"adapted in {steps} steps (10.0 min)" in out
        assert ("ended the adaptation at step 165 of 300; add --resume and more --minutes" in out) == ended, out
        assert ("fitted the adaptation to 165 of 300 steps" in out) == fitted, out


class FakeClock:
    """``time`` for the modules under test: ``monotonic`` is a clock that moves only when told (a step's second)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    @staticmethod
    def perf_counter() -> float:
        import time

        return time.perf_counter()


def test_the_pace_fits_the_horizon_to_the_deadline_and_follows_its_drift(monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from semstyle.training import schedule

    caplog.set_level(logging.INFO, logger="semstyle.training.schedule")

    clock = FakeClock()
    monkeypatch.setattr(schedule, "time", clock)
    pace = schedule.Pace(30.0, skip=2, timed=4, margin=0.5)  # 30 s to go; half the time left is planned for
    horizons, step, steps = [], 0, 100
    while step < steps:  # as the trainer's loop
        step += 1
        clock.now += 0.1 if step == 1 else 2.0 if step <= 6 else 4.0  # a quick warm-up, 2 s a step, then 4 s
        steps = pace.horizon(step, steps)
        horizons.append(steps)
    # update 6 (t 10.1): 2 s a step since update 2, 19.9 s left → 6 + int(0.5 · 19.9 / 2) = 10; update 7 (t 14.1):
    # 12 s over 5 updates, 15.9 s left → 7 + 3; 8 (t 18.1): 16/6 s, 11.9 s left → 8 + 2; 9: 20/7, 7.9 → 9 + 1;
    # 10 (t 26.1): 24/8, 3.9 s left → 10 + 0: the next update would pass the deadline, the schedule ends here
    assert horizons == [100] * 5 + [10] * 5
    told = [r.getMessage() for r in caplog.records if "fitted to the time" in r.getMessage()]
    assert told == ["the schedule is fitted to the time: 10 steps of 100 (2.00 s a step)"]  # once
    assert not pace.up()
    clock.now = 30.5
    assert pace.up()
    clock.now = 0.0
    roomy = schedule.Pace(1000.0, skip=1, timed=1)
    roomy.horizon(1, 50)
    clock.now = 1.0
    assert roomy.horizon(2, 50) == 50  # time for all: the steps asked, never more
    late = schedule.Pace(1.0, skip=1, timed=1)
    late.horizon(1, 50)
    clock.now = 5.0
    assert late.horizon(2, 50) == 2  # past the deadline already: it ends at this update
    assert schedule.Pace(None).horizon(1, 50) == 50 and not schedule.Pace(None).up()
    with pytest.raises(ValueError, match="skip and timed must be >= 1"):
        schedule.Pace(1.0, skip=0)


def test_a_short_budget_fits_the_schedule_and_completes_it(style: Path, photos: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The time budget holds fewer steps than asked: the schedule is fitted to them early and completes (it is
    not cut in mid-course); the model says so, and the end's time (the judge's pace) is kept from the budget."""
    from semstyle.training import adapt_scores, schedule, trainer

    clock = FakeClock()
    for mod in (A, adapt_scores, schedule, trainer):
        monkeypatch.setattr(mod, "time", clock)
    seen: list[tuple[int, int]] = []

    def tick(ev: A.AdaptEvent) -> None:  # each update takes a second of the fake clock
        if ev.stage == "adapt":
            clock.now += 1.0
            seen.append((ev.step, ev.total))

    res = A.adapt(style, tmp_path / "m.safetensors", contents=[photos], **{**TINY, "steps": 200}, minutes=0.25,
                  callback=tick)
    # the pace is timed from update 2 (clock 1): 1 s a step; at update 8, 15 s - 7 s left → 8 + int(0.97 · 8) = 15,
    # and so on to update 15 (14 s: 15 + int(0.97 · 1) = 15, the end): no update past the deadline, none unused
    assert (res.steps, res.horizon) == (15, 15)
    assert seen[0] == (1, 200) and seen[-1] == (15, 15)  # the progress bar's total follows the fit
    m = load_style_model(res.model)
    assert (m.meta["steps"], m.meta["horizon"]) == (15, 15)
