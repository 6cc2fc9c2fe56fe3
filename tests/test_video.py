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


# ----------------------------------------------------------------------------- large frames: tiled, carried
def test_a_tiled_clip_equals_the_untiled_one_with_every_carry(exact) -> None:
    # 192×128 frames in 64 px tiles (6 tiles, each with its 64 px of context): the feature and decoder-activation
    # carries are applied tile by tile on whole-frame maps, the activation's contrast restored over the whole
    # frame, so the tiled clip is the untiled one up to fp32 rounding (a grey level at most)
    frames = pan(2, 4, (192, 128))
    runs = {}
    for tile in (-1, 64):
        opts = exact.defaults.updated(size=192, tile=tile)
        runs[tile] = [np.asarray(im, dtype=np.int16)
                      for im in stylize_frames(exact, frames, style_path(), consistency=0.8, hidden=0.7, options=opts)]
    whole, tiled = runs[-1], runs[64]
    per = np.asarray(exact.stylize(frames[1], style_path(), size=192, tile=64).image, dtype=np.int16)
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
