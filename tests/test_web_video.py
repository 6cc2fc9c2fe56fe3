"""Video on the web page (issue 16): the Video tab's handler, its errors, and the tab over HTTP."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import spy_on_video_carries
from PIL import Image
from test_video import FPS, N, count, pan, style_path, write_clip

from semstyle.config import NetworkConfig, StylizeOptions


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames: list[Image.Image] = pan()
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", frames)

@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory):
    from semstyle.config import StylizeConfig
    from semstyle.web.app import Handlers
    from semstyle.web.engine import Engine
    from semstyle.web.forms import Limits
    from semstyle.web.video import VideoLimits

    engine = Engine(
        StylizeConfig(NetworkConfig(device="cpu"), StylizeOptions(style_size=128)),
        Limits(),
        concurrency=1,
        outputs=tmp_path_factory.mktemp("web-video"),
    )
    return Handlers(engine, VideoLimits(max_bytes=2 * 2**20, max_seconds=2.0, max_side=128))


def test_web_video_tab_stylises_a_clip(web, clip: Path) -> None:
    fractions: list[float] = []
    path, status = web.video(str(clip), str(style_path()), 0.8, 64, 0.6, progress=lambda f, d: fractions.append(f))
    assert 'id="semstyle-ok"' in status and path is not None, status
    assert Path(path).parent.parent == web.engine._outdir  # a server-made path, not the client's file name
    assert count(Path(path))[:3] == (N, Fraction(FPS), (64, 42))
    assert fractions == sorted(fractions) and fractions[-1] > 0.9


def test_web_video_tab_runs_the_temporal_decoder(web, clip: Path) -> None:
    frames = {}
    for decoder in ("pretrained", "temporal"):
        path, status = web.video(str(clip), str(style_path()), 1.0, 64, 0.0, decoder)
        assert 'id="semstyle-ok"' in status and path is not None, status
        with av.open(path) as box:
            frames[decoder] = [f.to_ndarray(format="rgb24").astype(np.int16) for f in box.decode(video=0)]
    assert len(frames["temporal"]) == N
    # another decoder, another picture (the two decoders' weights differ; an unchanged run would be equal)
    assert np.abs(frames["temporal"][0] - frames["pretrained"][0]).mean() > 1.0


def test_web_video_tab_refuses_bad_requests_with_messages(web, clip: Path, tmp_path: Path) -> None:
    from semstyle.web.app import Handlers
    from semstyle.web.video import VideoLimits

    text = tmp_path / "x.mp4"
    text.write_text("hello")
    cases = [
        ((None, str(style_path())), {}, "upload a video clip"),
        ((str(text), str(style_path())), {}, "is damaged or not a video"),
        ((str(clip), None), {}, "upload a style image"),
        ((str(clip), str(style_path())), {"size": 4096}, "video size must be between 16 and 128 px"),
        ((str(clip), str(style_path())), {"consistency": 1.0}, "consistency must be in [0, 1)"),
        ((str(clip), str(style_path())), {"alpha": 2.0}, "alpha must be in [0, 1.25], got 2.0"),
        ((str(clip), str(style_path())), {"decoder": "finetuned"}, "video decoder must be one of pretrained, temporal"),
    ]
    for args, kw, needle in cases:
        path, status = web.video(*args, **{"size": 64, **kw})
        assert path is None and 'id="semstyle-error"' in status and needle in status, (needle, status)
    short = Handlers(web.engine, VideoLimits(max_seconds=0.3))
    path, status = short.video(str(clip), str(style_path()), size=64)
    assert path is None and "over the limit of 0.3 s" in status, status
    small = Handlers(web.engine, VideoLimits(max_bytes=1024))
    path, status = small.video(str(clip), str(style_path()), size=64)
    assert path is None and "over the limit of 1 KB" in status, status
    with pytest.raises(ValueError, match="max video duration"):
        VideoLimits(max_seconds=0)


def test_web_video_tab_over_http(web, clip: Path) -> None:
    # the tab as a browser reaches it: the clip and the style uploaded to a real server, the /video endpoint
    # queued and run, the mp4 downloaded from the server's own folder
    import socket

    import httpx
    from gradio_client import Client, handle_file

    from semstyle.web.app import ServeOptions, build_demo, launch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = ServeOptions(port=port, concurrency=1, video=web.video_limits)
    demo = build_demo(web.engine, opts)
    launch(demo, web.engine, opts)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        video, status = client.predict(
            handle_file(str(clip)), handle_file(str(style_path())), 0.8, 64, 0.6, api_name="/video"
        )
        assert 'id="semstyle-ok"' in status, status
        path = Path(video["video"] if isinstance(video, dict) else video)  # downloaded by the client over HTTP
        assert count(path)[:3] == (N, Fraction(FPS), (64, 42))
        _, status = client.predict(
            handle_file(str(style_path())), handle_file(str(style_path())), 0.8, 64, 0.6, api_name="/video"
        )  # an image where the clip goes: a message, not a crash
        assert 'id="semstyle-error"' in status and "not a video" in status, status
        client.close()
        assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).status_code == 200  # still serving
    finally:
        demo.close()


def test_the_page_has_a_video_tab() -> None:
    from semstyle.config import StylizeConfig
    from semstyle.web.app import build_demo
    from semstyle.web.engine import Engine

    engine = Engine(StylizeConfig(NetworkConfig(device="cpu")))
    demo = build_demo(engine)
    try:
        apis = {d.get("api_name") for d in demo.config["dependencies"]}
        assert {"stylize", "segment", "video"} <= apis
        ids = {c.get("props", {}).get("elem_id"): c["id"] for c in demo.config["components"]}
        assert {"tab-image", "tab-video", "video-in", "video-out", "video-run"} <= set(ids)
        size, cons = ids["video-size"], ids["video-cons"]  # moving the frame size sets the consistency slider
        moves = [d for d in demo.config["dependencies"] if (size, "change") in [tuple(t) for t in d["targets"]]]
        assert [(d["inputs"], d["outputs"], d["api_name"]) for d in moves] == [([size], [cons], "consistency_for")]
    finally:
        engine.close()


def test_the_consistency_slider_takes_the_measured_choice_of_the_frame_size() -> None:
    from semstyle.config import VIDEO_CARRIES
    from semstyle.web.video import WEB_CONSISTENCY, WEB_SIZE, consistency_for

    assert consistency_for(WEB_SIZE) == WEB_CONSISTENCY == VIDEO_CARRIES[0][1]  # the tab starts at 256 px
    for side, consistency, _ in VIDEO_CARRIES:
        assert consistency_for(float(side)) == consistency  # the slider sends floats
    assert consistency_for(2048) == VIDEO_CARRIES[-1][1]


def test_a_request_without_consistency_takes_the_choice_of_its_frame_size(web, clip: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.config import VIDEO_CARRIES

    seen = spy_on_video_carries(monkeypatch)  # stops each clip before its frame is stylised
    with pytest.raises(KeyboardInterrupt):
        web.video(str(clip), str(style_path()), 1.0, 64, None)
    with pytest.raises(KeyboardInterrupt):
        web.video(str(clip), str(style_path()), 1.0, 64, 0.3)
    assert seen == [VIDEO_CARRIES[0][1:], (0.3, VIDEO_CARRIES[0][2])]
