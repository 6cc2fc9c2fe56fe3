"""A style model's real-time student (issue 29, item 4), its default α and end scores, and the model in the web app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import bundled_style, interrupt_on_call
from PIL import Image

from semstyle import NetworkConfig, StylizeConfig, Stylizer, assets
from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.models.style_model import StyleModel, load_style_model
from semstyle.training import adapt as A
from semstyle.training.adapt_scores import ALPHAS, CONTENT_AIM, CONTENT_BUDGET, calibrate, least_style, pick_alpha
from semstyle.training.student import StudentRecipe

pytestmark = pytest.mark.usefixtures("one_thread_module")  # fp32 on one thread: outputs compared exactly
TINY = {"steps": 2, "crop": 64, "style_size": 96, "precision": "fp32", "progress": False}
RECIPE = StudentRecipe(steps=4, crop=48, margin=8, batch=2, side=64, images=3, ckpt_every=2)


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_style(tmp_path_factory, 2, (64, 80))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, photos: Path, style: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "scream.safetensors"
    A.adapt(style, out, contents=[photos], student=True, student_recipe=RECIPE, **TINY)
    return out


def test_the_student_is_trained_and_kept_in_the_model(model: Path) -> None:
    from semstyle.models.fast import FastDecoder, FastEncoder
    from semstyle.models.weights import fast_shape, load_into

    m = load_style_model(model)
    enc, dec = m.student_networks()
    start_e, start_d = FastEncoder(fast_shape("pretrained")), FastDecoder(fast_shape("pretrained"))
    load_into(start_e, "pretrained", "fast_encoder")
    load_into(start_d, "pretrained", "fast_decoder")
    for trained, start in ((enc, start_e), (dec, start_d)):  # it starts as the fast model and moves away from it
        assert any(not torch.equal(a.half().float(), b) for a, b in
                   zip(start.state_dict().values(), trained.state_dict().values(), strict=True))
    assert m.meta["student_steps"] == 4 and m.meta["student_recipe"]["crop"] == 48
    sc = m.meta["scores"]
    assert sc["alpha"] == m.alpha and min(ALPHAS) <= m.alpha <= max(ALPHAS)
    assert {"style", "content", "student_style", "student_content"} <= set(sc) and sc["photos"] == 3
    assert all(np.isfinite(sc[k]) and sc[k] > -1 for k in ("style", "content", "student_style", "student_content"))


def test_no_term_of_the_student_sees_the_border_of_its_crop(model: Path, photos: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Its margin is left out of every term (the student once painted a frame that bought it style statistics)."""
    from semstyle.training.data import random_crops, step_generator
    from semstyle.training.student import StudentDistiller

    recipe = StudentRecipe(crop=48, margin=8, batch=2, side=64, images=3, content_orig=1.0, feature=1.0)
    d = StudentDistiller(load_style_model(model), str(photos), tmp_path, recipe=recipe, bf16=False, resume=False)
    g = step_generator(0, 0)
    both, _ = random_crops(d.pairs, g, 2, 48)
    picture = torch.rand(2, 3, 48, 48, requires_grad=True)  # stands in for the student's picture
    monkeypatch.setattr(d, "student", lambda photo: picture)
    terms = d._terms(both[:, :3], both[:, 3:], g)
    assert {"pixel", "style", "feature", "adv", "content_orig"} <= set(terms)
    torch.stack(list(terms.values())).sum().backward()
    grad = picture.grad.abs()
    ring = grad.clone()
    ring[..., 8:40, 8:40] = 0
    assert ring.max() == 0 and grad[..., 8:40, 8:40].min() >= 0 and grad[..., 8:40, 8:40].mean() > 0


def test_model_fast_runs_the_student_the_same_everywhere(model: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    content = assets.content_images()[0]
    out = tmp_path / "cli.png"
    assert main(["stylize", str(content), str(model), "--model", "fast", "-o", str(out), "--size", "64",
                 "--precision", "fp32"]) == 0
    m = load_style_model(model)
    fp32 = NetworkConfig(precision="fp32")
    st = Stylizer.from_style_model(model, student=True, config=fp32)  # the API with the model's path …
    assert st.defaults.alpha == m.alpha  # … takes the model's own α
    api = st.stylize(content, model, size=64).image
    loaded = Stylizer.from_style_model(m, student=True, config=fp32)  # … and with the loaded model
    obj = loaded.stylize(content, m, size=64).image
    cli = np.asarray(Image.open(out), dtype=np.int16)
    assert np.abs(cli - np.asarray(api, dtype=np.int16)).max() <= 1
    assert np.abs(cli - np.asarray(obj, dtype=np.int16)).max() <= 1
    vgg = Stylizer.from_style_model(model, config=fp32).stylize(content, model, size=64).image  # the decoder: not it
    assert np.abs(cli - np.asarray(vgg, dtype=np.int16)).mean() > 1
    assert "experimental" not in caplog.text  # the student is not the generic fast model


def test_the_student_exports_to_onnx(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from semstyle.export.graphs import build_graph, export_onnx

    rep = export_onnx(tmp_path / "s.onnx", "student", 48, decoder=str(model), check=True)
    assert rep.max_abs_diff is not None and rep.max_abs_diff < 1e-4  # fp32 graph vs PyTorch, outputs in [0, 1]
    graph = build_graph("student", decoder=str(model))  # the graph is the pipeline's student at the model's α
    content = Image.open(assets.content_images()[0]).convert("RGB").resize((64, 48))
    st = Stylizer.from_style_model(model, student=True, config=NetworkConfig(precision="fp32"))
    ref = np.asarray(st.stylize(content, model, size=0, style_size=512).image, dtype=np.int16)
    x = torch.from_numpy(np.array(content)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = graph(x, torch.tensor(st.defaults.alpha))[0].permute(1, 2, 0).numpy()
    assert np.abs((y * 255 + 0.5).astype(np.int16) - ref).max() <= 1


def test_a_model_without_a_student_is_refused_for_fast(model: Path, style: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.safetensors"
    m = load_style_model(model)  # the module's model as `semstyle adapt` without --student writes it: no student
    m.student = None
    for key in ("student_recipe", "student_steps"):
        m.meta.pop(key)
    m.save(plain)
    with pytest.raises(InputError, match="has no student; make one with semstyle adapt --student"):
        Stylizer.from_style_model(plain, student=True)
    content, out = str(assets.content_images()[0]), str(tmp_path / "o.png")
    cases = [
        (["export", "--part", "student", "--decoder", str(style), "-o", str(tmp_path / "s.onnx")],
         "needs --decoder MODEL.safetensors"),
        (["export", "--part", "student", "--decoder", str(plain), "-o", str(tmp_path / "s.onnx")],
         "has no student; make one with semstyle adapt --student"),
        (["stylize", content, str(plain), "--model", "fast", "-o", out], "has no student for --model fast"),
    ]
    for argv, needle in cases:
        rc = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0], (needle, err)
    assert not (tmp_path / "s.onnx").exists() and not (tmp_path / "o.png").exists()


def test_the_student_is_refused_with_another_style(model: Path, style: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["stylize", str(assets.content_images()[0]), str(assets.style_images()[0]), "--model", "fast",
               "--decoder", str(model), "-o", str(tmp_path / "o.png"), "--size", "64"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is made for that model's own style" in err[0], err
    assert not (tmp_path / "o.png").exists()


def test_the_model_alpha_is_the_default_and_alpha_overrides_it(model: Path, tmp_path: Path) -> None:
    m = load_style_model(model)
    mild = tmp_path / "mild.safetensors"
    StyleModel(m.decoder, m.image, {**m.meta, "alpha": 0.7}, m.student).save(mild)
    assert Stylizer.from_style_model(mild).defaults.alpha == 0.7
    content = str(assets.content_images()[0])
    small = ["--size", "64", "--precision", "fp32"]
    pics = {}
    for name, extra in (("default", []), ("same", ["--alpha", "0.7"]), ("full", ["--alpha", "1"])):
        assert main(["stylize", content, str(mild), "-o", str(tmp_path / f"{name}.png"), *small, *extra]) == 0
        pics[name] = np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.int16)
    assert np.array_equal(pics["default"], pics["same"])  # no --alpha: the model's own
    assert np.abs(pics["default"] - pics["full"]).mean() > 1  # an explicit --alpha wins


def test_an_interrupted_student_resumes_exactly_and_one_of_an_older_adaptation_starts_afresh(
        photos: Path, style: Path, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from semstyle.training.student import StudentDistiller

    out = tmp_path / "again.safetensors"
    real = interrupt_on_call(monkeypatch, StudentDistiller, "train_step", 2)  # before any periodic checkpoint
    with pytest.raises(KeyboardInterrupt):
        A.adapt(style, out, contents=[photos], student=True, student_recipe=RECIPE, **TINY)
    assert not out.exists()  # no model until the student is done
    monkeypatch.setattr(StudentDistiller, "train_step", real)
    A.adapt(style, out, contents=[photos], student=True, student_recipe=RECIPE, resume=True, **TINY)
    a, b = load_style_model(model), load_style_model(out)
    assert a.student is not None and b.student is not None
    for k, v in a.student.items():
        assert torch.equal(v, b.student[k]), k  # the resumed student is the uninterrupted one, bit for bit
    assert "the student starts afresh" not in caplog.text
    more = {**TINY, "steps": TINY["steps"] + 1}  # the adaptation goes on: its decoder, the student's teacher, moves
    A.adapt(style, out, contents=[photos], student=True, student_recipe=RECIPE, resume=True, **more)
    assert "the student starts afresh" in caplog.text  # a student of the older adaptation is not reused
    m = load_style_model(out)
    assert m.meta["steps"] == 3 and m.meta["student_steps"] == RECIPE.steps


@pytest.mark.parametrize(("offset", "want"), [
    (-0.2, 1.2),  # within the budget at the sweep's strongest α
    (0.0, 1.1),  # exactly at a sweep point past 1
    (0.025, 1.075),  # between 1.1 (over) and 1.05 (within): linear
    (0.2, 0.9),  # exactly at a sweep point below 1
    (0.175, 0.925),  # between 0.95 (over) and 0.9 (within)
    (3.0, ALPHAS[-1]),  # never within: the weakest α of the sweep
])
def test_the_largest_alpha_within_the_content_budget(offset: float, want: float) -> None:
    contents = [a + offset for a in ALPHAS]  # content loss growing with α, 1.1 (the budget) at α = 1.1 - offset
    assert pick_alpha(contents, 1.1) == pytest.approx(want)


def test_the_default_alpha_has_the_least_style_of_those_within_the_budget() -> None:
    sweep = [(1.2, 0.2, 1.3), (1.15, 0.8, 1.2), (1.1, 0.7, 1.1), (1.05, 0.75, 1.05), (1.0, 0.8, 1.0), (0.9, 0.9, 0.9)]
    # past about 1.1 the style overshoots: the budget's α (1.15 here) stylises less than 1.1 does
    assert least_style((1.15, 0.8, 1.1), sweep) == (1.1, 0.7, 1.1)
    # below 1 the style falls as α grows: the budget's α, interpolated between the sweep's points, is kept
    assert least_style((0.95, 0.85, 0.95), sweep) == (0.95, 0.85, 0.95)
    assert least_style((1.05, 0.8, 1.05), sweep) == (1.05, 0.8, 1.05)  # a tie with 1.0: the stronger α
    # a stronger α than the budget's (1.2: less style, over the budget) is never chosen
    assert least_style((1.1, 0.7, 1.1), sweep)[0] == 1.1


class _LinearJudge:
    """A judge whose pictures are their α: content loss α (pretrained AdaIN's 1 at α = 1), style distance 2 − α."""

    base = (1.0, 1.0)
    photos = [None] * 6

    def adain(self, decoder: object, alpha: float) -> float:
        return alpha

    def score(self, render: float) -> tuple[float, float]:
        return 2.0 - render, render


def test_the_default_alpha_aims_under_the_promised_content_budget() -> None:
    # the few photos of the sweep estimate the content loss on other photos within a few points: it aims under
    assert CONTENT_AIM < CONTENT_BUDGET
    sc = calibrate(_LinearJudge(), torch.nn.Identity())  # type: ignore[arg-type]
    assert sc.alpha == pytest.approx(CONTENT_AIM)  # the largest α whose content is the aim, not the promise
    assert sc.content == pytest.approx(CONTENT_AIM - 1) and sc.style == pytest.approx(1 - CONTENT_AIM)
    assert sc.photos == 6


def test_the_web_page_offers_a_folder_of_models_and_uploads(model: Path, tmp_path: Path) -> None:
    import shutil

    from semstyle.web.engine import Engine
    from semstyle.web.forms import Upload, UserError, WebRequest

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(model, folder / "scream.safetensors")
    (folder / "notes.safetensors").write_text("not a model")  # not offered
    engine = Engine(StylizeConfig(NetworkConfig(precision="fp32")), models=folder)
    try:
        assert list(engine.style_models()) == ["scream"]
        content = Upload(assets.content_images()[0], "photo.jpg")
        for decoder, student in (("pretrained", False), ("fast", True)):
            res = engine.run(WebRequest(content, None, size=64, alpha=0.8, decoder=decoder, model="scream"))
            st = Stylizer.from_style_model(model, student=student, config=NetworkConfig(precision="fp32"))
            want = st.stylize(Image.open(content.path), model, size=64, style_size=512, alpha=0.8).image
            got = np.asarray(Image.open(res.path), dtype=np.int16)
            assert np.abs(got - np.asarray(want, dtype=np.int16)).max() <= 1, decoder
            assert "style model scream" in res.summary
        up = engine.run(WebRequest(content, None, size=64, style_model=Upload(model, "mine.safetensors")))
        assert "style model mine.safetensors" in up.summary
        bad = [(WebRequest(content, None, model="nope"), "there is no style model 'nope'"),
               (WebRequest(content, None, style_model=Upload(folder / "notes.safetensors", "x.safetensors")),
                "'x.safetensors' is not a safetensors file")]
        for req, needle in bad:
            with pytest.raises(UserError, match=needle):
                engine.run(req)
    finally:
        engine.close()


def test_the_cli_video_runs_the_student(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    photo = Image.open(assets.content_images()[1]).convert("RGB").resize((80, 64))
    for t in range(3):  # a slow pan
        photo.crop((t * 4, 0, t * 4 + 64, 48)).save(src / f"f{t}.png")
    out = tmp_path / "styled"
    assert main(["video", str(src), str(model), "--model", "fast", "-o", str(out), "--size", "64",
                 "--consistency", "0", "--precision", "fp32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["f0.png", "f1.png", "f2.png"]
    st = Stylizer.from_style_model(model, student=True, config=NetworkConfig(precision="fp32"))
    alone = np.asarray(st.stylize(Image.open(src / "f1.png"), model, size=64).image, dtype=np.int16)
    assert np.abs(np.asarray(Image.open(out / "f1.png"), dtype=np.int16) - alone).max() <= 1  # the student's frame


def test_a_misshapen_student_is_one_line(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = load_style_model(model)
    assert m.student is not None
    bad = tmp_path / "bad.safetensors"
    StyleModel(m.decoder, m.image, m.meta, {k: v for k, v in m.student.items() if not k.startswith("decoder.")}
               ).save(bad)
    tiny = tmp_path / "tiny.safetensors"
    StyleModel(m.decoder, Image.new("RGB", (40, 8)), m.meta, m.student).save(tiny)
    for path, needle in ((bad, "has a student that does not fit the fast model"),
                         (tiny, "holds a 40x8 style picture; a model's is 16 to 1024 px a side")):
        rc = main(["stylize", str(assets.content_images()[0]), str(path), "-o", str(tmp_path / "o.png"),
                   "--size", "64"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o.png").exists()


def test_the_served_page_picks_a_model_from_the_folder(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    import shutil
    import socket

    from gradio_client import Client, handle_file

    from semstyle.web.app import ServeOptions, build_demo, launch
    from semstyle.web.engine import Engine

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(model, folder / "scream.safetensors")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = Engine(StylizeConfig(NetworkConfig(precision="fp32")), models=folder)
    opts = ServeOptions(port=port)
    demo = build_demo(engine, opts)
    launch(demo, engine, opts)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        content = assets.content_images()[0]
        res = client.predict(handle_file(str(content)), None, "none", None, None, 0.9, False, 64, "fast", 0,
                             "adain", None, "scream", None, None, api_name="/stylize")
        assert 'id="semstyle-ok"' in res[4] and "style model scream (its student)" in res[4], res[4]
        st = Stylizer.from_style_model(model, student=True, config=NetworkConfig(precision="fp32"))
        want = np.asarray(st.stylize(content, model, size=64, style_size=512, alpha=0.9).image, dtype=np.int16)
        assert np.abs(np.asarray(Image.open(res[0]), dtype=np.int16) - want).max() <= 1
        client.close()
    finally:
        demo.close()
        engine.close()


def test_serve_refuses_a_models_folder_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gradio")
    from semstyle.cli import serve

    def never(*args: object, **kw: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(serve, "launch", never)
    rc = main(["serve", "--models", str(tmp_path / "nowhere"), "--port", "8765"])  # refused before it listens
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--models" in err[0] and "is not a folder" in err[0], err
