"""Scribble-guided regions (issue 31): strokes grow into regions, matched colours match regions, the CLI, the API
and video take them, and every bad scribble picture is one line (exit 2 and nothing written from the CLI)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import content_array, cool_style_array, warm_style_array
from PIL import Image

from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.io.images import resize_longest
from semstyle.io.labels import pack_rgb
from semstyle.segmentation.scribbles import MAX_COLORS, GrowOptions, grow, read_scribbles

pytestmark = pytest.mark.usefixtures("one_thread_module")
SIZE = 128
RED, GREEN = (230, 30, 30), (30, 200, 60)


def strokes(size: tuple[int, int], lines: list[tuple[tuple[int, int, int], tuple[int, int, int, int]]],
            width: int = 5) -> Image.Image:
    """A transparent RGBA picture with straight strokes: (colour, (x0, y0, x1, y1)) each."""
    from PIL import ImageDraw

    im = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    for color, xy in lines:
        draw.line(xy, fill=(*color, 255), width=width)
    return im


def scene_strokes(size: int = SIZE) -> Image.Image:
    """Content strokes for conftest's scene: red across the sky, green across the ground (one each)."""
    return strokes((size, size), [(RED, (20, 15, 100, 20)), (GREEN, (70, 100, 115, 110))])


def halves_style(size: int = SIZE) -> np.ndarray:
    """A style whose top is warm stripes and whose bottom is cool dots."""
    top, bottom = warm_style_array(size, size), cool_style_array(size, size)
    out = bottom.copy()
    out[: size // 2] = top[: size // 2]
    return out


def halves_strokes(top: tuple[int, int, int], bottom: tuple[int, int, int], size: int = SIZE) -> Image.Image:
    return strokes((size, size), [(top, (10, 20, 110, 25)), (bottom, (10, 100, 110, 105))])


@pytest.fixture(scope="module")
def encode():
    import torch

    from semstyle.networks import load_encoder

    enc = load_encoder("pretrained", torch.device("cpu"))

    def run(x, taps):
        with torch.inference_mode():
            return enc(x, tuple(taps))

    return run


# ----------------------------------------------------------------------------- growth
def test_growth_recovers_a_two_region_scene(encode) -> None:
    img = Image.fromarray(content_array(SIZE, SIZE))
    seeds = read_scribbles(scene_strokes(), img.size)
    labels = grow(encode, img, seeds)
    truth = np.where(np.mgrid[0:SIZE, 0:SIZE][0] < 0.55 * SIZE, pack_rgb(np.array(RED)), pack_rgb(np.array(GREEN)))
    disc = (np.mgrid[0:SIZE, 0:SIZE][1] - 0.35 * SIZE) ** 2 + (np.mgrid[0:SIZE, 0:SIZE][0] - 0.55 * SIZE) ** 2 \
        < (0.18 * SIZE) ** 2  # the grey disc straddles both: neither stroke speaks for it
    assert set(np.unique(labels)) == {int(pack_rgb(np.array(RED))), int(pack_rgb(np.array(GREEN)))}
    assert (labels == truth)[~disc].mean() > 0.97
    painted = seeds >= 0
    assert np.array_equal(labels[painted], seeds[painted])  # the strokes keep their colours


def test_growth_follows_the_picture_not_the_nearest_stroke(encode) -> None:
    """Both strokes sit near the top; the bottom half still goes to the region it looks like."""
    img = Image.fromarray(halves_style())
    seeds = read_scribbles(strokes(img.size, [(RED, (10, 10, 60, 12)), (GREEN, (10, 70, 60, 72))]), img.size)
    labels = grow(encode, img, seeds)
    assert (labels[SIZE * 3 // 4 :] == int(pack_rgb(np.array(GREEN)))).mean() > 0.95


def test_the_classifier_learns_from_a_seeded_sample_of_each_grown_region() -> None:
    """A grown region of thousands of cells teaches through at most ``samples`` of them, the same ones every time;
    each region still weighs 1 in all, and a stroke smaller than the sample is taken whole."""
    import torch

    from semstyle.segmentation.scribbles import _training_set

    desc = torch.arange(5000.0)[:, None]  # (cells, 1): a cell's descriptor is its index
    painted = torch.zeros(2, 5000)
    painted[0, :3000] = 1  # a grown region of 3000 cells
    painted[1, 4000:4010] = 1  # a stroke of 10
    picks = []
    for _ in range(2):
        x, y, w = _training_set(desc, painted, 1024, torch.Generator().manual_seed(0))
        assert (y == 0).sum() == 1024 and (y == 1).sum() == 10
        assert torch.allclose(w[y == 0].sum(), torch.tensor(1.0)) and torch.allclose(w[y == 1].sum(), torch.tensor(1.0))
        assert len(x[y == 0].unique()) == 1024 and x[y == 0].max() < 3000  # distinct cells of the region
        assert torch.equal(x[y == 1].flatten(), torch.arange(4000.0, 4010.0))
        picks.append(x)
    assert torch.equal(picks[0], picks[1])  # seeded: the same strokes grow the same regions
    x, y, _ = _training_set(desc, painted, 0, torch.Generator().manual_seed(0))
    assert (y == 0).sum() == 3000  # 0: every cell


def test_one_colour_covers_everything(encode) -> None:
    img = Image.fromarray(content_array(64, 64))
    seeds = read_scribbles(strokes((64, 64), [(RED, (5, 5, 30, 5))]), img.size)
    assert np.all(grow(encode, img, seeds) == int(pack_rgb(np.array(RED))))


def two_lamps(size: int = SIZE) -> Image.Image:
    """Two identical bright squares on a dark noisy ground, far apart (left: x 10-50, right: x 78-118)."""
    rng = np.random.default_rng(0)
    a = np.empty((size, size, 3))
    a[:] = (25, 30, 60)
    a[40:88, 10:50] = a[40:88, 78:118] = (235, 150, 40)
    return Image.fromarray(np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8))


def test_a_part_cut_off_from_its_strokes_goes_to_the_region_that_reaches_it(encode) -> None:
    """Red paints the left square, green the ground. The right square looks like the left one, so the classifier
    alone calls it red; but no red stroke reaches it through red, so with ``connected`` (the default) it is green."""
    img = two_lamps()
    seeds = read_scribbles(strokes(img.size, [(RED, (18, 64, 42, 64)), (GREEN, (5, 118, 122, 118))]), img.size)
    red = int(pack_rgb(np.array(RED)))
    loose = grow(encode, img, seeds, GrowOptions(connected=False))
    assert (loose[44:84, 82:114] == red).mean() > 0.95  # the look-alike: what the connection step must undo
    joined = grow(encode, img, seeds)
    assert (joined[44:84, 82:114] == red).mean() < 0.05
    assert (joined[44:84, 14:46] == red).mean() > 0.95  # the painted square stays red
    assert (joined[:30] == red).mean() == 0.0


# ----------------------------------------------------------------------------- reading
def test_stroke_rims_join_their_colour() -> None:
    """A painted stroke's antialiased rim (a few pixels of in-between colours) is not a region of its own."""
    im = scene_strokes()
    arr = np.asarray(im).copy()
    arr[15, 19] = (200, 60, 40, 255)  # one odd pixel beside the red stroke
    seeds = read_scribbles(arr, im.size)
    assert seeds[15, 19] == int(pack_rgb(np.array(RED)))
    assert len(np.unique(seeds[seeds >= 0])) == 2


def test_a_picture_of_another_shape_is_stretched_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "semstyle"):
        seeds = read_scribbles(scene_strokes().resize((SIZE, SIZE // 2), Image.Resampling.NEAREST), (SIZE, SIZE))
    assert seeds.shape == (SIZE, SIZE)
    assert "another shape" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "semstyle"):  # the same shape at another size: silent
        read_scribbles(scene_strokes(2 * SIZE), (SIZE, SIZE))
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("picture", "message"),
    [
        (Image.new("RGBA", (SIZE, SIZE), (255, 0, 0, 0)), "has no paint"),
        (Image.new("RGB", (SIZE, SIZE), (255, 0, 0)), "has no transparency"),
        (np.zeros((SIZE, SIZE, 3), np.uint8), "RGBA array"),
        (42, "must be a path"),
    ],
    ids=["transparent", "no-alpha", "rgb-array", "number"],
)
def test_bad_pictures_are_one_line(picture: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as e:
        read_scribbles(picture, (SIZE, SIZE))
    assert "\n" not in str(e.value)


def test_too_many_colours_names_the_limit() -> None:
    lines = [((10 * i, 255 - 10 * i, 7 * i), (0, 7 * i + 2, SIZE, 7 * i + 2)) for i in range(MAX_COLORS + 1)]
    with pytest.raises(InputError, match=f"at most {MAX_COLORS}"):
        read_scribbles(strokes((SIZE, SIZE), lines, width=3), (SIZE, SIZE))


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "strokes.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="strokes.png"):
        read_scribbles(bad, (SIZE, SIZE))


# ----------------------------------------------------------------------------- the pipeline
def _region_colour(img: Image.Image, rows: slice) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)[rows].reshape(-1, 3).mean(0)


@pytest.mark.parametrize("swap", [False, True], ids=["red-on-top", "red-below"])
def test_matched_colours_take_matched_style_regions(exact, swap: bool) -> None:
    """The sky is painted red; red marks the style's warm top (or, swapped, its cool bottom): the sky takes that."""
    content = Image.fromarray(content_array(SIZE, SIZE))
    style = Image.fromarray(halves_style())
    s_strokes = halves_strokes(GREEN, RED) if swap else halves_strokes(RED, GREEN)
    res = exact.stylize(content, style, semantic="scribbles", content_scribbles=scene_strokes(),
                        style_scribbles=s_strokes)
    red, green = int(pack_rgb(np.array(RED))), int(pack_rgb(np.array(GREEN)))
    assert res.matches == {red: red, green: green}
    assert res.from_colors and set(np.unique(res.content_labels)) == {red, green}
    sky = _region_colour(res.image, slice(0, 50))
    warm = sky[0] - sky[2]  # warm stripes are red over blue; cool dots blue over red
    assert (warm < 0) if swap else (warm > 0)


def test_api_takes_paths_pil_and_arrays_alike(exact, tmp_path: Path) -> None:
    content = Image.fromarray(content_array(SIZE, SIZE))
    style = Image.fromarray(halves_style())
    c_path, s_path = tmp_path / "c.png", tmp_path / "s.png"
    scene_strokes().save(c_path)
    halves_strokes(RED, GREEN).save(s_path)
    by_path = exact.stylize(content, style, semantic="scribbles", content_scribbles=c_path, style_scribbles=[s_path])
    by_array = exact.stylize(content, style, semantic="scribbles", content_scribbles=np.asarray(scene_strokes()),
                             style_scribbles=np.asarray(halves_strokes(RED, GREEN)))
    assert np.array_equal(np.asarray(by_path.image), np.asarray(by_array.image))


def test_attention_and_refinement_work_with_scribbles(stylizer) -> None:
    content = Image.fromarray(content_array(64, 64))
    style = Image.fromarray(halves_style(64))
    kw = {"semantic": "scribbles", "content_scribbles": scene_strokes(64), "style_scribbles": halves_strokes(
        RED, GREEN, 64), "size": 64, "style_size": 64}
    assert stylizer.stylize(content, style, fusion="attention", **kw).image.size == (64, 64)
    res = stylizer.stylize(content, style, refine=1, refine_target=1.0, **kw)
    assert res.refine is not None and len(res.refine.scores) >= 1


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"content_scribbles": None}, "needs --content-scribbles"),
        ({"style_scribbles": None}, "needs --content-scribbles"),
        ({"style_scribbles": [Image.new("RGBA", (SIZE, SIZE), (0, 0, 255, 255))]}, "share no colour"),
        ({"semantic": "auto"}, "used with --semantic scribbles"),
    ],
    ids=["no-content", "no-style", "no-common-colour", "wrong-mode"],
)
def test_request_errors(stylizer, kw: dict, message: str) -> None:
    args = {"semantic": "scribbles", "content_scribbles": scene_strokes(), "style_scribbles": halves_strokes(
        RED, GREEN), **kw}
    with pytest.raises(InputError, match=message):
        stylizer.stylize(Image.fromarray(content_array(SIZE, SIZE)), Image.fromarray(halves_style()), **args)


# ----------------------------------------------------------------------------- command line and video
@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {"content": tmp_path / "c.png", "style": tmp_path / "s.png", "cs": tmp_path / "c_strokes.png",
           "ss": tmp_path / "s_strokes.png", "empty": tmp_path / "empty.png", "rgb": tmp_path / "rgb.png"}
    Image.fromarray(content_array(SIZE, SIZE)).save(out["content"])
    Image.fromarray(halves_style()).save(out["style"])
    scene_strokes().save(out["cs"])
    halves_strokes(RED, GREEN).save(out["ss"])
    Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0)).save(out["empty"])
    Image.new("RGB", (SIZE, SIZE), (9, 9, 9)).save(out["rgb"])
    return out


def cli(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([str(a) for a in [*argv, "--size", SIZE, "--style-size", SIZE, "--precision", "fp32"]])
    return code, capsys.readouterr().err


def test_cli_grows_saves_and_stylises(files: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out, grown = tmp_path / "out.png", tmp_path / "grown"
    code, err = cli(["stylize", files["content"], files["style"], "--semantic", "scribbles", "--content-scribbles",
                     files["cs"], "--style-scribbles", files["ss"], "--save-labels", grown, "-o", out], capsys)
    assert code == 0, err
    assert Image.open(out).size == (SIZE, SIZE)
    overlays = list(grown.glob("*.png"))
    assert len(overlays) == 1 and Image.open(overlays[0]).size[0] > SIZE  # content and style side by side


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--content-scribbles": "empty"}, "has no paint"),
        ({"--content-scribbles": "rgb"}, "has no transparency"),
        ({"--style-scribbles": "missing"}, "does not exist"),
        ({"--semantic": "auto"}, "used with --semantic scribbles"),
        ({"--content-scribbles": None}, "needs --content-scribbles"),
    ],
    ids=["empty", "no-alpha", "missing", "wrong-mode", "no-content"],
)
def test_cli_errors_are_one_line_and_write_nothing(files: dict[str, Path], tmp_path: Path, change: dict,
                                                   message: str, capsys: pytest.CaptureFixture[str]) -> None:
    flags = {"--semantic": "scribbles", "--content-scribbles": files["cs"], "--style-scribbles": files["ss"]}
    for k, v in change.items():
        flags[k] = None if v is None else files.get(v, tmp_path / f"{v}.png") if k != "--semantic" else v
    out = tmp_path / "out.png"
    argv: list[object] = ["stylize", files["content"], files["style"], "-o", out]
    for k, v in flags.items():
        argv += [k, v] if v is not None else []
    code, err = cli(argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_video_grows_on_the_first_frame_and_follows(exact, files: dict[str, Path]) -> None:
    from semstyle.pipelines.video import stylize_frames

    base = content_array(SIZE + 8, SIZE)
    frames = [Image.fromarray(base[:, i : i + SIZE]) for i in (0, 2, 4)]  # a slow pan
    seen = []
    out = list(stylize_frames(exact, frames, files["style"], consistency=0.5, content_scribbles=files["cs"],
                              style_scribbles=[files["ss"]], callback=lambda i, res: seen.append(res),
                              options=exact.options(None, {"semantic": "scribbles"})))
    assert len(out) == 3
    red, green = int(pack_rgb(np.array(RED))), int(pack_rgb(np.array(GREEN)))
    for res in seen:
        assert set(np.unique(res.content_labels)) == {red, green}
        assert (res.content_labels[:40] == red).mean() > 0.95  # the sky stays the red region along the pan


# ----------------------------------------------------------------------------- the web page's engine
@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory):
    from semstyle.config import NetworkConfig, StylizeConfig
    from semstyle.web.app import Handlers
    from semstyle.web.engine import Engine

    engine = Engine(StylizeConfig(networks=NetworkConfig(device="cpu", precision="fp32")),
                    outputs=tmp_path_factory.mktemp("web-out"))
    return Handlers(engine)


def test_web_strokes_give_the_library_picture(web, files: dict[str, Path]) -> None:
    """The page's editor value (background and painted layers) stylises as the API does with the same strokes."""
    from semstyle.web.forms import Upload

    layers = {"background": {"path": str(files["content"])}, "layers": [{"path": str(files["cs"])}]}
    s_layers = {"background": str(files["style"]), "layers": [str(files["ss"])], "composite": None}
    req = web.request(files["content"], files["style"], "scribbles", size=SIZE, content_paint=layers,
                      style_paint=s_layers)
    assert req.content_strokes == (Upload(files["cs"], "c_strokes.png"),)
    out = web.engine.run(req)
    assert out.content_overlay is not None and out.style_overlay is not None
    st = web.engine.stylizer("pretrained")
    style = resize_longest(Image.open(files["style"]).convert("RGB"), web.engine.style_size)  # as the page does
    lib = st.stylize(files["content"], style, semantic="scribbles", content_scribbles=files["cs"],
                     style_scribbles=files["ss"], size=SIZE)
    diff = np.abs(np.asarray(Image.open(out.path), dtype=int) - np.asarray(lib.image, dtype=int))
    assert diff.max() <= 1


@pytest.mark.parametrize(
    ("paint", "message"),
    [({"content_paint": None}, "needs strokes on the content"),
     ({"style_paint": {"background": None, "layers": []}}, "needs strokes on the style"),
     ({"content_paint": "strokes.png"}, "unexpected strokes")],
    ids=["no-content-strokes", "empty-style-layers", "not-an-editor-value"],
)
def test_web_stroke_errors_are_one_line(web, files: dict[str, Path], paint: dict, message: str) -> None:
    kw = {"content_paint": {"layers": [str(files["cs"])]}, "style_paint": {"layers": [str(files["ss"])]}, **paint}
    view = web.run(files["content"], files["style"], "scribbles", None, None, 1.0, False, SIZE, "pretrained", 0,
                   "adain", None, None, kw["content_paint"], kw["style_paint"])
    assert 'id="semstyle-error"' in view.status and message in view.status, view.status


def test_a_small_stroke_is_a_region_however_much_else_is_painted() -> None:
    """A short stroke for a small object is a region even beside a large painted area (not mistaken for a rim)."""
    big = strokes((SIZE, SIZE), [(RED, (0, 40, SIZE, 40))], width=60)
    arr = np.asarray(big).copy()
    arr[100:104, 60:64] = (*GREEN, 255)  # 16 px: 0.2 % of the paint
    seeds = read_scribbles(arr, (SIZE, SIZE))
    assert (seeds == int(pack_rgb(np.array(GREEN)))).sum() == 16


def test_grow_without_paint_is_refused(encode) -> None:
    with pytest.raises(ValueError, match="no painted pixel"):
        grow(encode, Image.fromarray(content_array(32, 32)), np.full((32, 32), -1))


def test_web_strokes_outside_the_upload_folder_are_refused(web, files: dict[str, Path],
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """As the server runs, a stroke layer must be an upload, whatever path the payload names."""
    from semstyle.web.app import Handlers
    from semstyle.web.guard import Confinement

    confined = Handlers(web.engine, confine=Confinement(files["content"].parent))
    outside = tmp_path_factory.mktemp("elsewhere") / "elsewhere.png"
    Image.new("RGBA", (SIZE, SIZE), (*RED, 255)).save(outside)
    view = confined.run(files["content"], files["style"], "scribbles", None, None, 1.0, False, SIZE, "pretrained", 0,
                        "adain", None, None, {"layers": [str(outside)]}, {"layers": [str(files["ss"])]})
    assert "content strokes 'elsewhere.png' was not uploaded to this server" in view.status, view.status
