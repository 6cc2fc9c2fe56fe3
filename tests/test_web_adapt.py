"""Adapting from the web page (issue 29): the Adapt tab's handler writes a style model into the server's models
folder with progress, the image tab then offers it, and every bad request is one message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semstyle import assets
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.models.style_model import load_style_model
from semstyle.web.adapt import AdaptLimits
from semstyle.web.app import Handlers
from semstyle.web.engine import Engine
from semstyle.web.forms import Upload, WebRequest

pytestmark = pytest.mark.usefixtures("one_thread_module")
TINY = AdaptLimits(max_minutes=5.0, steps=2, crop=64)  # two updates at 64 px: the path, not the quality


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("adapt_style") / "wave.png"
    Image.open(assets.style_images()[3]).convert("RGB").resize((96, 64)).save(p)
    return p


def _handlers(folder: Path | None, tmp: Path) -> Handlers:
    engine = Engine(StylizeConfig(NetworkConfig(precision="fp32"), StylizeOptions(style_size=128)),
                    outputs=tmp / "out", models=folder)
    return Handlers(engine, adapt_limits=TINY)


def test_the_page_adapts_and_offers_the_model(style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.training import adapt_scores

    monkeypatch.setattr(adapt_scores, "SIDE", 96)  # the end scores on small photos: this tests the page's path
    monkeypatch.setattr(adapt_scores, "STYLE_SIDE", 128)
    folder = tmp_path / "models"
    folder.mkdir()
    web = _handlers(folder, tmp_path)
    try:
        seen: list[tuple[float, str]] = []
        status, update = web.adapt(str(style), "wave_1", 5.0, False, progress=lambda f, d: seen.append((f, d)))
        assert 'id="semstyle-ok"' in status and "wave_1" in status, status
        assert update["choices"][1:] == ["wave_1"] and update["visible"] is True
        assert sorted(p.name for p in folder.iterdir()) == ["wave_1.safetensors"]  # no run folder left behind
        fractions = [f for f, _ in seen]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert any("adapt: step 2 of 2" in d for _, d in seen) and any("α" in d for _, d in seen)
        model = load_style_model(folder / "wave_1.safetensors")
        assert model.meta["steps"] == 2 and model.student is None
        # the image tab runs it by name
        res = web.engine.run(WebRequest(Upload(assets.content_images()[0], "photo.jpg"), None, size=64,
                                        model="wave_1"))
        assert "style model wave_1" in res.summary and np.asarray(Image.open(res.path)).shape[2] == 3
    finally:
        web.engine.close()


def test_bad_adaptations_from_the_page_are_messages(style: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "taken.safetensors").write_bytes(b"x")
    web = _handlers(folder, tmp_path)
    nowhere = _handlers(None, tmp_path)
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    cases = [
        (web, (str(style), "a/b", 1.0), "name the model with letters"),
        (web, (str(style), "", 1.0), "name the model with letters"),
        (web, (str(style), "taken", 1.0), "already a style model 'taken'"),
        (web, (str(style), "ok", 6.0), "minutes must be in (0, 5]"),
        (web, (None, "ok", 1.0), "upload a style image"),
        (web, (str(notes), "ok", 1.0), "style image"),
        (nowhere, (str(style), "ok", 1.0), "start it with semstyle serve --models DIR"),
    ]
    try:
        for handlers, args, needle in cases:
            status, update = handlers.adapt(*args)
            assert 'id="semstyle-error"' in status and needle in status, (needle, status)
            assert "ok.safetensors" not in {p.name for p in folder.iterdir()}
    finally:
        web.engine.close()
        nowhere.engine.close()
    with pytest.raises(ValueError, match="max adaptation time"):
        AdaptLimits(max_minutes=0)


def test_serve_refuses_a_bad_adaptation_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--max-adapt-minutes", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max adaptation time must be in (0, 120] minutes" in err[0], err


def test_the_adapt_tab_over_http(style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the tab as a browser reaches it: the picture uploaded to a real server, /adapt queued and run, the model
    # written into the folder and offered by the image tab's list
    import socket

    from gradio_client import Client, handle_file

    from semstyle.training import adapt_scores
    from semstyle.web.app import ServeOptions, build_demo, launch

    monkeypatch.setattr(adapt_scores, "SIDE", 96)
    monkeypatch.setattr(adapt_scores, "STYLE_SIDE", 128)
    folder = tmp_path / "models"
    folder.mkdir()
    web = _handlers(folder, tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = ServeOptions(port=port, adapt=TINY)
    demo = build_demo(web.engine, opts)
    assert "adapt" in {d.get("api_name") for d in demo.config["dependencies"]}
    launch(demo, web.engine, opts)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status, _ = client.predict(handle_file(str(style)), "over_http", 1.0, False, api_name="/adapt")
        assert 'id="semstyle-ok"' in status, status
        assert (folder / "over_http.safetensors").is_file() and web.engine.style_models() == {
            "over_http": folder / "over_http.safetensors"}
        status, _ = client.predict(handle_file(str(style)), "over_http", 1.0, False, api_name="/adapt")
        assert 'id="semstyle-error"' in status and "already a style model" in status, status
        client.close()
    finally:
        demo.close()
        web.engine.close()
