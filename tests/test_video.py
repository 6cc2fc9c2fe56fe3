"""Video style transfer (issue 16): streaming IO, temporal consistency, the CLI and its errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from semstyle import assets, motion
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io import video as V
from semstyle.pipelines.video import stylize_frames, stylize_video

W, H, STEP, N = 96, 64, 3, 8  # frame size, pan speed (px/frame), frames
FPS = 12


def pan(n: int = N, step: int = STEP, size: tuple[int, int] = (W, H)) -> list[Image.Image]:
    """A horizontal pan over a bundled photo: frame t is the window at x = t·step (known motion)."""
    photo = Image.open(assets.content_images()[0]).convert("RGB")
    photo = photo.resize((size[0] + n * step + 8, round(photo.height * (size[0] + n * step + 8) / photo.width)))
    top = (photo.height - size[1]) // 2
    return [photo.crop((t * step, top, t * step + size[0], top + size[1])) for t in range(n)]


def write_clip(path: Path, frames: list[Image.Image], audio: bool = True) -> Path:
    """An H.264 mp4 (and an AAC sine tone) of ``frames`` at FPS."""
    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        vs.options = {"crf": "10", "preset": "ultrafast"}
        a_s = box.add_stream("aac", rate=16000) if audio else None
        for im in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.asarray(im), format="rgb24")):
                box.mux(p)
        for p in vs.encode():
            box.mux(p)
        if a_s is not None:
            t = np.arange(int(16000 * len(frames) / FPS)) / 16000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for i in range(0, tone.shape[1], 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp",
                                                layout="mono")
                af.sample_rate = 16000
                for p in a_s.encode(af):
                    box.mux(p)
            for p in a_s.encode():
                box.mux(p)
    return path


def count(path: Path) -> tuple[int, Fraction, tuple[int, int], str | None]:
    with av.open(str(path)) as box:
        vs = box.streams.video[0]
        n = sum(1 for _ in box.decode(vs))
        audio = box.streams.audio[0].codec_context.name if box.streams.audio else None
        return n, Fraction(vs.average_rate), (vs.codec_context.width, vs.codec_context.height), audio


@pytest.fixture(scope="module")
def frames() -> list[Image.Image]:
    return pan()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, frames: list[Image.Image]) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", frames)


def style_path() -> Path:
    return assets.style_images()[1]


def mean_warping_error(outs: list[np.ndarray], ins: list[np.ndarray]) -> float:
    return float(np.mean([motion.warping_error(outs[t - 1], outs[t], ins[t - 1], ins[t]) for t in range(1, len(outs))]))


# ----------------------------------------------------------------------------- consistency
def test_consistency_lowers_the_warping_error_of_a_pan(exact, frames: list[Image.Image]) -> None:
    stylizer = exact  # fp32, one thread: consistency 0 is compared bit for bit with the still-image path
    ins = [np.asarray(f) for f in frames]
    per = [
        np.asarray(im)
        for im in stylize_frames(
            stylizer, frames, style_path(), consistency=0.0, options=stylizer.defaults.updated(size=W)
        )
    ]
    cons = [
        np.asarray(im)
        for im in stylize_frames(
            stylizer, frames, style_path(), consistency=0.6, options=stylizer.defaults.updated(size=W)
        )
    ]
    assert per[0].shape == cons[0].shape == (H, W, 3)
    np.testing.assert_array_equal(per[0], cons[0])  # nothing to carry into the first frame
    tex = [
        np.asarray(im)
        for im in stylize_frames(
            stylizer, frames, style_path(), consistency=0.6, texture=0.6, options=stylizer.defaults.updated(size=W)
        )
    ]
    feat = [
        np.asarray(im)
        for im in stylize_frames(
            stylizer, frames, style_path(), consistency=0.6, hidden=0.0, options=stylizer.defaults.updated(size=W)
        )
    ]
    e_per, e_cons, e_feat, e_tex = (mean_warping_error(o, ins) for o in (per, cons, feat, tex))
    assert e_feat < 0.9 * e_per, (e_feat, e_per)  # feature carry alone: a little
    assert e_cons < 0.8 * e_feat, (e_cons, e_feat)  # with the decoder-activation carry (the default): more
    assert e_tex < 0.5 * e_per, (e_tex, e_per)  # texture carry: a lot
    # consistency 0 is per-frame: every frame as the still-image path stylises it alone
    np.testing.assert_array_equal(per[3], np.asarray(stylizer.stylize(frames[3], style_path(), size=W).image))


def test_flow_of_a_known_pan_and_its_reliability(frames: list[Image.Image]) -> None:
    a, b = (motion.gray(np.asarray(f)) for f in frames[:2])
    back = motion.flow(b, a)  # frame 1 → frame 0: the content moved left by STEP, so it was STEP px to the right
    ok = motion.reliable(back, motion.flow(a, b))
    inner = np.s_[8:-8, 8 : -8 - STEP]
    assert abs(float(np.median(back[..., 0][inner])) - STEP) < 0.5 and abs(float(np.median(back[..., 1][inner]))) < 0.5
    assert ok[inner].mean() > 0.9
    # a patch that appears from nowhere (no match in the previous frame) fails the forward-backward check
    rng = np.random.default_rng(0)
    c = b.copy()
    c[20:44, 30:60] = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    back_c = motion.flow(c, a)
    ok_c = motion.reliable(back_c, motion.flow(a, c))
    assert ok_c[24:40, 34:56].mean() < 0.8 and ok_c[:, :24].mean() > 0.9
    with pytest.raises(ValueError, match="flow method must be one of dis, farneback"):
        motion.flow(a, b, "lucas")


def test_semantic_regions_are_stable_across_frames(stylizer, frames: list[Image.Image]) -> None:
    labels: list[np.ndarray] = []
    outs = list(
        stylize_frames(
            stylizer,
            frames,
            style_path(),
            callback=lambda i, res: labels.append(res.content_labels),
            options=stylizer.defaults.updated(semantic="auto", size=W),
        )
    )
    assert len(outs) == len(labels) == N
    for t in range(1, N):  # each frame's labels are the previous frame's moved by the pan
        moved = labels[t - 1][:, STEP:]
        agree = (labels[t][:, : W - STEP] == moved).mean()
        assert agree > 0.95, (t, agree)
    assert all(set(np.unique(lab)) <= set(np.unique(labels[0])) for lab in labels)


# ----------------------------------------------------------------------------- files, folders, API
def test_mp4_round_trip_keeps_count_fps_size_and_audio(stylizer, clip: Path, tmp_path: Path) -> None:
    out = stylize_video(stylizer, clip, style_path(), tmp_path / "out.mp4", options=stylizer.defaults.updated(size=W))
    n, fps, size, audio = count(out)
    assert (n, fps, size, audio) == (N, Fraction(FPS), (W, H), "aac")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left


@pytest.mark.parametrize("ext", [".gif", ".webm"])
def test_gif_and_webm_outputs(stylizer, clip: Path, tmp_path: Path, ext: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="semstyle.io.video"):
        out = stylize_video(
            stylizer, clip, style_path(), tmp_path / f"out{ext}", options=stylizer.defaults.updated(size=48)
        )
    n, _, size, audio = count(out)
    assert n == N and size == (48, 32)
    if ext == ".gif":  # a gif has no sound: the AAC is left out, with a warning
        assert audio is None and any(r.levelname == "WARNING" and "has no sound" in r.message for r in caplog.records)
    else:  # AAC does not fit a webm: re-encoded as Opus, as long as the clip
        assert audio == "opus" and "re-encoded as libopus" in caplog.text
        with av.open(str(out)) as box, av.open(str(clip)) as src:  # as long as the source, up to a few 20 ms
            assert abs(box.duration - src.duration) / 1e6 < 0.1  # Opus frames and the codecs' priming samples


def test_folder_in_natural_order_folder_out_named_after_the_frames(stylizer, frames, tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    for t, im in enumerate(frames[:5]):
        im.save(src / f"shot_{t * 5}.png")  # shot_0, shot_5, shot_10, …: natural order differs from plain
    frames[5].resize((W + 10, H + 6)).save(src / "shot_25.png")  # another size: resized to the first frame's
    out = stylize_video(
        stylizer, src, style_path(), tmp_path / "styled", consistency=0.0, options=stylizer.defaults.updated(size=W)
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"shot_{t * 5}.png" for t in range(6))
    sizes = {Image.open(p).size for p in out.iterdir()}
    assert sizes == {(W, H)}
    # per-frame output equals stylising the frame alone
    alone = stylizer.stylize(frames[2], style_path(), size=W).image
    np.testing.assert_array_equal(np.asarray(Image.open(out / "shot_10.png")), np.asarray(alone))


def test_natural_sort_key() -> None:
    assert sorted(["f10", "f2", "f1"], key=V.natural_key) == ["f1", "f2", "f10"]


# ----------------------------------------------------------------------------- the CLI and its errors
def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        rc = main(["video", *map(str, argv)])
    except SystemExit as e:
        rc = int(e.code or 0)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_writes_the_clip(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mp4"
    rc, stdout, err = run(capsys, [clip, style_path(), "-o", out, "--size", "64", "--alpha", "0.8"])
    assert rc == 0, err
    assert stdout.strip() == str(out)
    assert count(out)[:3] == (N, Fraction(FPS), (64, 42))


def _bad_inputs(tmp: Path, clip: Path) -> dict[str, tuple[list[object], str]]:
    text = tmp / "notes.mp4"
    text.write_text("not a video\n")
    cut = tmp / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:600])
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    exists = tmp / "exists.mp4"
    exists.write_bytes(b"x")
    return {
        "not a video": ([text, style_path(), "-o", tmp / "o.mp4"], "is damaged or not a video"),
        "truncated": ([cut, style_path(), "-o", tmp / "o.mp4"], "damaged"),
        "zero frames": ([empty, style_path(), "-o", tmp / "o.mp4"], "holds no frames"),
        "missing": ([tmp / "none.mp4", style_path(), "-o", tmp / "o.mp4"], "does not exist"),
        "wrong type": ([style_path(), style_path(), "-o", tmp / "o.mp4"], "is not a video"),
        "too many pixels": (
            [clip, style_path(), "-o", tmp / "o.mp4", "--max-pixels", "1000"],
            "over the limit of 1000 pixels",
        ),
        "unknown output": ([clip, style_path(), "-o", tmp / "o.avi"], "unknown video output '.avi'"),
        "existing output": ([clip, style_path(), "-o", exists], "already exists; pass --overwrite"),
        "consistency": (
            [clip, style_path(), "-o", tmp / "o.mp4", "--consistency", "1.5"],
            "consistency must be in [0, 1)",
        ),
        "texture": ([clip, style_path(), "-o", tmp / "o.mp4", "--texture", "-0.1"], "texture must be in [0, 1)"),
        "hidden": ([clip, style_path(), "-o", tmp / "o.mp4", "--hidden", "1"], "hidden must be in [0, 1)"),
        "labels": ([clip, style_path(), "-o", tmp / "o.mp4", "--semantic", "labels"], "supports semantic none, auto"),
        "refine": ([clip, style_path(), "-o", tmp / "o.mp4", "--refine", "2"], "drop --refine for video"),
        "missing style": ([clip, tmp / "nope.jpg", "-o", tmp / "o.mp4"], "nope.jpg' does not exist"),
    }


BAD = [
    "not a video",
    "truncated",
    "zero frames",
    "missing",
    "wrong type",
    "too many pixels",
    "unknown output",
    "existing output",
    "consistency",
    "texture",
    "hidden",
    "labels",
    "refine",
    "missing style",
]


@pytest.mark.parametrize("case", BAD)
def test_cli_bad_input_one_line_no_output(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    argv, needle = _bad_inputs(tmp_path, clip)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, stdout, err = run(capsys, argv)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semstyle: error: ") and needle in lines[0], err
    assert "Traceback" not in err and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even a temporary file


# ----------------------------------------------------------------------------- the web page's video tab
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
        ((str(clip), str(style_path())), {"alpha": 2.0}, "alpha must be in [0, 1]"),
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
        ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
        assert {"tab-image", "tab-video", "video-in", "video-out", "video-run"} <= ids
    finally:
        engine.close()


def test_texture_carry_keeps_the_current_texture_contrast() -> None:
    import cv2

    from semstyle.pipelines.video import carry_texture

    rng = np.random.default_rng(3)
    cur = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)
    prev = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)  # an unrelated texture

    def texture_std(im: np.ndarray) -> np.ndarray:
        f = im.astype(np.float32)
        return (f - cv2.GaussianBlur(f, (0, 0), 2.0)).reshape(-1, 3).std(0)

    still, ok = np.zeros((64, 80, 2), np.float32), np.ones((64, 80), bool)
    out = carry_texture(cur, prev, still, ok, 0.5)
    assert np.allclose(texture_std(out), texture_std(cur), rtol=0.05)  # a plain 50/50 mix would be ~0.71×
    assert np.abs(out.astype(int) - cur.astype(int)).mean() > 5  # and the previous texture did come in
    assert np.array_equal(carry_texture(cur, prev, still, ~ok, 0.5), cur)  # nothing carried where unreliable


def test_the_decoder_splits_at_named_stages() -> None:
    import torch

    from semstyle.models.decoder import STAGES, Decoder

    dec = Decoder().eval()
    x = torch.rand(1, 512, 3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = dec(x)
        for name, stride in (("s8_1", 8), ("s4_2", 4), ("up2", 2), ("rgb", 1)):
            mid = dec.run(x, stop=name)
            assert mid.shape[-1] == 4 * 8 // stride
            torch.testing.assert_close(dec.run(mid, start=name), whole, rtol=0, atol=0)  # the same layers, in order
    assert list(STAGES.values()) == sorted(STAGES.values()) and STAGES["rgb"] == len(dec.layers) - 1
    with pytest.raises(ValueError, match="decoder stage must be one of s8_1, up4"):
        dec.run(x, stop="layer9")


def test_hidden_carry_mixes_the_warped_activation_and_keeps_its_contrast() -> None:
    """The decoder-activation carry on its own: where the flow is reliable the previous activation comes in
    with weight w, rescaled per channel to the current activation's contrast; elsewhere nothing."""
    import torch

    from semstyle.pipelines.transfer import Tile
    from semstyle.pipelines.video import FrameCarry

    g = torch.Generator().manual_seed(0)
    cur, prev = torch.randn(1, 3, 16, 20, generator=g), torch.randn(1, 3, 16, 20, generator=g)  # unrelated
    whole, size = Tile(0, 64, 0, 80, 0, 64, 0, 80), (64, 80)  # a 64×80 frame: the activation at stride 4
    still = np.zeros((64, 80, 2), np.float32)
    for ok, carried in ((np.ones((64, 80), bool), True), (np.zeros((64, 80), bool), False)):
        carry = FrameCarry(0.5, 0.5)
        carry.hidden = prev.clone()
        carry.next_frame(still, ok)
        carry.collect(cur, whole, size)
        out = carry.activation(whole)
        if carried:
            torch.testing.assert_close(out.std((2, 3)), cur.std((2, 3)), rtol=1e-4, atol=0)  # 50/50 would be ~0.71×
            corr = float(torch.corrcoef(torch.stack([out.flatten(), prev.flatten()]))[0, 1])
            assert corr > 0.5  # the previous activation did come in
        else:
            assert torch.equal(out, cur)  # nothing carried where the flow is unreliable
        carry.next_frame(None, None)
        assert carry.hidden is not None and torch.equal(carry.hidden, out)  # what the next frame gets


# ----------------------------------------------------------------------------- large frames: tiled, carried
def test_a_tiled_clip_equals_the_untiled_one_with_every_carry(exact) -> None:
    # 288×160 frames in 96 px tiles (6 tiles, each with its 96 px of context): the feature and decoder-activation
    # carries are applied tile by tile on whole-frame maps, the activation's contrast restored over the whole
    # frame, so the tiled clip is the untiled one up to fp32 rounding (a grey level at most)
    frames = pan(2, 4, (288, 160))
    runs = {}
    for tile in (-1, 96):
        opts = exact.defaults.updated(size=288, tile=tile)
        runs[tile] = [np.asarray(im, dtype=np.int16)
                      for im in stylize_frames(exact, frames, style_path(), consistency=0.8, hidden=0.7, options=opts)]
    whole, tiled = runs[-1], runs[96]
    per = np.asarray(exact.stylize(frames[1], style_path(), size=288, tile=96).image, dtype=np.int16)
    for a, b in zip(whole, tiled):
        assert np.abs(a - b).max() <= 1
    assert np.abs(tiled[1] - per).mean() > 1  # the carries did act on the tiled frames


def test_cli_large_frames_are_tiled_with_the_carries_on(frames, tmp_path: Path, capsys) -> None:
    # frames over the tiling threshold (--size 0 keeps 1080p, over 1.5 Mpx: tiled) ended with "needs the whole
    # image as one tile"; --tile 64 takes the same path on small frames
    src = tmp_path / "frames"
    src.mkdir()
    for t, im in enumerate(frames[:3]):
        im.save(src / f"f{t}.png")
    out = tmp_path / "big.mp4"
    rc, stdout, err = run(capsys, [src, style_path(), "-o", out, "--size", "0", "--tile", "64", "--style-size", "64"])
    assert rc == 0, err
    assert count(out)[0] == 3 and count(out)[2] == (W, H)


# ----------------------------------------------------------------------------- what users do with clips
def test_odd_sized_frames_lose_a_column_and_a_row_in_mp4_only(
    stylizer, frames, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "odd"
    src.mkdir()
    for t, im in enumerate(frames[:3]):
        im.crop((0, 0, 63, 41)).save(src / f"f{t}.png")  # 63×41: yuv420p needs even sides
    with caplog.at_level("WARNING", logger="semstyle.io.video"):
        mp4 = stylize_video(
            stylizer, src, style_path(), tmp_path / "odd.mp4", options=stylizer.defaults.updated(size=0)
        )
    assert count(mp4)[0] == 3 and count(mp4)[2] == (62, 40) and "written as 62x40" in caplog.text
    folder = stylize_video(stylizer, src, style_path(), tmp_path / "odd_out", options=stylizer.defaults.updated(size=0))
    assert {Image.open(p).size for p in folder.iterdir()} == {(63, 41)}


def test_a_failure_after_the_writer_started_leaves_nothing(frames, tmp_path: Path, capsys) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    for t, im in enumerate(frames[:4]):
        im.save(src / f"f{t}.png")
    (src / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # the third frame: after two were written
    for target in ("out.mp4", "out_frames"):
        rc, _, err = run(capsys, [src, style_path(), "-o", tmp_path / target, "--size", "48"])
        last = err.strip().splitlines()[-1]  # after the progress bar's line
        assert rc == 2 and last.startswith("semstyle: error: ") and "f2.png" in last and "Traceback" not in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no output, no temporary file


def test_overwrite_replaces_a_clip_and_a_folder(stylizer, clip: Path, tmp_path: Path, capsys) -> None:
    old = tmp_path / "out.mp4"
    old.write_bytes(b"an old clip")
    rc, _, err = run(capsys, [clip, style_path(), "-o", old, "--size", "48", "--overwrite"])
    assert rc == 0, err
    assert count(old)[:3] == (N, Fraction(FPS), (48, 32))
    folder = tmp_path / "frames_out"
    folder.mkdir()
    (folder / "stale.png").write_bytes(b"from an earlier run")
    rc, _, err = run(capsys, [clip, style_path(), "-o", folder, "--size", "48", "--overwrite"])
    assert rc == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:05d}.png" for i in range(N)]  # stale.png gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames_out", "out.mp4"]  # no temporary left


def test_several_styles_are_blended_in_every_frame(exact, frames, tmp_path: Path) -> None:
    styles = [style_path(), assets.style_images()[0]]
    outs = [
        np.asarray(im, dtype=np.int16)
        for im in stylize_frames(
            exact, frames[:3], styles, style_weights=[0.7, 0.3], consistency=0.0, options=exact.defaults.updated(size=W)
        )
    ]
    alone = np.asarray(exact.stylize(frames[1], styles, style_weights=[0.7, 0.3], size=W).image, dtype=np.int16)
    assert np.array_equal(outs[1], alone)  # per-frame: the still-image path with the same blend
    one = np.asarray(exact.stylize(frames[1], styles[0], size=W).image, dtype=np.int16)
    assert np.abs(outs[1] - one).mean() > 2  # the second style does count
