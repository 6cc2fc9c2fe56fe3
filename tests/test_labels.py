"""Label maps in every format people bring (issue 3, item 1), on synthetic maps; the real ones (bundled in
``tests/data`` and from the shared data) are in ``test_labels_real.py``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from semstyle.errors import InputError
from semstyle.io.labels import (
    DPST_COLORS,
    LabelMap,
    colorize,
    fit_to,
    harmonize,
    load_labels,
    pack_rgb,
    parse_label,
    read_names,
    snap_colors,
)
from semstyle.segmentation.regions import check_common

# arbitrary colours, each far (> 24 levels in some channel) from every DPST palette colour
ARBITRARY = [(200, 90, 40), (60, 150, 170), (150, 60, 200)]


def three_regions(h: int = 96, w: int = 128) -> np.ndarray:
    """(H, W) ids 0/1/2: a left block, a right block and a disc straddling both."""
    yy, xx = np.mgrid[0:h, 0:w]
    ids = (xx >= w // 2).astype(np.int64)
    ids[(yy - h // 2) ** 2 + (xx - w // 2) ** 2 < (h // 4) ** 2] = 2
    return ids


def paint(ids: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    return np.array(colors, dtype=np.uint8)[ids]


def packed(colors: list[tuple[int, int, int]]) -> set[int]:
    return {int(pack_rgb(np.array(c))) for c in colors}


def far_from_edges(ids: np.ndarray, r: int) -> np.ndarray:
    """Pixels whose (2r+1)² neighbourhood holds a single id."""
    h, w = ids.shape
    p = np.pad(ids, r, mode="edge")
    same = np.ones_like(ids, dtype=bool)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            same &= p[dy : dy + h, dx : dx + w] == ids
    return same


def png_bytes(im: Image.Image, **kw: object) -> io.BytesIO:
    buf = io.BytesIO()
    im.save(buf, format=kw.pop("format", "PNG"), **kw)
    buf.seek(0)
    return buf


# ----------------------------------------------------------------------------- integer maps
def test_l8_png_values_are_labels(tmp_path: Path) -> None:
    ids = three_regions() * 5 + 3  # 3, 8, 13
    path = tmp_path / "l8.png"
    Image.fromarray(ids.astype(np.uint8), mode="L").save(path)
    lm = load_labels(path)
    assert not lm.from_colors
    assert lm.unique() == [3, 8, 13]
    np.testing.assert_array_equal(lm.labels, ids)
    assert lm.name(8) == "8"


def test_i16_png_keeps_values_above_255(tmp_path: Path) -> None:
    ids = np.array([0, 1000, 40000], dtype=np.uint16)[three_regions()]
    path = tmp_path / "l16.png"
    Image.fromarray(ids).save(path)
    assert Image.open(path).mode == "I;16"
    lm = load_labels(path)
    assert lm.unique() == [0, 1000, 40000]
    np.testing.assert_array_equal(lm.labels, ids.astype(np.int64))


def test_arrays_and_tensors_as_label_maps() -> None:
    ids = three_regions()
    np.testing.assert_array_equal(load_labels(ids).labels, ids)
    np.testing.assert_array_equal(load_labels(torch.from_numpy(ids)).labels, ids)
    np.testing.assert_array_equal(load_labels(ids.astype(bool)).labels, ids.astype(bool))
    rgb = load_labels(paint(ids, ARBITRARY))  # (H, W, 3) uint8 is a colour map
    assert rgb.from_colors and set(rgb.unique()) == packed(ARBITRARY)
    with pytest.raises(InputError, match="is missing"):
        load_labels(None)  # type: ignore[arg-type]


def test_float_map_must_hold_integers() -> None:
    assert load_labels(Image.fromarray(np.full((8, 8), 2.0, np.float32), mode="F")).unique() == [2]
    with pytest.raises(InputError, match="non-integer"):
        load_labels(Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F"))


# ----------------------------------------------------------------------------- palette maps
def test_palette_pngs_match_by_colour_not_index() -> None:
    ids = three_regions()
    colors = [(255, 0, 0), *ARBITRARY[:2]]
    maps = []
    for order in ([0, 1, 2], [2, 0, 1]):  # the same colours at different palette positions
        pal = [c for i in order for c in colors[i]]
        im = Image.fromarray(np.argsort(order)[ids].astype(np.uint8), mode="P")
        im.putpalette(pal + [0] * (768 - len(pal)))
        reread = Image.open(png_bytes(im))
        assert reread.mode == "P"
        maps.append(load_labels(reread))
    a, b = maps
    assert not np.array_equal(np.asarray(Image.open(png_bytes(im))), ids)  # the raw indices do differ
    assert a.from_colors and b.from_colors
    np.testing.assert_array_equal(a.labels, b.labels)
    assert set(a.unique()) == packed(colors)
    assert a.name(int(pack_rgb(np.array((255, 0, 0))))) == "red"


# ----------------------------------------------------------------------------- colour snapping
@pytest.mark.parametrize("blur", ["gaussian", "bilinear"])
def test_antialiased_edges_snap_to_the_original_colours(blur: str) -> None:
    ids = three_regions()
    if blur == "gaussian":
        im = Image.fromarray(paint(ids, ARBITRARY)).filter(ImageFilter.GaussianBlur(2))
    else:  # a small map upscaled with bilinear interpolation: 8-pixel ramps between regions
        small = three_regions(12, 16)
        im = Image.fromarray(paint(small, ARBITRARY)).resize((128, 96), Image.Resampling.BILINEAR)
        ids = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((128, 96), Image.Resampling.NEAREST))
    rgb = np.asarray(im)
    assert len(np.unique(pack_rgb(rgb))) > 50  # the edges really hold many intermediate colours
    snapped = snap_colors(rgb)
    assert set(np.unique(snapped).tolist()) == packed(ARBITRARY)  # exactly the original colours
    truth = pack_rgb(paint(ids, ARBITRARY))
    inner = far_from_edges(ids, 5)
    np.testing.assert_array_equal(snapped[inner], truth[inner])
    assert (snapped == truth).mean() > 0.95
    # an edge pixel takes one of the colours met within a few pixels, never a far one
    for k, c in enumerate(ARBITRARY):
        near_k = ~far_from_edges((ids == k).astype(np.int64), 4) | (ids == k)
        assert near_k[snapped == int(pack_rgb(np.array(c)))].all()


def test_jpeg_colour_map_snaps_to_few_labels() -> None:
    ids = three_regions()
    for colors, exact in ((ARBITRARY, False), ([(0, 0, 255), (0, 255, 0), (255, 255, 0)], True)):
        im = Image.open(png_bytes(Image.fromarray(paint(ids, colors)), format="JPEG", quality=70))
        rgb = np.asarray(im.convert("RGB"))
        assert len(np.unique(pack_rgb(rgb))) > 30
        lm = load_labels(im)
        got = [np.array((v >> 16 & 255, v >> 8 & 255, v & 255)) for v in lm.unique()]
        assert len(got) == 3
        if exact:  # palette colours come back exactly
            assert set(lm.unique()) == packed(colors)
        for c in colors:
            assert min(np.abs(g - np.array(c)).max() for g in got) <= 6
        truth = pack_rgb(np.array([got[int(np.argmin([np.abs(g - c).max() for g in got]))] for c in colors])[ids])
        assert (lm.labels == truth).mean() > 0.97


def test_dpst_nine_colour_palette() -> None:
    ids = np.repeat(np.repeat(np.arange(9).reshape(3, 3), 40, axis=0), 40, axis=1)
    colors = list(DPST_COLORS.values())
    im = Image.fromarray(paint(ids, colors)).filter(ImageFilter.GaussianBlur(1.5))
    lm = load_labels(im)
    assert lm.from_colors
    assert set(lm.unique()) == packed(colors)
    assert sorted(lm.name(v) for v in lm.unique()) == sorted(DPST_COLORS)
    inner = far_from_edges(ids, 4)
    np.testing.assert_array_equal(lm.labels[inner], pack_rgb(paint(ids, colors))[inner])


def test_small_real_regions_survive_snapping() -> None:
    ids = np.zeros((100, 100), np.int64)
    ids[10:16, 10:16] = 1  # 0.36 % of the image: a real region, not an edge
    lm = load_labels(paint(ids, ARBITRARY[:2]))
    assert set(lm.unique()) == packed(ARBITRARY[:2])


def test_a_photo_is_not_a_label_map() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    photo = np.stack([xx * 2, yy * 2, (xx + yy)], axis=-1) + rng.integers(0, 12, (96, 128, 3))
    with pytest.raises(InputError, match="is this a photo"):
        load_labels(np.clip(photo, 0, 255).astype(np.uint8))


def test_grey_antialiased_drawing_reads_as_black_and_white() -> None:
    ids = three_regions().clip(0, 1)
    im = Image.fromarray((ids * 255).astype(np.uint8), mode="L").filter(ImageFilter.GaussianBlur(3))
    assert len(np.unique(np.asarray(im))) > 16
    lm = load_labels(im)
    assert lm.from_colors
    assert lm.unique() == [0x000000, 0xFFFFFF]
    assert [lm.name(v) for v in lm.unique()] == ["black", "white"]
    # a plain 0/255 mask stays an integer map, but matches a black/white colour map
    binary = load_labels((ids * 255).astype(np.uint8))
    assert not binary.from_colors and binary.unique() == [0, 255]
    colour = load_labels(paint(ids, [(0, 0, 0), (255, 255, 255)]))
    a, b = harmonize(binary, colour)
    assert a.unique() == b.unique() == [0x000000, 0xFFFFFF]
    a, b = harmonize(colour, load_labels(ids.astype(np.uint8)))  # 0/1 masks read as black/white
    assert a.unique() == b.unique() == [0x000000, 0xFFFFFF]


def test_grey_jpeg_mask_reads_as_black_and_white() -> None:
    ids = three_regions().clip(0, 1)
    im = Image.open(png_bytes(Image.fromarray((ids * 255).astype(np.uint8), mode="L"), format="JPEG", quality=60))
    assert im.mode == "L" and len(np.unique(np.asarray(im))) > 2  # JPEG noise: ids drift
    lm = load_labels(im)
    assert lm.unique() == [0x000000, 0xFFFFFF]
    assert (lm.labels == ids * 0xFFFFFF).mean() > 0.98


def test_harmonize_pairs_drifted_colours_and_leaves_integer_maps_alone() -> None:
    ids = three_regions()
    drifted = [(r + 3, g - 2, b + 1) for r, g, b in ARBITRARY]
    a, b = harmonize(load_labels(paint(ids, ARBITRARY)), load_labels(paint(ids, drifted)))
    np.testing.assert_array_equal(a.labels, b.labels)
    ints = load_labels(ids + 1)
    assert harmonize(ints, load_labels(ids))[1].unique() == [0, 1, 2]


# ----------------------------------------------------------------------------- names
def test_names_files_json_and_text(tmp_path: Path) -> None:
    js = tmp_path / "names.json"
    js.write_text(json.dumps({"1": "sky", "#00ff00": "grass", "blue": "water"}))
    assert read_names(js) == {1: "sky", 0x00FF00: "grass", 0x0000FF: "water"}
    txt = tmp_path / "names.txt"
    txt.write_text("# labels of my map\n1 sky  # the top\n#00ff00: tall grass\n\n2\tbuilding\nred roof\n")
    assert read_names(txt) == {1: "sky", 0x00FF00: "tall grass", 2: "building", 0xFF0000: "roof"}
    lm = load_labels(three_regions(), names=txt)
    assert [lm.name(v) for v in lm.unique()] == ["0", "sky", "building"]
    bad = tmp_path / "bad.txt"
    bad.write_text("sky 1\n")
    with pytest.raises(InputError, match="'sky' is not a label"):
        read_names(bad)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_names(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot be read"):
        read_names(tmp_path / "missing.txt")


def test_parse_label() -> None:
    assert parse_label("7") == 7
    assert parse_label("#0A0b0C") == 0x0A0B0C
    assert parse_label("LightBlue") == 0x00FFFF
    with pytest.raises(InputError, match="not a label"):
        parse_label("sky", where="--style")


# ----------------------------------------------------------------------------- sizes and matching
def test_fit_to_resizes_nearest_without_new_labels() -> None:
    lm = load_labels(three_regions(96, 128) * 7)
    out = fit_to(lm, (64, 48))
    assert out.size == (64, 48)
    assert out.unique() == [0, 7, 14]
    out = fit_to(lm, (300, 227))  # 1.3 % off: tolerated
    assert out.size == (300, 227) and out.unique() == [0, 7, 14]
    assert fit_to(lm, (128, 96)) is lm


def test_fit_to_refuses_a_different_aspect_ratio() -> None:
    lm = load_labels(three_regions(96, 128))
    with pytest.raises(InputError) as e:
        fit_to(lm, (128, 128), "style label map 1")
    msg = str(e.value)
    assert "style label map 1 is 128x96 but its image is 128x128" in msg
    assert "aspect ratios differ (1.33 vs 1.00, more than 3%)" in msg and "same proportions" in msg
    with pytest.raises(InputError, match="aspect"):
        fit_to(lm, (128, 90))  # 6 % off


def test_no_common_label_is_a_clear_error() -> None:
    a = load_labels(paint(three_regions(), [(0, 0, 255), (0, 255, 0), (255, 0, 0)]))
    b = load_labels(paint(three_regions(), ARBITRARY))
    with pytest.raises(InputError) as e:
        check_common(a.unique(), b.unique(), a.name)
    msg = str(e.value)
    assert "share no label" in msg and "blue" in msg and "#c85a28" in msg and "same label value or colour" in msg
    check_common([1, 2], [2, 3])


def test_colorize_keeps_colours_and_paints_integers() -> None:
    ids = three_regions()
    rgb = paint(ids, ARBITRARY)
    np.testing.assert_array_equal(np.asarray(colorize(pack_rgb(rgb), from_colors=True)), rgb)
    pic = np.asarray(colorize(ids))
    assert pic.shape == (*ids.shape, 3) and len(np.unique(pack_rgb(pic))) == 3


def test_labelmap_basics() -> None:
    lm = LabelMap(np.array([[0x00FF00, 5]]), {5: "five"}, from_colors=True)
    assert lm.size == (2, 1)
    assert lm.name(5) == "five" and lm.name(0x00FF00) == "#00ff00"
