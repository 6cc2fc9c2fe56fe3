"""The web app in-process: its handlers (every error a one-line message) and its HTTP endpoints.

The handlers get what the page sends (paths or Gradio file payloads); the HTTP tests launch the
real Gradio app on a free localhost port in this process and talk to it with ``gradio_client``.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.web.app import Handlers, ServeOptions, build_demo, launch
from semstyle.web.engine import Engine
from semstyle.web.forms import Limits, WebRequest

LIMITS = Limits(max_upload_bytes=64 * 1024, max_pixels=200_000, max_size=256)


class CountingEngine(Engine):
    """An Engine that records how many runs were in progress at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.active = self.peak = self.done = 0
        self._count_lock = threading.Lock()

    def run(self, req: WebRequest, progress=None):
        with self._count_lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return super().run(req, progress)
        finally:
            with self._count_lock:
                self.active -= 1
                self.done += 1


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> CountingEngine:
    return CountingEngine(
        StylizeConfig(NetworkConfig(device="cpu"), StylizeOptions(style_size=128, regions=3)),
        LIMITS,
        concurrency=1,
        outputs=tmp_path_factory.mktemp("web-out"),
    )


@pytest.fixture(scope="module")
def handlers(engine: CountingEngine) -> Handlers:
    return Handlers(engine)


def form(content: object, style: object, **kw: object) -> tuple:
    """The page's form values in the order the page sends them."""
    d = {
        "semantic": "none",
        "content_labels": None,
        "style_labels": None,
        "alpha": 1.0,
        "preserve_color": False,
        "size": 96,
        "decoder": "pretrained",
        "refine": 0,
        "fusion": "adain",
        "style_model": None,
        "model": "(none)",
        "content_paint": None,
        "style_paint": None,
    }
    d.update(kw)
    return (
        content,
        style,
        d["semantic"],
        d["content_labels"],
        d["style_labels"],
        d["alpha"],
        d["preserve_color"],
        d["size"],
        d["decoder"],
        d["refine"],
        d["fusion"],
        d["style_model"],
        d["model"],
        d["content_paint"],
        d["style_paint"],
    )


def assert_message(status: str, *needles: str) -> None:
    assert 'id="semstyle-error"' in status, status
    for n in needles:
        assert n in status, status
    assert "Traceback" not in status and 'File "' not in status


def noise_png(path: Path, w: int, h: int) -> Path:
    arr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


# ----------------------------------------------------------------------------- handlers
def test_form_maps_onto_stylize_config(engine: CountingEngine, images) -> None:
    req = Handlers.request(
        *form(images.content, images.style_a, alpha=0.4, preserve_color=True, size=160, semantic="auto", refine=2)
    )
    cfg = engine.config_for(req)
    o = cfg.options
    assert (o.alpha, o.preserve_color, o.size, o.semantic, o.refine, cfg.networks.decoder) == (
        0.4,
        True,
        160,
        "auto",
        2,
        "pretrained",
    )
    assert cfg.options.max_pixels == LIMITS.max_pixels


def test_valid_request_returns_full_resolution_png(handlers: Handlers, images) -> None:
    view = handlers.run(*form(images.content_wide, images.style_a, size=96, alpha=0.8))
    assert 'id="semstyle-ok"' in view.status and "96×43" in view.status
    with Image.open(view.result) as im:  # 200x90 → longest side 96
        assert im.format == "PNG" and im.size == (96, 43)
    assert view.content_overlay is None and view.style_overlay is None  # no regions in mode none


def test_gradio_payloads_are_accepted_and_names_shown(handlers: Handlers, images, tmp_path: Path) -> None:
    c = {"path": str(images.content), "orig_name": "my photo.png", "meta": {"_type": "gradio.FileData"}}
    view = handlers.run(*form(c, {"path": str(images.style_b), "orig_name": "dots.png"}, size=64))
    assert view.result and Image.open(view.result).size == (64, 64)
    assert "my photo" in Path(view.result).name


def test_too_many_pixels_gives_the_message(handlers: Handlers, images, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (600, 400), "white").save(big)  # 240,000 px, a small file
    view = handlers.run(*form({"path": str(big), "orig_name": "holiday.png"}, images.style_a))
    assert_message(
        view.status,
        "content image",
        "holiday.png",
        "240,000 pixels",
        "over the limit of 200,000",
        "downscale it before uploading (the limit is the server's)",
    )
    assert str(tmp_path) not in view.status and view.result is None and "--max-pixels" not in view.status


def test_oversize_upload_gives_the_message(handlers: Handlers, images, tmp_path: Path) -> None:
    heavy = noise_png(tmp_path / "heavy.png", 250, 250)  # ~190 KB of noise, 62,500 px
    assert heavy.stat().st_size > LIMITS.max_upload_bytes
    view = handlers.run(*form(images.content, heavy))
    assert_message(view.status, "style image 'heavy.png'", "over the upload limit of 64 KB")


def test_non_image_upload_gives_a_message_not_a_traceback(handlers: Handlers, images, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("these are notes, not pixels\n" * 20)
    view = handlers.run(*form(fake, images.style_a))
    assert_message(view.status, "content image 'notes.png' is not an image file")
    assert str(tmp_path) not in view.status


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"alpha": 1.5}, "alpha must be in [0, 1.25], got 1.5"),
        ({"size": 4096}, "output size must be between 16 and 256 px"),
        ({"semantic": "labels"}, "semantic mode 'labels' needs a content label map"),
        ({"semantic": "magic"}, "semantic mode must be one of none, auto, labels"),
        ({"refine": 99}, "refine must be between 0 and 50"),
        ({"fusion": "soft", "semantic": "auto"}, "fusion must be one of adain, attention, got 'soft'"),
    ],
)
def test_bad_form_values_give_messages(handlers: Handlers, images, change: dict, needle: str) -> None:
    assert_message(handlers.run(*form(images.content, images.style_a, **change)).status, needle)


def test_attention_fusion_from_the_form(handlers: Handlers, engine: CountingEngine, images) -> None:
    cfg = engine.config_for(
        Handlers.request(*form(images.content, images.style_a, semantic="auto", fusion="attention"))
    )
    assert cfg.options.fusion == "attention"
    # global AdaIN has no regions to attend over: the page's fusion choice is ignored, not an error
    plain = engine.config_for(Handlers.request(*form(images.content, images.style_a, fusion="attention")))
    assert plain.options.fusion == "adain"
    view = handlers.run(*form(images.content_wide, images.style_b, semantic="auto", fusion="attention", size=96))
    assert 'id="semstyle-ok"' in view.status and view.result is not None
    plain = handlers.run(*form(images.content_wide, images.style_b, semantic="auto", size=96))
    with Image.open(view.result) as a, Image.open(plain.result) as b:
        got, got_plain = np.asarray(a, np.int16), np.asarray(b, np.int16)
    # the library's own run of the same inputs on the same networks (the engine's Stylizer, so the same precision
    # and threads): the page adds form parsing, resizing and a lossless PNG, so its pixels are exactly these
    lib = (
        engine.stylizer("pretrained")
        .stylize(images.content_wide, images.style_b, size=96, style_size=128, semantic="auto", fusion="attention")
        .image
    )
    assert got.shape == got_plain.shape == (43, 96, 3) and np.array_equal(got, np.asarray(lib, np.int16))
    # and the page's AdaIN result is another picture (a mean change of 2 grey levels is far beyond rounding, which moves
    # single pixels by 1), so the equality above says which fusion the page ran
    assert np.abs(got - got_plain).mean() > 2, np.abs(got - got_plain).mean()


def test_missing_style_gives_a_message(handlers: Handlers, images) -> None:
    assert_message(handlers.run(*form(images.content, None)).status, "upload a style image or pick one")


def test_unexpected_failure_is_one_line_without_traceback(engine: CountingEngine, images, monkeypatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise KeyError("secret detail\nsecond line")

    monkeypatch.setattr(engine, "run", boom)
    status = Handlers(engine).run(*form(images.content, images.style_a)).status
    assert_message(status, "internal error (KeyError", "see the server log")
    assert "second line" not in status


@pytest.mark.parametrize("what", ["decoder", "refine"])
def test_finetuned_weights_are_shipped_and_used(handlers: Handlers, engine: CountingEngine, images, what: str) -> None:
    """The fine-tuned decoder and the discriminator ship in semstyle/weights; the page's choice loads and uses them."""
    import torch
    from safetensors.torch import load_file

    from semstyle.models.weights import packaged_file, sha256_of

    role = "decoder" if what == "decoder" else "discriminator"
    path, sha, _ = packaged_file(role)  # a WeightsError here: the manifest lists no such file
    assert path.is_file() and sha256_of(path) == sha, path
    kw = {"decoder": "finetuned"} if what == "decoder" else {"refine": 1}
    view = handlers.run(*form(images.content, images.style_a, size=64, **kw))
    assert 'id="semstyle-ok"' in view.status, view.status
    assert Image.open(view.result).size == (64, 64)
    st = engine.stylizer("finetuned" if what == "decoder" else "pretrained")  # the one the page's run used
    held = (st.decoder if what == "decoder" else st.discriminator()).state_dict()
    shipped = load_file(str(path))
    assert set(held) == set(shipped)
    for k, v in shipped.items():
        torch.testing.assert_close(held[k].cpu(), v.float(), msg=k)
    if what == "refine":
        assert "discriminator score" in view.status, view.status  # the discriminator judged the result
        return
    # the page's result is the fine-tuned decoder's, and differs from the pretrained one's
    from semstyle.web.forms import Upload

    assert "decoder finetuned" in view.status, view.status
    got = np.asarray(Image.open(view.result).convert("RGB"), dtype=np.float64)
    c = engine.load(Upload.of(images.content), "content image", 64)
    own = np.asarray(st.stylize(c, engine.load(Upload.of(images.style_a), "style image", engine.style_size)).image)
    assert np.abs(got - own).max() <= 1.0
    plain = handlers.run(*form(images.content, images.style_a, size=64)).result
    plain = np.asarray(Image.open(plain), dtype=np.float64)
    assert np.abs(got - plain).mean() > 3.0, np.abs(got - plain).mean()  # measured 8.0 grey levels


def test_fast_model_from_the_page(handlers: Handlers, engine: CountingEngine, images) -> None:
    """The 'fast' choice runs the distilled model; refinement with it is refused in one line."""
    cfg = engine.config_for(Handlers.request(*form(images.content, images.style_a, decoder="fast")))
    assert (cfg.networks.model, cfg.networks.decoder) == ("fast", "pretrained")
    view = handlers.run(*form(images.content, images.style_a, size=64, decoder="fast"))
    assert 'id="semstyle-ok"' in view.status and Image.open(view.result).size == (64, 64)
    assert "fast" in engine.loaded()
    assert_message(
        handlers.run(*form(images.content, images.style_a, size=64, decoder="fast", refine=1)).status,
        "refinement needs the VGG19 model",
    )


def test_label_maps_give_regions_and_overlays(handlers: Handlers, images, tmp_path: Path) -> None:
    def halves(path: Path, w: int, h: int) -> Path:
        arr = np.zeros((h, w, 3), np.uint8)
        arr[: h // 2] = (0, 0, 255)
        arr[h // 2 :] = (0, 255, 0)
        Image.fromarray(arr).save(path)
        return path

    cl, sl = halves(tmp_path / "c.png", 128, 128), halves(tmp_path / "s.png", 128, 128)
    view = handlers.run(
        *form(images.content, images.style_a, semantic="labels", content_labels=cl, style_labels=sl, size=96)
    )
    assert 'id="semstyle-ok"' in view.status, view.status
    assert Image.open(view.result).size == (96, 96)
    assert view.content_overlay.size == (96, 96) and view.style_overlay.size == (128, 128)


def test_auto_mode_shows_the_segmentation_of_both_images(handlers: Handlers, images) -> None:
    view = handlers.run(*form(images.content_wide, images.style_b, semantic="auto", size=96))
    assert 'id="semstyle-ok"' in view.status and "semantic auto" in view.status, view.status
    assert view.content_overlay.size == (96, 43) and view.style_overlay.size == (128, 128)
    # the "Show the automatic segmentation" button (Handlers.segment) runs in tests/test_web_browser.py


def test_segment_reports_problems_as_messages(handlers: Handlers, images) -> None:
    assert_message(handlers.segment(*form(None, images.style_a)).status, "upload a content image")


# ----------------------------------------------------------------------------- HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(engine: CountingEngine):
    opts = ServeOptions(port=free_port(), concurrency=1)
    demo = build_demo(engine, opts)
    launch(demo, engine, opts)
    yield f"http://127.0.0.1:{opts.port}/"
    demo.close()


def test_http_page_and_endpoints(server: str) -> None:
    r = httpx.get(server, timeout=30)
    assert r.status_code == 200 and "semstyle" in r.text
    config = httpx.get(server + "config", timeout=30).json()
    assert {"/stylize", "/segment"} <= {"/" + d.get("api_name", "") for d in config["dependencies"]}
    assert config["analytics_enabled"] is False  # the app's own doing: nothing here sets GRADIO_ANALYTICS_ENABLED


def test_http_oversize_upload_is_refused_with_a_message(server: str) -> None:
    r = httpx.post(
        server + "gradio_api/upload", files={"files": ("big.png", os.urandom(100 * 1024), "image/png")}, timeout=30
    )
    assert r.status_code == 413 and "maximum allowed size" in r.text


def test_http_ten_queued_requests_all_complete_one_at_a_time(server: str, engine: CountingEngine, images) -> None:
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    engine.peak, before = 0, engine.done
    jobs = [
        client.submit(
            *form(
                handle_file(str(images.content_wide)), handle_file(str(images.style_a)), size=64, alpha=0.5 + 0.05 * i
            ),
            api_name="/stylize",
        )
        for i in range(10)
    ]
    results = [job.result(timeout=300) for job in jobs]
    for res in results:
        assert 'id="semstyle-ok"' in res[4], res[4]
        with Image.open(res[0]) as im:
            assert im.format == "PNG" and im.size == (64, 29)
    assert engine.done - before == 10
    assert engine.peak == 1  # the queue let one run at a time
    client.close()
